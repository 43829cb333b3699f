//! [`SelectiveDecayConfig`]: the configuration of the selective weight decay.

use burn::config::Config;
use burn::module::Module;
use burn::optim::{ModuleOptimizer, Optimizer};
use serde::{Deserialize, Serialize};

use crate::{
    ConfigError, DecayClock, GammaSchedule, InnerOptimizer, Relevance, Selection, SelectiveDecay,
};

/// Which penalty the decay is the gradient of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Penalty {
    /// `gamma * f(g) * w^2`: gradient `2 * gamma * f(g) * w` (the paper).
    #[default]
    L2,
    /// `gamma * f(g) * |w|`: gradient `gamma * f(g) * sign(w)` (the L1 baseline).
    L1,
}

/// Where the decay enters the update.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Coupling {
    /// Added to the gradient before the inner optimizer, so it passes through momentum and
    /// Adam's normalisation like `torch.optim.Adam(weight_decay=..)` (the paper).
    #[default]
    Coupled,
    /// Subtracted from the weights after the inner optimizer's step, not scaled by the
    /// learning rate: `w -= gamma * f(g) * w` for L2 (LOBSTER's update with
    /// [`Relevance::Lobster`]), `w -= gamma * f(g) * sign(w)` for L1.
    Decoupled,
}

/// Configuration of [`SelectiveDecay`]: the relevance-weighted weight decay of Bonetta,
/// Ribero & Cancelliere, `R = gamma * f(g) * w^2` with `f(g) = exp(-|g| / alpha)`.
///
/// ```
/// use burn::optim::AdamConfig;
/// use burn::nn::LinearConfig;
/// use burn::tensor::Device;
/// use sparse_reg::{Relevance, SelectiveDecayConfig};
///
/// let model = LinearConfig::new(4, 2).init(&Device::flex().autodiff());
/// let optim = SelectiveDecayConfig::new()
///     .with_gamma(1e-3)
///     .with_relevance(Relevance::Exp { alpha: 1.0 })
///     .init(AdamConfig::new(), &model)
///     .unwrap();
/// # let _ = optim;
/// ```
///
/// With pruning (and a gamma that fades after each prune event), sparse-prune's
/// `SparsityConfig::init` builds the decay, its clock and the masks together.
#[derive(Config, Debug)]
pub struct SelectiveDecayConfig {
    /// Decay strength `gamma0` (the paper: 1e-3 for LeNet-5 with Adam). `0` disables the decay.
    #[config(default = 1e-3)]
    pub gamma: f64,
    /// The relevance function `f(g)`.
    #[config(default = "Relevance::Exp { alpha: 1.0 }")]
    pub relevance: Relevance,
    /// How gamma evolves (constant, or fading to 0 after every prune event).
    #[config(default = "GammaSchedule::Constant")]
    pub schedule: GammaSchedule,
    /// L2 (the paper) or L1 penalty.
    #[config(default = "Penalty::L2")]
    pub penalty: Penalty,
    /// Coupled with the gradient (the paper) or applied after the inner step (LOBSTER).
    #[config(default = "Coupling::Coupled")]
    pub coupling: Coupling,
    /// The parameters the decay applies to: the weights of rank >= 2 by default,
    /// [`Selection::All`] in the paper. The other parameters get the bare inner optimizer.
    #[config(default = "Selection::Weights")]
    pub params: Selection,
}

impl SelectiveDecayConfig {
    /// Check every field; the error names the field and the accepted range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::non_negative("SelectiveDecayConfig.gamma", self.gamma)?;
        if let Some(alpha) = self.relevance.alpha() {
            ConfigError::positive("SelectiveDecayConfig.relevance.alpha", alpha)?;
        }
        if let GammaSchedule::Linear { steps: 0 } = self.schedule {
            return Err(ConfigError::new(
                "SelectiveDecayConfig.schedule.steps",
                "expected a number of optimizer steps > 0 (the paper uses one epoch), got 0",
            ));
        }
        Ok(())
    }

    /// Validate and wrap the per-tensor optimizer `inner`: the bare [`SelectiveDecay`], for
    /// advanced use (a parameter group of a hand-built `ModuleOptimizer`, or a loop that drives
    /// [`SelectiveDecay::clock`] itself).
    pub fn build<O: Optimizer>(&self, inner: O) -> Result<SelectiveDecay<O>, ConfigError> {
        self.validate()?;
        Ok(SelectiveDecay::new(self, inner, DecayClock::default()))
    }

    /// Validate, wrap `inner` (a Burn optimizer or its configuration, see [`InnerOptimizer`])
    /// and return a [`ModuleOptimizer`] for `model`, the type Burn's training loops and
    /// burn-train's `Learner` take. Parameters outside [`params`](Self::params) get the bare
    /// `inner`.
    ///
    /// Errors when `params` selects no float parameter of `model`, and for a
    /// [`GammaSchedule::Linear`] schedule: it fades from prune events, which only a pruner
    /// sees (sparse-prune's `SparsityConfig::init` wires it; without one gamma would never
    /// fade).
    pub fn init<C: InnerOptimizer, M: Module>(
        &self,
        inner: C,
        model: &M,
    ) -> Result<ModuleOptimizer, ConfigError> {
        if let GammaSchedule::Linear { .. } = self.schedule {
            return Err(ConfigError::new(
                "SelectiveDecayConfig.schedule",
                "GammaSchedule::Linear fades gamma after each prune event and needs the pruner \
                 to drive its clock: use sparse_prune::SparsityConfig::init, or \
                 GammaSchedule::Constant",
            ));
        }
        self.build(inner.into_optimizer()?)?
            .init_with_keep(model, vec![])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(config: SelectiveDecayConfig) -> String {
        config.validate().unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_the_paper_settings_and_valid() {
        let c = SelectiveDecayConfig::new();
        assert_eq!(c.gamma, 1e-3);
        assert_eq!(c.relevance, Relevance::Exp { alpha: 1.0 });
        assert_eq!(c.penalty, Penalty::L2);
        assert_eq!(c.coupling, Coupling::Coupled);
        assert!(matches!(c.params, Selection::Weights));
        c.validate().unwrap();
    }

    #[test]
    fn validation_messages_name_the_field_and_range() {
        assert_eq!(
            message(SelectiveDecayConfig::new().with_gamma(-1.0)),
            "invalid SelectiveDecayConfig.gamma: expected a finite number >= 0, got -1"
        );
        assert_eq!(
            message(SelectiveDecayConfig::new().with_gamma(f64::NAN)),
            "invalid SelectiveDecayConfig.gamma: expected a finite number >= 0, got NaN"
        );
        assert_eq!(
            message(SelectiveDecayConfig::new().with_relevance(Relevance::Exp { alpha: 0.0 })),
            "invalid SelectiveDecayConfig.relevance.alpha: expected a finite number > 0, got 0"
        );
        assert_eq!(
            message(
                SelectiveDecayConfig::new().with_relevance(Relevance::Hyperbolic { alpha: -2.0 })
            ),
            "invalid SelectiveDecayConfig.relevance.alpha: expected a finite number > 0, got -2"
        );
        assert_eq!(
            message(SelectiveDecayConfig::new().with_schedule(GammaSchedule::Linear { steps: 0 })),
            "invalid SelectiveDecayConfig.schedule.steps: expected a number of optimizer steps > 0 \
             (the paper uses one epoch), got 0"
        );
    }

    #[test]
    fn config_round_trips_through_json() {
        let c = SelectiveDecayConfig::new()
            .with_relevance(Relevance::Hyperbolic { alpha: 0.1 })
            .with_schedule(GammaSchedule::Linear { steps: 550 })
            .with_penalty(Penalty::L1)
            .with_coupling(Coupling::Decoupled);
        let json = serde_json_like(&c);
        let back: SelectiveDecayConfig =
            SelectiveDecayConfig::load_binary(json.as_bytes()).unwrap();
        assert_eq!(back.relevance, c.relevance);
        assert_eq!(back.schedule, c.schedule);
        assert_eq!(back.penalty, c.penalty);
        assert_eq!(back.coupling, c.coupling);
    }

    fn serde_json_like(c: &SelectiveDecayConfig) -> String {
        c.to_string()
    }
}
