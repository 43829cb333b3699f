//! A linear layer whose matrix products use every core on flex, even when they are small.
//!
//! flex hands a matrix product to `gemm`'s own parallel split only above 192^3 multiply-adds,
//! and `gemm` splits the short, wide products of a small network poorly (LeNet-300-100 at batch
//! 100: 1.45x on two threads for fc1's forward product, 1.2x for its weight gradient, and every
//! other product on one thread; docs/BENCHMARKS.md). Here each product of a layer, forward and
//! backward, is cut along its longer output side into pieces that each stay under that
//! threshold, the pieces run on rayon's pool as single-threaded products, and the results are
//! concatenated. A piece computes the same entries with the same reductions as the whole
//! product, so the results are bit for bit those of Burn's `Linear` (tested). Other backends
//! (ndarray, wgpu) run Burn's `linear`.

use burn::nn::Linear;
use burn::tensor::Tensor;

/// `linear.forward(x)` for `x: [batch, d_input]`, the same values and gradients, with the matrix
/// products split over the cores on flex (see the module docs); Burn's `Linear::forward`
/// elsewhere.
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::tensor::{Device, Distribution, Tensor};
///
/// let device = Device::flex();
/// let layer = LinearConfig::new(784, 300).init(&device);
/// let x = Tensor::<2>::random([100, 784], Distribution::Default, &device);
/// let ours = sparse_models::parallel_linear(&layer, x.clone()).into_data();
/// assert_eq!(ours, layer.forward(x).into_data());
/// ```
///
/// Panics, as `Linear::forward` does, when `x`'s last dimension is not the layer's `d_input`.
pub fn parallel_linear(linear: &Linear, x: Tensor<2>) -> Tensor<2> {
    #[cfg(feature = "flex")]
    if x.dtype() == burn::tensor::DType::F32 && crate::is_flex(&x.device()) {
        let weight = linear.weight.val();
        let ([batch, d_x], [d_input, _]) = (x.dims(), weight.dims());
        assert_eq!(
            d_x, d_input,
            "parallel_linear: an input of shape [{batch}, {d_x}] for a layer with d_input {d_input}"
        );
        let out = flex::parallel_matmul(x, weight);
        return match &linear.bias {
            Some(bias) => out + bias.val().unsqueeze(),
            None => out,
        };
    }
    linear.forward(x)
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
    use burn::tensor::{Slice, Tensor};
    use rayon::prelude::*;

    /// flex's threshold for handing a product to `gemm`'s parallel split (multiply-adds,
    /// `burn-flex/src/ops/matmul.rs`): the pieces stay under it, so each runs on one thread.
    const FLEX_PARALLEL: usize = 192 * 192 * 192;
    /// Below this many multiply-adds a product is not worth splitting.
    const MIN_SPLIT: usize = 1 << 20;

    pub(super) fn parallel_matmul(lhs: Tensor<2>, rhs: Tensor<2>) -> Tensor<2> {
        Tensor::from_dispatch(<Dispatch as ParallelMatmul>::parallel_matmul(
            lhs.into_dispatch(),
            rhs.into_dispatch(),
        ))
    }

    /// The split product as a backend extension: flex's pieces, and autodiff's backward pass
    /// (whose two products are split the same way).
    #[backend_extension(Flex, Autodiff)]
    pub trait ParallelMatmul: Backend {
        /// `lhs [m, k] x rhs [k, n]`.
        fn parallel_matmul(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self>;
    }

    /// How many pieces a product of `ops` multiply-adds is cut into on `threads` threads: 1
    /// (not split), or a multiple of `threads` with each piece under [`FLEX_PARALLEL`].
    pub(super) fn pieces(ops: usize, threads: usize) -> usize {
        if threads < 2 || ops < MIN_SPLIT {
            return 1;
        }
        ops.div_ceil(FLEX_PARALLEL - 1).next_multiple_of(threads)
    }

    impl ParallelMatmul for Flex {
        fn parallel_matmul(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
            let (ls, rs) = (lhs.shape(), rhs.shape());
            let (m, k, n) = (ls[0], ls[1], rs[1]);
            let pieces = pieces(m * k * n, rayon::current_num_threads());
            // Cut the longer output side: rows of `lhs` or columns of `rhs`.
            let (side, len) = if m >= n { (0, m) } else { (1, n) };
            let pieces = pieces.min(len);
            if pieces < 2 {
                return Flex::float_matmul(lhs, rhs);
            }
            let step = len.div_ceil(pieces);
            let parts: Vec<FloatTensor<Flex>> = (0..len.div_ceil(step))
                .into_par_iter()
                .map(|i| {
                    let range = Slice::from(i * step..((i + 1) * step).min(len));
                    if side == 0 {
                        let l = Flex::float_slice(lhs.clone(), &[range, Slice::from(0..k)]);
                        Flex::float_matmul(l, rhs.clone())
                    } else {
                        let r = Flex::float_slice(rhs.clone(), &[Slice::from(0..k), range]);
                        Flex::float_matmul(lhs.clone(), r)
                    }
                })
                .collect();
            Flex::float_cat(parts, side)
        }
    }

    /// Autodiff's record of the product: the operand each gradient needs.
    #[derive(Debug)]
    struct ParallelMatmulBackward;

    impl<B: Backend + ParallelMatmul> Backward<B, 2> for ParallelMatmulBackward {
        type State = (Option<NodeId>, Option<NodeId>);

        fn backward(
            self,
            ops: Ops<Self::State, 2>,
            grads: &mut Gradients,
            check: &mut Checkpointer,
        ) {
            let (lhs, rhs) = ops.state;
            let [lhs_parent, rhs_parent] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            if let Some(parent) = lhs_parent {
                let rhs = check.retrieve_node_output(rhs.expect("kept for the lhs gradient"));
                let g = B::parallel_matmul(grad.clone(), B::float_transpose(rhs));
                grads.register::<B>(parent.id, g);
            }
            if let Some(parent) = rhs_parent {
                let lhs = check.retrieve_node_output(lhs.expect("kept for the rhs gradient"));
                let g = B::parallel_matmul(B::float_transpose(lhs), grad);
                grads.register::<B>(parent.id, g);
            }
        }
    }

    impl<B: Backend + ParallelMatmul, C: CheckpointStrategy> ParallelMatmul for Autodiff<B, C> {
        fn parallel_matmul(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
            let (lhs_tracked, rhs_tracked) = (lhs.is_tracked(), rhs.is_tracked());
            match ParallelMatmulBackward
                .prepare::<C>([lhs.node(), rhs.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let lhs_state = rhs_tracked.then(|| prep.checkpoint(&lhs));
                    let rhs_state = lhs_tracked.then(|| prep.checkpoint(&rhs));
                    prep.finish(
                        (lhs_state, rhs_state),
                        B::parallel_matmul(lhs.into_primitive(), rhs.into_primitive()),
                    )
                }
                OpsKind::UnTracked(prep) => prep.finish(B::parallel_matmul(
                    lhs.into_primitive(),
                    rhs.into_primitive(),
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::nn::LinearConfig;
    use burn::tensor::{Device, Distribution};

    #[cfg(feature = "flex")]
    #[test]
    fn pieces_stay_under_flexs_threshold_and_fill_the_threads() {
        use flex::pieces;
        assert_eq!(pieces(100 * 784 * 300, 2), 4);
        assert_eq!(pieces(100 * 300 * 100, 2), 2);
        assert_eq!(pieces(100 * 100 * 10, 2), 1, "too small to split");
        assert_eq!(pieces(100 * 784 * 300, 1), 1, "one thread");
        assert_eq!(pieces(784 * 100 * 300, 3), 6);
    }

    #[test]
    #[should_panic(
        expected = "parallel_linear: an input of shape [2, 5] for a layer with d_input 4"
    )]
    fn an_input_of_the_wrong_width_is_a_clear_panic() {
        let device = Device::flex();
        let layer = LinearConfig::new(4, 3).init(&device);
        let _ = parallel_linear(&layer, Tensor::<2>::zeros([2, 5], &device));
    }

    /// The values and the gradients of `x`, the weight and the bias equal Burn's `Linear`'s,
    /// bit for bit, for products that are split along rows, along columns, and not at all.
    #[test]
    fn values_and_gradients_equal_burns_linear() {
        let device = Device::flex().autodiff();
        for (batch, d_in, d_out) in [(100, 784, 300), (784, 100, 300), (100, 300, 100), (7, 5, 3)] {
            let layer = LinearConfig::new(d_in, d_out).init(&device);
            let x =
                Tensor::<2>::random([batch, d_in], Distribution::Default, &device).require_grad();
            let run = |ours: bool| {
                let y = if ours {
                    parallel_linear(&layer, x.clone())
                } else {
                    layer.forward(x.clone())
                };
                let grads = (y.clone() * y.clone()).sum().backward();
                let g = |t: Tensor<2>| t.grad(&grads).unwrap().into_data();
                let bias = layer.bias.as_ref().unwrap().val().grad(&grads).unwrap();
                (
                    y.into_data(),
                    g(x.clone()),
                    g(layer.weight.val()),
                    bias.into_data(),
                )
            };
            assert_eq!(run(true), run(false), "{batch}x{d_in}x{d_out}");
        }
        // Without autodiff too.
        let layer = LinearConfig::new(784, 300).init(&Device::flex());
        let x = Tensor::<2>::random([100, 784], Distribution::Default, &Device::flex());
        let ours = parallel_linear(&layer, x.clone()).into_data();
        assert_eq!(ours, layer.clone().no_grad().forward(x).into_data());
    }
}
