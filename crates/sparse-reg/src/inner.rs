//! [`InnerOptimizer`]: what the decay wraps, given as a Burn optimizer or its configuration.

use burn::optim::{
    AdaGrad, AdaGradConfig, Adam, AdamConfig, AdamW, AdamWConfig, Lamb, LambConfig, Lion,
    LionConfig, Optimizer, RmsProp, RmsPropConfig, Sgd, SgdConfig,
};

use crate::{ConfigError, FusedAdam, FusedAdamConfig, FusedSgd, FusedSgdConfig};

/// A per-tensor optimizer for [`SelectiveDecayConfig::init`](crate::SelectiveDecayConfig::init)
/// (and sparse-prune's `SparsityConfig::init`) to wrap: Burn's optimizer configurations
/// (`AdamConfig::new()`, `SgdConfig::new()`, ...), the optimizers they build, and this crate's
/// [`FusedAdamConfig`] / [`FusedSgdConfig`].
///
/// A Burn configuration with gradient clipping is refused: Burn applies a configuration's
/// clipping in its own `init` only, to one parameter group; clip the gradients in the loop.
///
/// ```
/// use burn::optim::AdamConfig;
/// use burn::optim::grad_clipping::GradientClippingConfig;
/// use sparse_reg::InnerOptimizer;
///
/// assert!(AdamConfig::new().into_optimizer().is_ok());
/// let clipped = AdamConfig::new().with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)));
/// assert_eq!(
///     clipped.into_optimizer().err().unwrap().to_string(),
///     "invalid AdamConfig.grad_clipping: the decay wraps the per-tensor optimizer, which does \
///      not clip; clip the gradients in the loop instead"
/// );
/// ```
pub trait InnerOptimizer {
    /// The per-tensor optimizer.
    type Optimizer: Optimizer;

    /// Validate and build it.
    fn into_optimizer(self) -> Result<Self::Optimizer, ConfigError>;
}

/// A clipping error for the configuration `name`.
fn clipping(name: &str) -> ConfigError {
    ConfigError::new(
        format!("{name}.grad_clipping"),
        "the decay wraps the per-tensor optimizer, which does not clip; clip the gradients in \
         the loop instead",
    )
}

macro_rules! burn_config {
    ($($config:ident => $optim:ident),* $(,)?) => {$(
        impl InnerOptimizer for $config {
            type Optimizer = $optim;

            fn into_optimizer(self) -> Result<$optim, ConfigError> {
                if self.init().has_gradient_clipping() {
                    return Err(clipping(stringify!($config)));
                }
                Ok(self.build())
            }
        }

        impl InnerOptimizer for $optim {
            type Optimizer = $optim;

            fn into_optimizer(self) -> Result<$optim, ConfigError> {
                Ok(self)
            }
        }
    )*};
}

burn_config!(
    AdamConfig => Adam,
    AdamWConfig => AdamW,
    SgdConfig => Sgd,
    RmsPropConfig => RmsProp,
    AdaGradConfig => AdaGrad,
    LambConfig => Lamb,
    LionConfig => Lion,
);

impl InnerOptimizer for FusedAdamConfig {
    type Optimizer = FusedAdam;

    fn into_optimizer(self) -> Result<FusedAdam, ConfigError> {
        self.build()
    }
}

impl InnerOptimizer for FusedAdam {
    type Optimizer = FusedAdam;

    fn into_optimizer(self) -> Result<FusedAdam, ConfigError> {
        Ok(self)
    }
}

impl InnerOptimizer for FusedSgdConfig {
    type Optimizer = FusedSgd;

    fn into_optimizer(self) -> Result<FusedSgd, ConfigError> {
        self.build()
    }
}

impl InnerOptimizer for FusedSgd {
    type Optimizer = FusedSgd;

    fn into_optimizer(self) -> Result<FusedSgd, ConfigError> {
        Ok(self)
    }
}
