//! A convolution on flex one image at a time: the image's patches and one matrix product,
//! forward and backward.
//!
//! Burn 0.22.1's flex backend runs a 2-D convolution as its 3-D one: the input is copied to
//! channels-last order, then tiles of patches go through `gemm`; the input's gradient is a
//! transposed convolution and the weight's a convolution of the dims-swapped input with the
//! dims-swapped output gradient, each copied first. On ResNet-20's first stage (16 channels,
//! 32x32 images, batch 128) that is about 12 GFLOP/s on one core, a third of what the same op
//! reaches on its 64-channel 8x8 stage. Here each image's patches, `[c_in * kh * kw, oh * ow]`
//! (a row per weight column, a column per output position: 590 KB for that stage), are built
//! in a buffer that stays in cache and multiplied by the weight `[c_out, c_in * kh * kw]`,
//! which writes the image's output `[c_out, oh * ow]` in place, already in NCHW order. The
//! backward pass does the same per image: the weight's gradient is the sum over images of the
//! output gradient times the patches (rebuilt, not kept), the input's gradient the weight's
//! transpose times the output gradient, added back window by window. Images go over flex's
//! threads; the weight gradient's partial sums are over fixed groups of images, summed in
//! order, so the results do not depend on the number of threads. The products are
//! `ndarray`'s (`matrixmultiply`'s kernels). Measured in `docs/BENCHMARKS.md`.

use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

/// `conv.forward(x)` for `x: [batch, channels, height, width]`: the same values (to rounding:
/// the products sum in another order) and gradients. On flex (f32, with or without autodiff) a
/// layer without dilation or groups runs the per-image patches and product of the module docs;
/// everything else runs `Conv2d::forward`.
///
/// ```
/// use burn::nn::PaddingConfig2d;
/// use burn::nn::conv::Conv2dConfig;
/// use burn::tensor::{Device, Distribution, Tensor};
/// let device = Device::flex();
/// let conv = Conv2dConfig::new([3, 8], [3, 3])
///     .with_stride([2, 2])
///     .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
///     .init(&device);
/// let x: Tensor<4> = Tensor::random([2, 3, 9, 9], Distribution::Default, &device);
/// let y = sparse_models::conv2d(&conv, x.clone());
/// assert_eq!(y.dims(), [2, 8, 5, 5]);
/// let diff = (conv.forward(x) - y).abs().max();
/// assert!(diff.into_scalar::<f32>() < 1e-5);
/// ```
///
/// Panics, with the shapes in the message, when `x`'s channels are not the layer's or the
/// padded image is smaller than the kernel.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(options) = flex_options(conv, &x) {
        let ([n, c, h, w], [c_out, c_in, kh, kw]) = (x.dims(), conv.weight.dims());
        let [_, _, pt, pl, pb, pr] = options;
        assert!(
            c == c_in && h + pt + pb >= kh && w + pl + pr >= kw,
            "conv2d: an input of shape [{n}, {c}, {h}, {w}] for a layer with {c_in} input \
             channels, a {kh}x{kw} kernel and padding (top, left, bottom, right) \
             ({pt}, {pl}, {pb}, {pr})"
        );
        let out = flex::conv2d(x, conv.weight.val(), options);
        return match &conv.bias {
            Some(bias) => out + bias.val().reshape([1, c_out, 1, 1]),
            None => out,
        };
    }
    conv.forward(x)
}

/// `[stride_h, stride_w, top, left, bottom, right]` of a layer that the flex path runs, or
/// `None` (another backend or dtype, dilation, groups, or `Same` padding).
#[cfg(feature = "flex")]
fn flex_options(conv: &Conv2d, x: &Tensor<4>) -> Option<[usize; 6]> {
    use burn::nn::PaddingConfig2d;
    let [pt, pl, pb, pr] = match conv.padding {
        PaddingConfig2d::Valid => [0; 4],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [top, left, bottom, right],
        _ => return None,
    };
    let plain = conv.dilation == [1, 1] && conv.groups == 1;
    let flex = x.dtype() == burn::tensor::DType::F32 && crate::is_flex(&x.device());
    (plain && flex).then_some([conv.stride[0], conv.stride[1], pt, pl, pb, pr])
}

/// One image's convolution geometry and its patches.
#[cfg(feature = "flex")]
mod patches {
    use std::ops::Range;

    /// An image of `c` planes of `h x w`, a `kh x kw` kernel, a stride, the padding at the top
    /// and left, and the output's `oh x ow`.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Geometry {
        pub c: usize,
        pub h: usize,
        pub w: usize,
        pub kh: usize,
        pub kw: usize,
        pub stride: [usize; 2],
        pub pad: [usize; 2],
        pub oh: usize,
        pub ow: usize,
    }

    /// The outputs `o` (of `count`) whose input `o * stride + k - pad` falls in `0..len`.
    fn inside(k: usize, pad: usize, stride: usize, len: usize, count: usize) -> Range<usize> {
        let end = match len + pad > k {
            true => (len + pad - k).div_ceil(stride).min(count),
            false => 0,
        };
        let start = pad.saturating_sub(k).div_ceil(stride).min(end);
        start..end
    }

    impl Geometry {
        /// Rows of the patches: `c * kh * kw`.
        pub fn rows(&self) -> usize {
            self.c * self.kh * self.kw
        }

        /// Columns of the patches (output positions): `oh * ow`.
        pub fn cols(&self) -> usize {
            self.oh * self.ow
        }

        /// Calls `f(row of the patches, output row, inside)` for every kernel entry and output
        /// row, where `inside` is `None` when the input row is padding, and otherwise the
        /// output columns whose input is inside the image and the input offset of the first
        /// of them.
        fn each(&self, mut f: impl FnMut(usize, usize, Option<(&Range<usize>, usize)>)) {
            let [sh, sw] = self.stride;
            let [pt, pl] = self.pad;
            for ky in 0..self.kh {
                let ys = inside(ky, pt, sh, self.h, self.oh);
                for kx in 0..self.kw {
                    let xs = inside(kx, pl, sw, self.w, self.ow);
                    for ch in 0..self.c {
                        let row = (ch * self.kh + ky) * self.kw + kx;
                        for oy in 0..self.oh {
                            if !ys.contains(&oy) || xs.is_empty() {
                                f(row, oy, None);
                                continue;
                            }
                            let iy = oy * sh + ky - pt;
                            // Input column of output column `ox`: `ox * sw + kx - pl`.
                            let first = (ch * self.h + iy) * self.w + xs.start * sw + kx - pl;
                            f(row, oy, Some((&xs, first)));
                        }
                    }
                }
            }
        }

        /// The patches of `image` (`[c, h, w]`) into `out` (`[rows, cols]`; every entry is
        /// written).
        pub fn patches(&self, image: &[f32], out: &mut [f32]) {
            let (p, ow, sw) = (self.cols(), self.ow, self.stride[1]);
            self.each(|row, oy, inside| {
                let dst = &mut out[row * p + oy * ow..][..ow];
                let Some((xs, first)) = inside else {
                    dst.fill(0.0);
                    return;
                };
                dst[..xs.start].fill(0.0);
                dst[xs.end..].fill(0.0);
                match sw {
                    1 => dst[xs.clone()].copy_from_slice(&image[first..][..xs.len()]),
                    _ => {
                        for (i, d) in dst[xs.clone()].iter_mut().enumerate() {
                            *d = image[first + i * sw];
                        }
                    }
                }
            });
        }

        /// Adds the patches' gradient `grad` (`[rows, cols]`) to the image's, `image`
        /// (`[c, h, w]`): the transpose of [`Geometry::patches`].
        pub fn add_patches(&self, grad: &[f32], image: &mut [f32]) {
            let (p, ow, sw) = (self.cols(), self.ow, self.stride[1]);
            self.each(|row, oy, inside| {
                let Some((xs, first)) = inside else { return };
                let src = &grad[row * p + oy * ow..][..ow][xs.clone()];
                match sw {
                    1 => {
                        for (d, s) in image[first..][..xs.len()].iter_mut().zip(src) {
                            *d += s;
                        }
                    }
                    _ => {
                        for (i, s) in src.iter().enumerate() {
                            image[first + i * sw] += s;
                        }
                    }
                }
            });
        }
    }
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
    use burn::tensor::{Shape, Tensor, TensorData};
    use ndarray::linalg::general_mat_mul;
    use ndarray::{ArrayView2, ArrayViewMut2};
    use rayon::prelude::*;

    use super::patches::Geometry;

    pub(super) fn conv2d(x: Tensor<4>, weight: Tensor<4>, options: [usize; 6]) -> Tensor<4> {
        Tensor::from_dispatch(<Dispatch as Im2colConv>::im2col_conv2d(
            x.into_dispatch(),
            weight.into_dispatch(),
            options,
        ))
    }

    /// The convolution as a backend extension: flex's kernels, and autodiff's backward pass.
    /// `options`: `[stride_h, stride_w, top, left, bottom, right]`.
    #[backend_extension(Flex, Autodiff)]
    pub trait Im2colConv: Backend {
        /// `x [n, c, h, w]` convolved with `weight [c_out, c, kh, kw]`.
        fn im2col_conv2d(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            options: [usize; 6],
        ) -> FloatTensor<Self>;
        /// The weight's gradient from the input and the output's gradient `grad`.
        fn im2col_conv2d_weight_grad(
            x: FloatTensor<Self>,
            grad: FloatTensor<Self>,
            kernel: [usize; 2],
            options: [usize; 6],
        ) -> FloatTensor<Self>;
        /// The input's gradient (`[n, c, h, w]` with `input = [h, w]`) from the weight and
        /// the output's gradient `grad`.
        fn im2col_conv2d_input_grad(
            grad: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            input: [usize; 2],
            options: [usize; 6],
        ) -> FloatTensor<Self>;
    }

    /// The geometry of `[c, h, w]` images and a `kh x kw` kernel.
    fn geometry([c, h, w]: [usize; 3], [kh, kw]: [usize; 2], options: [usize; 6]) -> Geometry {
        let [sh, sw, pt, pl, pb, pr] = options;
        Geometry {
            c,
            h,
            w,
            kh,
            kw,
            stride: [sh, sw],
            pad: [pt, pl],
            oh: (h + pt + pb - kh) / sh + 1,
            ow: (w + pl + pr - kw) / sw + 1,
        }
    }

    /// `t`'s entries, contiguous.
    fn values(t: FloatTensor<Flex>) -> FloatTensor<Flex> {
        crate::contiguous(t)
    }

    /// A matrix view of `rows x cols` on `data`.
    fn view(data: &[f32], rows: usize, cols: usize) -> ArrayView2<'_, f32> {
        ArrayView2::from_shape((rows, cols), data).expect("a matrix of the buffer's size")
    }

    /// A mutable matrix view of `rows x cols` on `data`.
    fn view_mut(data: &mut [f32], rows: usize, cols: usize) -> ArrayViewMut2<'_, f32> {
        ArrayViewMut2::from_shape((rows, cols), data).expect("a matrix of the buffer's size")
    }

    /// How many images each partial sum of the weight's gradient covers: a function of the
    /// batch size only (at most 8 groups), never of the number of threads.
    fn group_size(n: usize) -> usize {
        n.div_ceil(8).max(1)
    }

    impl Im2colConv for Flex {
        fn im2col_conv2d(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            options: [usize; 6],
        ) -> FloatTensor<Self> {
            let device = x.device();
            let (xs, ws) = (x.shape(), weight.shape());
            let g = geometry([xs[1], xs[2], xs[3]], [ws[2], ws[3]], options);
            let (n, c_out, k, p) = (xs[0], ws[0], g.rows(), g.cols());
            let (x, weight) = (values(x), values(weight));
            let x = x.as_slice::<f32>().expect("an f32 tensor");
            let weight = view(weight.as_slice::<f32>().expect("an f32 tensor"), c_out, k);
            let mut out = vec![0.0f32; n * c_out * p];
            out.par_chunks_mut(c_out * p)
                .zip(x.par_chunks(g.c * g.h * g.w))
                .for_each_init(
                    || vec![0.0f32; k * p],
                    |cols, (out, image)| {
                        g.patches(image, cols);
                        let mut out = view_mut(out, c_out, p);
                        general_mat_mul(1.0, &weight, &view(cols, k, p), 0.0, &mut out);
                    },
                );
            let shape = [n, c_out, g.oh, g.ow];
            Flex::float_from_data(TensorData::new(out, shape), &device)
        }

        fn im2col_conv2d_weight_grad(
            x: FloatTensor<Self>,
            grad: FloatTensor<Self>,
            kernel: [usize; 2],
            options: [usize; 6],
        ) -> FloatTensor<Self> {
            let device = x.device();
            let (xs, gs) = (x.shape(), grad.shape());
            let g = geometry([xs[1], xs[2], xs[3]], kernel, options);
            let (n, c_out, k, p) = (xs[0], gs[1], g.rows(), g.cols());
            let (x, grad) = (values(x), values(grad));
            let x = x.as_slice::<f32>().expect("an f32 tensor");
            let grad = grad.as_slice::<f32>().expect("an f32 tensor");
            let per = group_size(n);
            let parts: Vec<Vec<f32>> = x
                .par_chunks(per * g.c * g.h * g.w)
                .zip(grad.par_chunks(per * c_out * p))
                .map(|(images, grads)| {
                    let mut cols = vec![0.0f32; k * p];
                    let mut dw = vec![0.0f32; c_out * k];
                    let images = images.chunks_exact(g.c * g.h * g.w);
                    for (image, grad) in images.zip(grads.chunks_exact(c_out * p)) {
                        g.patches(image, &mut cols);
                        let cols = view(&cols, k, p);
                        let mut dw = view_mut(&mut dw, c_out, k);
                        general_mat_mul(1.0, &view(grad, c_out, p), &cols.t(), 1.0, &mut dw);
                    }
                    dw
                })
                .collect();
            let mut dw = vec![0.0f32; c_out * k];
            for part in parts {
                for (d, s) in dw.iter_mut().zip(part) {
                    *d += s;
                }
            }
            let shape = [c_out, g.c, kernel[0], kernel[1]];
            Flex::float_from_data(TensorData::new(dw, shape), &device)
        }

        fn im2col_conv2d_input_grad(
            grad: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            [h, w]: [usize; 2],
            options: [usize; 6],
        ) -> FloatTensor<Self> {
            let device = grad.device();
            let (gs, ws) = (grad.shape(), weight.shape());
            let g = geometry([ws[1], h, w], [ws[2], ws[3]], options);
            let (n, c_out, k, p) = (gs[0], ws[0], g.rows(), g.cols());
            let (grad, weight) = (values(grad), values(weight));
            let grad = grad.as_slice::<f32>().expect("an f32 tensor");
            let weight = view(weight.as_slice::<f32>().expect("an f32 tensor"), c_out, k);
            let mut dx = vec![0.0f32; n * g.c * h * w];
            dx.par_chunks_mut(g.c * h * w)
                .zip(grad.par_chunks(c_out * p))
                .for_each_init(
                    || vec![0.0f32; k * p],
                    |cols, (dx, grad)| {
                        let mut dcols = view_mut(cols, k, p);
                        general_mat_mul(1.0, &weight.t(), &view(grad, c_out, p), 0.0, &mut dcols);
                        g.add_patches(cols, dx);
                    },
                );
            let shape = [n, g.c, h, w];
            Flex::float_from_data(TensorData::new(dx, shape), &device)
        }
    }

    /// Autodiff's record of the convolution.
    #[derive(Debug)]
    struct Im2colConvBackward;

    /// What the backward pass needs: the input (for the weight's gradient), the weight (for
    /// the input's), their shapes and the options.
    #[derive(Clone, Debug)]
    struct State {
        x: Option<NodeId>,
        weight: Option<NodeId>,
        x_shape: Shape,
        weight_shape: Shape,
        options: [usize; 6],
    }

    impl<B: Backend + Im2colConv> Backward<B, 2> for Im2colConvBackward {
        type State = State;

        fn backward(
            self,
            ops: Ops<Self::State, 2>,
            grads: &mut Gradients,
            check: &mut Checkpointer,
        ) {
            let [x_parent, weight_parent] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            let state = ops.state;
            let ws = &state.weight_shape;
            if let Some(parent) = weight_parent {
                let x = check.retrieve_node_output(state.x.expect("kept for the weight grad"));
                let kernel = [ws[2], ws[3]];
                let dw = B::im2col_conv2d_weight_grad(x, grad.clone(), kernel, state.options);
                grads.register::<B>(parent.id, dw);
            }
            if let Some(parent) = x_parent {
                let weight = check.retrieve_node_output(state.weight.expect("kept for dx"));
                let input = [state.x_shape[2], state.x_shape[3]];
                let dx = B::im2col_conv2d_input_grad(grad, weight, input, state.options);
                grads.register::<B>(parent.id, dx);
            }
        }
    }

    impl<B: Backend + Im2colConv, C: CheckpointStrategy> Im2colConv for Autodiff<B, C> {
        fn im2col_conv2d(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            options: [usize; 6],
        ) -> FloatTensor<Self> {
            let (x_tracked, weight_tracked) = (x.is_tracked(), weight.is_tracked());
            let (x_shape, weight_shape) = (x.shape(), weight.shape());
            match Im2colConvBackward
                .prepare::<C>([x.node(), weight.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let state = State {
                        x: weight_tracked.then(|| prep.checkpoint(&x)),
                        weight: x_tracked.then(|| prep.checkpoint(&weight)),
                        x_shape,
                        weight_shape,
                        options,
                    };
                    let out =
                        B::im2col_conv2d(x.into_primitive(), weight.into_primitive(), options);
                    prep.finish(state, out)
                }
                OpsKind::UnTracked(prep) => prep.finish(B::im2col_conv2d(
                    x.into_primitive(),
                    weight.into_primitive(),
                    options,
                )),
            }
        }

        fn im2col_conv2d_weight_grad(
            _x: FloatTensor<Self>,
            _grad: FloatTensor<Self>,
            _kernel: [usize; 2],
            _options: [usize; 6],
        ) -> FloatTensor<Self> {
            panic!("the weight's gradient is taken inside the backward pass, on the inner backend")
        }

        fn im2col_conv2d_input_grad(
            _grad: FloatTensor<Self>,
            _weight: FloatTensor<Self>,
            _input: [usize; 2],
            _options: [usize; 6],
        ) -> FloatTensor<Self> {
            panic!("the input's gradient is taken inside the backward pass, on the inner backend")
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution};

    /// The largest `|a - b|` over the largest `|b|`.
    fn rel(a: Tensor<4>, b: Tensor<4>) -> f32 {
        let scale = b.clone().abs().max().into_scalar::<f32>().max(1e-6);
        (a - b).abs().max().into_scalar::<f32>() / scale
    }

    /// Values and the input's and weight's gradients of `conv2d` against `Conv2d::forward`.
    fn check(c: [usize; 2], kernel: [usize; 2], stride: usize, pad: [usize; 4], hw: [usize; 2]) {
        let device = Device::flex().autodiff();
        let [pt, pl, pb, pr] = pad;
        let conv = Conv2dConfig::new(c, kernel)
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(pt, pl, pb, pr))
            .init(&device);
        let x0 = Tensor::<4>::random([3, c[0], hw[0], hw[1]], Distribution::Default, &device);
        let (xa, xb) = (x0.clone().require_grad(), x0.require_grad());
        let (a, b) = (conv2d(&conv, xa.clone()), conv.forward(xb.clone()));
        let label = format!("{c:?} {kernel:?} stride {stride} pad {pad:?} {hw:?}");
        assert_eq!(a.dims(), b.dims(), "{label}");
        assert!(rel(a.clone(), b.clone()) < 1e-5, "values: {label}");
        // A weighting of the output, so that every position's gradient differs.
        let weights = Tensor::<4>::random(a.dims(), Distribution::Default, &device);
        let (ga, gb) = (
            (a * weights.clone()).sum().backward(),
            (b * weights).sum().backward(),
        );
        let (dxa, dxb) = (xa.grad(&ga).unwrap(), xb.grad(&gb).unwrap());
        assert!(rel(dxa, dxb) < 1e-5, "input gradient: {label}");
        let (dwa, dwb) = (
            conv.weight.grad(&ga).unwrap(),
            conv.weight.grad(&gb).unwrap(),
        );
        assert!(rel(dwa, dwb) < 1e-5, "weight gradient: {label}");
        let (dba, dbb) = (
            conv.bias.as_ref().unwrap().grad(&ga),
            conv.bias.unwrap().grad(&gb),
        );
        let diff = (dba.unwrap() - dbb.unwrap())
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(diff < 1e-3, "bias gradient: {label}");
    }

    #[test]
    fn values_and_gradients_match_conv2d() {
        check([3, 16], [3, 3], 1, [1; 4], [8, 8]); // ResNet's stem
        check([4, 8], [3, 3], 2, [1; 4], [8, 8]); // a downsampling block
        check([4, 8], [3, 3], 2, [1; 4], [9, 7]); // odd sizes
        check([4, 8], [1, 1], 2, [0; 4], [8, 8]); // a projection shortcut
        check([2, 5], [5, 5], 1, [0; 4], [12, 10]); // LeNet-like, unpadded
        check([2, 3], [3, 2], 1, [2, 0, 1, 3], [5, 6]); // uneven kernel and padding
        check([2, 3], [3, 3], 3, [2, 2, 2, 2], [4, 4]); // stride past the kernel
    }

    #[test]
    fn without_autodiff_and_other_layers() {
        let device = Device::flex();
        let conv = Conv2dConfig::new([3, 4], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        let x = Tensor::<4>::random([2, 3, 6, 6], Distribution::Default, &device);
        assert!(rel(conv2d(&conv, x.clone()), conv.forward(x.clone())) < 1e-5);
        // Dilation is not this path's: Burn's layer runs it.
        let dilated = Conv2dConfig::new([3, 4], [3, 3])
            .with_dilation([2, 2])
            .init(&device);
        assert!(rel(conv2d(&dilated, x.clone()), dilated.forward(x)) == 0.0);
    }

    #[test]
    fn a_large_batch_in_groups_of_images() {
        // 19 images: groups of 3, the last one short.
        let device = Device::flex().autodiff();
        let conv = Conv2dConfig::new([2, 3], [3, 3]).init(&device);
        let x = Tensor::<4>::random([19, 2, 5, 5], Distribution::Default, &device);
        let (ga, gb) = (
            conv2d(&conv, x.clone()).sum().backward(),
            conv.forward(x).sum().backward(),
        );
        let (dwa, dwb) = (
            conv.weight.grad(&ga).unwrap(),
            conv.weight.grad(&gb).unwrap(),
        );
        assert!(rel(dwa, dwb) < 1e-5);
    }

    #[test]
    #[should_panic(
        expected = "conv2d: an input of shape [1, 2, 4, 4] for a layer with 3 input channels, a 3x3 kernel and padding (top, left, bottom, right) (1, 1, 1, 1)"
    )]
    fn an_input_that_does_not_fit_the_layer_is_a_clear_panic() {
        let device = Device::flex();
        let conv = Conv2dConfig::new([3, 4], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        let _ = conv2d(&conv, Tensor::zeros([1, 2, 4, 4], &device));
    }
}
