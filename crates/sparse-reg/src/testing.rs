//! What the fused optimizers' tests share: a small linear model, fixed batches, a training loop.

use burn::nn::{Linear, LinearConfig};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};

/// A fixed batch for step `k` (no global RNG: the tests of this crate run in parallel).
pub(crate) fn batch(k: usize, device: &Device) -> Tensor<2> {
    let values: Vec<f32> = (0..8 * 37)
        .map(|i| (((i * 7 + k * 13) % 23) as f32 - 11.0) / 7.0)
        .collect();
    Tensor::from_data(TensorData::new(values, [8, 37]), device)
}

/// A fresh 37 -> 19 linear layer on flex with autodiff.
pub(crate) fn start() -> Linear {
    LinearConfig::new(37, 19).init(&Device::flex().autodiff())
}

/// `steps` steps of a squared-output loss on the fixed batches at learning rate `lr`.
pub(crate) fn train(
    mut model: Linear,
    mut optim: ModuleOptimizer,
    steps: usize,
    lr: f64,
) -> (Linear, ModuleOptimizer) {
    let device = model.weight.val().device();
    for k in 0..steps {
        let loss = model.forward(batch(k, &device)).powi_scalar(2).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(lr, model, grads);
    }
    (model, optim)
}

/// The layer's weight then bias, flat.
pub(crate) fn weights(model: &Linear) -> Vec<f32> {
    let mut all = model.weight.val().into_data().try_to_vec::<f32>().unwrap();
    let bias = model.bias.as_ref().unwrap().val().into_data();
    all.extend(bias.try_to_vec::<f32>().unwrap());
    all
}
