//! The one entry point, `SparsityConfig::init` + `Sparsity::step`, checked through what users
//! get: the decay's fading gamma and its reset inside the returned `ModuleOptimizer`, exact
//! prune events, the best model, the target, and loaded masks that no plain loop can revive.

use crate::common::{Mlp, Task, weights};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams, SgdConfig};
use burn::tensor::{Device, Tensor};
use sparse_prune::{
    Amount, Floor, Masking, PruneSchedule, PrunerConfig, Selection, SparsityConfig, SparsityReport,
    load_masked,
};
use sparse_reg::{GammaSchedule, Relevance, SelectiveDecayConfig};

fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// With a zero loss the gradient is 0 and plain SGD moves each weight only by the decay:
/// `w <- w * (1 - 2 lr gamma_k)`. Reading gamma_k back from the weights of the model the
/// returned optimizer trains shows the linear fade and its reset at every prune event.
#[test]
fn the_fading_gamma_and_its_reset_act_through_the_optimizer_users_get() {
    let device = Device::flex().autodiff();
    let (gamma0, fade, every, lr) = (0.05, 8u64, 5u64, 0.1);
    let model: Linear = LinearConfig::new(10, 10).init(&device);
    let decay = SelectiveDecayConfig::new()
        .with_gamma(gamma0)
        .with_relevance(Relevance::Constant)
        .with_schedule(GammaSchedule::Linear { steps: fade });
    let schedule = PruneSchedule::Gated {
        every,
        fraction: 0.2,
        floor: Floor::Above(0.5),
    };
    let config = SparsityConfig::new(PrunerConfig::new(schedule)).with_decay(decay);
    let (mut model, mut optim, mut sparsity) = config.init(model, SgdConfig::new()).unwrap();
    // The largest weight is never pruned by magnitude: follow it.
    let w0 = values(model.weight.val());
    let i = (0..w0.len())
        .max_by(|a, b| w0[*a].abs().total_cmp(&w0[*b].abs()))
        .unwrap();
    let mut reset_at = 0u64;
    for step in 1..=17u64 {
        let before = values(model.weight.val())[i] as f64;
        let zero_loss = model
            .forward(Tensor::<2>::ones([2, 10], &device))
            .sum()
            .mul_scalar(0.0);
        let grads = GradientsParams::from_grads(zero_loss.backward(), &model);
        model = sparsity
            .step(model, &mut optim, lr, grads, |_| 1.0)
            .unwrap();
        let after = values(model.weight.val())[i] as f64;
        // The step's gamma: the clock stood at the previous step.
        let want = GammaSchedule::Linear { steps: fade }.gamma(gamma0, step - 1 - reset_at);
        let got = (1.0 - after / before) / (2.0 * lr);
        assert!(
            (got - want).abs() < 1e-5,
            "step {step}: gamma {got}, expected {want}"
        );
        if step % every == 0 {
            reset_at = step; // a prune event: the next step has the full gamma again
        }
    }
    assert_eq!(sparsity.events().len(), 3);
    assert!(
        (sparsity.gamma() - gamma0 * (1.0 - 2.0 / fade as f64)).abs() < 1e-12,
        "two steps after the prune at 15"
    );
}

/// One event through the public pruner removes exactly round(p * alive) alive entries, those
/// with the smallest |w| over all the selected tensors together (checked against a sort).
#[test]
fn a_prune_event_removes_the_smallest_alive_entries_across_all_tensors() {
    let device = Device::flex();
    device.seed(11);
    let model = Mlp::new(12, 9, 4, &device);
    let mut pruner = PrunerConfig::new(PruneSchedule::OneShot {
        at: 1,
        sparsity: 0.5,
    })
    .with_params(Selection::All)
    .init()
    .unwrap();
    let mut model = pruner.attach(model).unwrap();
    let p = 0.3;
    for event in 0..3 {
        let before: Vec<f32> = weights(&model).concat();
        let alive: Vec<usize> = (0..before.len()).filter(|i| before[*i] != 0.0).collect();
        let k = (p * alive.len() as f64).round() as usize;
        let mut by_size = alive.clone();
        by_size.sort_by(|a, b| before[*a].abs().total_cmp(&before[*b].abs()));
        let mut want: Vec<usize> = by_size[..k].to_vec();
        want.sort();
        let (m, e) = pruner
            .prune(model, event, Amount::FractionOfAlive(p), None)
            .unwrap();
        model = m;
        let after: Vec<f32> = weights(&model).concat();
        let removed: Vec<usize> = alive.iter().copied().filter(|i| after[*i] == 0.0).collect();
        assert_eq!(e.removed as usize, k, "event {event}");
        assert_eq!(
            removed, want,
            "event {event}: the {k} smallest alive entries"
        );
    }
}

fn classify(model: &Mlp, task: &Task, device: &Device) -> f64 {
    task.accuracy(model, device)
}

/// The method in a hand loop through `Sparsity::step`: the best model is the sparsest that
/// passed, pruning stops at the target, the step count is the sparsity's own.
#[test]
fn the_loop_keeps_the_sparsest_passing_model_and_stops_at_the_target() {
    let device = Device::flex().autodiff();
    device.seed(4);
    let (train, val) = (Task::new(600, 10, 1), Task::new(300, 10, 2));
    let plain = Device::flex();
    let floor = 0.45;
    let config = SparsityConfig::new(PrunerConfig::new(PruneSchedule::Gated {
        every: 10,
        fraction: 0.3,
        floor: Floor::Above(floor),
    }))
    .with_target(Some(0.9))
    .with_keep_best(true);
    let model = Mlp::new(10, 32, 3, &device);
    let (mut model, mut optim, mut sparsity) = config.init(model, AdamConfig::new()).unwrap();
    let mut seen = vec![];
    for step in 0..400usize {
        let (x, y) = train.batch((step * 20) % 580, 20, &device);
        let grads = GradientsParams::from_grads(model.loss(x, y).backward(), &model);
        model = sparsity
            .step(model, &mut optim, 1e-2, grads, |m| {
                let acc = classify(m, &val, &plain);
                seen.push((SparsityReport::of(m).sparsity(), acc));
                acc
            })
            .unwrap();
    }
    assert_eq!(sparsity.steps(), 400);
    assert!(sparsity.is_finished(), "{sparsity:?}");
    let last = sparsity.events().last().unwrap().sparsity;
    assert!(last >= 0.9 && sparsity.events()[sparsity.events().len() - 2].sparsity < 0.9);
    let best = sparsity.best().expect("a passing model");
    assert!(best.metric > floor);
    // The sparsest of the models the metric passed, measured on the model it returns.
    let passing = seen.iter().filter(|(_, a)| *a > floor);
    let sparsest = passing.map(|(s, _)| *s).fold(0.0, f64::max);
    let best_masked = weights(&best.model).concat();
    let report = SparsityReport::of(&best.model);
    assert!((report.sparsity() - sparsest).abs() < 1e-12, "{sparsest}");
    assert_eq!(
        best_masked.iter().filter(|w| **w == 0.0).count() as u64,
        report.params() - report.nonzeros()
    );
}

/// A model trained with in-place masks, saved, loaded with `load_masked` and trained by a
/// plain Burn Adam loop that never calls `enforce`: no pruned weight comes back.
#[test]
fn a_loaded_in_place_model_revives_nothing_in_a_plain_loop() {
    let device = Device::flex().autodiff();
    device.seed(8);
    let task = Task::new(400, 8, 3);
    let config = SparsityConfig::new(
        PrunerConfig::new(PruneSchedule::OneShot {
            at: 5,
            sparsity: 0.7,
        })
        .with_masking(Masking::InPlace),
    );
    let (mut model, mut optim, mut sparsity) = config
        .init(Mlp::new(8, 16, 3, &device), AdamConfig::new())
        .unwrap();
    for step in 0..20usize {
        let (x, y) = task.batch((step * 16) % 384, 16, &device);
        let grads = GradientsParams::from_grads(model.loss(x, y).backward(), &model);
        model = sparsity
            .step(model, &mut optim, 1e-2, grads, |_| 0.0)
            .unwrap();
    }
    let file = std::env::temp_dir().join(format!("sparse-prune-revive-{}", std::process::id()));
    model.clone().save_file(&file).unwrap();
    let file = file.with_extension("bpk");
    let pruned_before = SparsityReport::of(&model);
    assert!(pruned_before.sparsity() > 0.5);

    let mut loaded = load_masked(Mlp::new(8, 16, 3, &device), &Selection::Weights, &file).unwrap();
    let pruned: Vec<Vec<bool>> = weights(&loaded)
        .iter()
        .map(|w| w.iter().map(|x| *x == 0.0).collect())
        .collect();
    let mut plain = AdamConfig::new().init();
    for step in 0..10usize {
        let (x, y) = task.batch((step * 16) % 384, 16, &device);
        let grads = GradientsParams::from_grads(loaded.loss(x, y).backward(), &loaded);
        loaded = plain.step(1e-2, loaded, grads);
    }
    let revived: usize = weights(&loaded)
        .iter()
        .zip(&pruned)
        .map(|(w, p)| w.iter().zip(p).filter(|(w, p)| **p && **w != 0.0).count())
        .sum();
    assert_eq!(revived, 0, "pruned weights came back");
    assert_eq!(
        SparsityReport::of(&loaded).nonzeros(),
        pruned_before.nonzeros()
    );
    std::fs::remove_file(&file).ok();
}

#[test]
fn bad_configurations_name_the_field() {
    let gated = PrunerConfig::new(PruneSchedule::Gated {
        every: 10,
        fraction: 0.1,
        floor: Floor::Above(0.9),
    });
    let err = |c: SparsityConfig| format!("{:?}", c.validate().unwrap_err());
    assert_eq!(
        err(SparsityConfig::new(gated.clone()).with_target(Some(0.0))),
        "invalid SparsityConfig.target: expected a sparsity in (0, 1), got 0"
    );
    let one_shot = PrunerConfig::new(PruneSchedule::OneShot {
        at: 1,
        sparsity: 0.5,
    });
    assert_eq!(
        err(SparsityConfig::new(one_shot).with_keep_best(true)),
        "invalid SparsityConfig.keep_best: the best model is the sparsest one that passed the \
         schedule's floor, and this schedule has none: use PruneSchedule::Gated (or Threshold \
         with a floor)"
    );
    let model: Linear = LinearConfig::new(4, 4).init(&Device::flex().autodiff());
    let clipped = AdamConfig::new().with_grad_clipping(Some(
        burn::optim::grad_clipping::GradientClippingConfig::Norm(1.0),
    ));
    let e = SparsityConfig::new(gated)
        .init(model, clipped)
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "invalid AdamConfig.grad_clipping: the decay wraps the per-tensor optimizer, which does \
         not clip; clip the gradients in the loop instead"
    );
}
