//! Models for the sparse-burn examples and benchmarks: the paper's LeNet-300-100 and LeNet-5.
#![warn(missing_docs)]

mod lenet;
mod unfold_conv;

pub use lenet::{ImageClassifier, LeNet5, LeNet300};
pub use unfold_conv::conv2d_unfolded;
