//! Relevance functions `f(g)`: how much of the decay an entry with loss gradient `g` receives.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// The relevance function `f(g)` that scales the weight decay of each entry.
///
/// `f` is close to 1 for irrelevant entries (small `|g|`, full decay) and close to 0 for
/// relevant ones (large `|g|`, a plain update). The gradient is held constant: no gradient
/// flows through `f`.
///
/// ```
/// use sparse_reg::Relevance;
/// let f = Relevance::Exp { alpha: 1.0 };
/// assert_eq!(f.factor(0.0), 1.0);
/// assert!((f.factor(1.0) - (-1.0f64).exp()).abs() < 1e-12);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Relevance {
    /// `exp(-|g| / alpha)`: the paper's relevance function (default, with `alpha = 1`).
    Exp {
        /// Gradient scale where the decay fades; must be `> 0`.
        alpha: f64,
    },
    /// `1 / (1 + |g| / alpha)`: the hyperbolic form the authors' older CNN code meant.
    Hyperbolic {
        /// Gradient scale where the decay halves; must be `> 0`.
        alpha: f64,
    },
    /// `max(0, 1 - |g|)`: LOBSTER's sensitivity-based factor (Tartaglione et al. 2020).
    Lobster,
    /// `1`: plain (non-selective) weight decay.
    Constant,
}

impl Default for Relevance {
    fn default() -> Self {
        Relevance::Exp { alpha: 1.0 }
    }
}

impl Relevance {
    /// The factor for one scalar gradient (host side; used by tests and pruning criteria).
    pub fn factor(&self, grad: f64) -> f64 {
        let g = grad.abs();
        match *self {
            Relevance::Exp { alpha } => (-g / alpha).exp(),
            Relevance::Hyperbolic { alpha } => 1.0 / (1.0 + g / alpha),
            Relevance::Lobster => (1.0 - g).max(0.0),
            Relevance::Constant => 1.0,
        }
    }

    /// `scale * f(grad)` elementwise, or `None` when `f` is the constant 1 (the caller then
    /// multiplies by `scale` alone, saving the elementwise work).
    pub fn scaled_factor<const D: usize>(&self, grad: &Tensor<D>, scale: f64) -> Option<Tensor<D>> {
        match *self {
            // scale * exp(-|g|/alpha) = exp(-|g|/alpha + ln(scale)): one op fewer.
            Relevance::Exp { alpha } => Some(
                grad.clone()
                    .abs()
                    .mul_scalar(-1.0 / alpha)
                    .add_scalar(scale.ln())
                    .exp(),
            ),
            Relevance::Hyperbolic { alpha } => Some(
                grad.clone()
                    .abs()
                    .mul_scalar(1.0 / alpha)
                    .add_scalar(1.0)
                    .recip()
                    .mul_scalar(scale),
            ),
            Relevance::Lobster => Some(
                grad.clone()
                    .abs()
                    .neg()
                    .add_scalar(1.0)
                    .clamp_min(0.0)
                    .mul_scalar(scale),
            ),
            Relevance::Constant => None,
        }
    }

    /// The `alpha` of the function, if it has one.
    pub fn alpha(&self) -> Option<f64> {
        match *self {
            Relevance::Exp { alpha } | Relevance::Hyperbolic { alpha } => Some(alpha),
            Relevance::Lobster | Relevance::Constant => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn host_factors_match_their_formulas() {
        let g = -0.3;
        assert!((Relevance::Exp { alpha: 0.5 }.factor(g) - (-0.6f64).exp()).abs() < 1e-12);
        assert!((Relevance::Hyperbolic { alpha: 0.5 }.factor(g) - 1.0 / 1.6).abs() < 1e-12);
        assert!((Relevance::Lobster.factor(g) - 0.7).abs() < 1e-12);
        assert_eq!(Relevance::Lobster.factor(2.0), 0.0);
        assert_eq!(Relevance::Constant.factor(123.0), 1.0);
    }

    #[test]
    fn tensor_factors_match_host_factors() {
        let device = Device::flex();
        let grads = [0.0f32, 0.01, -0.2, 1.5, -7.0];
        let g = Tensor::<1>::from_data(TensorData::from(grads), &device);
        for rel in [
            Relevance::Exp { alpha: 1.0 },
            Relevance::Exp { alpha: 0.01 },
            Relevance::Hyperbolic { alpha: 0.1 },
            Relevance::Lobster,
        ] {
            let got = rel
                .scaled_factor(&g, 0.25)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            for (x, y) in grads.iter().zip(got) {
                let want = 0.25 * rel.factor(*x as f64);
                assert!(
                    (want - y as f64).abs() < 1e-6,
                    "{rel:?} at {x}: {want} vs {y}"
                );
            }
        }
        assert!(Relevance::Constant.scaled_factor(&g, 0.25).is_none());
    }
}
