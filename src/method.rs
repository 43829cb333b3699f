//! `--method`: the paper's regulariser or a baseline, as a decay configuration and a prune
//! schedule, shared by every example so that all methods run in the same harness.

use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use sparse_prune::{Floor, PruneSchedule};
use sparse_reg::{Coupling, GammaSchedule, Penalty, Relevance, Selection, SelectiveDecayConfig};

/// A pruning method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The paper: gamma * exp(-|g|/alpha) * w^2, gated magnitude pruning.
    Relevance,
    /// gamma = 0: gated magnitude pruning alone (Han et al. 2015).
    Magnitude,
    /// Plain L2 (relevance factor 1), gated pruning.
    L2,
    /// L1 penalty gamma * |w|, gated pruning.
    L1,
    /// LOBSTER's post-step shrink w -= gamma * w * max(0, 1 - |g|), gated pruning.
    Lobster,
    /// Gradual magnitude pruning (Zhu & Gupta) to a final sparsity, gamma = 0.
    Gmp,
}

impl Method {
    /// The decay of this method: strength `gamma` (0 for magnitude and gmp), relevance scale
    /// `alpha`, gamma fading linearly over `warmup_steps` after each prune event (the paper: one
    /// epoch), on every parameter (the paper's selection).
    ///
    /// ```
    /// use sparse_examples::method::Method;
    /// let decay = Method::Magnitude.decay(1e-3, 1.0, 600);
    /// assert_eq!(decay.gamma, 0.0);
    /// ```
    pub fn decay(self, gamma: f64, alpha: f64, warmup_steps: u64) -> SelectiveDecayConfig {
        let (gamma, relevance, penalty, coupling) = match self {
            Method::Relevance => (
                gamma,
                Relevance::Exp { alpha },
                Penalty::L2,
                Coupling::Coupled,
            ),
            Method::Magnitude | Method::Gmp => {
                (0.0, Relevance::Constant, Penalty::L2, Coupling::Coupled)
            }
            Method::L2 => (gamma, Relevance::Constant, Penalty::L2, Coupling::Coupled),
            Method::L1 => (gamma, Relevance::Constant, Penalty::L1, Coupling::Coupled),
            Method::Lobster => (gamma, Relevance::Lobster, Penalty::L2, Coupling::Decoupled),
        };
        SelectiveDecayConfig::new()
            .with_gamma(gamma)
            .with_relevance(relevance)
            .with_penalty(penalty)
            .with_coupling(coupling)
            .with_schedule(GammaSchedule::Linear {
                steps: warmup_steps.max(1),
            })
            .with_params(Selection::All)
    }

    /// When to prune: every `every` steps remove `fraction` of the alive weights while the
    /// validation metric passes `floor` (gmp: a cubic ramp to `gmp_sparsity` over the first
    /// three quarters of `total_steps`).
    pub fn schedule(
        self,
        every: u64,
        fraction: f64,
        floor: Floor,
        total_steps: u64,
        gmp_sparsity: f64,
    ) -> PruneSchedule {
        match self {
            Method::Gmp => PruneSchedule::Gradual {
                start: every,
                end: (total_steps * 3 / 4).max(every + 1),
                every,
                initial_sparsity: 0.0,
                final_sparsity: gmp_sparsity,
            },
            _ => PruneSchedule::Gated {
                every,
                fraction,
                floor,
            },
        }
    }
}
