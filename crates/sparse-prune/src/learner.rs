//! [`Sparse`]: the method inside burn-train's `Learner`, without overriding
//! `TrainStep::optimize` by hand (feature `train`).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use burn::module::Module;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use burn::train::{InferenceStep, TrainOutput, TrainStep};

use crate::{Best, PruneEvent, Sparsity};

type Metric<M> = dyn Fn(&M) -> f64 + Send + Sync;

struct Shared<M> {
    sparsity: Sparsity<M>,
    error: Option<String>,
    /// The device of the first step: the one the method runs on.
    device: Option<Device>,
}

/// The [`Sparsity`] of a [`Sparse`] model and the validation metric, shared by its clones
/// (burn-train clones the model at every step).
struct Hook<M> {
    shared: Arc<Mutex<Shared<M>>>,
    metric: Arc<Metric<M>>,
}

impl<M> Clone for Hook<M> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            metric: self.metric.clone(),
        }
    }
}

/// A [`Hook`] with its model type erased: Burn's `Module` derive does not take a skipped field
/// whose type names the module's generic parameter.
#[derive(Clone)]
struct Erased(Arc<dyn std::any::Any + Send + Sync>);

impl fmt::Debug for Erased {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sparsity { .. }")
    }
}

impl<M> Hook<M> {
    fn lock(&self) -> MutexGuard<'_, Shared<M>> {
        // A panic in another step cannot leave the sparsity half-updated in a way that matters
        // more than the panic itself, which burn-train reports.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A model for burn-train's `Learner` that runs the method: wrap the model and the
/// [`Sparsity`] that [`SparsityConfig::init`](crate::SparsityConfig::init) returned, give the
/// wrapper and the optimizer to `Learner::new`, and read the best model from the result.
///
/// `Sparse<M>` implements `TrainStep` and `InferenceStep` when `M` does, delegating to `M`;
/// its `optimize` is [`Sparsity::step`]: the optimizer step, the masks, the step count, the
/// validation metric when the schedule checks it (measured by `metric` on the model in
/// validation mode, without any lock held, so `metric` may read this wrapper), the best model
/// and the prune. Errors cannot cross `optimize`: the first one stops pruning (the optimizer
/// steps go on, the masks still hold), is printed once to stderr and kept for
/// [`error`](Self::error).
///
/// ```ignore
/// let (model, optim, sparsity) = SparsityConfig::new(pruner).with_keep_best(true)
///     .init(model, AdamConfig::new())?;
/// let model = Sparse::new(model, sparsity, move |m: &Net| accuracy(m, &val));
/// let result = training.launch(Learner::new(model, optim, lr));
/// let best = result.model.best().expect("a model passed the floor").model;
/// ```
///
/// One device: under burn-train's data-parallel strategy (`DdpTrainingStrategy`) the replicas'
/// clones would share this one [`Sparsity`], which counts and prunes for one model; the first
/// step from a second device stops pruning with an [`error`](Self::error) instead. See the
/// crate's documentation ("Several devices").
#[derive(Module, Debug)]
pub struct Sparse<M: Module + 'static> {
    /// The wrapped model (its masks attached).
    pub model: M,
    #[module(skip)]
    hook: Erased,
}

impl<M: Module + 'static> Sparse<M> {
    /// Wrap `model` (as [`SparsityConfig::init`](crate::SparsityConfig::init) returned it)
    /// with its `sparsity`; `metric` returns the validation metric of a model (called only
    /// when the schedule checks it).
    pub fn new(
        model: M,
        sparsity: Sparsity<M>,
        metric: impl Fn(&M) -> f64 + Send + Sync + 'static,
    ) -> Self {
        let hook = Hook {
            shared: Arc::new(Mutex::new(Shared {
                sparsity,
                error: None,
                device: None,
            })),
            metric: Arc::new(metric) as Arc<Metric<M>>,
        };
        Self {
            model,
            hook: Erased(Arc::new(hook)),
        }
    }

    fn hook(&self) -> &Hook<M> {
        self.hook
            .0
            .downcast_ref()
            .expect("a Sparse<M> holds the hook of M")
    }

    /// The sparsest model that passed the floor (with `SparsityConfig::keep_best`).
    pub fn best(&self) -> Option<Best<M>> {
        self.hook().lock().sparsity.best().cloned()
    }

    /// The prune events so far.
    pub fn events(&self) -> Vec<PruneEvent> {
        self.hook().lock().sparsity.events().to_vec()
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> u64 {
        self.hook().lock().sparsity.steps()
    }

    /// The sparsity of the pruned parameters now.
    pub fn sparsity(&self) -> f64 {
        self.hook().lock().sparsity.sparsity()
    }

    /// The error that stopped pruning, if any.
    pub fn error(&self) -> Option<String> {
        self.hook().lock().error.clone()
    }

    /// One optimizer step of the method (what `TrainStep::optimize` runs).
    fn optimize_step(
        self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        grads: GradientsParams,
    ) -> Self {
        let erased = self.hook.clone();
        let hook = self.hook().clone();
        let model = self.model;
        let device = model.devices().into_iter().next();
        let mut shared = hook.lock();
        if shared.device.is_none() {
            shared.device = device.clone();
        }
        if shared.device != device {
            // A second replica (burn-train's DdpTrainingStrategy): one Sparsity cannot count
            // and prune for several copies of the model. Stop pruning rather than prune wrong.
            if shared.error.is_none() {
                let e = "Sparse drives one model on one device; a second device (a data-parallel \
                         replica) stepped it: pruning stopped (train on one device)";
                eprintln!("sparse-prune: {e}");
                shared.error = Some(e.to_string());
            }
            drop(shared);
            return Sparse {
                model: optim.step(lr, model, grads),
                hook: erased,
            };
        }
        let (model, kept, wanted) = shared.sparsity.advance(model, optim, lr, grads);
        drop(shared);
        // The metric without the lock: it may read this wrapper (events, best, ...).
        let metric = wanted.then(|| (hook.metric)(&model.valid()));
        let mut shared = hook.lock();
        let model = if shared.error.is_some() {
            model
        } else {
            let fallback = model.clone();
            match shared.sparsity.conclude(model, metric, kept.as_ref()) {
                Ok(model) => model,
                Err(e) => {
                    eprintln!("sparse-prune: pruning stopped: {e}");
                    shared.error = Some(e.to_string());
                    fallback
                }
            }
        };
        drop(shared);
        Sparse {
            model,
            hook: erased,
        }
    }
}

impl<M: Module + TrainStep + 'static> TrainStep for Sparse<M> {
    type Input = M::Input;
    type Output = M::Output;

    fn step(&self, item: Self::Input) -> TrainOutput<Self::Output> {
        self.model.step(item)
    }

    fn optimize(
        self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        grads: GradientsParams,
    ) -> Self {
        self.optimize_step(optim, lr, grads)
    }
}

impl<M: Module + InferenceStep + 'static> InferenceStep for Sparse<M> {
    type Input = M::Input;
    type Output = M::Output;

    fn step(&self, item: Self::Input) -> Self::Output {
        self.model.step(item)
    }
}
