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

/// `n` spread-out test values of both signs (`k` a stride through them, `d` a scale).
pub(crate) fn spread(n: usize, k: usize, d: f32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * k % 1000) as f32 - 500.0) / d)
        .collect()
}

/// What a fused pass in pieces is tested with: `n` gradients, a keep-mask that prunes every
/// third entry, and the paper's decay term.
pub(crate) fn pass_inputs(n: usize) -> (Vec<f32>, Vec<u8>, Option<crate::kernel::DecayTerm>) {
    let g = spread(n, 7919, 300.0);
    let keep = (0..n).map(|i| (i % 3 != 0) as u8).collect();
    let decay = crate::kernel::DecayTerm {
        rel: crate::Relevance::Exp { alpha: 0.3 },
        penalty: crate::Penalty::L2,
        scale: 0.02,
    };
    (g, keep, Some(decay))
}
