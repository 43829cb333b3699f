//! ResNet-(6n+2) for CIFAR-10 (He et al. 2016): three stages of basic blocks with 16, 32 and
//! 64 channels, a 1x1 convolution + BatchNorm shortcut where the shape changes.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor};

use crate::{ImageClassifier, batch_norm, conv2d};

fn conv(cin: usize, cout: usize, kernel: usize, stride: usize, device: &Device) -> Conv2d {
    let pad = kernel / 2;
    Conv2dConfig::new([cin, cout], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .init(device)
}

/// The projection shortcut of a block that changes the shape.
#[derive(Module, Debug)]
pub struct Shortcut {
    /// 1x1 convolution with the block's stride.
    pub conv: Conv2d,
    /// Its BatchNorm.
    pub bn: BatchNorm,
}

/// Two 3x3 convolutions with BatchNorm and a residual connection.
#[derive(Module, Debug)]
pub struct BasicBlock {
    /// First convolution (carries the stride).
    pub conv1: Conv2d,
    /// Its BatchNorm.
    pub bn1: BatchNorm,
    /// Second convolution.
    pub conv2: Conv2d,
    /// Its BatchNorm.
    pub bn2: BatchNorm,
    /// Projection where the shape changes; identity otherwise.
    pub shortcut: Option<Shortcut>,
}

impl BasicBlock {
    fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        Self {
            conv1: conv(cin, cout, 3, stride, device),
            bn1: BatchNormConfig::new(cout).init(device),
            conv2: conv(cout, cout, 3, 1, device),
            bn2: BatchNormConfig::new(cout).init(device),
            shortcut: (stride != 1 || cin != cout).then(|| Shortcut {
                conv: conv(cin, cout, 1, stride, device),
                bn: BatchNormConfig::new(cout).init(device),
            }),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = relu(batch_norm(&self.bn1, conv2d(&self.conv1, x.clone())));
        let y = batch_norm(&self.bn2, conv2d(&self.conv2, y));
        let skip = match &self.shortcut {
            Some(s) => batch_norm(&s.bn, conv2d(&s.conv, x)),
            None => x,
        };
        relu(y + skip)
    }
}

/// Configuration of a [`ResNet`].
#[derive(Config, Debug)]
pub struct ResNetConfig {
    /// Depth 6n + 2: 20, 32, 44, 56, 110, ...
    pub depth: usize,
    /// Number of classes.
    #[config(default = 10)]
    pub classes: usize,
}

impl ResNetConfig {
    /// Check the fields; the error names the field and what is accepted.
    pub fn validate(&self) -> Result<(), String> {
        if self.depth < 8 || !(self.depth - 2).is_multiple_of(6) {
            return Err(format!(
                "ResNetConfig.depth: expected 6n + 2 with n >= 1 (20, 32, 44, 56, ...), got {}",
                self.depth
            ));
        }
        if self.classes == 0 {
            return Err("ResNetConfig.classes: expected at least 1, got 0".into());
        }
        Ok(())
    }

    /// A freshly initialised model on `device`.
    ///
    /// ```
    /// use burn::module::Module;
    /// use burn::tensor::{Device, Tensor};
    /// use sparse_models::ResNetConfig;
    /// let device = Device::flex();
    /// let model = ResNetConfig::new(32).init(&device).unwrap();
    /// // The PyTorch reference's resnet32 has 466,906 parameters; Burn's count adds the
    /// // BatchNorm running mean and variance (2 x 1,232 channels).
    /// assert_eq!(model.num_params(), 466_906 + 2 * 1_232);
    /// assert_eq!(model.forward(Tensor::zeros([2, 3, 32, 32], &device)).dims(), [2, 10]);
    /// ```
    pub fn init(&self, device: &Device) -> Result<ResNet, String> {
        self.validate()?;
        let n = (self.depth - 2) / 6;
        let mut blocks = Vec::with_capacity(3 * n);
        let mut cin = 16;
        for (cout, stride) in [(16, 1), (32, 2), (64, 2)] {
            for i in 0..n {
                blocks.push(BasicBlock::new(
                    cin,
                    cout,
                    if i == 0 { stride } else { 1 },
                    device,
                ));
                cin = cout;
            }
        }
        Ok(ResNet {
            stem: conv(3, 16, 3, 1, device),
            stem_bn: BatchNormConfig::new(16).init(device),
            blocks,
            head: LinearConfig::new(64, self.classes).init(device),
        })
    }
}

/// ResNet-(6n+2) for 32x32 RGB images.
#[derive(Module, Debug)]
pub struct ResNet {
    /// 3 -> 16 convolution.
    pub stem: Conv2d,
    /// Its BatchNorm.
    pub stem_bn: BatchNorm,
    /// The 3n basic blocks.
    pub blocks: Vec<BasicBlock>,
    /// 64 -> classes, after global average pooling.
    pub head: Linear,
}

impl ResNet {
    /// Logits for images `[batch, 3, 32, 32]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = relu(batch_norm(&self.stem_bn, conv2d(&self.stem, images)));
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.head
            .forward(adaptive_avg_pool2d(x, [1, 1]).flatten(1, 3))
    }
}

impl ImageClassifier for ResNet {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward(images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_match_the_pytorch_reference() {
        let device = Device::flex();
        // PyTorch's counts, plus Burn's BatchNorm running mean and variance (2 per channel).
        for (depth, params, bn_channels) in [(20, 272_474, 784), (56, 855_770, 2_128)] {
            let model = ResNetConfig::new(depth).init(&device).unwrap();
            assert_eq!(
                model.num_params(),
                params + 2 * bn_channels,
                "ResNet-{depth}"
            );
        }
    }

    #[test]
    fn a_depth_that_is_not_6n_plus_2_is_refused() {
        let err = ResNetConfig::new(33).init(&Device::flex()).unwrap_err();
        assert_eq!(
            err,
            "ResNetConfig.depth: expected 6n + 2 with n >= 1 (20, 32, 44, 56, ...), got 33"
        );
    }

    #[test]
    fn batch_norm_statistics_differ_between_training_and_inference() {
        let device = Device::flex().autodiff();
        let model = ResNetConfig::new(8).init(&device).unwrap();
        let x = Tensor::<4>::random(
            [4, 3, 32, 32],
            burn::tensor::Distribution::Normal(3.0, 2.0),
            &device,
        );
        let train = model.forward(x.clone()).into_data();
        let infer = model.valid().forward(x.inner()).into_data();
        assert_ne!(
            train, infer,
            "the inference path must use the running statistics"
        );
    }
}
