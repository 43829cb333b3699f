//! A convolution computed as its patches (im2col) and one matrix product, forward and backward.
//!
//! Burn 0.22.1's flex backend spends most of a LeNet-5 step in the two convolutions. For the
//! first one (one input channel) its forward runs a per-plane loop and its weight gradient a
//! convolution with a 24x24 kernel; for the second one each image gets its own patches and
//! product, and the weight gradient is a convolution of the dims-swapped input with the
//! dims-swapped output gradient, both copied first. Here a stride-1, unpadded convolution is
//! the patches of its input (`[batch * out_h * out_w, c_in * kh * kw]`, built in one parallel
//! pass) times the reshaped weight, and the weight gradient is the output gradient times those
//! same patches, kept from the forward pass. flex's `gemm` splits the forward product over the
//! cores itself, but not the weight gradient's (few rows and columns, a long inner dimension:
//! 50 x 6,400 x 500 for LeNet-5's conv2), so that one runs as a batched product over groups of
//! images whose results are summed ([`flex::weight_grad`]; the groups depend on the shapes
//! only, so the results do not depend on the number of threads). The input's gradient, when it
//! needs one, is Burn's (flex's transposed convolution). The patches' buffer and the output
//! gradient's are handed back after the backward pass and reused by the next step (`spare.rs`):
//! a new buffer would be zeroed on the calling thread while the pool waits. The weights stay in
//! the `Conv2d` module, so parameter paths, masks and checkpoints are unchanged. Measured in
//! `docs/BENCHMARKS.md`.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

/// `conv.forward(x)` for `x: [batch, channels, height, width]`, the same values (to rounding:
/// the products sum in another order) and gradients, as patches + one matrix product on flex
/// (see the module docs). Other backends run Burn's `unfold` view and a batched `matmul`, which
/// autodiff differentiates (on ndarray that trains LeNet-5 ~8x faster than its `Conv2d`,
/// `bench backends`). A convolution with a stride, padding, dilation or groups runs
/// `Conv2d::forward`.
///
/// ```
/// use burn::nn::conv::Conv2dConfig;
/// use burn::tensor::{Device, Distribution, Tensor};
/// use sparse_models::conv2d_unfolded;
/// let device = Device::flex();
/// let conv = Conv2dConfig::new([2, 4], [3, 3]).init(&device);
/// let x: Tensor<4> = Tensor::random([2, 2, 8, 8], Distribution::Default, &device);
/// let diff = (conv.forward(x.clone()) - conv2d_unfolded(&conv, x)).abs().max();
/// assert!(diff.into_scalar::<f32>() < 1e-5);
/// ```
///
/// Panics, with the shapes in the message, when `x`'s channels are not the layer's or an
/// image is smaller than the kernel (of an unpadded, stride-1 layer; others are `Conv2d`'s).
pub fn conv2d_unfolded(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let unpadded = matches!(
        conv.padding,
        PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0)
    );
    if !(unpadded && conv.stride == [1, 1] && conv.dilation == [1, 1] && conv.groups == 1) {
        return conv.forward(x);
    }
    let ([n, c, h, w], [_, c_in, kh, kw]) = (x.dims(), conv.weight.dims());
    assert!(
        c == c_in && h >= kh && w >= kw,
        "conv2d_unfolded: an input of shape [{n}, {c}, {h}, {w}] for a layer with {c_in} input \
         channels and a {kh}x{kw} kernel"
    );
    #[cfg(feature = "flex")]
    if x.dtype() == burn::tensor::DType::F32 && crate::is_flex(&x.device()) {
        let weight = conv.weight.val();
        let c_out = weight.dims()[0];
        let out = flex::unfold_conv2d(x, weight);
        return match &conv.bias {
            Some(bias) => out + bias.val().reshape([1, c_out, 1, 1]),
            None => out,
        };
    }
    by_unfold(conv, x)
}

/// The other backends' path: Burn's `unfold` view, a permuted copy and a batched `matmul`.
fn by_unfold(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
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

#[cfg(feature = "flex")]
mod flex {
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::backend_extension;
    use burn::backend::ops::FloatTensorOps;
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata};
    use burn::tensor::ops::ConvTransposeOptions;
    use burn::tensor::{Shape, Slice, Tensor, TensorData};
    use rayon::prelude::*;

    pub(super) fn unfold_conv2d(x: Tensor<4>, weight: Tensor<4>) -> Tensor<4> {
        Tensor::from_dispatch(<Dispatch as UnfoldConv>::unfold_conv2d(
            x.into_dispatch(),
            weight.into_dispatch(),
        ))
    }

    /// The convolution as a backend extension: flex's patches, and autodiff's backward pass.
    #[backend_extension(Flex, Autodiff)]
    pub trait UnfoldConv: Backend {
        /// `x [n, c, h, w]` convolved with `weight [c_out, c, kh, kw]` (stride 1, no padding).
        fn unfold_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;
        /// The patches of `x` for a `kernel` window: `[n * oh * ow, c * kh * kw]`, row
        /// `(image, out row, out column)`, column `(channel, kernel row, kernel column)`.
        fn patches(x: FloatTensor<Self>, kernel: [usize; 2]) -> FloatTensor<Self>;
    }

    /// The output `[n, c_out, oh, ow]` from the patches and the weight.
    fn conv_from_patches<B: Backend>(
        patches: FloatTensor<B>,
        weight: FloatTensor<B>,
        [n, oh, ow]: [usize; 3],
    ) -> FloatTensor<B> {
        let ws = weight.shape();
        let (c_out, len) = (ws[0], ws[1] * ws[2] * ws[3]);
        let weight = B::float_transpose(B::float_reshape(weight, Shape::new([c_out, len])));
        let out = B::float_matmul(patches, weight); // [n * oh * ow, c_out]
        let out = B::float_reshape(out, Shape::new([n, oh * ow, c_out]));
        let out = B::float_swap_dims(out, 1, 2);
        B::float_reshape(out, Shape::new([n, c_out, oh, ow]))
    }

    /// `[n, oh, ow]` of the output of `x` convolved with `weight`.
    fn out_dims(x: &Shape, weight: &Shape) -> [usize; 3] {
        [x[0], x[2] + 1 - weight[2], x[3] + 1 - weight[3]]
    }

    impl UnfoldConv for Flex {
        /// Without autodiff nothing is kept for a backward pass, so the batch goes through in
        /// groups of images whose patches take at most [`GROUP_BYTES`]: a large inference batch
        /// would otherwise allocate (and fault in) one buffer of hundreds of megabytes per call.
        fn unfold_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
            let [n, oh, ow] = out_dims(&x.shape(), &weight.shape());
            let ws = weight.shape();
            let kernel = [ws[2], ws[3]];
            let per_image = oh * ow * ws[1] * ws[2] * ws[3] * size_of::<f32>();
            let group = (GROUP_BYTES / per_image.max(1)).max(1);
            if n <= group {
                let patches = Self::patches(x, kernel);
                return conv_from_patches::<Self>(patches, weight, [n, oh, ow]);
            }
            let s = x.shape();
            let parts = (0..n)
                .step_by(group)
                .map(|start| {
                    let end = (start + group).min(n);
                    let ranges = [start..end, 0..s[1], 0..s[2], 0..s[3]].map(Slice::from);
                    let images = Flex::float_slice(x.clone(), &ranges);
                    let patches = Self::patches(images, kernel);
                    conv_from_patches::<Self>(patches, weight.clone(), [end - start, oh, ow])
                })
                .collect();
            Flex::float_cat(parts, 0)
        }

        fn patches(x: FloatTensor<Self>, [kh, kw]: [usize; 2]) -> FloatTensor<Self> {
            let device = x.device();
            let s = x.shape();
            let [n, c, h, w] = [s[0], s[1], s[2], s[3]];
            let (oh, ow, len) = (h + 1 - kh, w + 1 - kw, c * kh * kw);
            let x = crate::contiguous(x);
            let x = x.as_slice::<f32>().expect("an f32 tensor");
            // Every entry is written below: a spare buffer's stale values do not matter.
            let mut out = crate::spare::take(n * oh * ow * len);
            let windows = Windows {
                c,
                h,
                w,
                kh,
                kw,
                ow,
            };
            out.par_chunks_mut(oh * ow * len)
                .zip(x.par_chunks(c * h * w))
                .for_each(|(out, image)| match kw {
                    3 => windows.copy::<3>(image, out),
                    5 => windows.copy::<5>(image, out),
                    _ => windows.copy::<0>(image, out),
                });
            Flex::float_from_data(TensorData::new(out, [n * oh * ow, len]), &device)
        }
    }

    /// The most bytes of patches one group of images takes in a forward pass without autodiff.
    const GROUP_BYTES: usize = 8 << 20;

    /// The windows of one image: its `c` planes of `h x w`, a `kh x kw` kernel, `ow` output
    /// columns.
    struct Windows {
        c: usize,
        h: usize,
        w: usize,
        kh: usize,
        kw: usize,
        ow: usize,
    }

    impl Windows {
        /// The image's patches into `out` (one row of `c * kh * kw` per output position).
        /// `KW` is the kernel's width when it is known at compile time (0: read `kw`): each
        /// kernel row is then a copy of a constant length, a few moves instead of a call to
        /// `memcpy` per row.
        fn copy<const KW: usize>(&self, image: &[f32], out: &mut [f32]) {
            let Self {
                c, h, w, kh, ow, ..
            } = *self;
            let kw = if KW == 0 { self.kw } else { KW };
            for (pos, row) in out.chunks_exact_mut(c * kh * kw).enumerate() {
                let (i, j) = (pos / ow, pos % ow);
                for (ch, row) in row.chunks_exact_mut(kh * kw).enumerate() {
                    let plane = &image[ch * h * w..][..h * w];
                    for (k, dst) in row.chunks_exact_mut(kw).enumerate() {
                        dst.copy_from_slice(&plane[(i + k) * w + j..][..kw]);
                    }
                }
            }
        }
    }

    /// The weight's gradient `[c_out, len]` from the output gradient `[n, c_out, oh, ow]` and
    /// the patches `[n * oh * ow, len]`: the product `[c_out, n * oh * ow] x [n * oh * ow, len]`,
    /// over [`weight_grad_pieces`] groups of images, summed. Its inner dimension is long and its
    /// result small (LeNet-5's conv2: 50 x 6,400 x 500), which `gemm` runs on one thread; flex
    /// runs the matrices of a batched product (4 or more) on its threads.
    fn weight_grad<B: Backend>(grad: FloatTensor<B>, patches: FloatTensor<B>) -> FloatTensor<B> {
        let gs = grad.shape();
        let ops = gs.num_elements() * patches.shape()[1];
        let pieces = weight_grad_pieces(gs[0], ops);
        weight_grad_in::<B>(grad, patches, pieces)
    }

    /// [`weight_grad`] over `pieces` groups of images (`pieces` divides the batch).
    pub(crate) fn weight_grad_in<B: Backend>(
        grad: FloatTensor<B>,
        patches: FloatTensor<B>,
        pieces: usize,
    ) -> FloatTensor<B> {
        let gs = grad.shape();
        let [n, c_out, positions] = [gs[0], gs[1], gs[2] * gs[3]];
        let len = patches.shape()[1];
        let rows = n / pieces * positions;
        let g = B::float_reshape(grad, Shape::new([pieces, n / pieces, c_out, positions]));
        let g = B::float_swap_dims(g, 1, 2);
        let g = B::float_reshape(g, Shape::new([pieces, c_out, rows]));
        let patches = B::float_reshape(patches, Shape::new([pieces, rows, len]));
        let dw = B::float_matmul(g, patches); // [pieces, c_out, len]
        let dw = match pieces {
            1 => dw,
            _ => B::float_sum_dim(dw, 0),
        };
        B::float_reshape(dw, Shape::new([c_out, len]))
    }

    /// How many groups of images [`weight_grad`] splits a batch of `n` into, for a product of
    /// `ops` multiply-adds: 8, 4, 6 or 5 (the first that divides `n`), and 1 (no split) below
    /// [`SPLIT_OPS`] or when none divides. It depends on the shapes only, never on the number of
    /// threads, so the sums (and a run's results) are the same on every machine.
    pub(crate) fn weight_grad_pieces(n: usize, ops: usize) -> usize {
        if ops < SPLIT_OPS {
            return 1;
        }
        [8, 4, 6, 5]
            .into_iter()
            .find(|&d| n.is_multiple_of(d))
            .unwrap_or(1)
    }

    /// The smallest weight-gradient product (multiply-adds) that [`weight_grad`] splits.
    pub(crate) const SPLIT_OPS: usize = 4 << 20;

    /// Autodiff's record of the convolution.
    #[derive(Debug)]
    struct UnfoldConvBackward;

    /// What the backward pass needs: the patches (for the weight's gradient), the weight (for
    /// the input's) and the weight's shape.
    #[derive(Clone, Debug)]
    struct State<B: Backend> {
        patches: Option<FloatTensor<B>>,
        weight: Option<NodeId>,
        weight_shape: Shape,
    }

    impl<B: Backend + UnfoldConv> Backward<B, 2> for UnfoldConvBackward {
        type State = State<B>;

        fn backward(
            self,
            ops: Ops<Self::State, 2>,
            grads: &mut Gradients,
            check: &mut Checkpointer,
        ) {
            let [x_parent, weight_parent] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            let state = ops.state;
            if let Some(parent) = weight_parent {
                let patches = state.patches.expect("kept for the weight gradient");
                let dw = weight_grad::<B>(grad.clone(), patches.clone());
                crate::spare::give_tensor::<B>(patches);
                grads.register::<B>(parent.id, B::float_reshape(dw, state.weight_shape));
            }
            if let Some(parent) = x_parent {
                let weight = check.retrieve_node_output(state.weight.expect("kept for dx"));
                let options = ConvTransposeOptions::new([1, 1], [0, 0], [0, 0], [1, 1], 1);
                let dx = B::conv_transpose2d(grad.clone(), weight, None, options);
                grads.register::<B>(parent.id, dx);
            }
            crate::spare::give_tensor::<B>(grad);
        }
    }

    impl<B: Backend + UnfoldConv, C: CheckpointStrategy> UnfoldConv for Autodiff<B, C> {
        fn unfold_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
            let (x_tracked, weight_tracked) = (x.is_tracked(), weight.is_tracked());
            let dims = out_dims(&x.shape(), &weight.shape());
            let weight_shape = weight.shape();
            let kernel = [weight_shape[2], weight_shape[3]];
            match UnfoldConvBackward
                .prepare::<C>([x.node(), weight.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let weight_node = x_tracked.then(|| prep.checkpoint(&weight));
                    let patches = B::patches(x.into_primitive(), kernel);
                    let state = State {
                        patches: weight_tracked.then(|| patches.clone()),
                        weight: weight_node,
                        weight_shape,
                    };
                    let out = conv_from_patches::<B>(patches, weight.into_primitive(), dims);
                    prep.finish(state, out)
                }
                OpsKind::UnTracked(prep) => prep.finish(B::unfold_conv2d(
                    x.into_primitive(),
                    weight.into_primitive(),
                )),
            }
        }

        fn patches(_x: FloatTensor<Self>, _kernel: [usize; 2]) -> FloatTensor<Self> {
            panic!("the patches are taken inside unfold_conv2d, on the inner backend")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution};

    fn max_abs(t: Tensor<4>) -> f32 {
        t.abs().max().into_scalar::<f32>()
    }

    /// Values and the gradients of the input, the weight and the bias match `Conv2d`'s to
    /// rounding, for the two LeNet-5 layers' shapes and an odd one, with and without an input
    /// that needs a gradient, on flex's path and on the other backends' (`by_unfold`).
    #[test]
    fn values_and_gradients_match_conv2d() {
        let device = Device::flex().autodiff();
        for (shape, channels, kernel, input_grad) in [
            ([4, 1, 28, 28], [1, 20], [5, 5], false),
            ([4, 20, 12, 12], [20, 50], [5, 5], true),
            ([3, 2, 9, 7], [2, 3], [2, 4], true),
        ] {
            let conv = Conv2dConfig::new(channels, kernel).init(&device);
            let x: Tensor<4> = Tensor::random(shape, Distribution::Default, &device);
            let x = if input_grad { x.require_grad() } else { x };
            let path = |unfold: bool| match unfold {
                true => by_unfold(&conv, x.clone()),
                false => conv2d_unfolded(&conv, x.clone()),
            };
            for (a, b) in [
                (conv.forward(x.clone()), path(false)),
                (conv.forward(x.clone()), path(true)),
            ] {
                assert_eq!(a.dims(), b.dims());
                let diff = max_abs(a.clone() - b.clone());
                assert!(diff < 1e-5, "{shape:?}: forward differs by {diff}");
                let r = Tensor::<4>::random(a.shape(), Distribution::Default, &device);
                let (ga, gb) = ((a * r.clone()).sum().backward(), (b * r).sum().backward());
                let close = |what: &str, p: Tensor<4>, q: Tensor<4>| {
                    let scale = max_abs(p.clone());
                    let diff = max_abs(p - q);
                    assert!(
                        scale > 0.0 && diff <= 1e-5 * scale,
                        "{shape:?} {what}: {diff} of {scale}"
                    );
                };
                let weight = conv.weight.val();
                close(
                    "weight",
                    weight.grad(&ga).unwrap(),
                    weight.grad(&gb).unwrap(),
                );
                let bias = conv.bias.as_ref().unwrap().val();
                let (ba, bb) = (bias.grad(&ga).unwrap(), bias.grad(&gb).unwrap());
                close("bias", ba.reshape([1, 1, 1, -1]), bb.reshape([1, 1, 1, -1]));
                match input_grad {
                    true => close("input", x.grad(&ga).unwrap(), x.grad(&gb).unwrap()),
                    false => assert!(x.grad(&gb).is_none()),
                }
            }
        }
    }

    /// The weight gradient cut into groups of images equals the uncut product to rounding;
    /// the number of groups depends on the batch and the product's size only.
    #[cfg(feature = "flex")]
    #[test]
    fn the_weight_gradient_in_groups_of_images() {
        use burn::backend::Dispatch;
        let device = Device::flex();
        let grad: Tensor<4> = Tensor::random([24, 5, 3, 4], Distribution::Default, &device);
        let patches: Tensor<2> = Tensor::random([24 * 12, 7], Distribution::Default, &device);
        let dw = |pieces| {
            let (g, p) = (
                grad.clone().into_dispatch(),
                patches.clone().into_dispatch(),
            );
            Tensor::<2>::from_dispatch(flex::weight_grad_in::<Dispatch>(g, p, pieces))
        };
        let whole = dw(1);
        assert_eq!(whole.dims(), [5, 7]);
        let scale = whole.clone().abs().max().into_scalar::<f32>();
        for pieces in [2, 3, 4, 6, 8] {
            let diff = (dw(pieces) - whole.clone())
                .abs()
                .max()
                .into_scalar::<f32>();
            assert!(diff <= 1e-5 * scale, "{pieces} pieces: {diff} of {scale}");
        }
        let ops = flex::SPLIT_OPS;
        assert_eq!(flex::weight_grad_pieces(100, ops), 4);
        assert_eq!(flex::weight_grad_pieces(128, ops), 8);
        assert_eq!(flex::weight_grad_pieces(30, ops), 6);
        assert_eq!(flex::weight_grad_pieces(35, ops), 5);
        assert_eq!(flex::weight_grad_pieces(7, ops), 1);
        assert_eq!(flex::weight_grad_pieces(128, ops - 1), 1);
    }

    /// A spare buffer of the patches' size full of NaN, as an earlier step could have left it:
    /// the forward pass takes it and writes every entry.
    #[cfg(feature = "flex")]
    #[test]
    fn stale_spare_patches_are_overwritten() {
        let device = Device::flex().autodiff();
        let conv = Conv2dConfig::new([3, 2], [3, 2]).init(&device);
        let x: Tensor<4> = Tensor::random([2, 3, 6, 5], Distribution::Default, &device);
        crate::spare::give(vec![f32::NAN; 2 * 4 * 4 * 3 * 3 * 2]);
        let (a, b) = (conv.forward(x.clone()), conv2d_unfolded(&conv, x));
        assert!(max_abs(a - b) < 1e-5);
    }

    #[test]
    fn without_autodiff_and_with_a_stride_too() {
        let device = Device::flex();
        let x: Tensor<4> = Tensor::random([2, 3, 10, 10], Distribution::Default, &device);
        for config in [
            Conv2dConfig::new([3, 4], [3, 3]),
            Conv2dConfig::new([3, 4], [3, 3]).with_stride([2, 2]),
            Conv2dConfig::new([3, 4], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
        ] {
            let conv = config.init(&device);
            let (a, b) = (conv.forward(x.clone()), conv2d_unfolded(&conv, x.clone()));
            assert_eq!(a.dims(), b.dims());
            assert!(max_abs(a - b) < 1e-5);
        }
    }

    #[test]
    #[should_panic(
        expected = "conv2d_unfolded: an input of shape [2, 3, 4, 4] for a layer with 2 input channels and a 5x5 kernel"
    )]
    fn an_input_that_does_not_fit_the_layer_is_a_clear_panic() {
        let device = Device::flex();
        let conv = Conv2dConfig::new([2, 4], [5, 5]).init(&device);
        let _ = conv2d_unfolded(&conv, Tensor::zeros([2, 3, 4, 4], &device));
    }

    /// A batch whose patches pass the group size runs in groups of images (LeNet-5's first
    /// layer: 57.6 kB of patches per image, 145 images per group) with the whole batch's values.
    #[test]
    fn a_large_batch_in_groups() {
        let device = Device::flex();
        let conv = Conv2dConfig::new([1, 20], [5, 5]).init(&device);
        let x: Tensor<4> = Tensor::random([300, 1, 28, 28], Distribution::Default, &device);
        let (a, b) = (conv.forward(x.clone()), conv2d_unfolded(&conv, x.clone()));
        assert_eq!(a.dims(), b.dims());
        assert!(max_abs(a - b.clone()) < 1e-5);
        // Image by image, as a batch of one each (no groups).
        for i in [0, 144, 145, 146, 290, 299] {
            let one = conv2d_unfolded(&conv, x.clone().narrow(0, i, 1));
            assert_eq!(
                one.into_data(),
                b.clone().narrow(0, i, 1).into_data(),
                "image {i}"
            );
        }
    }
}
