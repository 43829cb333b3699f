//! Pruning criteria: a score per entry; the lowest-scored alive entries are pruned first.

use serde::{Deserialize, Serialize};
use sparse_reg::Relevance;

/// What a criterion sees of one parameter tensor.
pub struct ScoreInput<'a> {
    /// The weights (row-major, flattened).
    pub weight: &'a [f32],
    /// The loss gradient, when the caller supplied gradients.
    pub grad: Option<&'a [f32]>,
    /// A per-call seed for stochastic criteria (differs per tensor and prune event).
    pub seed: u64,
}

/// A pruning criterion: one score per entry, lowest pruned first (JaxPruner's "scorer").
///
/// A criterion is a few lines; for example, magnitude:
///
/// ```
/// use sparse_prune::{Criterion, ScoreInput};
/// struct Magnitude;
/// impl Criterion for Magnitude {
///     fn name(&self) -> &'static str { "magnitude" }
///     fn score(&self, input: &ScoreInput, out: &mut Vec<f32>) {
///         out.extend(input.weight.iter().map(|w| w.abs()));
///     }
/// }
/// let mut out = vec![];
/// Magnitude.score(&ScoreInput { weight: &[-2.0, 0.5], grad: None, seed: 0 }, &mut out);
/// assert_eq!(out, vec![2.0, 0.5]);
/// ```
pub trait Criterion: Send + Sync {
    /// A short name for reports and errors.
    fn name(&self) -> &'static str;
    /// Whether [`score`](Self::score) needs `input.grad`.
    fn needs_grad(&self) -> bool {
        false
    }
    /// Append one score per entry of `input.weight` to `out`.
    fn score(&self, input: &ScoreInput, out: &mut Vec<f32>);
}

/// `|w|`: global magnitude pruning (the paper).
#[derive(Clone, Copy, Debug, Default)]
pub struct Magnitude;

impl Criterion for Magnitude {
    fn name(&self) -> &'static str {
        "magnitude"
    }
    fn score(&self, input: &ScoreInput, out: &mut Vec<f32>) {
        out.extend(input.weight.iter().map(|w| w.abs()));
    }
}

/// `|w * g|`: first-order saliency (the loss change when the entry is removed).
#[derive(Clone, Copy, Debug, Default)]
pub struct Saliency;

impl Criterion for Saliency {
    fn name(&self) -> &'static str {
        "saliency"
    }
    fn needs_grad(&self) -> bool {
        true
    }
    fn score(&self, input: &ScoreInput, out: &mut Vec<f32>) {
        let grad = input.grad.expect("checked by needs_grad");
        out.extend(input.weight.iter().zip(grad).map(|(w, g)| (w * g).abs()));
    }
}

/// `|w| * (1 - f(g))`: magnitude discounted by the sparse-reg relevance factor, so entries
/// that the selective decay treats as irrelevant (`f(g)` near 1) go first.
#[derive(Clone, Copy, Debug)]
pub struct RelevanceScore {
    /// The relevance function of the decay.
    pub relevance: Relevance,
}

impl Criterion for RelevanceScore {
    fn name(&self) -> &'static str {
        "relevance"
    }
    fn needs_grad(&self) -> bool {
        true
    }
    fn score(&self, input: &ScoreInput, out: &mut Vec<f32>) {
        let grad = input.grad.expect("checked by needs_grad");
        out.extend(
            input
                .weight
                .iter()
                .zip(grad)
                .map(|(w, g)| w.abs() * (1.0 - self.relevance.factor(*g as f64) as f32)),
        );
    }
}

/// Uniform random scores: the sanity baseline every criterion must beat.
#[derive(Clone, Copy, Debug, Default)]
pub struct Random;

impl Criterion for Random {
    fn name(&self) -> &'static str {
        "random"
    }
    fn score(&self, input: &ScoreInput, out: &mut Vec<f32>) {
        let mut state = input.seed;
        out.extend(input.weight.iter().map(|_| {
            // splitmix64
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
        }));
    }
}

/// The built-in criteria, as a configuration value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum CriterionConfig {
    /// [`Magnitude`].
    #[default]
    Magnitude,
    /// [`Saliency`].
    Saliency,
    /// [`RelevanceScore`] with this relevance function.
    Relevance(Relevance),
    /// [`Random`].
    Random,
}

impl CriterionConfig {
    /// The criterion object.
    pub fn build(&self) -> Box<dyn Criterion> {
        match *self {
            CriterionConfig::Magnitude => Box::new(Magnitude),
            CriterionConfig::Saliency => Box::new(Saliency),
            CriterionConfig::Relevance(relevance) => Box::new(RelevanceScore { relevance }),
            CriterionConfig::Random => Box::new(Random),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(c: &dyn Criterion, w: &[f32], g: Option<&[f32]>) -> Vec<f32> {
        let mut out = vec![];
        c.score(
            &ScoreInput {
                weight: w,
                grad: g,
                seed: 7,
            },
            &mut out,
        );
        out
    }

    #[test]
    fn built_in_scores() {
        let w = [1.0, -2.0, 0.5];
        let g = [0.0, 0.5, -4.0];
        assert_eq!(scores(&Magnitude, &w, None), vec![1.0, 2.0, 0.5]);
        assert_eq!(scores(&Saliency, &w, Some(&g)), vec![0.0, 1.0, 2.0]);
        let r = scores(
            &RelevanceScore {
                relevance: Relevance::Exp { alpha: 1.0 },
            },
            &w,
            Some(&g),
        );
        assert_eq!(r[0], 0.0, "zero gradient: fully irrelevant");
        assert!((r[1] - 2.0 * (1.0 - (-0.5f32).exp())).abs() < 1e-6);
        let a = scores(&Random, &w, None);
        assert_eq!(a, scores(&Random, &w, None), "seeded");
        assert!(a.iter().all(|x| (0.0..1.0).contains(x)));
        assert_ne!(a[0], a[1]);
    }
}
