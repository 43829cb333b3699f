//! The gamma schedule and the clock that drives it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// How the decay strength `gamma` evolves with optimizer steps.
///
/// ```
/// use sparse_reg::GammaSchedule;
/// let s = GammaSchedule::Linear { steps: 100 };
/// assert_eq!(s.gamma(1e-3, 0), 1e-3);
/// assert!((s.gamma(1e-3, 50) - 5e-4).abs() < 1e-15);
/// assert_eq!(s.gamma(1e-3, 100), 0.0);
/// assert_eq!(GammaSchedule::Constant.gamma(1e-3, 10_000), 1e-3);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum GammaSchedule {
    /// `gamma(k) = gamma0` at every step.
    #[default]
    Constant,
    /// `gamma(k) = max(0, gamma0 * (1 - k / steps))`, `k` the optimizer steps since the last
    /// reset (a prune event). The paper sets `steps` to one epoch.
    Linear {
        /// Steps over which gamma fades to 0 (`S` in the paper); must be `> 0`.
        steps: u64,
    },
}

impl GammaSchedule {
    /// gamma after `since_reset` optimizer steps since the last reset.
    pub fn gamma(&self, gamma0: f64, since_reset: u64) -> f64 {
        match *self {
            GammaSchedule::Constant => gamma0,
            GammaSchedule::Linear { steps } => {
                (gamma0 * (1.0 - since_reset as f64 / steps as f64)).max(0.0)
            }
        }
    }
}

/// A serialisable snapshot of a [`DecayClock`]: where the schedule stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockState {
    /// The current optimizer step, as last told by the caller.
    pub step: u64,
    /// The step of the last reset (prune event).
    pub reset_at: u64,
}

/// The shared step counter of a [`SelectiveDecay`](crate::SelectiveDecay).
///
/// Burn's per-tensor [`Optimizer::step`](burn::optim::Optimizer::step) takes `&self` and sees
/// no step number, and the optimizer usually sits type-erased inside a `ModuleOptimizer`; so
/// the schedule position lives in this cheap, cloneable handle instead. The training loop (or
/// the pruner) tells it the optimizer-step number; a prune event calls [`reset`](Self::reset).
/// Nothing is guessed from epochs.
///
/// ```
/// use sparse_reg::DecayClock;
/// let clock = DecayClock::default();
/// clock.reset(250); // a prune event after 250 steps
/// clock.set_step(300);
/// assert_eq!(clock.since_reset(), 50);
/// let saved = clock.state();
/// let restored = DecayClock::default();
/// restored.restore(saved);
/// assert_eq!(restored.since_reset(), 50);
/// ```
#[derive(Clone, Debug, Default)]
pub struct DecayClock {
    inner: Arc<ClockInner>,
}

#[derive(Debug, Default)]
struct ClockInner {
    step: AtomicU64,
    reset_at: AtomicU64,
}

impl DecayClock {
    /// Tell the clock the current optimizer step (the number of steps taken so far).
    pub fn set_step(&self, step: u64) {
        self.inner.step.store(step, Ordering::Relaxed);
    }

    /// Advance the clock by one optimizer step and return the new step number.
    pub fn tick(&self) -> u64 {
        self.inner.step.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Mark a reset (a prune event) at `step`; the schedule restarts from there.
    pub fn reset(&self, step: u64) {
        self.inner.reset_at.store(step, Ordering::Relaxed);
        self.set_step(step);
    }

    /// The current step.
    pub fn step(&self) -> u64 {
        self.inner.step.load(Ordering::Relaxed)
    }

    /// Steps since the last reset (0 if the step is before it).
    pub fn since_reset(&self) -> u64 {
        self.step()
            .saturating_sub(self.inner.reset_at.load(Ordering::Relaxed))
    }

    /// A snapshot for checkpoints.
    pub fn state(&self) -> ClockState {
        ClockState {
            step: self.step(),
            reset_at: self.inner.reset_at.load(Ordering::Relaxed),
        }
    }

    /// Restore a snapshot taken by [`state`](Self::state).
    pub fn restore(&self, state: ClockState) {
        self.inner.reset_at.store(state.reset_at, Ordering::Relaxed);
        self.inner.step.store(state.step, Ordering::Relaxed);
    }

    /// Whether two handles share the same clock.
    pub fn same_as(&self, other: &DecayClock) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_schedule_fades_and_restarts_after_reset() {
        let s = GammaSchedule::Linear { steps: 4 };
        let clock = DecayClock::default();
        let mut seen = vec![];
        for step in 1..=6 {
            clock.set_step(step);
            if step == 5 {
                clock.reset(step);
            }
            seen.push(s.gamma(1.0, clock.since_reset()));
        }
        assert_eq!(seen, vec![0.75, 0.5, 0.25, 0.0, 1.0, 0.75]);
    }

    #[test]
    fn clones_share_the_clock() {
        let a = DecayClock::default();
        let b = a.clone();
        assert_eq!(b.tick(), 1);
        assert_eq!(a.step(), 1);
        assert!(a.same_as(&b));
        assert!(!a.same_as(&DecayClock::default()));
    }
}
