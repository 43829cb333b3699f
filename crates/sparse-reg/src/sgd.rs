//! SGD (with momentum) as one pass over host memory: the same update as Burn's `Sgd`, bit for
//! bit, with a state that is recorded under the same names, so checkpoints move freely between
//! the two.
//!
//! Burn's SGD with momentum is five tensor ops per parameter and step (the dampened gradient,
//! the decayed velocity, their sum, the learning-rate scale, the subtraction); on CPU backends
//! each is a pass over memory. [`FusedSgd`] reads the gradient and updates the weight and the
//! velocity in place, in one loop compiled for the widest instruction set the CPU has. On other
//! devices (GPU) and other float types it runs Burn's arithmetic as tensor ops.

use burn::config::Config;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{
    LearningRate, ModuleOptimizer, Optimizer, RecordState, StateSink, StateSource, join_path,
};
use burn::tensor::{Device, Tensor, TensorData};

use crate::ConfigError;
use crate::kernel::DecayTerm;

/// Configuration of [`FusedSgd`]: Burn's `SgdConfig` without weight decay or gradient clipping
/// (wrap it in a [`SelectiveDecay`](crate::SelectiveDecay) for decay, clip on the
/// `ModuleOptimizer`). `momentum` is Burn's own `MomentumConfig` (momentum, dampening,
/// nesterov), with Burn's defaults.
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::optim::GradientsParams;
/// use burn::optim::momentum::MomentumConfig;
/// use burn::tensor::{Device, Distribution, Tensor};
/// use sparse_reg::FusedSgdConfig;
///
/// let device = Device::flex().autodiff();
/// let mut model = LinearConfig::new(8, 4).init(&device);
/// let momentum = MomentumConfig::new().with_momentum(0.9).with_dampening(0.0);
/// let mut optim = FusedSgdConfig::new().with_momentum(Some(momentum)).init().unwrap();
/// let x = Tensor::<2>::random([16, 8], Distribution::Default, &device);
/// let loss = model.forward(x).powi_scalar(2).mean();
/// let grads = GradientsParams::from_grads(loss.backward(), &model);
/// model = optim.step(1e-2, model, grads);
/// # let _ = model;
/// ```
#[derive(Config, Debug)]
pub struct FusedSgdConfig {
    /// Momentum (Burn's configuration); `None`: plain SGD.
    pub momentum: Option<MomentumConfig>,
}

impl FusedSgdConfig {
    /// Check every field; the error names the field and the accepted range.
    ///
    /// ```
    /// use burn::optim::momentum::MomentumConfig;
    /// use sparse_reg::FusedSgdConfig;
    /// let bad = MomentumConfig::new().with_dampening(1.5);
    /// let err = FusedSgdConfig::new().with_momentum(Some(bad)).validate().unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid FusedSgdConfig.momentum.dampening: expected a number in [0, 1], got 1.5"
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(m) = &self.momentum {
            if !(0.0..1.0).contains(&m.momentum) {
                return Err(ConfigError::new(
                    "FusedSgdConfig.momentum.momentum",
                    format!("expected a number in [0, 1), got {}", m.momentum),
                ));
            }
            if !(0.0..=1.0).contains(&m.dampening) {
                return Err(ConfigError::new(
                    "FusedSgdConfig.momentum.dampening",
                    format!("expected a number in [0, 1], got {}", m.dampening),
                ));
            }
        }
        Ok(())
    }

    /// Validate, and the per-tensor optimizer (e.g. to wrap in a
    /// [`SelectiveDecay`](crate::SelectiveDecay)).
    pub fn build(&self) -> Result<FusedSgd, ConfigError> {
        self.validate()?;
        Ok(FusedSgd {
            momentum: self.momentum.as_ref().map(|m| Momentum {
                // Burn's own conversions: the momentum to f32, the dampening kept in f64
                // until `1 - dampening` is formed.
                momentum: m.momentum as f32,
                keep: (1.0 - m.dampening) as f32,
                nesterov: m.nesterov,
            }),
        })
    }

    /// Validate, and a [`ModuleOptimizer`] over every parameter of a module.
    pub fn init(&self) -> Result<ModuleOptimizer, ConfigError> {
        Ok(ModuleOptimizer::from(self.build()?))
    }
}

#[derive(Clone, Copy, Debug)]
struct Momentum {
    momentum: f32,
    /// `1 - dampening`.
    keep: f32,
    nesterov: bool,
}

/// SGD in one in-place pass on CPU backends; Burn's arithmetic as tensor ops elsewhere. Built by
/// [`FusedSgdConfig`].
#[derive(Clone, Debug)]
pub struct FusedSgd {
    momentum: Option<Momentum>,
}

/// The state of [`FusedSgd`] for one parameter: the momentum's velocity (none without
/// momentum). Recorded under the names of Burn's `SgdState` (`momentum.velocity`), so an
/// optimizer checkpoint written with either loads into the other.
#[derive(Clone, Debug)]
pub struct FusedSgdState<const D: usize> {
    /// The velocity, once a step with momentum has run.
    pub velocity: Option<Tensor<D>>,
}

impl<const D: usize> RecordState for FusedSgdState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        // Burn's `SgdState { momentum: Option<MomentumState { velocity }> }`, leaf for leaf.
        if let Some(v) = &self.velocity {
            out.push_tensor(
                &join_path(prefix, "momentum"),
                "velocity",
                v.clone().into_data(),
            );
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let momentum = join_path(prefix, "momentum");
        let velocity = if src.has_under(&momentum) {
            Some(Tensor::from_data(
                src.take_tensor(&momentum, "velocity")?,
                device,
            ))
        } else {
            None
        };
        Some(Self { velocity })
    }
}

impl FusedSgd {
    /// Whether the one-pass update applies: f32 tensors in host memory.
    pub(crate) fn fuses<const D: usize>(&self, tensor: &Tensor<D>, grad: &Tensor<D>) -> bool {
        crate::kernel::applies(grad, tensor)
    }

    /// One step, with the decay term folded in when given (see [`DecayTerm`]) and the entries
    /// `keep` marks pruned set to 0 after their update; Burn's arithmetic as tensor ops where
    /// the pass does not apply (callers then pass neither).
    pub(crate) fn step_with<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<FusedSgdState<D>>,
        decay: Option<DecayTerm>,
        keep: Option<&[u8]>,
    ) -> (Tensor<D>, Option<FusedSgdState<D>>) {
        let velocity = state.and_then(|s| s.velocity);
        if !self.fuses(&tensor, &grad) {
            assert!(
                decay.is_none() && keep.is_none(),
                "callers check `fuses` before passing a decay term or a keep-mask"
            );
            return self.tensor_ops(lr, tensor, grad, velocity);
        }
        let device = grad.device();
        let shape = tensor.shape();
        let g = grad.into_data();
        let mut w = tensor.into_data();
        let first = velocity.is_none();
        let mut v = match (&self.momentum, velocity) {
            (None, _) => None,
            (Some(_), Some(v)) => Some(v.into_data()),
            (Some(_), None) => Some(TensorData::new(vec![0f32; shape.num_elements()], shape)),
        };
        let (Ok(gs), Ok(ws)) = (g.as_slice::<f32>(), w.as_mut_slice::<f32>()) else {
            unreachable!("`applies` checked f32")
        };
        let vs = v.as_mut().map(|v| {
            v.as_mut_slice::<f32>()
                .expect("the velocity has the weight's type")
        });
        // Plain SGD is a stream through memory: a hand-off to the pool costs more than it
        // saves. With the decay's `exp` folded in, the pass is arithmetic and splits well
        // (docs/BENCHMARKS.md).
        let pieces = match decay {
            Some(_) => crate::split::pieces(gs.len(), crate::split::threads()),
            None => 1,
        };
        run_pass(
            SgdBuffers {
                g: gs,
                w: ws,
                v: vs,
                keep,
            },
            SgdScalars {
                momentum: self.momentum,
                first,
                lr: lr as f32,
            },
            decay,
            pieces,
        );
        let velocity = v.map(|v| Tensor::from_data(v, &device));
        (
            Tensor::from_data(w, &device),
            Some(FusedSgdState { velocity }),
        )
    }

    /// Burn's `Sgd` step (momentum's `transform`, then `tensor - grad * lr`), op for op.
    fn tensor_ops<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        velocity: Option<Tensor<D>>,
    ) -> (Tensor<D>, Option<FusedSgdState<D>>) {
        let (grad, velocity) = match &self.momentum {
            None => (grad, None),
            Some(m) => {
                let velocity = match velocity {
                    Some(v) => grad
                        .clone()
                        .mul_scalar(m.keep)
                        .add(v.mul_scalar(m.momentum)),
                    None => grad.clone(),
                };
                let grad = if m.nesterov {
                    velocity.clone().mul_scalar(m.momentum).add(grad)
                } else {
                    velocity.clone()
                };
                (grad, Some(velocity))
            }
        };
        (
            tensor - grad.mul_scalar(lr),
            Some(FusedSgdState { velocity }),
        )
    }
}

impl Optimizer for FusedSgd {
    type State<const D: usize> = FusedSgdState<D>;

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
        FusedSgdState {
            velocity: state.velocity.map(|v| v.to_device(device)),
        }
    }
}

/// The buffers of one SGD step: gradient (read), weight and velocity (updated).
struct SgdBuffers<'a> {
    g: &'a [f32],
    w: &'a mut [f32],
    v: Option<&'a mut [f32]>,
    /// The keep-mask: entries where it is 0 get weight 0 after their update.
    keep: Option<&'a [u8]>,
}

/// The scalars of one SGD step, as Burn computes them (f32).
#[derive(Clone, Copy)]
struct SgdScalars {
    momentum: Option<Momentum>,
    /// No velocity yet: Burn starts it at the gradient itself.
    first: bool,
    lr: f32,
}

/// The pass over one parameter's buffers (not generic: compiled and optimised in this crate,
/// whatever profile the caller builds with).
fn run_pass(bufs: SgdBuffers<'_>, scalars: SgdScalars, decay: Option<DecayTerm>, pieces: usize) {
    crate::kernel::with_optional_decay(decay, SgdLoop(bufs, scalars, pieces))
}

/// The SGD pass as a loop handed the gradient it sees, in `pieces` pieces on rayon's pool
/// ([`crate::split`]).
struct SgdLoop<'a>(SgdBuffers<'a>, SgdScalars, usize);

impl crate::kernel::DecayedLoop for SgdLoop<'_> {
    fn run(self, grad: impl crate::kernel::Decayed) {
        let scalars = self.1;
        crate::split::run_pieces(self.0, self.2, &|bufs: SgdBuffers<'_>| {
            pulp::Arch::new().dispatch(SgdPass {
                bufs,
                scalars,
                grad,
            })
        })
    }
}

impl crate::split::Split for SgdBuffers<'_> {
    fn len(&self) -> usize {
        self.g.len()
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        use crate::split::{split_opt, split_ref};
        let (g0, g1) = self.g.split_at(mid);
        let (w0, w1) = self.w.split_at_mut(mid);
        let (v0, v1) = split_opt(self.v, mid);
        let (k0, k1) = split_ref(self.keep, mid);
        (
            SgdBuffers {
                g: g0,
                w: w0,
                v: v0,
                keep: k0,
            },
            SgdBuffers {
                g: g1,
                w: w1,
                v: v1,
                keep: k1,
            },
        )
    }
}

/// One SGD step over a parameter, as a `pulp` operation (compiled per instruction set).
/// `grad.at(g, w)` is the gradient SGD sees (`g`, or `g` plus the decay term). The arithmetic is
/// Burn's, op by op and in its order, without fused multiply-adds, so the result is
/// bit-identical to Burn's SGD on flex.
struct SgdPass<'a, F> {
    bufs: SgdBuffers<'a>,
    scalars: SgdScalars,
    grad: F,
}

impl<F: crate::kernel::Decayed> pulp::WithSimd for SgdPass<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let Self {
            bufs: SgdBuffers { g, w, v, keep },
            scalars,
            grad,
        } = self;
        // The decay term with fused multiply-adds where the instruction set has them; the
        // optimizer's own arithmetic below stays Burn's, op by op.
        let grad = crate::kernel::for_level::<S>(grad);
        match keep {
            Some(keep) => sgd_loop(g, w, v, keep, scalars, grad),
            None => sgd_loop(g, w, v, g, scalars, grad),
        }
    }
}

/// The SGD loops; `alive` is the keep-mask or, without one, `g` again (see
/// [`Alive`](crate::keep::Alive)).
#[inline(always)]
fn sgd_loop<K>(
    g: &[f32],
    w: &mut [f32],
    v: Option<&mut [f32]>,
    alive: &[K],
    scalars: SgdScalars,
    grad: impl Fn(f32, f32) -> f32,
) where
    for<'k> &'k K: crate::keep::Alive,
{
    use crate::keep::Alive;
    let SgdScalars {
        momentum,
        first,
        lr,
    } = scalars;
    match (momentum, v) {
        (Some(m), Some(v)) => {
            let entries = g.iter().zip(w.iter_mut()).zip(v.iter_mut()).zip(alive);
            let (mu, keep) = (m.momentum, m.keep);
            match (first, m.nesterov) {
                (true, false) => {
                    for (((g, w), v), alive) in entries {
                        let g = grad(*g, *w);
                        *v = g;
                        *w = alive.keep(*w - g * lr);
                    }
                }
                (true, true) => {
                    for (((g, w), v), alive) in entries {
                        let g = grad(*g, *w);
                        *v = g;
                        *w = alive.keep(*w - (g * mu + g) * lr);
                    }
                }
                (false, false) => {
                    for (((g, w), v), alive) in entries {
                        let g = grad(*g, *w);
                        *v = g * keep + *v * mu;
                        *w = alive.keep(*w - *v * lr);
                    }
                }
                (false, true) => {
                    for (((g, w), v), alive) in entries {
                        let g = grad(*g, *w);
                        *v = g * keep + *v * mu;
                        *w = alive.keep(*w - (*v * mu + g) * lr);
                    }
                }
            }
        }
        _ => {
            for ((g, w), alive) in g.iter().zip(w.iter_mut()).zip(alive) {
                let g = grad(*g, *w);
                *w = alive.keep(*w - g * lr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{batch, start, train, weights};
    use burn::nn::Linear;
    use burn::optim::{GradientsParams, SgdConfig};

    const LR: f64 = 3e-2;

    fn momenta() -> Vec<Option<MomentumConfig>> {
        vec![
            None,
            Some(MomentumConfig::new()), // Burn's defaults: 0.9, dampening 0.1
            Some(MomentumConfig::new().with_momentum(0.9).with_dampening(0.0)),
            Some(MomentumConfig::new().with_nesterov(true)),
        ]
    }

    #[test]
    fn bit_identical_to_burns_sgd() {
        let model = start();
        for momentum in momenta() {
            let fused = FusedSgdConfig::new()
                .with_momentum(momentum.clone())
                .init()
                .unwrap();
            let ours = train(model.clone(), fused, 6, LR).0;
            let burn = SgdConfig::new().with_momentum(momentum.clone()).init();
            let theirs = train(model.clone(), burn, 6, LR).0;
            assert_eq!(weights(&ours), weights(&theirs), "{momentum:?}");
            assert_ne!(weights(&ours), weights(&model)); // it did train
        }
    }

    #[test]
    fn the_tensor_ops_path_is_burns_sgd_too() {
        // The path GPU backends take, run here on flex by calling it directly.
        let device = Device::flex();
        let w = batch(0, &device);
        for momentum in momenta() {
            let config = FusedSgdConfig::new().with_momentum(momentum.clone());
            let fused = config.build().unwrap();
            let burn = SgdConfig::new().with_momentum(momentum.clone()).build();
            let (mut a, mut sa): (_, Option<FusedSgdState<2>>) = (w.clone(), None);
            let (mut b, mut sb) = (w.clone(), None);
            for k in 1..5 {
                let g = batch(k, &device);
                (a, sa) = fused.tensor_ops(0.1, a, g.clone(), sa.and_then(|s| s.velocity));
                (b, sb) = burn.step(0.1, b, g, sb);
            }
            let (a, b) = (a.into_data(), b.into_data());
            assert_eq!(
                a.try_to_vec::<f32>().unwrap(),
                b.try_to_vec::<f32>().unwrap()
            );
        }
    }

    #[test]
    fn the_decay_folded_into_the_pass_is_bit_identical_to_the_two_passes() {
        use crate::{Penalty, Relevance, SelectiveDecayConfig};
        let model = start();
        let momentum = Some(MomentumConfig::new().with_momentum(0.9).with_dampening(0.0));
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
            let fused = FusedSgdConfig::new().with_momentum(momentum.clone());
            let (ours, _) = train(
                model.clone(),
                decay.init(fused.build().unwrap(), &model).unwrap(),
                5,
                LR,
            );
            let burn = SgdConfig::new().with_momentum(momentum.clone()).build();
            let theirs = train(model.clone(), decay.init(burn, &model).unwrap(), 5, LR).0;
            assert_eq!(
                weights(&ours),
                weights(&theirs),
                "{relevance:?} {penalty:?}"
            );
            // The decay did act: without it the weights differ.
            let plain = train(model.clone(), fused.init().unwrap(), 5, LR).0;
            assert_ne!(weights(&ours), weights(&plain), "{relevance:?} {penalty:?}");
        }
    }

    #[test]
    fn bad_fields_are_errors_naming_the_field() {
        let err = |m: MomentumConfig| {
            FusedSgdConfig::new()
                .with_momentum(Some(m))
                .build()
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(MomentumConfig::new().with_momentum(1.0)),
            "invalid FusedSgdConfig.momentum.momentum: expected a number in [0, 1), got 1"
        );
        assert_eq!(
            err(MomentumConfig::new().with_dampening(-0.5)),
            "invalid FusedSgdConfig.momentum.dampening: expected a number in [0, 1], got -0.5"
        );
        assert!(
            FusedSgdConfig::new()
                .with_momentum(Some(MomentumConfig::new().with_momentum(f64::NAN)))
                .init()
                .is_err()
        );
    }

    #[test]
    fn its_state_loads_into_burns_sgd_and_back() {
        let dir = std::env::temp_dir().join(format!("fused-sgd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let momentum = Some(MomentumConfig::new().with_nesterov(true));
        let fused = || {
            FusedSgdConfig::new()
                .with_momentum(momentum.clone())
                .init()
                .unwrap()
        };
        let burn = || SgdConfig::new().with_momentum(momentum.clone()).init();
        let model = start();
        let device = model.weight.val().device();
        // One more step from `optim`: the weights it gives.
        let step = |optim: ModuleOptimizer, model: Linear| {
            let mut optim = optim;
            let loss = model.forward(batch(3, &device)).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            weights(&optim.step(LR, model, grads))
        };
        for (name, first, second) in [("fused", fused(), burn()), ("burn", burn(), fused())] {
            // Three steps with one optimizer, saved; the fourth with each of the two.
            let file = dir.join(format!("{name}.bpk"));
            let (trained, optim) = train(model.clone(), first, 3, LR);
            optim.save(&file).unwrap();
            let again = step(optim, trained.clone());
            let loaded = second.load(&file).unwrap();
            assert_eq!(step(loaded, trained.clone()), again, "saved by {name}");
            // A fresh optimizer (no velocity) steps differently: the velocity was loaded.
            let fresh = if name == "fused" { burn() } else { fused() };
            assert_ne!(step(fresh, trained), again, "saved by {name}");
        }
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
            let mut v = spread(n, 31, 900.0);
            let bufs = SgdBuffers {
                g: &g,
                w: &mut w,
                v: Some(&mut v),
                keep: Some(&keep),
            };
            let momentum = Momentum {
                momentum: 0.9,
                keep: 1.0,
                nesterov: false,
            };
            let scalars = SgdScalars {
                momentum: Some(momentum),
                first: false,
                lr: 0.1,
            };
            run_pass(bufs, scalars, decay, pieces);
            (w, v)
        };
        let whole = run(1);
        assert_ne!(whole.0, spread(n, 104_729, 700.0));
        assert_eq!(run(2), whole);
        assert_eq!(run(3), whole);
    }
}
