//! Errors of the pruning crate.

use std::fmt;

pub use sparse_reg::ConfigError;

/// Everything that can go wrong while configuring, attaching masks, pruning, or loading pruned
/// state: the one error type of sparse-prune. Its `Debug` is its message, so `.expect(..)`
/// prints what to fix.
///
/// ```
/// use sparse_prune::PruneError;
/// let e = PruneError::MetricRequired { step: 250 };
/// assert_eq!(format!("{e:?}"), e.to_string());
/// ```
pub enum PruneError {
    /// A configuration value is outside its range, or a selection matches nothing.
    Config(ConfigError),
    /// The schedule needs the validation metric at this step and none was given.
    MetricRequired {
        /// The optimizer step.
        step: u64,
    },
    /// The metric given is NaN or infinite.
    BadMetric {
        /// The optimizer step.
        step: u64,
        /// The value received.
        value: f64,
    },
    /// The model has no pruning masks (call `Pruner::attach` first).
    NoMasks,
    /// The criterion needs gradients and none were given.
    GradientsRequired {
        /// The criterion's name.
        criterion: &'static str,
    },
    /// With in-place masking, [`Pruner::step`](crate::Pruner::step) was called without
    /// [`Pruner::enforce`](crate::Pruner::enforce) after the optimizer step.
    NotEnforced {
        /// The optimizer step.
        step: u64,
    },
    /// A file could not be read, written or parsed.
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

impl fmt::Display for PruneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PruneError::Config(e) => write!(f, "{e}"),
            PruneError::MetricRequired { step } => write!(
                f,
                "the gated prune at step {step} needs the validation metric: pass Some(metric) \
                 when Pruner::needs_metric(step) is true"
            ),
            PruneError::BadMetric { step, value } => write!(
                f,
                "the validation metric at step {step} is {value}: expected a finite number"
            ),
            PruneError::NoMasks => write!(
                f,
                "the model has no pruning masks: call Pruner::attach on it first"
            ),
            PruneError::GradientsRequired { criterion } => write!(
                f,
                "the {criterion} criterion scores entries with their gradients: call \
                 Pruner::step_with_grads"
            ),
            PruneError::NotEnforced { step } => write!(
                f,
                "PrunerConfig.masking is InPlace but Pruner::enforce was not called after the \
                 optimizer step before Pruner::step at step {step}: call \
                 `model = pruner.enforce(model)` right after every optimizer step (or use \
                 Masking::Forward)"
            ),
            PruneError::File { path, message } => write!(f, "{path}: {message}"),
        }
    }
}

impl fmt::Debug for PruneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for PruneError {}

impl From<ConfigError> for PruneError {
    fn from(e: ConfigError) -> Self {
        PruneError::Config(e)
    }
}
