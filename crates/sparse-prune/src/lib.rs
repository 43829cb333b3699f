//! # sparse-prune
//!
//! Make a Burn model sparse while it trains: the relevance-weighted weight decay of
//! [sparse-reg](https://docs.rs/sparse-reg) plus iterative magnitude pruning gated by a
//! validation metric (Bonetta, Ribero & Cancelliere), with masks that are Burn module state.
//!
//! The integration into a hand-written Burn loop is three lines: a configuration, one `init`
//! that returns the model with its masks, the optimizer (the decay inside) and the
//! [`Sparsity`] that drives them, and one call per step in place of `optim.step(..)`.
//!
//! ```
//! # use burn::nn::{Linear, LinearConfig};
//! # use burn::optim::{AdamConfig, GradientsParams};
//! # use burn::tensor::{Device, Distribution, Tensor};
//! use sparse_prune::{Floor, PruneSchedule, PrunerConfig, SparsityConfig};
//! # let device = Device::flex().autodiff();
//! # let model: Linear = LinearConfig::new(16, 4).init(&device);
//! # let accuracy = |_m: &Linear| 0.95; // the validation accuracy of a model
//!
//! let schedule = PruneSchedule::Gated { every: 10, fraction: 0.1, floor: Floor::Above(0.9) };
//! let (mut model, mut optim, mut sparsity) =
//!     SparsityConfig::new(PrunerConfig::new(schedule)).init(model, AdamConfig::new())?;
//! for _ in 0..100 {
//! #   let x = Tensor::<2>::random([8, 16], Distribution::Default, &device);
//! #   let loss = model.forward(x).powi_scalar(2).mean();
//!     let grads = GradientsParams::from_grads(loss.backward(), &model);
//!     model = sparsity.step(model, &mut optim, 1e-3, grads, |m| accuracy(m))?; // was optim.step
//! }
//! assert_eq!(sparsity.events().len(), 10); // every 10 steps, 10 % of the alive weights
//! # Ok::<(), sparse_prune::PruneError>(())
//! ```
//!
//! `with_keep_best(true)` keeps the sparsest model that passed the floor ([`Sparsity::best`]),
//! `with_target(Some(s))` stops pruning at sparsity `s`. With burn-train's `Learner`, wrap the
//! model in [`Sparse`] (feature `train`) instead of calling `step`.
//!
//! By default the weights of rank >= 2 are pruned and decayed; `.select(Selection::All)` is
//! the paper's choice (biases and normalisation parameters too).
//!
//! ## Several devices
//!
//! Masks are module state: `fork`/`to_device` carry them with the model, so every replica of a
//! data-parallel run starts with the same masks. Replicas stay identical when each applies the
//! same decay and the same prune events to the same weights: burn-train's data-parallel
//! strategy all-reduces the gradients, so identical replicas stay identical as long as the
//! decay's step count and every prune decision are the same on all of them. The decay's
//! [`DecayClock`](sparse_reg::DecayClock) is shared by the optimizer's clones and a
//! [`Sparse`] model's [`Sparsity`] by the model's clones, so each must advance once per global
//! step, not once per replica. [`Sparse`] therefore runs on
//! one device, and stops pruning, with a clear error, at the first step a second replica
//! takes; a data-parallel loop written by hand keeps one `Sparsity` on the main replica and
//! applies its masks to the others (load the main replica's record into them after each prune
//! event).
//!
//! ## Underneath
//!
//! - Masks: [`Pruner::attach`] puts a [`PruneMask`] (a Burn `Reparameterization`) on every
//!   selected parameter; `save_file` carries it and [`load_masked`] reads it back, acting in the
//!   forward pass so that no loop can revive a pruned weight. [`fold`] bakes the masks into
//!   plain weights.
//! - The JaxPruner split: [`Criterion`] (scores) x [`Ranking`] (global / layer-wise) x
//!   [`PruneSchedule`] (the paper's gated schedule, one-shot, gradual, threshold).
//! - [`Pruner`] is called from any loop with the optimizer-step number and, when due, the
//!   validation metric; [`Pruner::optimizer`] wraps the decay for it; [`SparsityReport`] tells
//!   what is left.
#![warn(missing_docs)]

mod criterion;
mod error;
#[cfg(feature = "train")]
mod learner;
mod mask;
mod masking;
mod pruner;
mod report;
mod schedule;
mod select;
mod snapshot;
mod sparsity;

pub use criterion::{
    Criterion, CriterionConfig, Magnitude, Random, RelevanceScore, Saliency, ScoreInput,
};
pub use error::{ConfigError, PruneError};
#[cfg(feature = "train")]
pub use learner::Sparse;
pub use mask::{PruneMask, count_masks, fold, load_masked};
pub use masking::Masking;
pub use pruner::{Amount, PruneEvent, Pruner, PrunerConfig, PrunerState, Ranking};
pub use report::{ReportRow, SparsityReport};
pub use schedule::{Floor, PruneSchedule};
pub use sparse_reg::Selection;
pub use sparsity::{Best, Sparsity, SparsityConfig};
