//! [`SparsityConfig`] and [`Sparsity`]: the one entry point that wires the decay, its clock,
//! the masks and the optimizer, and runs the method one optimizer step at a time.

use burn::config::Config;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use sparse_reg::{ConfigError, InnerOptimizer, Selection, SelectiveDecayConfig};

use crate::{PruneError, PruneEvent, Pruner, PrunerConfig};

/// The method in one configuration: when and how to prune ([`PrunerConfig`]), the decay
/// ([`SelectiveDecayConfig`]), an optional target sparsity and whether to keep the best model.
///
/// [`init`](Self::init) attaches the masks, builds the optimizer with the decay inside and
/// returns the [`Sparsity`] that drives both: nothing is left to wire by hand.
///
/// ```
/// use burn::nn::{Linear, LinearConfig};
/// use burn::optim::AdamConfig;
/// use burn::tensor::Device;
/// use sparse_prune::{Floor, PruneSchedule, PrunerConfig, Selection, SparsityConfig};
///
/// let model: Linear = LinearConfig::new(8, 2).init(&Device::flex().autodiff());
/// let schedule = PruneSchedule::Gated { every: 250, fraction: 0.04, floor: Floor::Above(0.9) };
/// let config = SparsityConfig::new(PrunerConfig::new(schedule))
///     .select(Selection::All) // the paper: biases too (default: weights of rank >= 2)
///     .with_target(Some(0.99))
///     .with_keep_best(true);
/// let (model, optim, sparsity) = config.init(model, AdamConfig::new()).unwrap();
/// # let _ = (model, optim, sparsity);
/// assert_eq!(
///     format!("{:?}", config.with_target(Some(1.0)).validate().unwrap_err()),
///     "invalid SparsityConfig.target: expected a sparsity in (0, 1), got 1"
/// );
/// ```
#[derive(Config, Debug)]
pub struct SparsityConfig {
    /// When and how to prune, which parameters, and where the masks act.
    pub pruner: PrunerConfig,
    /// The relevance-weighted decay (the paper's, by default). Its gamma schedule is driven by
    /// the pruner: a [`GammaSchedule::Linear`](sparse_reg::GammaSchedule::Linear) fades after
    /// every prune event.
    #[config(default = "SelectiveDecayConfig::new()")]
    pub decay: SelectiveDecayConfig,
    /// Stop pruning once the pruned parameters reach this sparsity (in `(0, 1)`); `None`: the
    /// schedule alone decides.
    pub target: Option<f64>,
    /// Keep a copy of the sparsest model that passed the schedule's floor
    /// ([`Sparsity::best`]); needs a schedule with a floor.
    #[config(default = false)]
    pub keep_best: bool,
}

impl SparsityConfig {
    /// The same parameters for the decay and the pruner (both default to
    /// [`Selection::Weights`]; [`Selection::All`] is the paper's choice).
    pub fn select(mut self, params: Selection) -> Self {
        self.pruner.params = params.clone();
        self.decay.params = params;
        self
    }

    /// Check every field; errors name the field and the accepted range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.pruner.validate()?;
        self.decay.validate()?;
        if let Some(t) = self.target
            && !(t > 0.0 && t < 1.0)
        {
            return Err(ConfigError::new(
                "SparsityConfig.target",
                format!("expected a sparsity in (0, 1), got {t}"),
            ));
        }
        if self.keep_best && self.pruner.schedule.floor().is_none() {
            return Err(ConfigError::new(
                "SparsityConfig.keep_best",
                "the best model is the sparsest one that passed the schedule's floor, and this \
                 schedule has none: use PruneSchedule::Gated (or Threshold with a floor)",
            ));
        }
        Ok(())
    }

    /// Validate, attach the masks to `model`, wrap `optim` (a Burn optimizer or its
    /// configuration, such as `AdamConfig::new()`; see [`InnerOptimizer`]) in the decay, and
    /// return the model, the optimizer (a Burn `ModuleOptimizer`, also what burn-train's
    /// `Learner` takes) and the [`Sparsity`] that runs the method.
    ///
    /// A model that has masks already (loaded with [`load_masked`](crate::load_masked)) keeps
    /// them: pruning continues from there.
    pub fn init<M: Module, C: InnerOptimizer>(
        &self,
        model: M,
        optim: C,
    ) -> Result<(M, ModuleOptimizer, Sparsity<M>), PruneError> {
        self.validate()?;
        let decay = self.decay.build(optim.into_optimizer()?)?;
        let gamma = {
            let decay = decay.clone();
            Box::new(move || decay.gamma()) as Box<dyn Fn() -> f64 + Send + Sync>
        };
        let mut pruner = self.pruner.init()?;
        let model = pruner.attach(model)?;
        let optim = pruner.optimizer(decay, &model)?;
        let sparsity = Sparsity {
            pruner,
            gamma,
            steps: 0,
            target: self.target,
            keep_best: self.keep_best,
            best: None,
            finished: false,
        };
        Ok((model, optim, sparsity))
    }
}

/// The sparsest model that passed the floor, kept by [`Sparsity`] when
/// [`SparsityConfig::keep_best`] is set.
#[derive(Clone, Debug)]
pub struct Best<M> {
    /// The model (its masks included), as it was when the metric was measured.
    pub model: M,
    /// The optimizer step it was measured at.
    pub step: u64,
    /// Its validation metric.
    pub metric: f64,
    /// The sparsity of its pruned parameters.
    pub sparsity: f64,
}

/// The method, driven one optimizer step at a time: built by [`SparsityConfig::init`].
///
/// [`step`](Self::step) replaces the loop's `optim.step(lr, model, grads)`: it runs the
/// optimizer (with the decay inside), keeps the pruned entries at 0, counts the step, asks for
/// the validation metric only when the schedule checks it, keeps the best model when asked,
/// prunes, and stops pruning at the target sparsity.
///
/// ```
/// use burn::nn::{Linear, LinearConfig};
/// use burn::optim::{AdamConfig, GradientsParams};
/// use burn::tensor::{Device, Distribution, Tensor};
/// use sparse_prune::{Floor, PruneSchedule, PrunerConfig, SparsityConfig};
///
/// let device = Device::flex().autodiff();
/// let model: Linear = LinearConfig::new(20, 10).init(&device);
/// let schedule = PruneSchedule::Gated { every: 5, fraction: 0.5, floor: Floor::Above(0.5) };
/// let config = SparsityConfig::new(PrunerConfig::new(schedule))
///     .with_target(Some(0.8))
///     .with_keep_best(true);
/// let (mut model, mut optim, mut sparsity) = config.init(model, AdamConfig::new()).unwrap();
/// let mut checks = 0;
/// for _ in 0..40 {
///     let x = Tensor::<2>::random([16, 20], Distribution::Default, &device);
///     let grads = GradientsParams::from_grads(model.forward(x).powi_scalar(2).mean().backward(), &model);
///     model = sparsity.step(model, &mut optim, 1e-3, grads, |_m| { checks += 1; 0.9 }).unwrap();
/// }
/// assert_eq!(sparsity.steps(), 40);
/// assert!(sparsity.is_finished()); // 50 %, 75 %, 87.5 % >= the target 80 %
/// assert_eq!(sparsity.events().len(), 3);
/// // Past the target, checks go on until a model at the final sparsity passes the floor.
/// assert_eq!(sparsity.best().unwrap().sparsity, 0.875);
/// assert_eq!(checks, 4); // steps 5, 10, 15, 20: only checks that can change something
/// ```
pub struct Sparsity<M> {
    pruner: Pruner,
    gamma: Box<dyn Fn() -> f64 + Send + Sync>,
    steps: u64,
    target: Option<f64>,
    keep_best: bool,
    best: Option<Best<M>>,
    finished: bool,
}

impl<M> std::fmt::Debug for Sparsity<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sparsity")
            .field("steps", &self.steps)
            .field("events", &self.pruner.events().len())
            .field("sparsity", &self.sparsity())
            .field("finished", &self.finished)
            .finish()
    }
}

impl<M: Module> Sparsity<M> {
    /// One optimizer step of the method, in place of `optim.step(lr, model, grads)`.
    ///
    /// `metric` measures the validation metric of a model (an accuracy, or a loss with
    /// [`Floor::Below`](crate::Floor::Below)); it is called only when the schedule checks it.
    pub fn step(
        &mut self,
        model: M,
        optim: &mut ModuleOptimizer,
        lr: impl Into<ModuleLearningRate>,
        grads: GradientsParams,
        metric: impl FnOnce(&M) -> f64,
    ) -> Result<M, PruneError> {
        let (model, grads, wanted) = self.advance(model, optim, lr, grads);
        let value = wanted.then(|| metric(&model));
        self.conclude(model, value, grads.as_ref())
    }

    /// The optimizer step, the masks, the count; returns the model, the gradients when the
    /// criterion needs them at a due step, and whether the metric is wanted. (The Learner's
    /// wrapper measures the metric between this and [`conclude`](Self::conclude), without
    /// holding its lock.)
    pub(crate) fn advance(
        &mut self,
        model: M,
        optim: &mut ModuleOptimizer,
        lr: impl Into<ModuleLearningRate>,
        grads: GradientsParams,
    ) -> (M, Option<GradientsParams>, bool) {
        let step = self.steps + 1;
        let due = self.pruner.config().schedule.is_due(step);
        let kept = (due && !self.finished && self.pruner.needs_grads())
            .then(|| copy_grads(&model, &grads));
        let model = optim.step(lr, model, grads);
        let model = self.pruner.enforce(model);
        self.steps = step;
        (model, kept, self.wants_metric(step))
    }

    /// Whether the metric at `step` can change anything: a gated check while pruning, or, past
    /// the target, a check that could find a sparser passing model than the one kept.
    fn wants_metric(&self, step: u64) -> bool {
        if !self.pruner.needs_metric(step) {
            return false;
        }
        if !self.finished {
            return true;
        }
        self.keep_best
            && self
                .best
                .as_ref()
                .is_none_or(|b| b.sparsity < self.sparsity())
    }

    /// Keep the best model and prune, with the metric measured after
    /// [`advance`](Self::advance).
    pub(crate) fn conclude(
        &mut self,
        model: M,
        metric: Option<f64>,
        grads: Option<&GradientsParams>,
    ) -> Result<M, PruneError> {
        let step = self.steps;
        if let (Some(m), Some(floor)) = (metric, self.pruner.config().schedule.floor())
            && self.keep_best
            && m.is_finite()
            && floor.passes(m)
        {
            let sparsity = self.sparsity();
            if self.best.as_ref().is_none_or(|b| sparsity > b.sparsity) {
                self.best = Some(Best {
                    model: model.clone(),
                    step,
                    metric: m,
                    sparsity,
                });
            }
        }
        if self.finished {
            self.pruner.idle(step)?;
            return Ok(model);
        }
        let (model, event) = match grads {
            Some(g) => self.pruner.step_with_grads(model, step, metric, g)?,
            None => self.pruner.step(model, step, metric)?,
        };
        if let (Some(e), Some(t)) = (event, self.target)
            && e.sparsity >= t
        {
            self.finished = true;
        }
        Ok(model)
    }

    /// The sparsest model that passed the floor so far (with [`SparsityConfig::keep_best`]).
    pub fn best(&self) -> Option<&Best<M>> {
        self.best.as_ref()
    }

    /// Take the best model out (with [`SparsityConfig::keep_best`]).
    pub fn into_best(self) -> Option<Best<M>> {
        self.best
    }
}

impl<M> Sparsity<M> {
    /// Optimizer steps taken through [`step`](Sparsity::step).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Whether the target sparsity is reached: no more pruning (training may go on).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The sparsity of the pruned parameters now (0 before the first prune event).
    pub fn sparsity(&self) -> f64 {
        self.pruner.events().last().map_or(0.0, |e| e.sparsity)
    }

    /// The prune events so far.
    pub fn events(&self) -> &[PruneEvent] {
        self.pruner.events()
    }

    /// The decay's gamma at the current step.
    pub fn gamma(&self) -> f64 {
        (self.gamma)()
    }

    /// The pruner underneath (its state, for checkpoints: [`Pruner::save_state`]).
    pub fn pruner(&self) -> &Pruner {
        &self.pruner
    }
}

/// A copy of the gradients of `model`'s parameters (GradientsParams is not `Clone`; a tensor
/// clone shares its data).
fn copy_grads<M: Module>(model: &M, grads: &GradientsParams) -> GradientsParams {
    struct Copy<'a> {
        from: &'a GradientsParams,
        to: GradientsParams,
    }
    impl ModuleVisitor for Copy<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.from.get::<D>(param.id) {
                self.to.register(param.id, g);
            }
        }
    }
    let mut copy = Copy {
        from: grads,
        to: GradientsParams::new(),
    };
    model.visit(&mut copy);
    copy.to
}
