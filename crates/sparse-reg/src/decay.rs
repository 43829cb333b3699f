//! [`SelectiveDecay`]: the relevance-weighted weight decay wrapped around any Burn optimizer.

use std::any::Any;

use std::sync::Arc;

use burn::module::{Module, ParamGroup};
use burn::optim::{AdamState, LearningRate, ModuleOptimizer, Optimizer};
use burn::tensor::{Device, Tensor};

use crate::kernel::DecayTerm;
use crate::{
    ConfigError, Coupling, DecayClock, FusedAdam, FusedSgd, FusedSgdState, GammaSchedule, KeepSlot,
    Penalty, Relevance, Selection, SelectiveDecayConfig,
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
/// let mut optim = SelectiveDecayConfig::new().with_gamma(1e-2).init(SgdConfig::new(), &model).unwrap();
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
    params: Selection,
    clock: DecayClock,
    /// The keep-mask of the one parameter this instance steps (see [`KeepSlot`]).
    keep: Option<KeepSlot>,
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
            keep: None,
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
    fn init<M: Module>(self, model: &M) -> Result<ModuleOptimizer, ConfigError> {
        let group = self.params.group(model, "SelectiveDecayConfig.params")?;
        match self.params {
            Selection::All => Ok(ModuleOptimizer::from(self)),
            _ => {
                let bare = self.inner.clone();
                Ok(ModuleOptimizer::from(bare).with_group(group, self, None))
            }
        }
    }

    /// A [`ModuleOptimizer`] for `model` (what
    /// [`SelectiveDecayConfig::init`](crate::SelectiveDecayConfig::init) returns) in which each
    /// parameter named in `keeps` (by its dotted path, as
    /// [`float_params`](crate::float_params) lists it) gets its own instance that sets the
    /// entries its [`KeepSlot`] marks pruned to 0 at the end of every step, inside the fused
    /// optimizers' pass (see [`KeepSlot`]). Parameters outside the decay's selection get the
    /// bare inner optimizer with the zeroing. Gradient clipping set afterwards on the returned
    /// optimizer (`with_grad_clipping`) applies to the first group only, as in Burn: clip the
    /// gradients in the loop instead.
    ///
    /// sparse-prune's `Pruner::optimizer` builds it with the pruner's slots; the pruner's
    /// `enforce` then skips every parameter a step has already zeroed.
    ///
    /// ```
    /// use burn::nn::{Linear, LinearConfig};
    /// use burn::optim::{GradientsParams, SgdConfig};
    /// use burn::tensor::{Device, Tensor};
    /// use sparse_reg::{KeepSlot, SelectiveDecayConfig};
    ///
    /// let device = Device::flex().autodiff();
    /// let mut model: Linear = LinearConfig::new(2, 1).init(&device);
    /// let slot = KeepSlot::default();
    /// slot.set(1, Some(vec![1, 0].into())); // the weight's second entry is pruned
    /// let decay = SelectiveDecayConfig::new().build(SgdConfig::new().build()).unwrap();
    /// let mut optim = decay.init_with_keep(&model, vec![("weight".into(), slot.clone())]).unwrap();
    /// let loss = model.forward(Tensor::<2>::ones([4, 2], &device)).sum();
    /// let grads = GradientsParams::from_grads(loss.backward(), &model);
    /// model = optim.step(0.1, model, grads);
    /// let w = model.weight.val().into_data().try_to_vec::<f32>().unwrap();
    /// assert_eq!(w[1], 0.0);
    /// assert_eq!(slot.take_zeroed(), Some(1)); // the step did it
    /// ```
    pub fn init_with_keep<M: Module>(
        self,
        model: &M,
        keeps: Vec<(String, KeepSlot)>,
    ) -> Result<ModuleOptimizer, ConfigError> {
        let params = crate::float_params(model);
        let mut optim = self.clone().init(model)?;
        for (path, slot) in keeps {
            let Some(param) = params.iter().find(|p| p.path == path) else {
                let all: Vec<&str> = params.iter().map(|p| p.path.as_str()).collect();
                return Err(ConfigError::new(
                    "SelectiveDecay::init_with_keep keeps",
                    format!(
                        "no float parameter of the model is at `{path}` (its parameters: {})",
                        all.join(", ")
                    ),
                ));
            };
            let decayed = self.params.matches(param);
            let mut one = self.clone();
            if !decayed {
                one.gamma0 = 0.0;
            }
            one.keep = Some(slot);
            optim = optim.with_group(ParamGroup::from_path(path), one, None);
        }
        Ok(optim)
    }

    /// This parameter's keep-mask with its version, when its slot holds one (something is
    /// pruned). Panics when the mask's size is not the parameter's: a loop zipped with it
    /// would silently stop short.
    fn keep_mask(&self, numel: usize) -> Option<(u64, Arc<[u8]>)> {
        let (version, keep) = self.keep.as_ref()?.keep()?;
        assert_eq!(
            keep.len(),
            numel,
            "KeepSlot: a keep-mask of {} entries for a parameter of {numel}",
            keep.len()
        );
        Some((version, keep))
    }

    /// The step without the zeroing of pruned entries, except inside a fused optimizer's
    /// pass, which `mask` is handed to: the new weight and state, and whether that pass zeroed.
    fn step_unmasked<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<O::State<D>>,
        mask: Option<&[u8]>,
    ) -> (Tensor<D>, Option<O::State<D>>, bool) {
        let gamma = self.gamma();
        if gamma != 0.0 && self.coupling == Coupling::Decoupled {
            let shrink = self.term(&tensor, &grad, gamma);
            let (tensor, state) = self.inner.step(lr, tensor, grad, state);
            return (tensor - shrink, state, false);
        }
        // Around sparse-reg's FusedAdam or FusedSgd on a CPU backend, the coupled decay term
        // and the zeroing of the pruned entries go into the optimizer's own pass: one pass over
        // memory instead of three, the same arithmetic. The inner optimizer's state is
        // `AdamState` exactly when it is a `FusedAdam` (`FusedSgdState` for `FusedSgd`): both
        // are recovered by reference, without a copy or an allocation.
        let scale = match self.penalty {
            Penalty::L2 => 2.0 * gamma,
            Penalty::L1 => gamma,
        };
        let term = (gamma != 0.0).then_some(DecayTerm {
            rel: self.relevance,
            penalty: self.penalty,
            scale: scale as f32,
        });
        let mut state = state;
        let adam = (&self.inner as &dyn Any).downcast_ref::<FusedAdam>();
        let slot = (&mut state as &mut dyn Any).downcast_mut::<Option<AdamState<D>>>();
        if let (Some(adam), Some(slot)) = (adam, slot)
            && adam.fuses(&tensor, &grad, slot.as_ref())
        {
            let (tensor, new) = adam.step_with(lr, tensor, grad, slot.take(), term, mask);
            *slot = new;
            return (tensor, state, mask.is_some());
        }
        let sgd = (&self.inner as &dyn Any).downcast_ref::<FusedSgd>();
        let slot = (&mut state as &mut dyn Any).downcast_mut::<Option<FusedSgdState<D>>>();
        if let (Some(sgd), Some(slot)) = (sgd, slot)
            && sgd.fuses(&tensor, &grad)
        {
            let (tensor, new) = sgd.step_with(lr, tensor, grad, slot.take(), term, mask);
            *slot = new;
            return (tensor, state, mask.is_some());
        }
        let (tensor, grad) = match term {
            None => (tensor, grad),
            Some(term) if crate::kernel::applies(&grad, &tensor) => {
                crate::kernel::fused(grad, tensor, term.rel, term.penalty, scale)
            }
            Some(_) => {
                let grad = self.term(&tensor, &grad, scale) + grad;
                (tensor, grad)
            }
        };
        let (tensor, state) = self.inner.step(lr, tensor, grad, state);
        (tensor, state, false)
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
        let keep = self.keep_mask(tensor.shape().num_elements());
        let mask = keep.as_ref().map(|(_, k)| k.as_ref());
        let (tensor, state, zeroed) = self.step_unmasked(lr, tensor, grad, state, mask);
        let (Some((version, keep)), Some(slot)) = (keep, &self.keep) else {
            return (tensor, state);
        };
        // An inner optimizer that is not fused: the zeroing as a pass of its own, on host
        // backends; elsewhere it is left to the pruner (nothing is recorded).
        let tensor = match zeroed {
            true => tensor,
            false if crate::kernel::applies(&tensor, &tensor) => crate::zero_pruned(tensor, &keep),
            false => return (tensor, state),
        };
        slot.mark_zeroed(version);
        (tensor, state)
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        O::to_device(state, device)
    }
}
