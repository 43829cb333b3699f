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

use crate::ConfigError;
use crate::kernel::DecayTerm;

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
/// let mut optim = FusedAdamConfig::new().with_epsilon(1e-8).init().unwrap();
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
    /// Check every field; the error names the field and the accepted range.
    ///
    /// ```
    /// use sparse_reg::FusedAdamConfig;
    /// let err = FusedAdamConfig::new().with_beta_2(1.0).validate().unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid FusedAdamConfig.beta_2: expected a number in [0, 1), got 1"
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, beta) in [("beta_1", self.beta_1), ("beta_2", self.beta_2)] {
            if !(0.0..1.0).contains(&beta) {
                return Err(ConfigError::new(
                    format!("FusedAdamConfig.{field}"),
                    format!("expected a number in [0, 1), got {beta}"),
                ));
            }
        }
        ConfigError::positive("FusedAdamConfig.epsilon", self.epsilon as f64)
    }

    /// Validate, and the per-tensor optimizer (e.g. to wrap in a
    /// [`SelectiveDecay`](crate::SelectiveDecay)).
    pub fn build(&self) -> Result<FusedAdam, ConfigError> {
        self.validate()?;
        Ok(FusedAdam {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            burn: AdamConfig::new()
                .with_beta_1(self.beta_1)
                .with_beta_2(self.beta_2)
                .with_epsilon(self.epsilon)
                .build(),
        })
    }

    /// Validate, and a [`ModuleOptimizer`] over every parameter of a module.
    pub fn init(&self) -> Result<ModuleOptimizer, ConfigError> {
        Ok(ModuleOptimizer::from(self.build()?))
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

impl FusedAdam {
    /// Whether the one-pass update applies: f32 tensors in host memory, no amsgrad state.
    pub(crate) fn fuses<const D: usize>(
        &self,
        tensor: &Tensor<D>,
        grad: &Tensor<D>,
        state: Option<&AdamState<D>>,
    ) -> bool {
        let amsgrad = state.is_some_and(|s| s.momentum.max_moment_2.is_some());
        !amsgrad && crate::kernel::applies(grad, tensor)
    }

    /// One step, with the decay term folded in when given (see [`DecayTerm`]) and the entries
    /// `keep` marks pruned set to 0 after their update; Burn's Adam where the pass does not
    /// apply (callers then pass neither).
    pub(crate) fn step_with<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<AdamState<D>>,
        decay: Option<DecayTerm>,
        keep: Option<&[u8]>,
    ) -> (Tensor<D>, Option<AdamState<D>>) {
        if !self.fuses(&tensor, &grad, state.as_ref()) {
            assert!(
                decay.is_none() && keep.is_none(),
                "callers check `fuses` before passing a decay term or a keep-mask"
            );
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
        let scalars = AdamScalars {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            first: time == 1,
            combined: bc2_sqrt / (1.0 - self.beta_1.powi(t)),
            eps: self.epsilon * bc2_sqrt,
            lr: lr as f32,
        };
        let bufs = AdamBuffers {
            g: gs,
            w: ws,
            m: ms,
            v: vs,
            keep,
        };
        // Adam's square root and division make the pass arithmetic: it splits well over the
        // pool (docs/BENCHMARKS.md).
        let pieces = crate::split::pieces(bufs.g.len(), crate::split::threads());
        run_pass(bufs, scalars, decay, pieces);
        let moments = AdaptiveMomentumState::new(
            time,
            Tensor::from_data(m, &device),
            Tensor::from_data(v, &device),
        );
        (Tensor::from_data(w, &device), Some(AdamState::new(moments)))
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
        self.step_with(lr, tensor, grad, state, None, None)
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <Adam as Optimizer>::to_device(state, device)
    }
}

/// The buffers of one Adam step: gradient (read), weight and both moments (updated).
struct AdamBuffers<'a> {
    g: &'a [f32],
    w: &'a mut [f32],
    m: &'a mut [f32],
    v: &'a mut [f32],
    /// The keep-mask: entries where it is 0 get weight 0 after their update.
    keep: Option<&'a [u8]>,
}

/// The scalars of one Adam step, as Burn computes them.
#[derive(Clone, Copy)]
struct AdamScalars {
    beta_1: f32,
    beta_2: f32,
    /// The first step: Burn sets the moments from the gradient alone.
    first: bool,
    combined: f32,
    eps: f32,
    lr: f32,
}

/// The pass over one parameter's buffers. Not generic: compiled (and optimised) in this crate,
/// whatever profile the calling crate builds with (a generic body would be instantiated, and in
/// a debug build left unoptimised, in the caller).
fn run_pass(bufs: AdamBuffers<'_>, scalars: AdamScalars, decay: Option<DecayTerm>, pieces: usize) {
    crate::kernel::with_optional_decay(decay, AdamLoop(bufs, scalars, pieces))
}

/// The Adam pass as a loop handed the gradient it sees, in `pieces` pieces on rayon's pool
/// ([`crate::split`]).
struct AdamLoop<'a>(AdamBuffers<'a>, AdamScalars, usize);

impl crate::kernel::DecayedLoop for AdamLoop<'_> {
    fn run(self, grad: impl crate::kernel::Decayed) {
        let scalars = self.1;
        crate::split::run_pieces(self.0, self.2, &|bufs: AdamBuffers<'_>| {
            pulp::Arch::new().dispatch(AdamPass {
                bufs,
                scalars,
                grad,
            })
        })
    }
}

impl crate::split::Split for AdamBuffers<'_> {
    fn len(&self) -> usize {
        self.g.len()
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let (g0, g1) = self.g.split_at(mid);
        let (w0, w1) = self.w.split_at_mut(mid);
        let (m0, m1) = self.m.split_at_mut(mid);
        let (v0, v1) = self.v.split_at_mut(mid);
        let (k0, k1) = crate::split::split_ref(self.keep, mid);
        (
            AdamBuffers {
                g: g0,
                w: w0,
                m: m0,
                v: v0,
                keep: k0,
            },
            AdamBuffers {
                g: g1,
                w: w1,
                m: m1,
                v: v1,
                keep: k1,
            },
        )
    }
}

/// One Adam step over a parameter, as a `pulp` operation (compiled per instruction set).
/// `grad.at(g, w)` is the gradient Adam sees (`g`, or `g` plus the decay term). The arithmetic is
/// Burn's, op by op and in its order, without fused multiply-adds, so the result is
/// bit-identical to Burn's Adam on flex.
struct AdamPass<'a, F> {
    bufs: AdamBuffers<'a>,
    scalars: AdamScalars,
    grad: F,
}

impl<F: crate::kernel::Decayed> pulp::WithSimd for AdamPass<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let Self {
            bufs: AdamBuffers { g, w, m, v, keep },
            scalars,
            grad,
        } = self;
        // The decay term with fused multiply-adds where the instruction set has them; the
        // optimizer's own arithmetic below stays Burn's, op by op.
        let grad = crate::kernel::for_level::<S>(grad);
        match keep {
            Some(keep) => adam_loop(g, w, m, v, keep, scalars, grad),
            None => adam_loop(g, w, m, v, g, scalars, grad),
        }
    }
}

/// The Adam loop; `alive` is the keep-mask or, without one, `g` again (see
/// [`Alive`](crate::keep::Alive)).
#[inline(always)]
fn adam_loop<K>(
    g: &[f32],
    w: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    alive: &[K],
    scalars: AdamScalars,
    grad: impl Fn(f32, f32) -> f32,
) where
    for<'k> &'k K: crate::keep::Alive,
{
    use crate::keep::Alive;
    let AdamScalars {
        beta_1,
        beta_2,
        first,
        combined,
        eps,
        lr,
    } = scalars;
    let (f1, f2) = (1.0 - beta_1, 1.0 - beta_2);
    let entries = g
        .iter()
        .zip(w.iter_mut())
        .zip(m.iter_mut().zip(v.iter_mut()))
        .zip(alive);
    if first {
        for (((g, w), (m, v)), alive) in entries {
            let g = grad(*g, *w);
            *m = g * f1;
            *v = (g * g) * f2;
            *w = alive.keep(*w - ((*m * combined) / (v.sqrt() + eps)) * lr);
        }
    } else {
        for (((g, w), (m, v)), alive) in entries {
            let g = grad(*g, *w);
            *m = *m * beta_1 + g * f1;
            *v = *v * beta_2 + (g * g) * f2;
            *w = alive.keep(*w - ((*m * combined) / (v.sqrt() + eps)) * lr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{batch, start, train, weights};
    use burn::optim::GradientsParams;

    const LR: f64 = 3e-3;

    #[test]
    fn bit_identical_to_burns_adam() {
        let model = start();
        let fused = FusedAdamConfig::new().with_epsilon(1e-8).init().unwrap();
        let (ours, _) = train(model.clone(), fused, 6, LR);
        let burn = AdamConfig::new().with_epsilon(1e-8).init();
        let (theirs, _) = train(model.clone(), burn, 6, LR);
        assert_eq!(weights(&ours), weights(&theirs));
        assert_ne!(weights(&ours), weights(&model)); // it did train
    }

    #[test]
    fn the_decay_folded_into_the_pass_is_bit_identical_to_the_two_passes() {
        use crate::{Coupling, Penalty, Relevance, SelectiveDecayConfig};
        let model = start();
        for (relevance, penalty) in [
            (Relevance::Exp { alpha: 1.0 }, Penalty::L2),
            (Relevance::Exp { alpha: 0.01 }, Penalty::L1),
            (Relevance::Hyperbolic { alpha: 0.1 }, Penalty::L2),
            (Relevance::Lobster, Penalty::L1),
            (Relevance::Constant, Penalty::L2),
        ] {
            let decay = SelectiveDecayConfig::new()
                .with_gamma(0.05)
                .with_relevance(relevance)
                .with_penalty(penalty);
            let fused = decay
                .init(FusedAdamConfig::new().build().unwrap(), &model)
                .unwrap();
            let (ours, _) = train(model.clone(), fused, 5, LR);
            let burn = decay.init(AdamConfig::new().build(), &model).unwrap();
            let (theirs, _) = train(model.clone(), burn, 5, LR);
            assert_eq!(
                weights(&ours),
                weights(&theirs),
                "{relevance:?} {penalty:?}"
            );
            // The decay did act: without it the weights differ.
            let (plain, _) = train(model.clone(), FusedAdamConfig::new().init().unwrap(), 5, LR);
            assert_ne!(weights(&ours), weights(&plain), "{relevance:?} {penalty:?}");
        }
        // Decoupled decay keeps its own path around the fused Adam.
        let decoupled = SelectiveDecayConfig::new().with_coupling(Coupling::Decoupled);
        let (ours, _) = train(
            model.clone(),
            decoupled
                .init(FusedAdamConfig::new().build().unwrap(), &model)
                .unwrap(),
            3,
            LR,
        );
        let (theirs, _) = train(
            model.clone(),
            decoupled.init(AdamConfig::new().build(), &model).unwrap(),
            3,
            LR,
        );
        assert_eq!(weights(&ours), weights(&theirs));
    }

    #[test]
    fn bad_fields_are_errors_naming_the_field() {
        let err = |c: FusedAdamConfig| c.build().unwrap_err().to_string();
        assert_eq!(
            err(FusedAdamConfig::new().with_beta_1(-0.1)),
            "invalid FusedAdamConfig.beta_1: expected a number in [0, 1), got -0.1"
        );
        assert_eq!(
            err(FusedAdamConfig::new().with_epsilon(0.0)),
            "invalid FusedAdamConfig.epsilon: expected a finite number > 0, got 0"
        );
        assert!(FusedAdamConfig::new().with_beta_2(f32::NAN).init().is_err());
    }

    #[test]
    fn its_state_loads_into_burns_adam_and_back() {
        let dir = std::env::temp_dir().join(format!("fused-adam-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("optim.bpk");
        let (model, optim) = train(start(), FusedAdamConfig::new().init().unwrap(), 3, LR);
        optim.save(&file).unwrap();
        // Continue with Burn's Adam from the fused state, and with the fused one: the same.
        let device = model.weight.val().device();
        let x = batch(3, &device);
        let step = |optim: ModuleOptimizer| {
            let mut optim = optim;
            let model = model.clone();
            let loss = model.forward(x.clone()).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            weights(&optim.step(LR, model, grads))
        };
        let burn = AdamConfig::new().init().load(&file).unwrap();
        let fused = FusedAdamConfig::new().init().unwrap().load(&file).unwrap();
        assert_eq!(step(burn), step(fused));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The pass cut into pieces on the pool writes the bits of the whole pass (a piece
    /// skipped or run twice would not: the update is not idempotent).
    #[test]
    fn the_pass_in_pieces_is_the_whole_pass() {
        use crate::testing::spread;
        let n = 100_003;
        let (g, keep, decay) = crate::testing::pass_inputs(n);
        let run = |pieces| {
            let mut w = spread(n, 104_729, 700.0);
            let (mut m, mut v) = (spread(n, 31, 900.0), spread(n, 17, 9000.0));
            v.iter_mut().for_each(|v| *v = v.abs());
            let bufs = AdamBuffers {
                g: &g,
                w: &mut w,
                m: &mut m,
                v: &mut v,
                keep: Some(&keep),
            };
            let scalars = AdamScalars {
                beta_1: 0.9,
                beta_2: 0.999,
                first: false,
                combined: 0.5,
                eps: 1e-8,
                lr: 1e-3,
            };
            run_pass(bufs, scalars, decay, pieces);
            (w, m, v)
        };
        let whole = run(1);
        assert_ne!(whole.0, spread(n, 104_729, 700.0));
        assert_eq!(run(2), whole);
        assert_eq!(run(3), whole);
    }
}
