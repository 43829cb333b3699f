//! Models for the sparse-burn examples and benchmarks: the paper's LeNet-300-100 and LeNet-5.
#![warn(missing_docs)]

mod lenet;

pub use lenet::{ImageClassifier, LeNet5, LeNet300};
