//! [`PruningHook`]: a [`Pruner`] shared with a model, for loops you do not write yourself
//! (burn-train's `Learner`), where the only per-step entry point is `TrainStep::optimize`.

use std::fmt;
use std::sync::{Arc, Mutex};

use burn::module::Module;

use crate::{PruneEvent, Pruner};

type Evaluator<M> = dyn Fn(&M) -> f64 + Send + Sync;

struct HookState {
    pruner: Pruner,
    step: u64,
    enabled: bool,
    error: Option<String>,
}

/// A [`Pruner`] plus a step counter and a validation evaluator, shared by clones.
///
/// Keep a clone in your model as a `#[module(skip)]` field and call
/// [`after_step`](Self::after_step) from `TrainStep::optimize` (burn-train 0.22 runs it after
/// every optimizer step):
///
/// ```ignore
/// impl TrainStep for Net {
///     // type Input / Output and fn step as usual ...
///     fn optimize(self, optim: &mut ModuleOptimizer, lr: ModuleLearningRate,
///                 grads: GradientsParams) -> Self {
///         let hook = self.pruning.clone();
///         hook.after_step(optim.step(lr, self, grads))
///     }
/// }
/// ```
///
/// At each due step the evaluator measures the validation metric on the current model (the
/// paper's gate), so a `Learner` run follows exactly the same schedule as a hand-written loop.
/// Errors cannot cross `optimize`; the first one disables pruning and is kept for
/// [`error`](Self::error) (and printed once to stderr).
///
/// ```
/// use burn::nn::{Linear, LinearConfig};
/// use burn::tensor::Device;
/// use sparse_prune::{PruneSchedule, PrunerConfig, PruningHook};
///
/// let pruner = PrunerConfig::new(PruneSchedule::OneShot { at: 2, sparsity: 0.5 }).init().unwrap();
/// let model: Linear = pruner.attach(LinearConfig::new(4, 4).init(&Device::flex())).unwrap();
/// let hook = PruningHook::new(pruner, |_m: &Linear| 1.0);
/// let model = hook.after_step(model); // step 1: not due
/// let model = hook.after_step(model); // step 2: prunes half
/// assert_eq!(hook.events().len(), 1);
/// assert_eq!(hook.step(), 2);
/// # let _ = model;
/// ```
pub struct PruningHook<M> {
    state: Arc<Mutex<HookState>>,
    evaluator: Arc<Evaluator<M>>,
}

impl<M> Clone for PruningHook<M> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            evaluator: self.evaluator.clone(),
        }
    }
}

impl<M> fmt::Debug for PruningHook<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.lock().expect("hook lock");
        f.debug_struct("PruningHook")
            .field("step", &s.step)
            .field("enabled", &s.enabled)
            .field("events", &s.pruner.events().len())
            .finish()
    }
}

impl<M: Module> PruningHook<M> {
    /// Wrap `pruner`; `evaluator` returns the validation metric of a model (called only when a
    /// gated schedule is due).
    pub fn new(pruner: Pruner, evaluator: impl Fn(&M) -> f64 + Send + Sync + 'static) -> Self {
        Self {
            state: Arc::new(Mutex::new(HookState {
                pruner,
                step: 0,
                enabled: true,
                error: None,
            })),
            evaluator: Arc::new(evaluator),
        }
    }

    /// Count one optimizer step and prune if due. Returns the (possibly pruned) model.
    pub fn after_step(&self, model: M) -> M {
        let mut s = self.state.lock().expect("hook lock");
        s.step += 1;
        // In-place masks: the pruned entries go back to 0 before anything reads the model
        // (also while pruning is off: the masks still hold).
        let model = s.pruner.enforce(model);
        if !s.enabled {
            return model;
        }
        let step = s.step;
        let metric = s
            .pruner
            .needs_metric(step)
            .then(|| (self.evaluator)(&model.valid()));
        let fallback = model.clone();
        match s.pruner.step(model, step, metric) {
            Ok((model, _)) => model,
            Err(e) => {
                eprintln!("sparse-prune: pruning disabled at step {step}: {e}");
                s.error = Some(e.to_string());
                s.enabled = false;
                fallback
            }
        }
    }

    /// Optimizer steps counted so far.
    pub fn step(&self) -> u64 {
        self.state.lock().expect("hook lock").step
    }

    /// Set the step counter (when resuming).
    pub fn set_step(&self, step: u64) {
        self.state.lock().expect("hook lock").step = step;
    }

    /// Turn pruning on or off (steps are still counted), e.g. off for a dense warm-up.
    pub fn set_enabled(&self, enabled: bool) {
        self.state.lock().expect("hook lock").enabled = enabled;
    }

    /// The prune events so far.
    pub fn events(&self) -> Vec<PruneEvent> {
        self.state
            .lock()
            .expect("hook lock")
            .pruner
            .events()
            .to_vec()
    }

    /// The error that disabled pruning, if any.
    pub fn error(&self) -> Option<String> {
        self.state.lock().expect("hook lock").error.clone()
    }

    /// Run `f` on the pruner (to save its state, attach masks, ...).
    pub fn with_pruner<T>(&self, f: impl FnOnce(&mut Pruner) -> T) -> T {
        f(&mut self.state.lock().expect("hook lock").pruner)
    }
}
