//! The LeNets of `sparse-models` (same parameter paths) as sparse CPU networks.

use crate::infer::{SparseConv2d, SparseLinear, max_pool2, relu};
use crate::{ExportError, SparseTensor};

pub(crate) fn find<'a>(
    ts: &'a [SparseTensor],
    path: &str,
) -> Result<&'a SparseTensor, ExportError> {
    ts.iter()
        .find(|t| t.path == path)
        .ok_or_else(|| ExportError::new(path, "missing from the file (is it this model?)"))
}

fn linear(ts: &[SparseTensor], name: &str) -> Result<SparseLinear, ExportError> {
    SparseLinear::from_tensors(ts, name)
}

fn conv(ts: &[SparseTensor], name: &str) -> Result<SparseConv2d, ExportError> {
    SparseConv2d::new(
        find(ts, &format!("{name}.weight"))?,
        Some(find(ts, &format!("{name}.bias"))?),
    )
}

/// A network that maps `[batch, 1, 28, 28]` images to `[batch, 10]` logits.
pub trait SparseClassifier {
    /// Logits of `batch` images (row-major pixels).
    fn logits(&self, images: &[f32], batch: usize) -> Vec<f32>;
}

/// LeNet-300-100 from the tensors of `sparse_models::LeNet300`.
///
/// ```
/// use burn::tensor::Device;
/// use sparse_export::{SparseClassifier, SparseLeNet300, sparse_tensors};
/// let model = sparse_models::LeNet300::new(&Device::flex());
/// let net = SparseLeNet300::new(&sparse_tensors(&model)).unwrap();
/// assert_eq!(net.logits(&[0.0; 784], 1).len(), 10);
/// ```
#[derive(Clone, Debug)]
pub struct SparseLeNet300 {
    fc: [SparseLinear; 3],
}

impl SparseLeNet300 {
    /// From `fc1..fc3.{weight,bias}`.
    pub fn new(ts: &[SparseTensor]) -> Result<Self, ExportError> {
        Ok(Self {
            fc: [linear(ts, "fc1")?, linear(ts, "fc2")?, linear(ts, "fc3")?],
        })
    }
}

impl SparseClassifier for SparseLeNet300 {
    fn logits(&self, images: &[f32], batch: usize) -> Vec<f32> {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        self.fc[0].forward(images, batch, &mut a);
        relu(&mut a);
        self.fc[1].forward(&a, batch, &mut b);
        relu(&mut b);
        self.fc[2].forward(&b, batch, &mut a);
        a
    }
}

/// LeNet-5 (Caffe) from the tensors of `sparse_models::LeNet5`.
#[derive(Clone, Debug)]
pub struct SparseLeNet5 {
    conv1: SparseConv2d,
    conv2: SparseConv2d,
    fc1: SparseLinear,
    fc2: SparseLinear,
}

impl SparseLeNet5 {
    /// From `conv1`, `conv2`, `fc1`, `fc2` `.{weight,bias}`.
    pub fn new(ts: &[SparseTensor]) -> Result<Self, ExportError> {
        Ok(Self {
            conv1: conv(ts, "conv1")?,
            conv2: conv(ts, "conv2")?,
            fc1: linear(ts, "fc1")?,
            fc2: linear(ts, "fc2")?,
        })
    }
}

impl SparseClassifier for SparseLeNet5 {
    fn logits(&self, images: &[f32], batch: usize) -> Vec<f32> {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        self.conv1.forward(images, batch, [28, 28], &mut a);
        max_pool2(&a, batch * self.conv1.channels_out(), [24, 24], &mut b);
        relu(&mut b);
        self.conv2.forward(&b, batch, [12, 12], &mut a);
        max_pool2(&a, batch * self.conv2.channels_out(), [8, 8], &mut b);
        relu(&mut b);
        self.fc1.forward(&b, batch, &mut a);
        relu(&mut a);
        self.fc2.forward(&a, batch, &mut b);
        b
    }
}
