//! Models for the sparse-burn examples and benchmarks: the paper's LeNet-300-100 and LeNet-5,
//! VGG-16 and ResNet-(6n+2) for CIFAR-10, and the Transformer language model of the text
//! example. Two ops make the convolutional models faster on Burn's flex CPU backend with the
//! same values and gradients as Burn's own layers: [`conv2d_unfolded`] (a stride-1, unpadded
//! convolution as its patches and one matrix product, with its own backward pass) and [`max_pool2x2_relu`] (a 2x2
//! max-pool and the ReLU around it as one op with its own backward pass, a Burn backend
//! extension); on other backends they run Burn's ops. [`parallel_linear`] runs a linear layer's
//! matrix products on every core on flex, with Burn's `Linear`'s values and gradients.
//!
//! Memory: on flex, [`conv2d_unfolded`]'s backward pass hands its patches and output gradient
//! back to a process-wide pool that the next step's ops of the same sizes take from, so that no
//! thread zeroes a new buffer while the others wait. The pool holds at most 64 MB (the oldest
//! buffers are dropped first); LeNet-5 at batch 100 keeps about 25 MB in it between steps.
#![warn(missing_docs)]

mod lenet;
mod parallel_linear;
mod pool;
mod resnet;
#[cfg(feature = "flex")]
mod spare;
mod transformer;
mod unfold_conv;
mod vgg;

pub use lenet::{ImageClassifier, LeNet5, LeNet300};
pub use parallel_linear::parallel_linear;
pub use pool::max_pool2x2_relu;
pub use resnet::{BasicBlock, ResNet, ResNetConfig, Shortcut};
pub use transformer::{Block, TransformerLm, TransformerLmConfig};
pub use unfold_conv::conv2d_unfolded;
pub use vgg::{ConvBn, Vgg16};

/// Whether `device` is flex's (with or without autodiff): where this crate's own flex ops run.
#[cfg(feature = "flex")]
pub(crate) fn is_flex(device: &burn::tensor::Device) -> bool {
    let inner = device.clone().without_autodiff();
    matches!(inner.as_dispatch(), burn::backend::DispatchDevice::Flex(_))
}

/// `x` laid out contiguously, for this crate's flex kernels that read its buffer (most tensors
/// already are: then no copy).
#[cfg(feature = "flex")]
pub(crate) fn contiguous(
    x: burn::backend::tensor::FloatTensor<burn::backend::Flex>,
) -> burn::backend::tensor::FloatTensor<burn::backend::Flex> {
    if x.as_slice::<f32>().is_some() {
        x
    } else {
        x.to_contiguous()
    }
}
