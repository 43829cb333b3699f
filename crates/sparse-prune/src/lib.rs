//! # sparse-prune
//!
//! Iterative pruning for Burn models, with masks that are Burn module state.
//!
//! - Masks: [`attach_masks`] puts a [`PruneMask`] (a Burn `Reparameterization`) on every
//!   selected parameter; `save_file`/`load_file` carry it ([`load_masked`]), pruned entries are
//!   exact zeros in the effective weights, and no gradient, momentum or decay can revive them.
//!   [`fold`] bakes them into plain weights.
//! - The JaxPruner split: [`Criterion`] (scores) x [`Distribution`] (global / layer-wise) x
//!   [`PruneSchedule`] (the paper's gated schedule, one-shot, gradual, threshold).
//! - [`Pruner`] is called from any loop with the optimizer-step number and, when due, the
//!   validation metric; [`SparsityReport`] tells what is left.
//!
//! ```
//! use burn::nn::{Linear, LinearConfig};
//! use burn::tensor::Device;
//! use sparse_prune::{Amount, PruneSchedule, PrunerConfig, SparsityReport};
//!
//! let model: Linear = LinearConfig::new(100, 10).init(&Device::flex());
//! let mut pruner = PrunerConfig::new(PruneSchedule::OneShot { at: 1, sparsity: 0.9 }).init().unwrap();
//! let model = pruner.attach(model).unwrap();
//! let (model, event) = pruner.step(model, 1, None).unwrap();
//! assert_eq!(event.unwrap().alive, 101); // round(0.1 * 1010)
//! assert!(SparsityReport::of(&model).sparsity() >= 0.9);
//! ```
#![warn(missing_docs)]

mod criterion;
mod error;
mod hook;
mod mask;
mod masking;
mod pruner;
mod report;
mod schedule;
mod select;
mod snapshot;

pub use criterion::{
    Criterion, CriterionConfig, Magnitude, Random, RelevanceScore, Saliency, ScoreInput,
};
pub use error::{ConfigError, PruneError};
pub use hook::PruningHook;
pub use mask::{MaskInit, PruneMask, attach_masks, count_masks, fold, load_masked};
pub use masking::Masking;
pub use pruner::{Amount, Distribution, PruneEvent, Pruner, PrunerConfig, PrunerState};
pub use report::{ReportRow, SparsityReport};
pub use schedule::{Floor, PruneSchedule};
