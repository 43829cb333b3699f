//! A convolution computed as unfold + matrix product, for layers whose input needs no
//! gradient (the first layer of a network).
//!
//! Burn 0.22.1's flex backend spends most of a LeNet-5 step in the first convolution (one
//! input channel: its forward runs a per-plane loop and its weight gradient a convolution with
//! a 24x24 kernel). Written as `unfold` (a strided view) + one batched `matmul`, the same layer
//! and its weight gradient are ~3x faster there, and the weights stay in the `Conv2d` module,
//! so parameter paths, masks and checkpoints are unchanged. Measured in `docs/BENCHMARKS.md`.

use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

/// `conv.forward(x)` for a stride-1, unpadded, undilated, ungrouped convolution, as
/// `unfold` + `matmul`. Gives the same values as `Conv2d::forward` (to rounding); use it only
/// where `x` needs no gradient: the gradient of `unfold` with respect to its input is slow.
///
/// ```
/// use burn::nn::conv::Conv2dConfig;
/// use burn::tensor::{Device, Distribution, Tensor};
/// use sparse_models::conv2d_unfolded;
/// let device = Device::flex();
/// let conv = Conv2dConfig::new([1, 4], [3, 3]).init(&device);
/// let x: Tensor<4> = Tensor::random([2, 1, 8, 8], Distribution::Default, &device);
/// let diff = (conv.forward(x.clone()) - conv2d_unfolded(&conv, x)).abs().max();
/// assert!(diff.into_scalar::<f32>() < 1e-5);
/// ```
pub fn conv2d_unfolded(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let weight = conv.weight.val();
    let [c_out, c_in, kh, kw] = weight.dims();
    let [n, _, h, w] = x.dims();
    let (oh, ow) = (h + 1 - kh, w + 1 - kw);
    // [n, c_in, oh, ow, kh, kw]: every window, as a view.
    let windows: Tensor<6> = x.unfold::<5, _>(2, kh, 1).unfold(3, kw, 1);
    let patches = windows
        .permute([0, 2, 3, 1, 4, 5])
        .reshape([n, oh * ow, c_in * kh * kw]);
    let weight = weight.reshape([1, c_out, c_in * kh * kw]).swap_dims(1, 2);
    let mut out = patches.matmul(weight); // [n, oh * ow, c_out]
    if let Some(bias) = &conv.bias {
        out = out + bias.val().reshape([1, 1, c_out]);
    }
    out.swap_dims(1, 2).reshape([n, c_out, oh, ow])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution};

    #[test]
    fn values_and_weight_gradient_match_conv2d() {
        let device = Device::flex().autodiff();
        let conv = Conv2dConfig::new([2, 3], [5, 5]).init(&device);
        let x: Tensor<4> = Tensor::random([4, 2, 12, 12], Distribution::Default, &device);
        let (a, b) = (conv.forward(x.clone()), conv2d_unfolded(&conv, x));
        assert_eq!(a.dims(), b.dims());
        let diff = (a.clone() - b.clone()).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-5, "forward differs by {diff}");
        let (ga, gb) = ((a * 1.5).sum().backward(), (b * 1.5).sum().backward());
        let (wa, wb) = (
            conv.weight.grad(&ga).unwrap(),
            conv.weight.grad(&gb).unwrap(),
        );
        let scale = wa.clone().abs().max().into_scalar::<f32>();
        let diff = (wa - wb).abs().max().into_scalar::<f32>();
        assert!(
            diff <= 1e-5 * scale,
            "weight gradient differs by {diff} (scale {scale})"
        );
        let (ba, bb) = (
            conv.bias.as_ref().unwrap().grad(&ga).unwrap(),
            conv.bias.as_ref().unwrap().grad(&gb).unwrap(),
        );
        let scale = ba.clone().abs().max().into_scalar::<f32>();
        assert!((ba - bb).abs().max().into_scalar::<f32>() <= 1e-5 * scale);
    }
}
