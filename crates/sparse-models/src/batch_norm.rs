//! A training-mode BatchNorm on flex in a few passes over its input, forward and backward.
//!
//! Burn 0.22.1 runs a training BatchNorm as one autodiff op, but flex computes it from generic
//! tensor ops: the input is dims-swapped and copied to take each channel's mean, centred,
//! squared and copied again for the variance, then normalised, scaled and shifted in separate
//! passes; the backward pass does the same with about ten more. On ResNet-20's first stage
//! (16 channels of 32x32 images, batch 128) a BatchNorm took longer than the convolution before
//! it. Here the statistics are two reads of the input per channel (the mean, then the squared
//! deviations from it, summed in `f64` in a fixed order), the output one pass of
//! `x * scale + shift` per channel; the backward pass is one read for the two sums it needs
//! and one pass that writes the input's gradient. The running statistics are updated as
//! Burn's `BatchNorm` does. Measured in `docs/BENCHMARKS.md`.

use burn::nn::BatchNorm;
use burn::tensor::Tensor;

/// `bn.forward(x)` for `x: [batch, channels, height, width]`: the same values (to rounding),
/// gradients and running statistics. In training (an autodiff device, the module's training
/// flag on) on flex with f32 it runs the passes of the module docs; everything else runs
/// `BatchNorm::forward`.
///
/// ```
/// use burn::nn::BatchNormConfig;
/// use burn::tensor::{Device, Distribution, Tensor};
/// let device = Device::flex().autodiff();
/// let bn = BatchNormConfig::new(3).init(&device);
/// let x: Tensor<4> = Tensor::random([4, 3, 5, 5], Distribution::Default, &device);
/// let y = sparse_models::batch_norm(&bn, x);
/// // Each channel is normalised over the batch: its mean is 0.
/// let means = y.mean_dim(0).mean_dim(2).mean_dim(3).abs().max().into_scalar::<f32>();
/// assert!(means < 1e-5);
/// ```
pub fn batch_norm(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    {
        let device = x.device();
        let training = bn.training.is_enabled() && device.is_autodiff();
        let flex = x.dtype() == burn::tensor::DType::F32 && crate::is_flex(&device);
        if training && flex && x.dims()[1] == bn.gamma.dims()[0] {
            let (out, stats) = flex::batch_norm_train(x, bn.gamma.val(), bn.beta.val(), bn.epsilon);
            let channels = stats.dims()[1];
            let update = |running: Tensor<1>, batch: Tensor<2>| {
                running
                    .mul_scalar(1.0 - bn.momentum)
                    .add(batch.reshape([channels]).mul_scalar(bn.momentum))
                    .detach()
            };
            let mean = stats.clone().narrow(0, 0, 1);
            let var = stats.narrow(0, 1, 1);
            let running_mean = bn.running_mean.value_sync().to_device(&device);
            let running_var = bn.running_var.value_sync().to_device(&device);
            bn.running_mean.update(update(running_mean, mean));
            bn.running_var.update(update(running_var, var));
            return out;
        }
    }
    bn.forward(x)
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
    use burn::tensor::{Shape, Slice, Tensor, TensorData};
    use rayon::prelude::*;

    /// The output and the batch statistics `[2, channels]` (mean, then biased variance).
    pub(super) fn batch_norm_train(
        x: Tensor<4>,
        gamma: Tensor<1>,
        beta: Tensor<1>,
        epsilon: f64,
    ) -> (Tensor<4>, Tensor<2>) {
        let stats = Tensor::<2>::from_dispatch(<Dispatch as FusedBatchNorm>::batch_stats(
            x.clone().detach().into_dispatch(),
        ));
        let out = Tensor::from_dispatch(<Dispatch as FusedBatchNorm>::batch_norm_apply(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            stats.clone().into_dispatch(),
            epsilon,
        ));
        (out, stats)
    }

    /// The BatchNorm as a backend extension: flex's kernels, and autodiff's backward pass.
    #[backend_extension(Flex, Autodiff)]
    pub trait FusedBatchNorm: Backend {
        /// The mean and biased variance of each channel of `x [n, c, h, w]`: `[2, c]`.
        fn batch_stats(x: FloatTensor<Self>) -> FloatTensor<Self>;
        /// `(x - mean) / sqrt(var + epsilon) * gamma + beta`, with `stats` from `batch_stats`
        /// (autodiff treats the statistics as functions of `x`).
        fn batch_norm_apply(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            beta: FloatTensor<Self>,
            stats: FloatTensor<Self>,
            epsilon: f64,
        ) -> FloatTensor<Self>;
        /// The input's gradient, given the output's `grad`.
        fn batch_norm_input_grad(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            stats: FloatTensor<Self>,
            grad: FloatTensor<Self>,
            epsilon: f64,
        ) -> FloatTensor<Self>;
        /// The gradients of gamma and beta, `[2, c]`, given the output's `grad`.
        fn batch_norm_param_grads(
            x: FloatTensor<Self>,
            stats: FloatTensor<Self>,
            grad: FloatTensor<Self>,
            epsilon: f64,
        ) -> FloatTensor<Self>;
    }

    /// `t`'s entries, contiguous, as a vector.
    fn to_vec(t: FloatTensor<Flex>) -> Vec<f32> {
        crate::contiguous(t)
            .as_slice::<f32>()
            .expect("an f32 tensor")
            .to_vec()
    }

    /// `[n, c, h * w]` of `x`.
    fn dims(x: &Shape) -> [usize; 3] {
        [x[0], x[1], x[2] * x[3]]
    }

    /// For each channel `ch`, `f(ch, the planes of that channel)` summed in `f64`, images in
    /// order: the same sums on any number of threads.
    fn per_channel(
        [n, c, hw]: [usize; 3],
        f: impl Fn(usize, &mut dyn Iterator<Item = usize>) -> [f64; 2] + Sync,
    ) -> Vec<[f64; 2]> {
        (0..c)
            .into_par_iter()
            .map(|ch| f(ch, &mut (0..n).map(|i| (i * c + ch) * hw)))
            .collect()
    }

    /// `y = x * a[ch] + b[ch]` (and `+ dy * d[ch]` when `dy` is given), image by image.
    fn affine(
        x: &[f32],
        dy: Option<&[f32]>,
        coef: &[[f32; 3]],
        [_, c, hw]: [usize; 3],
    ) -> Vec<f32> {
        let mut out = vec![0.0f32; x.len()];
        out.par_chunks_mut(c * hw).enumerate().for_each(|(i, out)| {
            for (ch, (out, &[a, b, d])) in out.chunks_exact_mut(hw).zip(coef).enumerate() {
                let start = (i * c + ch) * hw;
                let x = &x[start..][..hw];
                match dy {
                    None => out.iter_mut().zip(x).for_each(|(o, &x)| *o = x * a + b),
                    Some(dy) => out
                        .iter_mut()
                        .zip(x)
                        .zip(&dy[start..][..hw])
                        .for_each(|((o, &x), &g)| *o = x * a + b + g * d),
                }
            }
        });
        out
    }

    /// `f(i)` summed over `0..len` in 8 lanes (which the compiler vectorises; a plain `sum` of
    /// `f32`s runs one add at a time, in order).
    fn sum8(len: usize, f: impl Fn(usize) -> f32) -> f32 {
        let mut lanes = [0.0f32; 8];
        let full = len - len % 8;
        for start in (0..full).step_by(8) {
            for (j, lane) in lanes.iter_mut().enumerate() {
                *lane += f(start + j);
            }
        }
        let tail: f32 = (full..len).map(&f).sum();
        lanes.iter().sum::<f32>() + tail
    }

    /// Each channel's mean and `1 / sqrt(var + epsilon)` from `stats` `[2, c]`.
    fn mean_inv_std(stats: FloatTensor<Flex>, epsilon: f64) -> Vec<(f64, f64)> {
        let s = to_vec(stats);
        let c = s.len() / 2;
        (0..c)
            .map(|ch| (s[ch] as f64, 1.0 / (s[c + ch] as f64 + epsilon).sqrt()))
            .collect()
    }

    /// The sums over each channel of `grad` and of `grad * (x - mean)`.
    fn grad_sums(x: &[f32], grad: &[f32], mean: &[(f64, f64)], d: [usize; 3]) -> Vec<[f64; 2]> {
        per_channel(d, |ch, planes| {
            let m = mean[ch].0 as f32;
            planes.fold([0.0, 0.0], |[s, sx], start| {
                let (x, g) = (&x[start..][..d[2]], &grad[start..][..d[2]]);
                let s2 = sum8(g.len(), |i| g[i]);
                let sx2 = sum8(g.len(), |i| g[i] * (x[i] - m));
                [s + s2 as f64, sx + sx2 as f64]
            })
        })
    }

    impl FusedBatchNorm for Flex {
        fn batch_stats(x: FloatTensor<Self>) -> FloatTensor<Self> {
            let device = x.device();
            let d = dims(&x.shape());
            let x = crate::contiguous(x);
            let x = x.as_slice::<f32>().expect("an f32 tensor");
            let count = (d[0] * d[2]) as f64;
            let sums = per_channel(d, |_, planes| {
                let planes: Vec<usize> = planes.collect();
                let plane = |start: usize| &x[start..][..d[2]];
                let sum: f64 = planes
                    .iter()
                    .map(|&s| {
                        let p = plane(s);
                        sum8(p.len(), |i| p[i]) as f64
                    })
                    .sum();
                let mean = sum / count;
                let m = mean as f32;
                let sq: f64 = planes
                    .iter()
                    .map(|&s| {
                        let p = plane(s);
                        sum8(p.len(), |i| (p[i] - m) * (p[i] - m)) as f64
                    })
                    .sum();
                [mean, sq / count]
            });
            let mut out: Vec<f32> = sums.iter().map(|s| s[0] as f32).collect();
            out.extend(sums.iter().map(|s| s[1] as f32));
            Flex::float_from_data(TensorData::new(out, [2, d[1]]), &device)
        }

        fn batch_norm_apply(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            beta: FloatTensor<Self>,
            stats: FloatTensor<Self>,
            epsilon: f64,
        ) -> FloatTensor<Self> {
            let (device, shape) = (x.device(), x.shape());
            let d = dims(&shape);
            let (gamma, beta) = (to_vec(gamma), to_vec(beta));
            let coef: Vec<[f32; 3]> = mean_inv_std(stats, epsilon)
                .iter()
                .enumerate()
                .map(|(ch, &(mean, inv))| {
                    let a = gamma[ch] as f64 * inv;
                    [a as f32, (beta[ch] as f64 - mean * a) as f32, 0.0]
                })
                .collect();
            let x = crate::contiguous(x);
            let out = affine(x.as_slice::<f32>().expect("an f32 tensor"), None, &coef, d);
            Flex::float_from_data(TensorData::new(out, shape), &device)
        }

        fn batch_norm_input_grad(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            stats: FloatTensor<Self>,
            grad: FloatTensor<Self>,
            epsilon: f64,
        ) -> FloatTensor<Self> {
            let (device, shape) = (x.device(), x.shape());
            let d = dims(&shape);
            let count = (d[0] * d[2]) as f64;
            let gamma = to_vec(gamma);
            let mean = mean_inv_std(stats, epsilon);
            let (x, grad) = (crate::contiguous(x), crate::contiguous(grad));
            let x = x.as_slice::<f32>().expect("an f32 tensor");
            let grad = grad.as_slice::<f32>().expect("an f32 tensor");
            let sums = grad_sums(x, grad, &mean, d);
            // dx = gamma * inv * (dy - sum(dy) / m - (x - mean) * inv^2 * sum(dy * (x - mean)) / m)
            let coef: Vec<[f32; 3]> = (0..d[1])
                .map(|ch| {
                    let (mu, inv) = mean[ch];
                    let [s, sx] = sums[ch];
                    let scale = gamma[ch] as f64 * inv;
                    let a = -scale * inv * inv * sx / count;
                    let b = -scale * s / count - mu * a;
                    [a as f32, b as f32, scale as f32]
                })
                .collect();
            let out = affine(x, Some(grad), &coef, d);
            Flex::float_from_data(TensorData::new(out, shape), &device)
        }

        fn batch_norm_param_grads(
            x: FloatTensor<Self>,
            stats: FloatTensor<Self>,
            grad: FloatTensor<Self>,
            epsilon: f64,
        ) -> FloatTensor<Self> {
            let device = x.device();
            let d = dims(&x.shape());
            let mean = mean_inv_std(stats, epsilon);
            let (x, grad) = (crate::contiguous(x), crate::contiguous(grad));
            let x = x.as_slice::<f32>().expect("an f32 tensor");
            let grad = grad.as_slice::<f32>().expect("an f32 tensor");
            let sums = grad_sums(x, grad, &mean, d);
            let mut out: Vec<f32> = (0..d[1])
                .map(|ch| (sums[ch][1] * mean[ch].1) as f32)
                .collect();
            out.extend(sums.iter().map(|s| s[0] as f32));
            Flex::float_from_data(TensorData::new(out, [2, d[1]]), &device)
        }
    }

    /// Autodiff's record of the BatchNorm.
    #[derive(Debug)]
    struct FusedBatchNormBackward;

    /// What the backward pass needs: the input, gamma, the statistics and epsilon.
    #[derive(Clone, Debug)]
    struct State<B: Backend> {
        x: NodeId,
        gamma: NodeId,
        stats: FloatTensor<B>,
        epsilon: f64,
    }

    impl<B: Backend + FusedBatchNorm> Backward<B, 3> for FusedBatchNormBackward {
        type State = State<B>;

        fn backward(
            self,
            ops: Ops<Self::State, 3>,
            grads: &mut Gradients,
            check: &mut Checkpointer,
        ) {
            let [x_parent, gamma_parent, beta_parent] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            let State {
                x,
                gamma,
                stats,
                epsilon,
            } = ops.state;
            let x: FloatTensor<B> = check.retrieve_node_output(x);
            let gamma: FloatTensor<B> = check.retrieve_node_output(gamma);
            if gamma_parent.is_some() || beta_parent.is_some() {
                let both =
                    B::batch_norm_param_grads(x.clone(), stats.clone(), grad.clone(), epsilon);
                let c = both.shape()[1];
                let row = |i: usize| {
                    let row =
                        B::float_slice(both.clone(), &[Slice::from(i..i + 1), Slice::from(0..c)]);
                    B::float_reshape(row, Shape::new([c]))
                };
                if let Some(parent) = gamma_parent {
                    grads.register::<B>(parent.id, row(0));
                }
                if let Some(parent) = beta_parent {
                    grads.register::<B>(parent.id, row(1));
                }
            }
            if let Some(parent) = x_parent {
                let dx = B::batch_norm_input_grad(x, gamma, stats, grad, epsilon);
                grads.register::<B>(parent.id, dx);
            }
        }
    }

    impl<B: Backend + FusedBatchNorm, C: CheckpointStrategy> FusedBatchNorm for Autodiff<B, C> {
        fn batch_stats(x: FloatTensor<Self>) -> FloatTensor<Self> {
            FloatTensor::<Self>::new(B::batch_stats(x.into_primitive()))
        }

        fn batch_norm_apply(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            beta: FloatTensor<Self>,
            stats: FloatTensor<Self>,
            epsilon: f64,
        ) -> FloatTensor<Self> {
            let stats = stats.into_primitive();
            match FusedBatchNormBackward
                .prepare::<C>([x.node(), gamma.node(), beta.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let state = State {
                        x: prep.checkpoint(&x),
                        gamma: prep.checkpoint(&gamma),
                        stats: stats.clone(),
                        epsilon,
                    };
                    let out = B::batch_norm_apply(
                        x.into_primitive(),
                        gamma.into_primitive(),
                        beta.into_primitive(),
                        stats,
                        epsilon,
                    );
                    prep.finish(state, out)
                }
                OpsKind::UnTracked(prep) => prep.finish(B::batch_norm_apply(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    stats,
                    epsilon,
                )),
            }
        }

        fn batch_norm_input_grad(
            _x: FloatTensor<Self>,
            _gamma: FloatTensor<Self>,
            _stats: FloatTensor<Self>,
            _grad: FloatTensor<Self>,
            _epsilon: f64,
        ) -> FloatTensor<Self> {
            panic!("the input's gradient is taken inside the backward pass, on the inner backend")
        }

        fn batch_norm_param_grads(
            _x: FloatTensor<Self>,
            _stats: FloatTensor<Self>,
            _grad: FloatTensor<Self>,
            _epsilon: f64,
        ) -> FloatTensor<Self> {
            panic!(
                "the parameters' gradients are taken inside the backward pass, on the inner backend"
            )
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::nn::BatchNormConfig;
    use burn::tensor::{Device, Distribution};

    /// The largest `|a - b|` over the largest `|b|`.
    fn rel<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
        let scale = b.clone().abs().max().into_scalar::<f32>().max(1e-6);
        (a - b).abs().max().into_scalar::<f32>() / scale
    }

    #[test]
    fn values_gradients_and_running_statistics_match_batch_norm() {
        let device = Device::flex().autodiff();
        // Another gamma and beta than 1 and 0, the same in both layers; each layer has its
        // own running statistics (a clone would share them).
        let layer = || {
            let bn = BatchNormConfig::new(3).init(&device);
            let gamma = Tensor::<1>::from_floats([0.5, 2.0, -1.5], &device).require_grad();
            let beta = Tensor::<1>::from_floats([0.1, -0.3, 0.7], &device).require_grad();
            BatchNorm {
                gamma: bn.gamma.map(|_| gamma),
                beta: bn.beta.map(|_| beta),
                ..bn
            }
        };
        let (ours, theirs) = (layer(), layer());
        for step in 0..2 {
            let x0 = Tensor::<4>::random([5, 3, 4, 6], Distribution::Normal(2.0, 3.0), &device);
            let (xa, xb) = (x0.clone().require_grad(), x0.require_grad());
            let (a, b) = (batch_norm(&ours, xa.clone()), theirs.forward(xb.clone()));
            assert!(rel(a.clone(), b.clone()) < 1e-5, "values, step {step}");
            let weights = Tensor::<4>::random(a.dims(), Distribution::Default, &device);
            let ga = (a * weights.clone()).sum().backward();
            let gb = (b * weights).sum().backward();
            assert!(
                rel(xa.grad(&ga).unwrap(), xb.grad(&gb).unwrap()) < 1e-4,
                "dx, step {step}"
            );
            let (dga, dgb) = (
                ours.gamma.grad(&ga).unwrap(),
                theirs.gamma.grad(&gb).unwrap(),
            );
            assert!(rel(dga, dgb) < 1e-5, "gamma's gradient, step {step}");
            let (dba, dbb) = (ours.beta.grad(&ga).unwrap(), theirs.beta.grad(&gb).unwrap());
            assert!(rel(dba, dbb) < 1e-5, "beta's gradient, step {step}");
            let (ma, mb) = (
                ours.running_mean.value_sync(),
                theirs.running_mean.value_sync(),
            );
            assert!(rel(ma, mb) < 1e-5, "running mean, step {step}");
            let (va, vb) = (
                ours.running_var.value_sync(),
                theirs.running_var.value_sync(),
            );
            assert!(rel(va, vb) < 1e-5, "running variance, step {step}");
        }
    }

    #[test]
    fn inference_runs_burns_layer() {
        // Without autodiff (or with the training flag off) the running statistics normalise.
        let device = Device::flex();
        let bn = BatchNormConfig::new(2).init(&device);
        let x = Tensor::<4>::random([2, 2, 3, 3], Distribution::Default, &device);
        assert!(rel(batch_norm(&bn, x.clone()), bn.forward(x)) == 0.0);
    }
}
