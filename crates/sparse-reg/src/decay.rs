//! [`SelectiveDecay`]: the relevance-weighted weight decay wrapped around any Burn optimizer.

use std::any::Any;

use burn::module::Module;
use burn::optim::{AdamState, LearningRate, ModuleOptimizer, Optimizer};
use burn::tensor::{Device, Tensor};

use crate::kernel::DecayTerm;
use crate::{
    ConfigError, Coupling, DecayClock, FusedAdam, FusedSgd, FusedSgdState, GammaSchedule, Penalty,
    Relevance, SelectiveDecayConfig, select_params,
};

/// Any per-tensor Burn [`Optimizer`] with the relevance-weighted weight decay in front of it.
///
/// For each parameter entry with loss gradient `g` the inner optimizer is fed
/// `g + 2 * gamma * f(g) * w` (coupled L2, the paper), with `f(g) = exp(-|g| / alpha)` by
/// default. One backward pass, elementwise work only, no host synchronisation. With
/// `gamma = 0` the wrapper is exactly the inner optimizer. The per-parameter state is the
/// inner optimizer's own, so its records load into either.
///
/// ```
/// use burn::nn::{Linear, LinearConfig};
/// use burn::optim::{GradientsParams, SgdConfig};
/// use burn::tensor::{Device, Distribution, Tensor};
/// use sparse_reg::SelectiveDecayConfig;
///
/// let device = Device::flex().autodiff();
/// let mut model: Linear = LinearConfig::new(8, 1).init(&device);
/// let decay = SelectiveDecayConfig::new().with_gamma(1e-2).build(SgdConfig::new().build()).unwrap();
/// let mut optim = decay.init(&model).unwrap();
/// for _ in 0..3 {
///     let x = Tensor::<2>::random([16, 8], Distribution::Default, &device);
///     let loss = model.forward(x).powi_scalar(2).mean();
///     let grads = GradientsParams::from_grads(loss.backward(), &model);
///     model = optim.step(0.1, model, grads);
/// }
/// ```
#[derive(Clone, Debug)]
pub struct SelectiveDecay<O> {
    inner: O,
    gamma0: f64,
    relevance: Relevance,
    schedule: GammaSchedule,
    penalty: Penalty,
    coupling: Coupling,
    params: Option<burn::module::ParamGroup>,
    clock: DecayClock,
}

impl<O: Optimizer> SelectiveDecay<O> {
    pub(crate) fn new(config: &SelectiveDecayConfig, inner: O, clock: DecayClock) -> Self {
        Self {
            inner,
            gamma0: config.gamma,
            relevance: config.relevance,
            schedule: config.schedule,
            penalty: config.penalty,
            coupling: config.coupling,
            params: config.params.clone(),
            clock,
        }
    }

    /// The clock that positions the gamma schedule. Clones share it: give one to the pruner
    /// (or call [`DecayClock::set_step`] from the loop) and keep the optimizer where it is.
    pub fn clock(&self) -> DecayClock {
        self.clock.clone()
    }

    /// Replace the clock (e.g. to share one clock between several wrappers).
    pub fn with_clock(mut self, clock: DecayClock) -> Self {
        self.clock = clock;
        self
    }

    /// gamma at the clock's current position.
    pub fn gamma(&self) -> f64 {
        self.schedule.gamma(self.gamma0, self.clock.since_reset())
    }

    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// A [`ModuleOptimizer`] for `model`: selected parameters get the decay, the others the
    /// bare inner optimizer. Errors when the selection matches no float parameter of `model`.
    pub fn init<M: Module>(self, model: &M) -> Result<ModuleOptimizer, ConfigError> {
        match self.params.clone() {
            None => Ok(ModuleOptimizer::from(self)),
            Some(group) => {
                if select_params(model, Some(&group)).is_empty() {
                    let all: Vec<String> = crate::float_params(model)
                        .into_iter()
                        .map(|p| p.path)
                        .collect();
                    return Err(ConfigError::new(
                        "SelectiveDecayConfig.params",
                        format!(
                            "the selection matches no float parameter of the model (its \
                             parameters: {})",
                            all.join(", ")
                        ),
                    ));
                }
                let bare = self.inner.clone();
                Ok(ModuleOptimizer::from(bare).with_group(group, self, None))
            }
        }
    }

    /// The decay term for `weight` with gradient `grad` at strength `scale`:
    /// `scale * f(g) * w` (L2) or `scale * f(g) * sign(w)` (L1).
    fn term<const D: usize>(&self, weight: &Tensor<D>, grad: &Tensor<D>, scale: f64) -> Tensor<D> {
        let w = match self.penalty {
            Penalty::L2 => weight.clone(),
            Penalty::L1 => weight.clone().sign(),
        };
        match self.relevance.scaled_factor(grad, scale) {
            Some(factor) => w * factor,
            None => w.mul_scalar(scale),
        }
    }
}

impl<O: Optimizer> Optimizer for SelectiveDecay<O> {
    type State<const D: usize> = O::State<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let gamma = self.gamma();
        if gamma == 0.0 {
            return self.inner.step(lr, tensor, grad, state);
        }
        match self.coupling {
            Coupling::Coupled => {
                let scale = match self.penalty {
                    Penalty::L2 => 2.0 * gamma,
                    Penalty::L1 => gamma,
                };
                // Around sparse-reg's FusedAdam on a CPU backend, the decay term goes into
                // Adam's own pass: one pass over memory instead of two, the same arithmetic.
                // The inner optimizer's state is `AdamState` exactly when it is a `FusedAdam`:
                // both are recovered by reference, without a copy or an allocation.
                let term = DecayTerm {
                    rel: self.relevance,
                    penalty: self.penalty,
                    scale: scale as f32,
                };
                let mut state = state;
                let adam = (&self.inner as &dyn Any).downcast_ref::<FusedAdam>();
                let slot = (&mut state as &mut dyn Any).downcast_mut::<Option<AdamState<D>>>();
                if let (Some(adam), Some(slot)) = (adam, slot)
                    && adam.fuses(&tensor, &grad, slot.as_ref())
                {
                    let (tensor, new) = adam.step_with(lr, tensor, grad, slot.take(), Some(term));
                    *slot = new;
                    return (tensor, state);
                }
                // The same for sparse-reg's FusedSgd, whose state is its own `FusedSgdState`.
                let sgd = (&self.inner as &dyn Any).downcast_ref::<FusedSgd>();
                let slot = (&mut state as &mut dyn Any).downcast_mut::<Option<FusedSgdState<D>>>();
                if let (Some(sgd), Some(slot)) = (sgd, slot)
                    && sgd.fuses(&tensor, &grad)
                {
                    let (tensor, new) = sgd.step_with(lr, tensor, grad, slot.take(), Some(term));
                    *slot = new;
                    return (tensor, state);
                }
                let (tensor, grad) = if crate::kernel::applies(&grad, &tensor) {
                    crate::kernel::fused(grad, tensor, self.relevance, self.penalty, scale)
                } else {
                    let grad = self.term(&tensor, &grad, scale) + grad;
                    (tensor, grad)
                };
                self.inner.step(lr, tensor, grad, state)
            }
            Coupling::Decoupled => {
                let shrink = self.term(&tensor, &grad, gamma);
                let (tensor, state) = self.inner.step(lr, tensor, grad, state);
                (tensor - shrink, state)
            }
        }
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        O::to_device(state, device)
    }
}
