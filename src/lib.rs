//! Shared tooling of the sparse-burn examples: the backend chosen by cargo feature.
#![warn(missing_docs)]

pub mod backend;
pub mod plot;
