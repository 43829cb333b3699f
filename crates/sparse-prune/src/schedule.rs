//! When to prune and how much: the paper's gated schedule, one-shot, gradual (Zhu & Gupta),
//! and a fixed threshold (LOBSTER-style).

use serde::{Deserialize, Serialize};
use sparse_reg::ConfigError;

/// The quality floor a gated prune must pass, on the validation metric.
///
/// ```
/// use sparse_prune::Floor;
///
/// assert!(!Floor::Above(0.9).passes(0.9)); // the paper's gate: strictly q > Q
/// assert!(Floor::AtLeast(0.9).passes(0.9)); // q >= Q
/// assert!(!Floor::Below(2.5).passes(2.5)); // a loss: strictly below
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Floor {
    /// Prune only while the metric (an accuracy in `[0, 1]`, or any score scaled to it, such
    /// as BLEU / 100) is strictly above this value: the paper's gate, `q > Q`.
    Above(f64),
    /// Prune only while the metric (an accuracy in `[0, 1]`) is at least this value (`q >= Q`).
    AtLeast(f64),
    /// For a metric where lower is better (a loss, perplexity or bits per character): prune
    /// only while it is strictly below this value. The quality floor is then a ceiling on the
    /// metric.
    Below(f64),
}

impl Floor {
    /// Whether `metric` passes the floor.
    pub fn passes(&self, metric: f64) -> bool {
        match *self {
            Floor::Above(q) => metric > q,
            Floor::AtLeast(q) => metric >= q,
            Floor::Below(q) => metric < q,
        }
    }

    fn validate(&self, field: &str) -> Result<(), ConfigError> {
        match *self {
            Floor::Above(q) | Floor::AtLeast(q) if !(0.0..=1.0).contains(&q) => {
                Err(ConfigError::new(
                    field,
                    format!("expected an accuracy floor in [0, 1], got {q}"),
                ))
            }
            Floor::Below(q) if !(q.is_finite() && q > 0.0) => Err(ConfigError::new(
                field,
                format!("expected a finite loss ceiling > 0, got {q}"),
            )),
            _ => Ok(()),
        }
    }
}

/// When the pruner prunes, and how much.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum PruneSchedule {
    /// The paper: every `every` optimizer steps, if the validation metric passes `floor`,
    /// remove exactly `round(fraction * alive)` of the alive entries.
    Gated {
        /// `E`: steps between prune checks (the paper: 250).
        every: u64,
        /// `p`: the fraction of the entries still alive (not of all entries) removed per event
        /// (the paper: 0.04): `round(fraction * alive)` entries.
        fraction: f64,
        /// `Q`: the quality floor.
        floor: Floor,
    },
    /// Prune once, at step `at`, to `sparsity`.
    OneShot {
        /// The optimizer step.
        at: u64,
        /// Target fraction of pruned entries, in `[0, 1)`.
        sparsity: f64,
    },
    /// Gradual magnitude pruning (Zhu & Gupta 2017): sparsity follows
    /// `s_f + (s_i - s_f) * (1 - (t - start) / (end - start))^3`, updated every `every` steps.
    Gradual {
        /// First prune step (`t0`).
        start: u64,
        /// Step where the final sparsity is reached (`t0 + n * dt`).
        end: u64,
        /// Steps between mask updates (`dt`).
        every: u64,
        /// Sparsity at `start` (`s_i`).
        initial_sparsity: f64,
        /// Sparsity at `end` (`s_f`).
        final_sparsity: f64,
    },
    /// Every `every` steps, prune every alive entry whose score is below `threshold`
    /// (LOBSTER's pruning step, with a fixed threshold), if the optional floor passes.
    Threshold {
        /// Steps between checks.
        every: u64,
        /// Entries scoring below it go.
        threshold: f64,
        /// Optional quality floor.
        floor: Option<Floor>,
    },
}

impl PruneSchedule {
    /// Check every field; errors name the field and the accepted range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let f = "PrunerConfig.schedule";
        let every = |e: u64| {
            if e == 0 {
                Err(ConfigError::new(
                    format!("{f}.every"),
                    "expected a number of optimizer steps > 0, got 0",
                ))
            } else {
                Ok(())
            }
        };
        let sparsity = |name: &str, s: f64| {
            if (0.0..1.0).contains(&s) {
                Ok(())
            } else {
                Err(ConfigError::new(
                    format!("{f}.{name}"),
                    format!("expected a sparsity in [0, 1), got {s}"),
                ))
            }
        };
        match *self {
            PruneSchedule::Gated {
                every: e,
                fraction,
                floor,
            } => {
                every(e)?;
                if !(fraction > 0.0 && fraction < 1.0) {
                    return Err(ConfigError::new(
                        format!("{f}.fraction"),
                        format!("expected a fraction of alive entries in (0, 1), got {fraction}"),
                    ));
                }
                floor.validate(&format!("{f}.floor"))
            }
            PruneSchedule::OneShot { sparsity: s, .. } => sparsity("sparsity", s),
            PruneSchedule::Gradual {
                start,
                end,
                every: e,
                initial_sparsity,
                final_sparsity,
            } => {
                every(e)?;
                sparsity("initial_sparsity", initial_sparsity)?;
                sparsity("final_sparsity", final_sparsity)?;
                if end <= start {
                    return Err(ConfigError::new(
                        format!("{f}.end"),
                        format!("expected a step after start ({start}), got {end}"),
                    ));
                }
                if final_sparsity < initial_sparsity {
                    return Err(ConfigError::new(
                        format!("{f}.final_sparsity"),
                        format!(
                            "expected at least initial_sparsity ({initial_sparsity}), got \
                             {final_sparsity}"
                        ),
                    ));
                }
                Ok(())
            }
            PruneSchedule::Threshold {
                every: e,
                threshold,
                floor,
            } => {
                every(e)?;
                if !(threshold.is_finite() && threshold > 0.0) {
                    return Err(ConfigError::new(
                        format!("{f}.threshold"),
                        format!("expected a finite score threshold > 0, got {threshold}"),
                    ));
                }
                match floor {
                    Some(floor) => floor.validate(&format!("{f}.floor")),
                    None => Ok(()),
                }
            }
        }
    }

    /// Whether the schedule acts at `step` (the number of optimizer steps taken).
    pub fn is_due(&self, step: u64) -> bool {
        match *self {
            PruneSchedule::Gated { every, .. } | PruneSchedule::Threshold { every, .. } => {
                step > 0 && step.is_multiple_of(every)
            }
            PruneSchedule::OneShot { at, .. } => step == at,
            PruneSchedule::Gradual {
                start, end, every, ..
            } => step >= start && step <= end && (step - start).is_multiple_of(every),
        }
    }

    /// Whether the schedule needs the validation metric when it is due.
    pub fn needs_metric(&self) -> bool {
        match self {
            PruneSchedule::Gated { .. } => true,
            PruneSchedule::Threshold { floor, .. } => floor.is_some(),
            _ => false,
        }
    }

    /// The floor, if the schedule is gated by one.
    pub fn floor(&self) -> Option<Floor> {
        match *self {
            PruneSchedule::Gated { floor, .. } => Some(floor),
            PruneSchedule::Threshold { floor, .. } => floor,
            _ => None,
        }
    }

    /// Zhu & Gupta's target sparsity at `step` (for [`PruneSchedule::Gradual`]).
    pub fn gradual_target(start: u64, end: u64, s_i: f64, s_f: f64, step: u64) -> f64 {
        let t = (step.clamp(start, end) - start) as f64 / (end - start) as f64;
        s_f + (s_i - s_f) * (1.0 - t).powi(3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: PruneSchedule) -> String {
        s.validate().unwrap_err().to_string()
    }

    fn gated(every: u64, fraction: f64, floor: Floor) -> PruneSchedule {
        PruneSchedule::Gated {
            every,
            fraction,
            floor,
        }
    }

    #[test]
    fn validation_messages() {
        assert_eq!(
            err(gated(0, 0.04, Floor::Above(0.9))),
            "invalid PrunerConfig.schedule.every: expected a number of optimizer steps > 0, got 0"
        );
        for p in [0.0, 1.0, -0.1, f64::NAN] {
            assert_eq!(
                err(gated(250, p, Floor::Above(0.9))),
                format!(
                    "invalid PrunerConfig.schedule.fraction: expected a fraction of alive entries \
                     in (0, 1), got {p}"
                )
            );
        }
        for q in [1.5, -0.01] {
            for floor in [Floor::Above(q), Floor::AtLeast(q)] {
                assert_eq!(
                    err(gated(250, 0.04, floor)),
                    format!(
                        "invalid PrunerConfig.schedule.floor: expected an accuracy floor in \
                         [0, 1], got {q}"
                    )
                );
            }
        }
        assert_eq!(
            err(gated(250, 0.04, Floor::Below(0.0))),
            "invalid PrunerConfig.schedule.floor: expected a finite loss ceiling > 0, got 0"
        );
        assert_eq!(
            err(PruneSchedule::OneShot {
                at: 0,
                sparsity: 1.0
            }),
            "invalid PrunerConfig.schedule.sparsity: expected a sparsity in [0, 1), got 1"
        );
        assert_eq!(
            err(PruneSchedule::Gradual {
                start: 10,
                end: 10,
                every: 1,
                initial_sparsity: 0.0,
                final_sparsity: 0.9
            }),
            "invalid PrunerConfig.schedule.end: expected a step after start (10), got 10"
        );
        gated(250, 0.04, Floor::Above(0.905)).validate().unwrap();
    }

    #[test]
    fn due_steps() {
        let g = gated(250, 0.04, Floor::Above(0.9));
        assert!(!g.is_due(0));
        assert!(!g.is_due(249));
        assert!(g.is_due(250));
        assert!(g.is_due(500));
        let gr = PruneSchedule::Gradual {
            start: 100,
            end: 200,
            every: 50,
            initial_sparsity: 0.0,
            final_sparsity: 0.8,
        };
        let due: Vec<u64> = (0..300).filter(|s| gr.is_due(*s)).collect();
        assert_eq!(due, vec![100, 150, 200]);
    }

    #[test]
    fn gradual_target_follows_the_cubic() {
        let s = |t| PruneSchedule::gradual_target(100, 200, 0.0, 0.8, t);
        assert_eq!(s(0), 0.0);
        assert_eq!(s(100), 0.0);
        assert!((s(150) - 0.8 * (1.0 - 0.125)).abs() < 1e-12);
        assert!((s(200) - 0.8).abs() < 1e-12);
        assert!((s(1000) - 0.8).abs() < 1e-12);
    }

    #[test]
    fn floors_exactly_at_and_around_the_value() {
        let q = 0.9;
        assert!(Floor::Above(q).passes(0.91));
        assert!(!Floor::Above(q).passes(q), "the paper's gate is strict");
        assert!(!Floor::Above(q).passes(0.89));
        assert!(Floor::AtLeast(q).passes(0.91));
        assert!(Floor::AtLeast(q).passes(q), "AtLeast means >=");
        assert!(!Floor::AtLeast(q).passes(0.89));
        assert!(Floor::Below(2.0).passes(1.5));
        assert!(!Floor::Below(2.0).passes(2.0), "strictly below");
        assert!(!Floor::Below(2.0).passes(2.5));
    }
}
