//! LeNet-300-100 and LeNet-5 (Caffe variant), the paper's image models.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;

use crate::{max_pool2x2_relu, parallel_linear};
use burn::tensor::{Device, Tensor};

/// A model that maps images `[batch, channels, height, width]` to class logits
/// `[batch, classes]`.
pub trait ImageClassifier: Module {
    /// The logits.
    fn logits(&self, images: Tensor<4>) -> Tensor<2>;
}

impl ImageClassifier for LeNet300 {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward(images)
    }
}

impl ImageClassifier for LeNet5 {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward(images)
    }
}

/// LeNet-300-100: a 784-300-100-10 perceptron with ReLU (266,610 parameters).
///
/// ```
/// use burn::module::Module;
/// use burn::tensor::{Device, Tensor};
/// use sparse_models::LeNet300;
/// let device = Device::flex();
/// let model = LeNet300::new(&device);
/// assert_eq!(model.num_params(), 266_610);
/// let logits = model.forward(Tensor::zeros([2, 1, 28, 28], &device));
/// assert_eq!(logits.dims(), [2, 10]);
/// ```
#[derive(Module, Debug)]
pub struct LeNet300 {
    /// 784 -> 300.
    pub fc1: Linear,
    /// 300 -> 100.
    pub fc2: Linear,
    /// 100 -> 10.
    pub fc3: Linear,
}

impl LeNet300 {
    /// A freshly initialised model on `device`.
    pub fn new(device: &Device) -> Self {
        Self {
            fc1: LinearConfig::new(784, 300).init(device),
            fc2: LinearConfig::new(300, 100).init(device),
            fc3: LinearConfig::new(100, 10).init(device),
        }
    }

    /// Logits for images `[batch, 1, 28, 28]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = images.flatten::<2>(1, 3);
        let x = relu(parallel_linear(&self.fc1, x));
        let x = relu(parallel_linear(&self.fc2, x));
        parallel_linear(&self.fc3, x)
    }
}

/// LeNet-5, Caffe's sizes (conv 20 5x5, max-pool 2, conv 50 5x5, max-pool 2, fc 500, fc 10:
/// 431,080 parameters, the paper's model) with a ReLU after each convolution and after fc 500,
/// as in the PyTorch reference (`../shared/reference/torch_reference.py`); Caffe's own
/// prototxt has no ReLU after its convolutions. Each max-pool and the ReLU after it run as one op,
/// [`max_pool2x2_relu`](crate::max_pool2x2_relu): the values and gradients of
/// `relu(max_pool2d(x))`, in one pass each on flex.
///
/// ```
/// use burn::module::Module;
/// use burn::tensor::{Device, Tensor};
/// use sparse_models::LeNet5;
/// let device = Device::flex();
/// let model = LeNet5::new(&device);
/// assert_eq!(model.num_params(), 431_080);
/// let logits = model.forward(Tensor::zeros([2, 1, 28, 28], &device));
/// assert_eq!(logits.dims(), [2, 10]);
/// ```
#[derive(Module, Debug)]
pub struct LeNet5 {
    /// 1 -> 20 channels, 5x5.
    pub conv1: Conv2d,
    /// 20 -> 50 channels, 5x5.
    pub conv2: Conv2d,
    /// 800 -> 500.
    pub fc1: Linear,
    /// 500 -> 10.
    pub fc2: Linear,
}

impl LeNet5 {
    /// A freshly initialised model on `device`.
    pub fn new(device: &Device) -> Self {
        Self {
            conv1: Conv2dConfig::new([1, 20], [5, 5]).init(device),
            conv2: Conv2dConfig::new([20, 50], [5, 5]).init(device),
            fc1: LinearConfig::new(800, 500).init(device),
            fc2: LinearConfig::new(500, 10).init(device),
        }
    }

    /// Logits for images `[batch, 1, 28, 28]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        // The values of `self.conv1.forward(images)` (to rounding), faster on flex.
        let x = max_pool2x2_relu(crate::conv2d_unfolded(&self.conv1, images));
        let x = max_pool2x2_relu(crate::conv2d_unfolded(&self.conv2, x));
        let x = x.flatten::<2>(1, 3);
        parallel_linear(&self.fc2, relu(parallel_linear(&self.fc1, x)))
    }
}
