//! [`Pruner`]: iterative pruning driven from any training loop.

use std::collections::HashMap;

use burn::config::Config;
use burn::module::{Module, ModuleMapper, Param, ParamGroup, ParamId};
use burn::optim::{GradientsParams, ModuleOptimizer, Optimizer};
use burn::tensor::{Bool, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use sparse_reg::{ClockState, ConfigError, DecayClock, Selection, SelectiveDecay};

use crate::mask::{attach_masks, count_masks};
use crate::masking::Enforcer;
use crate::select::{self, Candidate};
use crate::snapshot::{MASK_SUFFIX, snapshot};
use crate::{Criterion, CriterionConfig, Masking, PruneError, PruneSchedule, ScoreInput};

/// Whether the entries to remove are ranked across all selected tensors together or within
/// each tensor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ranking {
    /// One ranking over every selected tensor (the paper).
    #[default]
    Global,
    /// Each tensor loses the same fraction of its own entries.
    LayerWise,
}

/// Configuration of a [`Pruner`]: schedule x criterion x ranking, over a parameter selection.
#[derive(Config, Debug)]
pub struct PrunerConfig {
    /// When to prune and how much.
    pub schedule: PruneSchedule,
    /// How entries are scored (lowest pruned first).
    #[config(default = "CriterionConfig::Magnitude")]
    pub criterion: CriterionConfig,
    /// Global (the paper) or per-tensor ranking.
    #[config(default = "Ranking::Global")]
    pub ranking: Ranking,
    /// Fraction of each tensor's entries that always stays alive, in `[0, 1]`.
    #[config(default = 0.0)]
    pub min_density: f64,
    /// Seed of stochastic criteria.
    #[config(default = 0)]
    pub seed: u64,
    /// The prunable parameters: the weights of rank >= 2 by default; [`Selection::All`] is the
    /// paper's choice (biases and normalisation parameters too).
    #[config(default = "Selection::Weights")]
    pub params: Selection,
    /// Where the masks act: in the forward pass (any loop) or in the weights after each
    /// optimizer step (cheaper; the loop calls [`Pruner::enforce`]). See [`Masking`].
    #[config(default = "Masking::Forward")]
    pub masking: Masking,
}

impl PrunerConfig {
    /// Check every field; errors name the field and the accepted range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.schedule.validate()?;
        if !(0.0..=1.0).contains(&self.min_density) {
            return Err(ConfigError::new(
                "PrunerConfig.min_density",
                format!("expected a fraction in [0, 1], got {}", self.min_density),
            ));
        }
        if let CriterionConfig::Relevance(r) = self.criterion
            && let Some(alpha) = r.alpha()
        {
            ConfigError::positive("PrunerConfig.criterion.alpha", alpha)?;
        }
        Ok(())
    }

    /// Validate and build the pruner.
    pub fn init(&self) -> Result<Pruner, ConfigError> {
        self.validate()?;
        Ok(Pruner {
            config: self.clone(),
            criterion: self.criterion.build(),
            clock: None,
            state: PrunerState::default(),
            enforcer: Enforcer::default(),
            enforced: false,
        })
    }
}

/// What one prune event did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PruneEvent {
    /// The optimizer step.
    pub step: u64,
    /// Entries removed by this event.
    pub removed: u64,
    /// Entries alive after it, over the masked parameters.
    pub alive: u64,
    /// Entries of the masked parameters.
    pub total: u64,
    /// `1 - alive / total`.
    pub sparsity: f64,
    /// The validation metric that let it happen, if the schedule is gated.
    pub metric: Option<f64>,
}

impl PruneEvent {
    /// `total / alive`: the compression of the masked parameters.
    pub fn compression(&self) -> f64 {
        self.total as f64 / self.alive.max(1) as f64
    }
}

/// The serialisable position of a [`Pruner`] (with its decay clock, if any), for checkpoints.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PrunerState {
    /// Every prune event so far.
    pub events: Vec<PruneEvent>,
    /// Due checks whose metric did not pass the floor.
    pub skipped: u64,
    /// The decay clock's position.
    pub clock: Option<ClockState>,
}

/// How much a prune removes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Amount {
    /// This fraction of the entries still alive: `round(fraction * alive)` (per tensor when
    /// layer-wise).
    FractionOfAlive(f64),
    /// Down to this sparsity (masks only shrink: a lower target removes nothing).
    Sparsity(f64),
    /// Every alive entry scoring below this.
    BelowScore(f64),
}

/// Iterative pruning for any Burn training loop: the piece underneath
/// [`Sparsity`](crate::Sparsity), for loops that need more control (checkpoints, resuming,
/// their own step count).
///
/// Call [`step`](Self::step) after every optimizer step with the number of steps taken and,
/// when [`needs_metric`](Self::needs_metric) says so, the validation metric.
/// Masks live in the model ([`attach`](Self::attach)); the pruner keeps only its schedule
/// position ([`state`](Self::state)) and resets the decay clock at every prune event.
///
/// ```
/// use burn::nn::{Linear, LinearConfig};
/// use burn::tensor::Device;
/// use sparse_prune::{Floor, PruneSchedule, PrunerConfig};
///
/// let model: Linear = LinearConfig::new(10, 10).init(&Device::flex());
/// let mut pruner = PrunerConfig::new(PruneSchedule::Gated {
///     every: 250,
///     fraction: 0.04,
///     floor: Floor::Above(0.905),
/// })
/// .with_params(sparse_prune::Selection::All)
/// .init()
/// .unwrap();
/// let mut model = pruner.attach(model).unwrap();
/// for step in 1..=500u64 {
///     // ... forward, backward, optimizer step ...
///     let metric = pruner.needs_metric(step).then(|| 0.95); // evaluate on the validation set here
///     let (m, event) = pruner.step(model, step, metric).unwrap();
///     model = m;
///     if let Some(e) = event {
///         println!("step {}: {} alive of {}", e.step, e.alive, e.total);
///     }
/// }
/// assert_eq!(pruner.events().len(), 2);
/// assert_eq!(pruner.events()[1].alive, 110 - 4 - 4); // round(0.04 * 110), round(0.04 * 106)
/// ```
pub struct Pruner {
    config: PrunerConfig,
    criterion: Box<dyn Criterion>,
    clock: Option<DecayClock>,
    state: PrunerState,
    enforcer: Enforcer,
    /// Whether [`Pruner::enforce`] ran since the last [`Pruner::step`] (in-place masking).
    enforced: bool,
}

impl Pruner {
    /// Use a custom criterion instead of the configured one.
    pub fn with_criterion(mut self, criterion: Box<dyn Criterion>) -> Self {
        self.criterion = criterion;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &PrunerConfig {
        &self.config
    }

    /// Attach all-alive masks to the selected parameters of `model` (errors if the selection
    /// matches nothing), acting as the configuration's [`Masking`] says. A model that has masks
    /// already (one loaded with [`load_masked`](crate::load_masked), or pruned by another
    /// pruner) keeps them and is taken over: its masks then act as this configuration says, and
    /// its pruned entries are 0 in its stored weights.
    ///
    /// ```
    /// use burn::nn::{Linear, LinearConfig};
    /// use burn::tensor::Device;
    /// use sparse_prune::{Masking, PruneSchedule, PrunerConfig, count_masks};
    ///
    /// let config = PrunerConfig::new(PruneSchedule::OneShot { at: 1, sparsity: 0.5 });
    /// let model: Linear = config.init().unwrap().attach(LinearConfig::new(4, 4).init(&Device::flex())).unwrap();
    /// let mut in_place = config.with_masking(Masking::InPlace).init().unwrap();
    /// let model = in_place.attach(model).unwrap(); // taken over, not attached twice
    /// assert_eq!(count_masks(&model), 1);
    /// ```
    pub fn attach<M: Module>(&mut self, model: M) -> Result<M, PruneError> {
        if count_masks(&model) == 0 {
            return Ok(attach_masks(model, &self.config.params, self.config.masking)?.0);
        }
        // Take the masks over: read them, fold the model to plain weights, attach masks acting
        // as configured to the same parameters and write the masks back (zeroing the pruned
        // entries of the bases).
        let masks: HashMap<String, Vec<bool>> = snapshot(&model, false, None)
            .into_iter()
            .filter_map(|p| p.pruned.map(|m| (p.path, m)))
            .collect();
        let paths: Vec<String> = masks.keys().cloned().collect();
        let selection = Selection::Group(ParamGroup::from_paths(paths));
        let (model, _) = attach_masks(model.materialize(), &selection, self.config.masking)?;
        let model = model.map(&mut ApplyMasks {
            path: vec![],
            masks,
        });
        Ok(self.enforce(model))
    }

    /// Set the pruned entries of every masked parameter of `model` to 0, in place (with
    /// [`Masking::InPlace`]; with [`Masking::Forward`] the model is returned as it is, so a
    /// loop can call it whatever the masking).
    ///
    /// With [`Masking::InPlace`] call it right after every optimizer step, before the model is
    /// evaluated or saved. One pass over each masked parameter, no allocation on CPU backends;
    /// the host copy of a mask is refreshed only when the mask changes.
    ///
    /// ```
    /// use burn::nn::{Linear, LinearConfig};
    /// use burn::optim::{GradientsParams, Optimizer, SgdConfig};
    /// use burn::tensor::{Device, Distribution, Tensor};
    /// use sparse_prune::{Masking, PruneSchedule, PrunerConfig, SparsityReport};
    ///
    /// let device = Device::flex().autodiff();
    /// let mut pruner = PrunerConfig::new(PruneSchedule::OneShot { at: 1, sparsity: 0.5 })
    ///     .with_masking(Masking::InPlace)
    ///     .init()
    ///     .unwrap();
    /// let mut model: Linear = pruner.attach(LinearConfig::new(8, 4).init(&device)).unwrap();
    /// let mut optim = SgdConfig::new().init();
    /// for step in 1..=3 {
    ///     let x = Tensor::<2>::random([16, 8], Distribution::Default, &device);
    ///     let loss = model.forward(x).powi_scalar(2).mean();
    ///     let grads = GradientsParams::from_grads(loss.backward(), &model);
    ///     model = optim.step(0.1, model, grads);
    ///     model = pruner.enforce(model); // before anything reads the model
    ///     model = pruner.step(model, step, None).unwrap().0;
    /// }
    /// assert_eq!(pruner.events()[0].sparsity, 0.5); // of the weight, the pruned parameter
    /// ```
    pub fn enforce<M: Module>(&mut self, model: M) -> M {
        self.enforced = true;
        match self.config.masking {
            Masking::InPlace => self.enforcer.enforce(model),
            Masking::Forward => model,
        }
    }

    /// The [`ModuleOptimizer`] for `model` (its masks attached) that `decay` gives, with the
    /// decay's gamma schedule driven by this pruner (it tells the decay's clock every step and
    /// resets it at every prune event) and the pruning folded into its step: with [`Masking::InPlace`] each masked parameter's step
    /// sets its pruned entries back to 0 itself, in the same pass as the update for
    /// [`FusedAdam`](sparse_reg::FusedAdam) and [`FusedSgd`](sparse_reg::FusedSgd) on CPU
    /// backends, and [`enforce`](Self::enforce) then skips it. The loop is unchanged (it still
    /// calls `enforce`, which still guarantees the zeros: whatever a step did not zero, such as
    /// a parameter without a gradient or one on a GPU, it zeroes). The optimizer learns each
    /// new mask through this pruner's `enforce`, so keep using this pruner with it.
    ///
    /// Errors when `model` has no masks ([`PruneError::NoMasks`]) or `decay`'s parameter
    /// selection matches nothing.
    ///
    /// ```
    /// use burn::nn::{Linear, LinearConfig};
    /// use burn::optim::{GradientsParams, ModuleOptimizer, Optimizer};
    /// use burn::tensor::{Device, Distribution, Tensor};
    /// use sparse_prune::{Amount, Masking, PruneSchedule, PrunerConfig, SparsityReport};
    /// use sparse_reg::{FusedAdamConfig, SelectiveDecayConfig};
    ///
    /// let device = Device::flex().autodiff();
    /// let mut pruner = PrunerConfig::new(PruneSchedule::OneShot { at: 1, sparsity: 0.5 })
    ///     .with_masking(Masking::InPlace)
    ///     .init()
    ///     .unwrap();
    /// let mut model: Linear = pruner.attach(LinearConfig::new(8, 4).init(&device)).unwrap();
    /// let decay = SelectiveDecayConfig::new().build(FusedAdamConfig::new().build().unwrap()).unwrap();
    /// let mut optim = pruner.optimizer(decay, &model).unwrap();
    /// for step in 1..=3 {
    ///     let x = Tensor::<2>::random([16, 8], Distribution::Default, &device);
    ///     let loss = model.forward(x).powi_scalar(2).mean();
    ///     let grads = GradientsParams::from_grads(loss.backward(), &model);
    ///     model = optim.step(1e-2, model, grads);
    ///     model = pruner.enforce(model); // nearly free: the step zeroed the pruned entries
    ///     model = pruner.step(model, step, None).unwrap().0;
    /// }
    /// assert_eq!(pruner.events()[0].sparsity, 0.5); // of the weight, the pruned parameter
    /// ```
    pub fn optimizer<O: Optimizer, M: Module>(
        &mut self,
        decay: SelectiveDecay<O>,
        model: &M,
    ) -> Result<ModuleOptimizer, PruneError> {
        let owners: Vec<String> = snapshot(model, false, None)
            .into_iter()
            .filter(|p| p.pruned.is_some())
            .map(|p| p.path)
            .collect();
        if owners.is_empty() {
            return Err(PruneError::NoMasks);
        }
        self.clock = Some(decay.clock());
        if self.config.masking == Masking::Forward {
            return Ok(decay.init_with_keep(model, vec![])?);
        }
        let keeps = owners
            .into_iter()
            .map(|owner| {
                let slot = self.enforcer.slot(&owner);
                (owner, slot)
            })
            .collect();
        Ok(decay.init_with_keep(model, keeps)?)
    }

    /// Whether [`step`](Self::step) at `step` needs the validation metric: the schedule is due
    /// and gated by a floor.
    pub fn needs_metric(&self, step: u64) -> bool {
        self.config.schedule.is_due(step) && self.config.schedule.needs_metric()
    }

    /// Whether the criterion scores entries with their gradients.
    pub(crate) fn needs_grads(&self) -> bool {
        self.criterion.needs_grad()
    }

    /// Advance to `step` without pruning (the clock still follows; in-place masks must have
    /// been enforced).
    pub(crate) fn idle(&mut self, step: u64) -> Result<(), PruneError> {
        if self.config.masking == Masking::InPlace && !std::mem::take(&mut self.enforced) {
            return Err(PruneError::NotEnforced { step });
        }
        if let Some(clock) = &self.clock {
            clock.set_step(step);
        }
        Ok(())
    }

    /// The prune events so far.
    pub fn events(&self) -> &[PruneEvent] {
        &self.state.events
    }

    /// The schedule position, with the decay clock's.
    pub fn state(&self) -> PrunerState {
        PrunerState {
            clock: self.clock.as_ref().map(|c| c.state()),
            ..self.state.clone()
        }
    }

    /// Restore a position saved by [`state`](Self::state) (and the decay clock's).
    pub fn restore(&mut self, state: PrunerState) {
        if let (Some(clock), Some(s)) = (&self.clock, state.clock) {
            clock.restore(s);
        }
        self.state = state;
    }

    /// Write [`state`](Self::state) as JSON to `path`.
    pub fn save_state(&self, path: impl AsRef<std::path::Path>) -> Result<(), PruneError> {
        let path = path.as_ref();
        let json = serde_json::to_string_pretty(&self.state()).expect("the state serialises");
        std::fs::write(path, json).map_err(|e| PruneError::File {
            path: path.display().to_string(),
            message: format!("cannot write the pruner state: {e}"),
        })
    }

    /// Read a state written by [`save_state`](Self::save_state) and [`restore`](Self::restore) it.
    pub fn load_state(&mut self, path: impl AsRef<std::path::Path>) -> Result<(), PruneError> {
        let path = path.as_ref();
        let file = |message: String| PruneError::File {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| file(format!("cannot read the pruner state: {e}")))?;
        let state: PrunerState = serde_json::from_str(&text).map_err(|e| {
            file(format!(
                "not a pruner state (JSON with events, skipped, clock): {e}"
            ))
        })?;
        self.restore(state);
        Ok(())
    }

    /// Advance to `step` (optimizer steps taken) and prune if the schedule says so.
    ///
    /// `metric` is needed when [`needs_metric`](Self::needs_metric) is true. Returns the model
    /// and the event, if entries were removed.
    pub fn step<M: Module>(
        &mut self,
        model: M,
        step: u64,
        metric: Option<f64>,
    ) -> Result<(M, Option<PruneEvent>), PruneError> {
        self.step_inner(model, step, metric, None)
    }

    /// [`step`](Self::step) for criteria that need gradients (saliency, relevance): pass the
    /// gradients of this step (before the optimizer consumes them).
    pub fn step_with_grads<M: Module>(
        &mut self,
        model: M,
        step: u64,
        metric: Option<f64>,
        grads: &GradientsParams,
    ) -> Result<(M, Option<PruneEvent>), PruneError> {
        self.step_inner(model, step, metric, Some(grads))
    }

    fn step_inner<M: Module>(
        &mut self,
        model: M,
        step: u64,
        metric: Option<f64>,
        grads: Option<&GradientsParams>,
    ) -> Result<(M, Option<PruneEvent>), PruneError> {
        if self.config.masking == Masking::InPlace && !std::mem::take(&mut self.enforced) {
            return Err(PruneError::NotEnforced { step });
        }
        if let Some(clock) = &self.clock {
            clock.set_step(step);
        }
        let schedule = self.config.schedule;
        if !schedule.is_due(step) {
            return Ok((model, None));
        }
        if let Some(floor) = schedule.floor() {
            let m = metric.ok_or(PruneError::MetricRequired { step })?;
            if !m.is_finite() {
                return Err(PruneError::BadMetric { step, value: m });
            }
            if !floor.passes(m) {
                self.state.skipped += 1;
                return Ok((model, None));
            }
        }
        let amount = match schedule {
            PruneSchedule::Gated { fraction, .. } => Amount::FractionOfAlive(fraction),
            PruneSchedule::OneShot { sparsity, .. } => Amount::Sparsity(sparsity),
            PruneSchedule::Gradual {
                start,
                end,
                initial_sparsity,
                final_sparsity,
                ..
            } => Amount::Sparsity(PruneSchedule::gradual_target(
                start,
                end,
                initial_sparsity,
                final_sparsity,
                step,
            )),
            PruneSchedule::Threshold { threshold, .. } => Amount::BelowScore(threshold),
        };
        let (model, event) = self.prune_inner(model, step, amount, grads, metric)?;
        Ok((model, (event.removed > 0).then_some(event)))
    }

    /// Prune now, by `amount`, outside the schedule (records the event, resets the clock).
    pub fn prune<M: Module>(
        &mut self,
        model: M,
        step: u64,
        amount: Amount,
        grads: Option<&GradientsParams>,
    ) -> Result<(M, PruneEvent), PruneError> {
        self.prune_inner(model, step, amount, grads, None)
    }

    fn prune_inner<M: Module>(
        &mut self,
        model: M,
        step: u64,
        amount: Amount,
        grads: Option<&GradientsParams>,
        metric: Option<f64>,
    ) -> Result<(M, PruneEvent), PruneError> {
        if self.criterion.needs_grad() && grads.is_none() {
            return Err(PruneError::GradientsRequired {
                criterion: self.criterion.name(),
            });
        }
        let snaps = snapshot(&model, true, grads);
        let masked: Vec<_> = snaps.iter().filter(|p| p.pruned.is_some()).collect();
        if masked.is_empty() {
            return Err(PruneError::NoMasks);
        }
        let event_index = self.state.events.len() as u64;
        let mut scores: Vec<Vec<f32>> = Vec::with_capacity(masked.len());
        for (i, p) in masked.iter().enumerate() {
            let zeros;
            let grad = match (&p.grad, self.criterion.needs_grad()) {
                (Some(g), _) => Some(g.as_slice()),
                (None, true) => {
                    zeros = vec![0.0; p.numel()];
                    Some(zeros.as_slice())
                }
                (None, false) => None,
            };
            let seed = mix(self.config.seed, event_index, i as u64);
            let mut out = Vec::with_capacity(p.numel());
            self.criterion.score(
                &ScoreInput {
                    weight: &p.weight,
                    grad,
                    seed,
                },
                &mut out,
            );
            assert_eq!(
                out.len(),
                p.numel(),
                "criterion {} returned a wrong count",
                self.criterion.name()
            );
            scores.push(out);
        }
        let min_density = self.config.min_density;
        let cands: Vec<Candidate> = masked
            .iter()
            .zip(&scores)
            .map(|(p, s)| {
                Candidate::new(
                    s,
                    p.pruned.as_deref().expect("filtered on masks"),
                    (min_density * p.numel() as f64).ceil() as usize,
                )
            })
            .collect();
        let alive: Vec<usize> = cands.iter().map(|c| c.alive()).collect();
        let total: usize = masked.iter().map(|p| p.numel()).sum();
        let alive_all: usize = alive.iter().sum();
        let picks = match (amount, self.config.ranking) {
            (Amount::FractionOfAlive(f), Ranking::Global) => {
                select::global(&cands, (f * alive_all as f64).round() as usize)
            }
            (Amount::FractionOfAlive(f), Ranking::LayerWise) => {
                let k: Vec<usize> = alive
                    .iter()
                    .map(|a| (f * *a as f64).round() as usize)
                    .collect();
                select::layer_wise(&cands, &k)
            }
            (Amount::Sparsity(s), Ranking::Global) => {
                let keep = ((1.0 - s) * total as f64).round() as usize;
                select::global(&cands, alive_all.saturating_sub(keep))
            }
            (Amount::Sparsity(s), Ranking::LayerWise) => {
                let k: Vec<usize> = masked
                    .iter()
                    .zip(&alive)
                    .map(|(p, a)| a.saturating_sub(((1.0 - s) * p.numel() as f64).round() as usize))
                    .collect();
                select::layer_wise(&cands, &k)
            }
            (Amount::BelowScore(t), _) => {
                let k: Vec<usize> = cands
                    .iter()
                    .map(|c| {
                        c.scores
                            .iter()
                            .zip(c.pruned)
                            .filter(|(s, p)| !**p && (**s as f64) < t)
                            .count()
                    })
                    .collect();
                select::layer_wise(&cands, &k)
            }
        };
        let removed: usize = picks.iter().map(|p| p.len()).sum();
        let mut new_masks: HashMap<String, Vec<bool>> = HashMap::new();
        for ((p, picks), c) in masked.iter().zip(&picks).zip(&cands) {
            if picks.is_empty() {
                continue;
            }
            let mut m = c.pruned.to_vec();
            for i in picks {
                m[*i] = true;
            }
            new_masks.insert(p.path.clone(), m);
        }
        drop(cands);
        let model = if new_masks.is_empty() {
            model
        } else {
            model.map(&mut ApplyMasks {
                path: vec![],
                masks: new_masks,
            })
        };
        let alive_after = (alive_all - removed) as u64;
        let event = PruneEvent {
            step,
            removed: removed as u64,
            alive: alive_after,
            total: total as u64,
            sparsity: 1.0 - alive_after as f64 / total.max(1) as f64,
            metric,
        };
        if removed > 0 {
            if let Some(clock) = &self.clock {
                clock.reset(step);
            }
            self.state.events.push(event.clone());
        }
        Ok((model, event))
    }
}

fn mix(seed: u64, event: u64, tensor: u64) -> u64 {
    seed ^ event.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ tensor.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
}

/// Writes new masks and zeroes the newly pruned base entries.
struct ApplyMasks {
    path: Vec<String>,
    masks: HashMap<String, Vec<bool>>,
}

impl ModuleMapper for ApplyMasks {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(mask) = self.masks.get(&self.path.join(".")) else {
            return param;
        };
        let mask = mask.clone();
        param.map(|t| {
            let require_grad = t.is_require_grad();
            let shape = t.shape();
            let m = Tensor::<D, Bool>::from_data(TensorData::new(mask, shape), &t.device());
            t.detach()
                .mask_fill(m, 0.0)
                .detach()
                .set_require_grad(require_grad)
        })
    }

    fn map_bool<const D: usize>(
        &mut self,
        param: Param<Tensor<D, Bool>>,
    ) -> Param<Tensor<D, Bool>> {
        let path = self.path.join(".");
        let Some(mask) = path
            .strip_suffix(MASK_SUFFIX)
            .and_then(|owner| self.masks.get(owner))
        else {
            return param;
        };
        // A new id: a mask's id names its content (the forward pass caches its keep-mask by id).
        let (shape, device) = (param.lazy_shape(), param.lazy_device());
        let mask = Tensor::<D, Bool>::from_data(TensorData::new(mask.clone(), shape), &device);
        Param::initialized(ParamId::new(), mask)
    }
}
