//! Models for the sparse-burn examples and benchmarks: the paper's LeNet-300-100 and LeNet-5,
//! and VGG-16 and ResNet-(6n+2) for CIFAR-10.
#![warn(missing_docs)]

mod lenet;
mod pool;
mod resnet;
mod transformer;
mod unfold_conv;
mod vgg;

pub use lenet::{ImageClassifier, LeNet5, LeNet300};
pub use pool::max_pool2x2_relu;
pub use resnet::{BasicBlock, ResNet, ResNetConfig, Shortcut};
pub use transformer::{Block, TransformerLm, TransformerLmConfig};
pub use unfold_conv::conv2d_unfolded;
pub use vgg::{ConvBn, Vgg16};
