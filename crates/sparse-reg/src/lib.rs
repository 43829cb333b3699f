//! # sparse-reg
//!
//! The relevance-weighted weight decay of Bonetta, Ribero & Cancelliere, "Regularization-based
//! Pruning of Irrelevant Weights in Deep Neural Architectures", for any Burn optimizer.
//!
//! For every parameter entry `w` with mini-batch loss gradient `g`, the regularizer is
//! `R = gamma * f(g) * w^2`, `f(g) = exp(-|g| / alpha)` and `g` held constant. Irrelevant
//! entries (small `|g|`) get (almost) full L2 decay, relevant ones (almost) a plain update.
//! [`SelectiveDecay`] forms `g + 2 * gamma * f(g) * w` elementwise from the one backward pass
//! and feeds it to the wrapped optimizer (SGD, Adam, AdamW, RMSProp, ...). [`FusedAdam`] and
//! [`FusedSgd`] are Burn's Adam and SGD (with momentum), bit for bit, as one pass on CPU
//! backends; wrapped, they take the decay term into that same pass, which runs on the CPU
//! backend's thread pool in pieces for large parameters (the same bits; `SPARSE_REG_THREADS=1`
//! keeps it on the calling thread).
//!
//! ```
//! use burn::optim::AdamConfig;
//! use burn::nn::LinearConfig;
//! use burn::tensor::Device;
//! use sparse_reg::{GammaSchedule, SelectiveDecayConfig};
//!
//! let model = LinearConfig::new(4, 2).init(&Device::flex().autodiff());
//! let decay = SelectiveDecayConfig::new()
//!     .with_gamma(1e-3)
//!     .with_schedule(GammaSchedule::Linear { steps: 550 })
//!     .build(AdamConfig::new().build())
//!     .unwrap();
//! let clock = decay.clock(); // give it to the pruner, or call clock.set_step(step)
//! let optim = decay.init(&model).unwrap(); // a burn ModuleOptimizer
//! # let _ = (clock, optim);
//! ```
#![warn(missing_docs)]

mod adam;
mod config;
mod decay;
mod error;
mod keep;
mod kernel;
mod params;
mod relevance;
mod schedule;
mod sgd;
mod split;
#[cfg(test)]
mod testing;

pub use adam::{FusedAdam, FusedAdamConfig};
pub use config::{Coupling, Penalty, SelectiveDecayConfig};
pub use decay::SelectiveDecay;
pub use error::ConfigError;
pub use keep::{KeepSlot, zero_pruned};
pub use kernel::is_host;
pub use params::{ParamInfo, float_params, is_running_statistic, select_params};
pub use relevance::Relevance;
pub use schedule::{ClockState, DecayClock, GammaSchedule};
pub use sgd::{FusedSgd, FusedSgdConfig, FusedSgdState};
