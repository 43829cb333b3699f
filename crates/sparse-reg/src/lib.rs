//! # sparse-reg
//!
//! The relevance-weighted weight decay of Bonetta, Ribero & Cancelliere, "Regularization-based
//! Pruning of Irrelevant Weights in Deep Neural Architectures", for any Burn optimizer.
//!
//! The integration, in a hand-written Burn loop: one line builds the optimizer, the loop is
//! unchanged.
//!
//! ```
//! # use burn::nn::{Linear, LinearConfig};
//! # use burn::optim::{AdamConfig, GradientsParams};
//! # use burn::tensor::{Device, Distribution, Tensor};
//! use sparse_reg::SelectiveDecayConfig;
//! # let device = Device::flex().autodiff();
//! # let mut model: Linear = LinearConfig::new(8, 2).init(&device);
//!
//! let mut optim = SelectiveDecayConfig::new().init(AdamConfig::new(), &model).unwrap();
//! for _ in 0..3 {
//! #   let x = Tensor::<2>::random([16, 8], Distribution::Default, &device);
//! #   let loss = model.forward(x).powi_scalar(2).mean();
//!     let grads = GradientsParams::from_grads(loss.backward(), &model);
//!     model = optim.step(1e-3, model, grads); // Burn's step, with the decay inside
//! }
//! ```
//!
//! With pruning, and the paper's gamma that fades after every prune event, use
//! [sparse-prune](https://docs.rs/sparse-prune)'s `SparsityConfig::init`: it builds this decay,
//! its clock, the masks and the optimizer together, so that they cannot be wired wrongly.
//!
//! For every parameter entry `w` with mini-batch loss gradient `g`, the regularizer is
//! `R = gamma * f(g) * w^2`, `f(g) = exp(-|g| / alpha)` and `g` held constant. Irrelevant
//! entries (small `|g|`) get (almost) full L2 decay, relevant ones (almost) a plain update.
//! [`SelectiveDecay`] forms `g + 2 * gamma * f(g) * w` elementwise from the one backward pass
//! and feeds it to the wrapped optimizer (SGD, Adam, AdamW, RMSProp, ...; see
//! [`InnerOptimizer`]). By default it acts on the weights of rank >= 2; [`Selection::All`] is
//! the paper's choice. [`FusedAdam`] and [`FusedSgd`] are Burn's Adam and SGD (with momentum),
//! bit for bit, as one pass on CPU backends; wrapped, they take the decay term into that same
//! pass, which runs on the CPU backend's thread pool in pieces for large parameters (the same
//! bits; `SPARSE_REG_THREADS=1` keeps it on the calling thread).
#![warn(missing_docs)]

mod adam;
mod config;
mod decay;
mod error;
mod inner;
mod keep;
mod kernel;
mod params;
mod relevance;
mod schedule;
mod selection;
mod sgd;
mod split;
#[cfg(test)]
mod testing;

pub use adam::{FusedAdam, FusedAdamConfig};
pub use config::{Coupling, Penalty, SelectiveDecayConfig};
pub use decay::SelectiveDecay;
pub use error::ConfigError;
pub use inner::InnerOptimizer;
pub use keep::{KeepSlot, zero_pruned};
pub use kernel::is_host;
pub use params::{ParamInfo, float_params, is_running_statistic};
pub use relevance::Relevance;
pub use schedule::{ClockState, DecayClock, GammaSchedule};
pub use selection::Selection;
pub use sgd::{FusedSgd, FusedSgdConfig, FusedSgdState};
