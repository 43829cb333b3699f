//! The pruning schedules through the public API.

use crate::common::Mlp;
use burn::tensor::Device;
use sparse_prune::Selection;
use sparse_prune::{Floor, PruneError, PruneSchedule, PrunerConfig, Ranking, SparsityReport};
use sparse_reg::{GammaSchedule, SelectiveDecayConfig};

fn gated(p: f64) -> PrunerConfig {
    PrunerConfig::new(PruneSchedule::Gated {
        every: 10,
        fraction: p,
        floor: Floor::Above(0.5),
    })
    .with_params(Selection::All)
}

#[test]
fn n_gated_prunes_leave_exactly_the_expected_alive_count_and_masks_only_shrink() {
    let device = Device::flex();
    let mut pruner = gated(0.04).init().unwrap();
    let mut model = pruner.attach(Mlp::new(20, 30, 3, &device)).unwrap();
    let total = 20 * 30 + 30 + 30 * 3 + 3;
    let mut alive = total as u64;
    let mut previous: Option<Vec<bool>> = None;
    for step in 1..=200u64 {
        let metric = pruner.needs_metric(step).then_some(0.9);
        let (m, event) = pruner.step(model, step, metric).unwrap();
        model = m;
        if pruner.needs_metric(step) {
            let e = event.expect("due and above the floor");
            alive -= (0.04 * alive as f64).round() as u64;
            assert_eq!(e.alive, alive, "step {step}");
            assert_eq!(e.total, total as u64);
            // Masks only shrink: every entry zero before is zero now.
            let now: Vec<bool> = crate::common::weights(&model)
                .concat()
                .iter()
                .map(|w| *w == 0.0)
                .collect();
            if let Some(prev) = &previous {
                assert!(prev.iter().zip(&now).all(|(a, b)| !a || *b));
            }
            previous = Some(now);
        } else {
            assert!(event.is_none());
        }
    }
    assert_eq!(pruner.events().len(), 20);
    // ~ (1 - p)^n of the entries remain.
    let expected = total as f64 * 0.96f64.powi(20);
    assert!((alive as f64 - expected).abs() / expected < 0.02);
    assert_eq!(SparsityReport::of(&model).nonzeros(), alive);
}

#[test]
fn the_floor_gates_pruning_and_a_missing_metric_is_an_error() {
    let device = Device::flex();
    let mut pruner = gated(0.1).init().unwrap();
    let model = pruner.attach(Mlp::new(4, 4, 2, &device)).unwrap();
    let (model, e) = pruner.step(model, 10, Some(0.4)).unwrap();
    assert!(e.is_none(), "below the floor: no prune");
    let (model, e) = pruner.step(model, 10, Some(0.5)).unwrap();
    assert!(
        e.is_none(),
        "at the floor: no prune (strictly above is required)"
    );
    let (model, e) = pruner.step(model, 20, Some(0.51)).unwrap();
    assert!(e.is_some());
    let err = pruner.step(model.clone(), 30, None).unwrap_err();
    assert!(matches!(err, PruneError::MetricRequired { step: 30 }));
    assert_eq!(
        err.to_string(),
        "the gated prune at step 30 needs the validation metric: pass Some(metric) when \
         Pruner::needs_metric(step) is true"
    );
    let err = pruner.step(model, 30, Some(f64::NAN)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the validation metric at step 30 is NaN: expected a finite number"
    );
}

#[test]
fn a_loss_ceiling_gates_lower_is_better_metrics() {
    let device = Device::flex();
    let mut pruner = PrunerConfig::new(PruneSchedule::Gated {
        every: 5,
        fraction: 0.5,
        floor: Floor::Below(2.0),
    })
    .with_params(Selection::All)
    .init()
    .unwrap();
    let model = pruner.attach(Mlp::new(4, 4, 2, &device)).unwrap();
    let (model, e) = pruner.step(model, 5, Some(2.5)).unwrap();
    assert!(e.is_none());
    let (_, e) = pruner.step(model, 10, Some(1.9)).unwrap();
    assert_eq!(e.unwrap().alive, 15); // 30 - round(0.5 * 30)
}

#[test]
fn prune_events_reset_the_decay_clock() {
    let device = Device::flex();
    let decay = SelectiveDecayConfig::new()
        .with_schedule(GammaSchedule::Linear { steps: 10 })
        .build(burn::optim::SgdConfig::new().build())
        .unwrap();
    let mut pruner = gated(0.1).init().unwrap();
    let mut model = pruner.attach(Mlp::new(4, 4, 2, &device)).unwrap();
    let _optim = pruner.optimizer(decay.clone(), &model).unwrap(); // wires the clock
    let mut gammas = vec![];
    for step in 1..=25u64 {
        let metric = pruner.needs_metric(step).then_some(0.9);
        model = pruner.step(model, step, metric).unwrap().0;
        gammas.push(decay.gamma());
    }
    // Before the first prune the schedule runs from step 0; after each prune it restarts.
    assert!((gammas[4] - 1e-3 * 0.5).abs() < 1e-12, "step 5");
    assert_eq!(gammas[9], 1e-3, "step 10: pruned, reset");
    assert!((gammas[14] - 1e-3 * 0.5).abs() < 1e-12, "step 15");
    assert_eq!(gammas[19], 1e-3, "step 20: pruned, reset");
    // Saved and restored with the pruner.
    let state = pruner.state();
    assert_eq!(state.clock.unwrap().reset_at, 20);
    let decay2 = SelectiveDecayConfig::new()
        .build(burn::optim::SgdConfig::new().build())
        .unwrap();
    let clock2 = decay2.clock();
    let mut p2 = gated(0.1).init().unwrap();
    let m2 = p2.attach(Mlp::new(4, 4, 2, &device)).unwrap();
    let _optim = p2.optimizer(decay2, &m2).unwrap();
    p2.restore(state.clone());
    assert_eq!(clock2.state(), state.clock.unwrap());
    assert_eq!(p2.events(), pruner.events());
}

#[test]
fn layer_wise_prunes_each_tensor_by_the_same_fraction_and_min_density_is_kept() {
    let device = Device::flex();
    let mut pruner = PrunerConfig::new(PruneSchedule::OneShot {
        at: 1,
        sparsity: 0.8,
    })
    .with_params(Selection::All)
    .with_ranking(Ranking::LayerWise)
    .init()
    .unwrap();
    let model = pruner.attach(Mlp::new(10, 10, 5, &device)).unwrap();
    let (model, _) = pruner.step(model, 1, None).unwrap();
    for row in SparsityReport::of(&model).rows {
        let keep = (0.2 * row.params as f64).round() as u64;
        assert_eq!(row.nonzeros, keep, "{}", row.path);
    }

    let mut pruner = PrunerConfig::new(PruneSchedule::OneShot {
        at: 1,
        sparsity: 0.95,
    })
    .with_params(Selection::All)
    .with_min_density(0.5)
    .init()
    .unwrap();
    let model = pruner.attach(Mlp::new(10, 10, 5, &device)).unwrap();
    let (model, _) = pruner.step(model, 1, None).unwrap();
    for row in SparsityReport::of(&model).rows {
        assert!(
            row.nonzeros as f64 >= 0.5 * row.params as f64,
            "{}",
            row.path
        );
    }
}

#[test]
fn gradual_schedule_reaches_its_final_sparsity() {
    let device = Device::flex();
    let mut pruner = PrunerConfig::new(PruneSchedule::Gradual {
        start: 10,
        end: 50,
        every: 10,
        initial_sparsity: 0.0,
        final_sparsity: 0.9,
    })
    .with_params(Selection::All)
    .init()
    .unwrap();
    let mut model = pruner.attach(Mlp::new(10, 10, 5, &device)).unwrap();
    let mut sparsities = vec![];
    for step in 0..=60u64 {
        let (m, e) = pruner.step(model, step, None).unwrap();
        model = m;
        if let Some(e) = e {
            sparsities.push(e.sparsity);
        }
    }
    assert_eq!(
        sparsities.len(),
        4,
        "step 10 has target 0: nothing removed, no event"
    );
    assert!(sparsities.windows(2).all(|w| w[0] < w[1]));
    assert!((sparsities[3] - 0.9).abs() < 0.01);
}

#[test]
fn criteria_that_need_gradients_say_so() {
    let device = Device::flex();
    let mut pruner = PrunerConfig::new(PruneSchedule::OneShot {
        at: 1,
        sparsity: 0.5,
    })
    .with_params(Selection::All)
    .with_criterion(sparse_prune::CriterionConfig::Saliency)
    .init()
    .unwrap();
    let model = pruner.attach(Mlp::new(4, 4, 2, &device)).unwrap();
    let err = pruner.step(model, 1, None).err().unwrap();
    assert_eq!(
        err.to_string(),
        "the saliency criterion scores entries with their gradients: call Pruner::step_with_grads"
    );
}

#[test]
fn config_validation_messages() {
    let err = |c: PrunerConfig| c.init().err().unwrap().to_string();
    assert_eq!(
        err(gated(0.0)),
        "invalid PrunerConfig.schedule.fraction: expected a fraction of alive entries in (0, 1), got 0"
    );
    assert_eq!(
        err(gated(0.1).with_min_density(1.5)),
        "invalid PrunerConfig.min_density: expected a fraction in [0, 1], got 1.5"
    );
    assert_eq!(
        err(PrunerConfig::new(PruneSchedule::Gated {
            every: 1,
            fraction: 0.1,
            floor: Floor::Above(90.5)
        })
        .with_params(Selection::All)),
        "invalid PrunerConfig.schedule.floor: expected an accuracy floor in [0, 1], got 90.5"
    );
}
