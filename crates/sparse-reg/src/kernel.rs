//! The decay term fused into one pass over host memory, for CPU backends (flex, ndarray).
//!
//! On CPU backends every tensor op is a separate pass over memory, and `f32::exp` is a libm
//! call per entry: the 6-op tensor expression of the decay cost as much as half a LeNet-300-100
//! step (measured; see docs). Here the gradient buffer (uniquely owned after the backward
//! pass, so taken without a copy) is updated in place in a single vectorisable loop with a
//! polynomial `exp`, split over the available cores for large tensors. GPU backends keep the
//! tensor expression, which their fusion compiles into one kernel without a host round trip.

use burn::tensor::{DType, Device, Tensor};

use crate::{Penalty, Relevance};

/// Whether tensors on `device` live in host memory, with autodiff or not (flex, ndarray): there
/// a pass over a buffer on the host costs no transfer.
///
/// ```
/// use burn::tensor::Device;
///
/// assert!(sparse_reg::is_host(&Device::flex()));
/// assert!(sparse_reg::is_host(&Device::flex().autodiff()));
/// ```
pub fn is_host(device: &Device) -> bool {
    let name = format!("{device:?}");
    let inner = name
        .strip_prefix("Device<Autodiff { device: ")
        .or_else(|| name.strip_prefix("Device<"))
        .unwrap_or("");
    inner.starts_with("Flex") || inner.starts_with("NdArray")
}

/// `a * b + c`: one fused multiply-add (one rounding) when `FMA`, else a multiply and an add.
/// The passes set `FMA` exactly when pulp dispatched them to an instruction set that has the
/// instruction (see [`has_fma`]); without it `f32::mul_add` would be a slow libm call.
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// Whether the pulp level `S` has fused multiply-add: its SIMD levels on x86 (x86-64-v3, v4)
/// and aarch64 (NEON) all do; the scalar fallback (and wasm's simd128) may not.
#[inline(always)]
pub(crate) fn has_fma<S: pulp::Simd>() -> bool {
    !S::IS_SCALAR
        && cfg!(any(
            target_arch = "x86",
            target_arch = "x86_64",
            target_arch = "aarch64"
        ))
}

/// `e^x` for `x <= 0`, relative error below 2e-7 (range reduction to `[-ln2/2, ln2/2]`, degree-6
/// polynomial); branch-free so the loop vectorises. Underflows to 0 below -87. With `FMA` the
/// reduction and each polynomial step are one instruction (docs/BENCHMARKS.md).
#[inline(always)]
pub(crate) fn exp_neg<const FMA: bool>(x: f32) -> f32 {
    let x = x.max(-87.0);
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    // t = MAGIC + round(x / ln2): the integer sits in t's low mantissa bits, which gives 2^n
    // with integer ops only (no float->int cast, so the loop vectorises).
    let t = madd::<FMA>(x, LOG2E, MAGIC);
    let n = t - MAGIC;
    let r = madd::<FMA>(n, -LN2_LO, madd::<FMA>(n, -LN2_HI, x));
    let p = madd::<FMA>(r, 0.001_388_889, 0.008_333_334);
    let p = madd::<FMA>(r, p, 0.041_666_668);
    let p = madd::<FMA>(r, p, 0.166_666_67);
    let p = madd::<FMA>(r, p, 0.5);
    let p = madd::<FMA>(r, p, 1.0);
    let p = madd::<FMA>(r, p, 1.0);
    let scale = f32::from_bits(t.to_bits().wrapping_sub(MAGIC.to_bits()).wrapping_add(127) << 23);
    p * scale
}

/// The relevance factor `f(g)`; `inv_alpha` is `1 / alpha` (unused by the functions without one).
#[inline(always)]
pub(crate) fn factor<const FMA: bool>(rel: Relevance, g: f32, inv_alpha: f32) -> f32 {
    match rel {
        Relevance::Exp { .. } => exp_neg::<FMA>(-g.abs() * inv_alpha),
        Relevance::Hyperbolic { .. } => 1.0 / (1.0 + g.abs() * inv_alpha),
        Relevance::Lobster => (1.0 - g.abs()).max(0.0),
        Relevance::Constant => 1.0,
    }
}

fn pass(grad: &mut [f32], weight: &[f32], rel: Relevance, penalty: Penalty, scale: f32) {
    with_decayed(rel, penalty, scale, DecayLoop { grad, weight })
}

/// The gradient a pass feeds its update with, `(g, w) -> g'`: the plain one, or the decayed
/// `g + scale * f(g) * p(w)`. A type rather than a closure so that each pass picks
/// [`Decayed::at`]'s `FMA` from the instruction set pulp dispatched it to.
pub(crate) trait Decayed: Copy + Send + Sync {
    /// The gradient for the entry `(g, w)`.
    fn at<const FMA: bool>(self, g: f32, w: f32) -> f32;
}

/// The gradient unchanged (a fused optimizer without the decay).
#[derive(Clone, Copy)]
struct Plain;

impl Decayed for Plain {
    #[inline(always)]
    fn at<const FMA: bool>(self, g: f32, _w: f32) -> f32 {
        g
    }
}

/// `g + scale * f(g) * p(w)`; `EXP` and `L1` fix the exponential factor and the L1 penalty
/// at compile time (the paper's case, `Exp` with `L2`, gets a loop with no branch in it).
#[derive(Clone, Copy)]
struct Term<const EXP: bool, const L1: bool> {
    rel: Relevance,
    scale: f32,
    inv_alpha: f32,
}

impl<const EXP: bool, const L1: bool> Decayed for Term<EXP, L1> {
    #[inline(always)]
    fn at<const FMA: bool>(self, g: f32, w: f32) -> f32 {
        // With `EXP` the relevance is a constant, so `factor`'s match folds away.
        let rel = if EXP {
            Relevance::Exp { alpha: 1.0 }
        } else {
            self.rel
        };
        let f = factor::<FMA>(rel, g, self.inv_alpha);
        madd::<FMA>(self.scale * f, if L1 { sign(w) } else { w }, g)
    }
}

/// A loop over one parameter that is handed the gradient it sees (the decay's own pass, and
/// the fused optimizers').
pub(crate) trait DecayedLoop {
    /// Run the loop with `decayed`.
    fn run(self, decayed: impl Decayed);
}

/// Run `body` with the decayed gradient of `(rel, penalty, scale)`: one monomorphic type per
/// combination, so the loop that calls it stays branch-free and vectorises.
pub(crate) fn with_decayed(rel: Relevance, penalty: Penalty, scale: f32, body: impl DecayedLoop) {
    let inv_alpha = rel.alpha().map_or(1.0, |a| (1.0 / a) as f32);
    let term = (rel, scale, inv_alpha);
    match (matches!(rel, Relevance::Exp { .. }), penalty) {
        (true, Penalty::L2) => body.run(Term::<true, false>::from(term)),
        (true, Penalty::L1) => body.run(Term::<true, true>::from(term)),
        (false, Penalty::L2) => body.run(Term::<false, false>::from(term)),
        (false, Penalty::L1) => body.run(Term::<false, true>::from(term)),
    }
}

impl<const EXP: bool, const L1: bool> From<(Relevance, f32, f32)> for Term<EXP, L1> {
    fn from((rel, scale, inv_alpha): (Relevance, f32, f32)) -> Self {
        Self {
            rel,
            scale,
            inv_alpha,
        }
    }
}

/// `decayed` as the function a pass compiled for the pulp level `S` calls: with fused
/// multiply-adds where `S` has them ([`has_fma`]; a constant once `S` is known).
#[inline(always)]
pub(crate) fn for_level<S: pulp::Simd>(decayed: impl Decayed) -> impl Fn(f32, f32) -> f32 {
    let fma = has_fma::<S>();
    move |g, w| {
        if fma {
            decayed.at::<true>(g, w)
        } else {
            decayed.at::<false>(g, w)
        }
    }
}

/// The coupled decay term that [`SelectiveDecay`](crate::SelectiveDecay) folds into the pass of
/// a fused optimizer ([`FusedAdam`](crate::FusedAdam), [`FusedSgd`](crate::FusedSgd)): the
/// gradient becomes `g + scale * f(g) * p(w)` inside the optimizer's loop (the arithmetic of
/// the decay's own pass, so the result is unchanged).
#[derive(Clone, Copy, Debug)]
pub(crate) struct DecayTerm {
    pub(crate) rel: Relevance,
    pub(crate) penalty: Penalty,
    pub(crate) scale: f32,
}

/// Run `body` with the plain gradient, or with the decayed one when `decay` is given.
pub(crate) fn with_optional_decay(decay: Option<DecayTerm>, body: impl DecayedLoop) {
    match decay {
        None => body.run(Plain),
        Some(d) => with_decayed(d.rel, d.penalty, d.scale, body),
    }
}

/// The decay's own pass: the gradient replaced in place by the decayed one. On the calling
/// thread: the inner optimizer's ops read this gradient there next, and a split over the pool
/// measured slower (docs/BENCHMARKS.md).
struct DecayLoop<'a> {
    grad: &'a mut [f32],
    weight: &'a [f32],
}

impl DecayedLoop for DecayLoop<'_> {
    fn run(self, decayed: impl Decayed) {
        // Compiled once per instruction set and picked at run time (AVX-512 or AVX2, with FMA,
        // where the CPU has them), so the loop vectorises wide.
        pulp::Arch::new().dispatch(Pass {
            grad: self.grad,
            weight: self.weight,
            decayed,
        })
    }
}

/// The decay's pass, as a `pulp` operation (its body is compiled for each instruction set).
struct Pass<'a, F> {
    grad: &'a mut [f32],
    weight: &'a [f32],
    decayed: F,
}

impl<F: Decayed> pulp::WithSimd for Pass<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let decayed = for_level::<S>(self.decayed);
        for (g, w) in self.grad.iter_mut().zip(self.weight) {
            *g = decayed(*g, *w);
        }
    }
}

/// `sign(w)` with `sign(0) = 0`: the L1 penalty's gradient.
#[inline(always)]
pub(crate) fn sign(w: f32) -> f32 {
    if w > 0.0 {
        1.0
    } else if w < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Whether the fused host pass applies: f32 tensors in host memory.
pub(crate) fn applies<const D: usize>(grad: &Tensor<D>, weight: &Tensor<D>) -> bool {
    grad.dtype() == DType::F32 && weight.dtype() == DType::F32 && is_host(&grad.device())
}

/// `grad + scale * f(grad) * p(weight)` computed on the host in one pass (see [`applies`]).
/// Returns `(weight, new grad)`: the weight is taken by value so that a uniquely owned buffer
/// is read in place (a shared one is copied once).
pub(crate) fn fused<const D: usize>(
    grad: Tensor<D>,
    weight: Tensor<D>,
    rel: Relevance,
    penalty: Penalty,
    scale: f64,
) -> (Tensor<D>, Tensor<D>) {
    let device = grad.device();
    let mut g = grad.into_data();
    let w = weight.into_data();
    let (gs, ws) = match (g.as_mut_slice::<f32>(), w.as_slice::<f32>()) {
        (Ok(gs), Ok(ws)) => (gs, ws),
        _ => unreachable!("callers check `applies` (f32) first"),
    };
    pass(gs, ws, rel, penalty, scale as f32);
    (Tensor::from_data(w, &device), Tensor::from_data(g, &device))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn polynomial_exp_is_accurate_over_the_range() {
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let x = -(i as f32) * 87.0 / 200_000.0;
            let want = (x as f64).exp();
            let got = exp_neg::<false>(x) as f64;
            let fused = exp_neg::<true>(x) as f64;
            worst = worst.max(((fused - want) / want).abs());
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        for fma in [false, true] {
            let e = |x| {
                if fma {
                    exp_neg::<true>(x)
                } else {
                    exp_neg::<false>(x)
                }
            };
            assert_eq!(e(0.0), 1.0);
            assert_eq!(e(-1000.0), e(-87.0));
        }
    }

    /// `n` spread-out gradients and weights of both signs.
    fn gradients_and_weights(n: usize) -> (Vec<f32>, Vec<f32>) {
        let spread = |i: usize, k: usize, d: f32| ((i * k % 1000) as f32 - 500.0) / d;
        let g = (0..n).map(|i| spread(i, 7919, 300.0)).collect();
        let w = (0..n).map(|i| spread(i, 104_729, 700.0)).collect();
        (g, w)
    }

    #[test]
    fn the_scalar_and_the_dispatched_passes_agree() {
        use pulp::WithSimd;
        // The scalar body (separate multiplies and adds) is what a CPU without FMA runs; the
        // dispatched one (AVX-512 or AVX2 with FMA here) rounds differently, by an ulp or so.
        let n = 4099;
        let (g, w) = gradients_and_weights(n);
        let rel = Relevance::Exp { alpha: 0.3 };
        let (mut scalar, mut simd) = (g.clone(), g.clone());
        let term = Term::<true, false> {
            rel,
            scale: 0.02,
            inv_alpha: 1.0 / 0.3,
        };
        Pass {
            grad: &mut scalar,
            weight: &w,
            decayed: term,
        }
        .with_simd(pulp::Scalar);
        pass(&mut simd, &w, rel, Penalty::L2, 0.02);
        for i in 0..n {
            let want = g[i] as f64 + 0.02 * rel.factor(g[i] as f64) * w[i] as f64;
            for (path, got) in [("scalar", scalar[i]), ("dispatched", simd[i])] {
                assert!(
                    (got as f64 - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "{path} at {i}"
                );
            }
        }
    }

    #[test]
    fn fused_pass_matches_the_tensor_expression() {
        let device = Device::flex();
        assert!(is_host(&device));
        assert!(applies(
            &Tensor::<1>::zeros([1], &device),
            &Tensor::<1>::zeros([1], &device)
        ));
        let n = 300_000;
        let (g, w) = gradients_and_weights(n);
        let gt = Tensor::<1>::from_data(TensorData::new(g.clone(), [n]), &device);
        let wt = Tensor::<1>::from_data(TensorData::new(w.clone(), [n]), &device);
        for rel in [
            Relevance::Exp { alpha: 0.3 },
            Relevance::Hyperbolic { alpha: 0.1 },
            Relevance::Lobster,
            Relevance::Constant,
        ] {
            for pen in [Penalty::L2, Penalty::L1] {
                let (back, out) = fused(gt.clone(), wt.clone(), rel, pen, 0.02);
                assert_eq!(back.into_data().try_into_vec::<f32>().unwrap(), w);
                let out = out.into_data().try_into_vec::<f32>().unwrap();
                for i in (0..n).step_by(997) {
                    let p = match pen {
                        Penalty::L2 => w[i] as f64,
                        Penalty::L1 => (w[i] as f64).signum() * (w[i] != 0.0) as u8 as f64,
                    };
                    let want = g[i] as f64 + 0.02 * rel.factor(g[i] as f64) * p;
                    assert!(
                        (out[i] as f64 - want).abs() < 1e-6,
                        "{rel:?} {pen:?} at {i}"
                    );
                }
            }
        }
    }
}
