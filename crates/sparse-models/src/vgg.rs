//! VGG-16 for CIFAR-10: 13 convolutions 3x3 with BatchNorm, 5 max-pools, a 512 -> 10 head.
//! Each max-pool and the ReLU before it run as [`max_pool2x2_relu`] (one op on flex).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::{ImageClassifier, batch_norm, conv2d, max_pool2x2_relu};

/// Output channels of the 13 convolutions; a max-pool follows the ones marked `true`.
const LAYERS: [(usize, bool); 13] = [
    (64, false),
    (64, true),
    (128, false),
    (128, true),
    (256, false),
    (256, false),
    (256, true),
    (512, false),
    (512, false),
    (512, true),
    (512, false),
    (512, false),
    (512, true),
];

/// Convolution 3x3 (padding 1, with bias) -> BatchNorm -> ReLU.
#[derive(Module, Debug)]
pub struct ConvBn {
    /// The convolution.
    pub conv: Conv2d,
    /// Its BatchNorm.
    pub bn: BatchNorm,
}

impl ConvBn {
    fn new(cin: usize, cout: usize, device: &Device) -> Self {
        Self {
            conv: Conv2dConfig::new([cin, cout], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            bn: BatchNormConfig::new(cout).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.pre_activation(x))
    }

    /// Convolution and BatchNorm, before the ReLU.
    fn pre_activation(&self, x: Tensor<4>) -> Tensor<4> {
        batch_norm(&self.bn, conv2d(&self.conv, x))
    }
}

/// VGG-16 for 32x32 RGB images (14,728,266 trainable parameters, as the PyTorch reference's
/// `vgg16_cifar`; Burn's `num_params` adds the BatchNorm running mean and variance).
///
/// ```
/// use burn::module::Module;
/// use burn::tensor::{Device, Tensor};
/// use sparse_models::Vgg16;
/// let device = Device::flex();
/// let model = Vgg16::new(10, &device);
/// assert_eq!(model.num_params(), 14_728_266 + 2 * 4_224); // 4,224 BatchNorm channels
/// assert_eq!(model.forward(Tensor::zeros([1, 3, 32, 32], &device)).dims(), [1, 10]);
/// ```
#[derive(Module, Debug)]
pub struct Vgg16 {
    /// The 13 convolution blocks.
    pub features: Vec<ConvBn>,
    /// 512 -> classes.
    pub head: Linear,
}

impl Vgg16 {
    /// A freshly initialised model with `classes` outputs on `device`.
    pub fn new(classes: usize, device: &Device) -> Self {
        let mut cin = 3;
        let features = LAYERS
            .iter()
            .map(|(cout, _)| {
                let block = ConvBn::new(cin, *cout, device);
                cin = *cout;
                block
            })
            .collect();
        Self {
            features,
            head: LinearConfig::new(512, classes).init(device),
        }
    }

    /// Logits for images `[batch, 3, 32, 32]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = images;
        for (block, (_, pool)) in self.features.iter().zip(LAYERS) {
            // A max-pool and the ReLU before it commute: one fused op on flex.
            x = match pool {
                true => max_pool2x2_relu(block.pre_activation(x)),
                false => block.forward(x),
            };
        }
        self.head.forward(x.flatten(1, 3))
    }
}

impl ImageClassifier for Vgg16 {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward(images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;
    use burn::tensor::module::max_pool2d;
    use burn::tensor::ops::MaxPoolOptions;

    /// VGG-16 as Burn's own layers compute it: ReLU, then `max_pool2d`.
    fn burn_forward(model: &Vgg16, images: Tensor<4>) -> Tensor<2> {
        let mut x = images;
        for (block, (_, pool)) in model.features.iter().zip(LAYERS) {
            x = block.forward(x);
            if pool {
                x = max_pool2d(x, MaxPoolOptions::new([2, 2]).with_stride([2, 2]));
            }
        }
        model.head.forward(x.flatten(1, 3))
    }

    #[test]
    fn fused_pools_give_burns_values_and_gradients() {
        let device = Device::flex().autodiff();
        let model = Vgg16::new(10, &device);
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Default, &device);
        let ours = model.forward(x.clone());
        let theirs = burn_forward(&model, x);
        assert_eq!(ours.to_data(), theirs.to_data());
        let (g1, g2) = (ours.sum().backward(), theirs.sum().backward());
        let w = &model.features[0].conv.weight;
        let (g1, g2) = (w.grad(&g1).unwrap(), w.grad(&g2).unwrap());
        assert_eq!(g1.to_data(), g2.to_data());
        assert!(g1.abs().sum().into_scalar::<f32>() > 0.0);
    }
}
