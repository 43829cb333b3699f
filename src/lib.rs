//! Shared tooling of the sparse-burn examples: the backend chosen by cargo feature, the run
//! directory (guard, atomic checkpoints, metrics), the methods and their baselines, the
//! progress line, the plot, and what the image classifiers share.
#![warn(missing_docs)]

pub mod backend;
pub mod classify;
pub mod masking;
pub mod method;
pub mod plot;
pub mod progress;
pub mod run;
