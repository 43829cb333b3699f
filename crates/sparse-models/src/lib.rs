//! # sparse-models
//!
//! Burn models to prune, as used by the sparse-burn examples and benchmarks: the paper's
//! LeNet-300-100 and LeNet-5 for 28x28 grey-scale images, VGG-16 and ResNet-(6n+2) for 32x32
//! RGB images (CIFAR-10), and a decoder-only Transformer language model. Each is a plain Burn
//! `Module` on any backend, so it trains, saves and prunes like any other; on Burn's flex CPU
//! backend the LeNets and VGG-16 use faster ops with the same values and gradients.
//!
//! ```
//! use burn::tensor::{Device, Distribution, Tensor};
//! use sparse_models::{ImageClassifier, LeNet5, ResNetConfig};
//!
//! let device = Device::flex();
//! let lenet = LeNet5::new(&device);
//! let digits = Tensor::<4>::random([2, 1, 28, 28], Distribution::Default, &device);
//! assert_eq!(lenet.forward(digits).dims(), [2, 10]); // logits of two images
//!
//! let resnet20 = ResNetConfig::new(20).init(&device).unwrap(); // depth 6n + 2, 10 classes
//! let photos = Tensor::<4>::random([2, 3, 32, 32], Distribution::Default, &device);
//! assert_eq!(resnet20.logits(photos).dims(), [2, 10]); // the same through `ImageClassifier`
//! ```
//!
//! To train on the device of your choice, build the model on it (`Device::flex().autodiff()`
//! to train on the CPU); sparse-prune's `SparsityConfig::init` then attaches the masks.
//!
//! ## The models
//!
//! - [`LeNet300`] (LeNet-300-100, 266,610 parameters) and [`LeNet5`] (Caffe's sizes, 431,080
//!   parameters, the paper's model): `[batch, 1, 28, 28]` images to 10 logits.
//! - [`Vgg16`] (its blocks are [`ConvBn`]) and [`ResNet`] from a [`ResNetConfig`] (20, 32, 44,
//!   56, ... layers; its blocks are [`BasicBlock`]s with a projection [`Shortcut`] where the
//!   shape changes): `[batch, 3, 32, 32]` images to class logits.
//! - [`ImageClassifier`]: the image models behind one trait, `logits(images)`.
//! - [`TransformerLm`] from a [`TransformerLmConfig`]: a pre-LayerNorm decoder-only
//!   Transformer ([`Block`]s) whose output projection is the token embedding; token ids
//!   `[batch, seq]` to logits `[batch, seq, vocab]`.
//!
//! ## The ops
//!
//! Three ops, used by the LeNets and VGG-16, are faster on flex with the same values and
//! gradients as Burn's own layers; on other backends they run Burn's ops:
//!
//! - [`conv2d_unfolded`]: a stride-1, unpadded convolution as its patches and one matrix
//!   product, with its own backward pass.
//! - [`max_pool2x2_relu`]: a 2x2 max-pool and the ReLU around it as one op with its own
//!   backward pass (a Burn backend extension).
//! - [`parallel_linear`]: a linear layer's matrix products on every core, with Burn's
//!   `Linear`'s values and gradients.
//!
//! Memory: on flex, [`conv2d_unfolded`]'s backward pass hands its patches and output gradient
//! back to a process-wide pool that the next step's ops of the same sizes take from, so that no
//! thread zeroes a new buffer while the others wait. The pool holds at most 64 MB (the oldest
//! buffers are dropped first); LeNet-5 at batch 100 keeps about 25 MB in it between steps.
//!
//! Feature `flex` (on by default) enables the flex ops; without it the models run Burn's ops
//! on every backend.
#![warn(missing_docs)]

mod batch_norm;
mod im2col_conv;
mod lenet;
mod parallel_linear;
mod pool;
mod resnet;
#[cfg(feature = "flex")]
mod spare;
mod transformer;
mod unfold_conv;
mod vgg;

pub use batch_norm::batch_norm;
pub use im2col_conv::conv2d;
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
