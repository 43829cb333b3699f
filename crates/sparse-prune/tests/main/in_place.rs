//! In-place masking (`Masking::InPlace`) trains the same model as forward masking, bit for
//! bit, with any optimizer; forgetting `Pruner::enforce` is an error, not a silent revival.

use crate::common::{Mlp, Task, weights};
use burn::module::{Module, ParamGroup};
use burn::optim::{
    AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, Optimizer, SgdConfig,
    momentum::MomentumConfig,
};
use burn::tensor::Device;
use sparse_prune::Selection;
use sparse_prune::{
    Amount, Floor, Masking, PruneError, PruneSchedule, Pruner, PrunerConfig, SparsityReport, fold,
};
use sparse_reg::{Coupling, FusedAdamConfig, FusedSgdConfig, SelectiveDecayConfig};

/// An optimizer for the model the pruner has attached its masks to; `fused`: built by
/// `Pruner::optimizer`, so that its step zeroes the pruned entries itself.
type MakeOptim = Box<dyn Fn(&mut Pruner, &Mlp, bool) -> ModuleOptimizer>;

/// `inner` wrapped in a `SelectiveDecay` of `config` (gamma 0: exactly `inner`).
fn build<O: Optimizer>(
    config: SelectiveDecayConfig,
    inner: O,
    pruner: &mut Pruner,
    model: &Mlp,
    fused: bool,
) -> ModuleOptimizer {
    let decay = config.build(inner).unwrap();
    if fused {
        pruner.optimizer(decay, model).unwrap()
    } else {
        decay.init_with_keep(model, vec![]).unwrap()
    }
}

fn optimizers() -> Vec<(&'static str, MakeOptim)> {
    let sgdm = || SgdConfig::new().with_momentum(Some(MomentumConfig::new()));
    let fused_sgdm = || {
        let momentum = Some(MomentumConfig::new());
        FusedSgdConfig::new()
            .with_momentum(momentum)
            .build()
            .unwrap()
    };
    let bare = || SelectiveDecayConfig::new().with_gamma(0.0);
    let decay = || SelectiveDecayConfig::new().with_gamma(1e-2);
    vec![
        (
            "sgd-momentum",
            Box::new(move |p: &mut Pruner, m: &Mlp, f| build(bare(), sgdm().build(), p, m, f)),
        ),
        (
            "adam",
            Box::new(move |p: &mut Pruner, m: &Mlp, f| {
                build(bare(), AdamConfig::new().build(), p, m, f)
            }),
        ),
        (
            "adamw",
            Box::new(move |p: &mut Pruner, m: &Mlp, f| {
                build(bare(), AdamWConfig::new().build(), p, m, f)
            }),
        ),
        (
            "fused-adam",
            Box::new(move |p: &mut Pruner, m: &Mlp, f| {
                build(bare(), FusedAdamConfig::new().build().unwrap(), p, m, f)
            }),
        ),
        (
            "adam+decay",
            Box::new(move |p: &mut Pruner, m: &Mlp, f| {
                build(decay(), AdamConfig::new().build(), p, m, f)
            }),
        ),
        (
            "adam+decoupled-decay",
            Box::new(move |p: &mut Pruner, m: &Mlp, f| {
                let config = decay().with_coupling(Coupling::Decoupled);
                build(config, AdamConfig::new().build(), p, m, f)
            }),
        ),
        (
            "fused-adam+decay",
            Box::new(move |p: &mut Pruner, m: &Mlp, f| {
                build(decay(), FusedAdamConfig::new().build().unwrap(), p, m, f)
            }),
        ),
        (
            "fused-sgd+decay",
            Box::new(move |p: &mut Pruner, m: &Mlp, f| build(decay(), fused_sgdm(), p, m, f)),
        ),
        (
            "fused-sgd+decay on the weights only",
            Box::new(move |p: &mut Pruner, m: &Mlp, f| {
                let config =
                    decay().with_params(Selection::Group(ParamGroup::from_predicate("weight")));
                build(config, fused_sgdm(), p, m, f)
            }),
        ),
    ]
}

fn pruner(masking: Masking) -> Pruner {
    PrunerConfig::new(PruneSchedule::Gated {
        every: 5,
        fraction: 0.25,
        floor: Floor::Above(0.0),
    })
    .with_params(Selection::All)
    .with_masking(masking)
    .init()
    .unwrap()
}

/// 40 steps with a prune every 5: the losses of every step and the final effective weights.
/// `fused`: the optimizer comes from `Pruner::optimizer`.
fn train(
    init: &Mlp,
    masking: Masking,
    fused: bool,
    make: &MakeOptim,
    task: &Task,
    device: &Device,
) -> (Vec<f32>, Mlp) {
    let mut pruner = pruner(masking);
    let mut model = pruner.attach(init.clone()).unwrap();
    let mut optim = make(&mut pruner, &model, fused);
    let mut losses = vec![];
    for step in 1..=40u64 {
        let (x, y) = task.batch((step as usize * 16) % 480, 16, device);
        let loss = model.loss(x, y);
        losses.push(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
        if masking == Masking::InPlace {
            model = pruner.enforce(model);
        }
        let metric = pruner
            .needs_metric(step)
            .then(|| task.accuracy(&model, device));
        model = pruner.step(model, step, metric).unwrap().0;
    }
    assert_eq!(pruner.events().len(), 8);
    (losses, model)
}

#[test]
fn in_place_masking_trains_the_same_model_bit_for_bit() {
    let device = Device::flex().autodiff();
    let task = Task::new(500, 8, 5);
    let init = Mlp::new(8, 16, 3, &device);
    for (name, make) in optimizers() {
        let (loss_f, model_f) = train(&init, Masking::Forward, false, &make, &task, &device);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for fused in [false, true] {
            let name = format!("{name} (optimizer from Pruner::optimizer: {fused})");
            let (loss_i, model_i) = train(&init, Masking::InPlace, fused, &make, &task, &device);
            assert_eq!(bits(&loss_f), bits(&loss_i), "{name}: the losses differ");
            // Effective weights: equal (a pruned entry is +0 in place, +-0 through the multiply).
            let (wf, wi) = (
                weights(&fold(model_f.clone())),
                weights(&fold(model_i.clone())),
            );
            assert_eq!(wf, wi, "{name}: the effective weights differ");
            // In place, the stored bases themselves hold the zeros.
            let report = SparsityReport::of(&model_i);
            let stored_zeros: usize = weights(&model_i)
                .iter()
                .map(|w| w.iter().filter(|x| **x == 0.0).count())
                .sum();
            assert!(report.sparsity() > 0.85, "{name}: {}", report.sparsity());
            assert!(
                stored_zeros as u64 >= report.params() - report.nonzeros(),
                "{name}"
            );
        }
    }
}

#[test]
fn the_optimizer_from_the_pruner_zeroes_the_pruned_entries_in_its_own_step() {
    let device = Device::flex().autodiff();
    let task = Task::new(200, 8, 5);
    for (name, make) in optimizers() {
        let mut pruner = pruner(Masking::InPlace);
        let model = pruner.attach(Mlp::new(8, 16, 3, &device)).unwrap();
        let mut optim = make(&mut pruner, &model, true);
        let model = pruner.enforce(model);
        let (model, _) = pruner.prune(model, 0, Amount::Sparsity(0.5), None).unwrap();
        let mut model = pruner.enforce(model); // the slots learn the mask
        let pruned = weights(&model);
        for step in 0..3 {
            let (x, y) = task.batch(step * 16, 16, &device);
            let grads = GradientsParams::from_grads(model.loss(x, y).backward(), &model);
            model = optim.step(1e-2, model, grads);
            // Before `enforce`: the bases the masks prune already hold 0.
            let stepped = weights(&model);
            for (before, after) in pruned.iter().zip(&stepped) {
                for (b, a) in before.iter().zip(after) {
                    if *b == 0.0 {
                        assert_eq!(*a, 0.0, "{name}");
                    }
                }
            }
            assert_ne!(stepped, pruned, "{name}: the step moved the alive entries");
            model = pruner.enforce(model);
        }
    }
}

#[test]
fn pruner_optimizer_needs_masks() {
    let device = Device::flex().autodiff();
    let mut pruner = pruner(Masking::InPlace);
    let decay = SelectiveDecayConfig::new()
        .build(AdamConfig::new().build())
        .unwrap();
    let result = pruner.optimizer(decay, &Mlp::new(8, 16, 3, &device));
    assert!(matches!(result, Err(PruneError::NoMasks)));
}

#[test]
fn a_step_without_enforce_is_an_error_that_says_what_to_call() {
    let device = Device::flex().autodiff();
    let task = Task::new(100, 8, 5);
    let mut pruner = pruner(Masking::InPlace);
    let model = pruner.attach(Mlp::new(8, 16, 3, &device)).unwrap();
    let mut optim = SgdConfig::new().init();
    let (x, y) = task.batch(0, 16, &device);
    let grads = GradientsParams::from_grads(model.loss(x, y).backward(), &model);
    let model = optim.step(1e-2, model, grads);
    let err = pruner.step(model, 1, None).expect_err("an error");
    assert!(matches!(err, PruneError::NotEnforced { step: 1 }));
    assert_eq!(
        err.to_string(),
        "PrunerConfig.masking is InPlace but Pruner::enforce was not called after the optimizer \
         step before Pruner::step at step 1: call `model = pruner.enforce(model)` right after \
         every optimizer step (or use Masking::Forward)"
    );
}

#[test]
fn in_place_masks_survive_save_and_load() {
    let device = Device::flex().autodiff();
    let task = Task::new(500, 8, 5);
    let make: MakeOptim = Box::new(|_: &mut Pruner, _: &Mlp, _| AdamConfig::new().init());
    let (_, model) = train(
        &Mlp::new(8, 16, 3, &device),
        Masking::InPlace,
        false,
        &make,
        &task,
        &device,
    );
    let file = std::env::temp_dir().join(format!("sparse-prune-inplace-{}", std::process::id()));
    model.clone().save_file(&file).unwrap();
    let fresh = pruner(Masking::InPlace)
        .attach(Mlp::new(8, 16, 3, &device))
        .unwrap();
    let loaded = fresh.load_file(&file);
    assert_eq!(weights(&fold(loaded.clone())), weights(&fold(model)));
    assert_eq!(
        SparsityReport::of(&loaded).nonzeros(),
        pruner_alive_after_8_events()
    );
    let _ = std::fs::remove_file(file.with_extension("bpk"));
}

/// The alive count after 8 events that each remove a quarter of the 195 entries left alive.
fn pruner_alive_after_8_events() -> u64 {
    let mut alive = (8 * 16 + 16 + 16 * 3 + 3) as f64;
    for _ in 0..8 {
        alive -= (0.25 * alive).round();
    }
    alive as u64
}

#[test]
fn the_masking_round_trips_through_a_saved_config() {
    let config = pruner_config(Masking::InPlace);
    let json = serde_json::to_value(&config).unwrap();
    assert_eq!(json["masking"], "InPlace");
    let bytes = serde_json::to_vec(&json).unwrap();
    let back = <PrunerConfig as burn::config::Config>::load_binary(&bytes).unwrap();
    assert_eq!(back.masking, Masking::InPlace);
    // Burn's `Config` requires every field in a file, defaults included: a file from before
    // the field existed is refused by name rather than read with a guess.
    let mut old = json;
    old.as_object_mut().unwrap().remove("masking");
    let bytes = serde_json::to_vec(&old).unwrap();
    let err = <PrunerConfig as burn::config::Config>::load_binary(&bytes).unwrap_err();
    assert!(
        format!("{err:?}").contains("missing field `masking`"),
        "{err:?}"
    );
}

fn pruner_config(masking: Masking) -> PrunerConfig {
    PrunerConfig::new(PruneSchedule::OneShot {
        at: 1,
        sparsity: 0.5,
    })
    .with_params(Selection::All)
    .with_masking(masking)
}
