//! `relu(max_pool2d(x, 2x2, stride 2))` as one op, with its own backward pass on flex.
//!
//! Burn flex runs a 2-D max-pool as its generic 3-D pool with an `i64` index per output, and
//! autodiff then scatters the gradient back through those indices: on LeNet-5 (batch 100) the
//! two max-pools and their backward took about a quarter of a training step, more than the
//! first convolution. Here the forward pass is one read of the input per window, the ReLU is
//! folded into it (max-pooling and ReLU commute, so the values are those of `relu(pool(x))`),
//! and the backward pass recomputes each window's winner from the kept input instead of
//! storing indices. Other backends (ndarray, wgpu) run Burn's `max_pool2d` and `relu`.
//!
//! The winner of a window is its first entry, in row-major order, that holds the window's
//! maximum, as in flex's pool; a window whose maximum is not above 0 passes no gradient, as
//! through `relu`. So the gradients are those of `relu(max_pool2d(x))` entry for entry.

use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;

/// `relu(max_pool2d(x, [2, 2], [2, 2]))` on `[batch, channels, height, width]` (an odd last
/// row or column is dropped, as Burn's pool does). On flex (with or without autodiff) it runs
/// one fused pass forward and one backward; elsewhere it is Burn's `max_pool2d` then `relu`.
///
/// ```
/// use burn::tensor::{Device, Tensor};
///
/// let device = Device::flex();
/// let x = Tensor::<4>::from_floats([[[[1.0, -2.0], [3.0, 0.5]], [[-1.0, -2.0], [-3.0, -0.5]]]], &device);
/// let y = sparse_models::max_pool2x2_relu(x);
/// assert_eq!(y.into_data().to_vec::<f32>().unwrap(), vec![3.0, 0.0]);
/// ```
pub fn max_pool2x2_relu(x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if x.dtype() == burn::tensor::DType::F32 && crate::is_flex(&x.device()) {
        return flex::max_pool2x2_relu(x);
    }
    relu(max_pool2d(
        x,
        MaxPoolOptions::new([2, 2]).with_stride([2, 2]),
    ))
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
    use rayon::prelude::*;

    pub(super) fn max_pool2x2_relu(x: Tensor<4>) -> Tensor<4> {
        Tensor::from_dispatch(<Dispatch as PoolRelu>::max_pool2x2_relu(x.into_dispatch()))
    }

    /// The fused op as a backend extension: flex's kernels, and autodiff's backward pass.
    #[backend_extension(Flex, Autodiff)]
    pub trait PoolRelu: Backend {
        /// `relu(max_pool2d(x, 2x2, stride 2))`.
        fn max_pool2x2_relu(x: FloatTensor<Self>) -> FloatTensor<Self>;
        /// The gradient with respect to `x`, given the output's gradient `grad`.
        fn max_pool2x2_relu_backward(
            x: FloatTensor<Self>,
            grad: FloatTensor<Self>,
        ) -> FloatTensor<Self>;
    }

    /// The input's `[planes, height, width]` and the output's shape.
    fn dims(shape: &Shape) -> ([usize; 3], Shape) {
        let [n, c, h, w] = [shape[0], shape[1], shape[2], shape[3]];
        ([n * c, h, w], Shape::new([n, c, h / 2, w / 2]))
    }

    /// The winner of the window whose top-left entry is `x[top]` (row stride `w`): its offset
    /// from `top` and its value; the first maximum in row-major order, as flex's pool picks.
    #[inline(always)]
    fn winner(x: &[f32], top: usize, w: usize) -> (usize, f32) {
        let mut best = (0, x[top]);
        for (off, v) in [(1, x[top + 1]), (w, x[top + w]), (w + 1, x[top + w + 1])] {
            if v > best.1 {
                best = (off, v);
            }
        }
        best
    }

    /// `relu` as Burn computes it: entries `<= 0` become `+0.0` (so `-0.0` too), NaN stays.
    #[inline(always)]
    fn relu_value(v: f32) -> f32 {
        if v <= 0.0 { 0.0 } else { v }
    }

    impl PoolRelu for Flex {
        fn max_pool2x2_relu(x: FloatTensor<Self>) -> FloatTensor<Self> {
            let device = x.device();
            let shape = x.shape();
            let x = crate::contiguous(x);
            let ([planes, h, w], out_shape) = dims(&shape);
            let x = x.as_slice::<f32>().expect("an f32 tensor");
            let (ho, wo) = (h / 2, w / 2);
            let mut out = vec![0.0f32; planes * ho * wo];
            out.par_chunks_mut(ho * wo)
                .enumerate()
                .for_each(|(p, out)| {
                    for (i, out) in out.chunks_exact_mut(wo).enumerate() {
                        let row = p * h * w + 2 * i * w;
                        for (j, o) in out.iter_mut().enumerate() {
                            *o = relu_value(winner(x, row + 2 * j, w).1);
                        }
                    }
                });
            Flex::float_from_data(TensorData::new(out, out_shape), &device)
        }

        fn max_pool2x2_relu_backward(
            x: FloatTensor<Self>,
            grad: FloatTensor<Self>,
        ) -> FloatTensor<Self> {
            let device = x.device();
            let shape = x.shape();
            let (x, grad) = (crate::contiguous(x), crate::contiguous(grad));
            let (x, grad) = (x.as_slice::<f32>(), grad.as_slice::<f32>());
            let (x, grad) = (x.expect("an f32 tensor"), grad.expect("an f32 tensor"));
            let ([_, h, w], _) = dims(&shape);
            let (ho, wo) = (h / 2, w / 2);
            let mut dx = crate::spare::take(x.len());
            dx.par_chunks_mut(h * w).enumerate().for_each(|(p, dx)| {
                dx.fill(0.0); // on this thread, just before the plane's writes
                let x = &x[p * h * w..][..h * w];
                for i in 0..ho {
                    let g = &grad[(p * ho + i) * wo..][..wo];
                    for (j, &g) in g.iter().enumerate() {
                        let top = 2 * i * w + 2 * j;
                        let (off, v) = winner(x, top, w);
                        if v > 0.0 {
                            dx[top + off] = g;
                        }
                    }
                }
            });
            Flex::float_from_data(TensorData::new(dx, shape), &device)
        }
    }

    /// Autodiff's record of the op: the input, kept (or recomputed under checkpointing) for the
    /// backward pass.
    #[derive(Debug)]
    struct PoolReluBackward;

    impl<B: Backend + PoolRelu> Backward<B, 1> for PoolReluBackward {
        type State = NodeId;

        fn backward(self, ops: Ops<NodeId, 1>, grads: &mut Gradients, check: &mut Checkpointer) {
            let [parent] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            let x = check.retrieve_node_output(ops.state);
            if let Some(parent) = parent {
                grads.register::<B>(parent.id, B::max_pool2x2_relu_backward(x, grad));
            }
        }
    }

    impl<B: Backend + PoolRelu, C: CheckpointStrategy> PoolRelu for Autodiff<B, C> {
        fn max_pool2x2_relu(x: FloatTensor<Self>) -> FloatTensor<Self> {
            match PoolReluBackward
                .prepare::<C>([x.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let state = prep.checkpoint(&x);
                    prep.finish(state, B::max_pool2x2_relu(x.into_primitive()))
                }
                OpsKind::UnTracked(prep) => prep.finish(B::max_pool2x2_relu(x.into_primitive())),
            }
        }

        fn max_pool2x2_relu_backward(
            _x: FloatTensor<Self>,
            _grad: FloatTensor<Self>,
        ) -> FloatTensor<Self> {
            panic!("max_pool2x2_relu has no second-order gradient")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    fn reference(x: Tensor<4>) -> Tensor<4> {
        relu(max_pool2d(
            x,
            MaxPoolOptions::new([2, 2]).with_stride([2, 2]),
        ))
    }

    #[test]
    fn forward_and_gradient_equal_burns_pool_then_relu() {
        let device = Device::flex().autodiff();
        // Odd sizes (the last row and column are dropped) and repeated values (ties).
        let x = Tensor::<4>::random([3, 4, 7, 9], Distribution::Uniform(-1.0, 1.0), &device);
        let x = x.mul_scalar(4.0).round().div_scalar(4.0);
        let a = x.clone().require_grad();
        let b = x.require_grad();
        let ya = max_pool2x2_relu(a.clone());
        let yb = reference(b.clone());
        assert_eq!(ya.to_data(), yb.to_data());
        let w = Tensor::<4>::random(ya.shape(), Distribution::Default, &device);
        // A spare buffer of the gradient's size, full of NaN, as a step before this one could
        // have left: the backward pass takes it and must write every entry.
        #[cfg(feature = "flex")]
        crate::spare::give(vec![f32::NAN; 3 * 4 * 7 * 9]);
        let ga = (ya * w.clone()).sum().backward();
        let gb = (yb * w).sum().backward();
        let (ga, gb) = (a.grad(&ga).unwrap(), b.grad(&gb).unwrap());
        assert_eq!(ga.to_data(), gb.to_data());
        assert!(ga.abs().sum().into_scalar::<f32>() > 0.0);
    }

    #[cfg(feature = "flex")]
    #[test]
    fn flex_devices_take_the_fused_path() {
        assert!(crate::is_flex(&Device::flex()));
        assert!(crate::is_flex(&Device::flex().autodiff()));
    }

    #[test]
    fn without_autodiff_too() {
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 3, 6, 6], Distribution::Uniform(-1.0, 1.0), &device);
        assert_eq!(
            max_pool2x2_relu(x.clone()).to_data(),
            reference(x).to_data()
        );
    }
}
