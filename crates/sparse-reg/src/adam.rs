//! Adam as one pass over host memory: the same update as Burn's `Adam`, bit for bit, with its
//! state type, so checkpoints move freely between the two.
//!
//! Burn's Adam is a dozen tensor ops per parameter and step (two moment updates, the square,
//! the bias-corrected quotient, the learning-rate scale, the subtraction); on CPU backends each
//! is a pass over memory. For a small network whose step is a few milliseconds (LeNet-300-100:
//! 266 k parameters) that is a visible share of the step. [`FusedAdam`] reads the gradient and
//! updates the weight and both moments in place, in one loop compiled for the widest
//! instruction set the CPU has. On other devices (GPU), other float types or with amsgrad it
//! runs Burn's Adam itself.

use burn::config::Config;
use burn::optim::{
    Adam, AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer,
};
use burn::tensor::{Device, Tensor, TensorData};

/// Configuration of [`FusedAdam`]; the fields and defaults of Burn's `AdamConfig` (without
/// weight decay, gradient clipping or amsgrad: wrap it in a
/// [`SelectiveDecay`](crate::SelectiveDecay) for decay, clip on the `ModuleOptimizer`).
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::optim::GradientsParams;
/// use burn::tensor::{Device, Distribution, Tensor};
/// use sparse_reg::FusedAdamConfig;
///
/// let device = Device::flex().autodiff();
/// let mut model = LinearConfig::new(8, 4).init(&device);
/// let mut optim = FusedAdamConfig::new().with_epsilon(1e-8).init();
/// let x = Tensor::<2>::random([16, 8], Distribution::Default, &device);
/// let loss = model.forward(x).powi_scalar(2).mean();
/// let grads = GradientsParams::from_grads(loss.backward(), &model);
/// model = optim.step(1e-3, model, grads);
/// # let _ = model;
/// ```
#[derive(Config, Debug)]
pub struct FusedAdamConfig {
    /// Decay of the first moment.
    #[config(default = 0.9)]
    pub beta_1: f32,
    /// Decay of the second moment.
    #[config(default = 0.999)]
    pub beta_2: f32,
    /// Added to the square root of the second moment.
    #[config(default = 1e-5)]
    pub epsilon: f32,
}

impl FusedAdamConfig {
    /// The per-tensor optimizer (e.g. to wrap in a [`SelectiveDecay`](crate::SelectiveDecay)).
    pub fn build(&self) -> FusedAdam {
        FusedAdam {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            burn: AdamConfig::new()
                .with_beta_1(self.beta_1)
                .with_beta_2(self.beta_2)
                .with_epsilon(self.epsilon)
                .build(),
        }
    }

    /// A [`ModuleOptimizer`] over every parameter of a module.
    pub fn init(&self) -> ModuleOptimizer {
        ModuleOptimizer::from(self.build())
    }
}

/// Adam in one in-place pass on CPU backends; Burn's `Adam` elsewhere. Built by
/// [`FusedAdamConfig`]. Its state is Burn's `AdamState`: an optimizer checkpoint written by
/// either loads into the other.
#[derive(Clone)]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    burn: Adam,
}

impl std::fmt::Debug for FusedAdam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FusedAdam")
            .field("beta_1", &self.beta_1)
            .field("beta_2", &self.beta_2)
            .field("epsilon", &self.epsilon)
            .finish()
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let amsgrad = state
            .as_ref()
            .is_some_and(|s| s.momentum.max_moment_2.is_some());
        if amsgrad || !crate::kernel::applies(&grad, &tensor) {
            return self.burn.step(lr, tensor, grad, state);
        }
        let device = grad.device();
        let shape = tensor.shape();
        let g = grad.into_data();
        let mut w = tensor.into_data();
        let (time, mut m, mut v) = match state {
            Some(s) => (
                s.momentum.time + 1,
                s.momentum.moment_1.into_data(),
                s.momentum.moment_2.into_data(),
            ),
            None => {
                let zeros = || TensorData::new(vec![0f32; shape.num_elements()], shape.clone());
                (1, zeros(), zeros())
            }
        };
        let slices = (
            g.as_slice::<f32>(),
            w.as_mut_slice::<f32>(),
            m.as_mut_slice::<f32>(),
            v.as_mut_slice::<f32>(),
        );
        let (Ok(gs), Ok(ws), Ok(ms), Ok(vs)) = slices else {
            unreachable!("`applies` checked f32; the moments have the weight's type")
        };
        // Burn's scalars, computed as Burn computes them (f32).
        let t = time as i32;
        let bc2_sqrt = (1.0 - self.beta_2.powi(t)).sqrt();
        let pass = AdamPass {
            g: gs,
            w: ws,
            m: ms,
            v: vs,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            first: time == 1,
            combined: bc2_sqrt / (1.0 - self.beta_1.powi(t)),
            eps: self.epsilon * bc2_sqrt,
            lr: lr as f32,
        };
        pulp::Arch::new().dispatch(pass);
        let moments = AdaptiveMomentumState::new(
            time,
            Tensor::from_data(m, &device),
            Tensor::from_data(v, &device),
        );
        (Tensor::from_data(w, &device), Some(AdamState::new(moments)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <Adam as Optimizer>::to_device(state, device)
    }
}

/// One Adam step over a parameter, as a `pulp` operation (compiled per instruction set). The
/// arithmetic is Burn's, op by op and in its order, without fused multiply-adds, so the result
/// is bit-identical to Burn's Adam on flex.
struct AdamPass<'a> {
    g: &'a [f32],
    w: &'a mut [f32],
    m: &'a mut [f32],
    v: &'a mut [f32],
    beta_1: f32,
    beta_2: f32,
    /// The first step: Burn sets the moments from the gradient alone.
    first: bool,
    combined: f32,
    eps: f32,
    lr: f32,
}

impl pulp::WithSimd for AdamPass<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let Self {
            g,
            w,
            m,
            v,
            beta_1,
            beta_2,
            first,
            combined,
            eps,
            lr,
        } = self;
        let (f1, f2) = (1.0 - beta_1, 1.0 - beta_2);
        let entries = g
            .iter()
            .zip(w.iter_mut())
            .zip(m.iter_mut().zip(v.iter_mut()));
        if first {
            for ((g, w), (m, v)) in entries {
                *m = *g * f1;
                *v = (*g * *g) * f2;
                *w -= ((*m * combined) / (v.sqrt() + eps)) * lr;
            }
        } else {
            for ((g, w), (m, v)) in entries {
                *m = *m * beta_1 + *g * f1;
                *v = *v * beta_2 + (*g * *g) * f2;
                *w -= ((*m * combined) / (v.sqrt() + eps)) * lr;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::GradientsParams;

    /// A fixed batch for step `k` (no global RNG: the tests of this crate run in parallel).
    fn batch(k: usize, device: &Device) -> Tensor<2> {
        let values: Vec<f32> = (0..8 * 37)
            .map(|i| (((i * 7 + k * 13) % 23) as f32 - 11.0) / 7.0)
            .collect();
        Tensor::from_data(TensorData::new(values, [8, 37]), device)
    }

    fn start() -> Linear {
        LinearConfig::new(37, 19).init(&Device::flex().autodiff())
    }

    fn train(
        mut model: Linear,
        mut optim: ModuleOptimizer,
        steps: usize,
    ) -> (Linear, ModuleOptimizer) {
        let device = model.weight.val().device();
        for k in 0..steps {
            let loss = model.forward(batch(k, &device)).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(3e-3, model, grads);
        }
        (model, optim)
    }

    fn weights(model: &Linear) -> Vec<f32> {
        let mut all = model.weight.val().into_data().try_to_vec::<f32>().unwrap();
        all.extend(
            model
                .bias
                .as_ref()
                .unwrap()
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
        );
        all
    }

    #[test]
    fn bit_identical_to_burns_adam() {
        let model = start();
        let fused = FusedAdamConfig::new().with_epsilon(1e-8).init();
        let (ours, _) = train(model.clone(), fused, 6);
        let burn = AdamConfig::new().with_epsilon(1e-8).init();
        let (theirs, _) = train(model.clone(), burn, 6);
        assert_eq!(weights(&ours), weights(&theirs));
        assert_ne!(weights(&ours), weights(&model)); // it did train
    }

    #[test]
    fn its_state_loads_into_burns_adam_and_back() {
        let dir = std::env::temp_dir().join(format!("fused-adam-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("optim.bpk");
        let (model, optim) = train(start(), FusedAdamConfig::new().init(), 3);
        optim.save(&file).unwrap();
        // Continue with Burn's Adam from the fused state, and with the fused one: the same.
        let device = model.weight.val().device();
        let x = batch(3, &device);
        let step = |optim: ModuleOptimizer| {
            let mut optim = optim;
            let model = model.clone();
            let loss = model.forward(x.clone()).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            weights(&optim.step(3e-3, model, grads))
        };
        let burn = AdamConfig::new().init().load(&file).unwrap();
        let fused = FusedAdamConfig::new().init().load(&file).unwrap();
        assert_eq!(step(burn), step(fused));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
