//! Masks as module state: exact zeros, never revived, saved and loaded with the model.

use crate::common::{Mlp, Task, weights};
use burn::module::Module;
use burn::optim::{
    AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig, momentum::MomentumConfig,
};
use burn::tensor::Device;
use sparse_prune::Selection;
use sparse_prune::{
    Amount, PruneError, PruneSchedule, PrunerConfig, SparsityReport, count_masks, fold, load_masked,
};
use sparse_reg::SelectiveDecayConfig;

fn pruned_mlp(device: &Device) -> (Mlp, Vec<Vec<bool>>) {
    let model = Mlp::new(8, 16, 3, device);
    let mut pruner = PrunerConfig::new(PruneSchedule::OneShot {
        at: 0,
        sparsity: 0.6,
    })
    .with_params(Selection::All)
    .init()
    .unwrap();
    let model = pruner.attach(model).unwrap();
    let (model, event) = pruner.prune(model, 0, Amount::Sparsity(0.6), None).unwrap();
    assert!(event.removed > 0);
    let zeros = weights(&model)
        .iter()
        .map(|w| w.iter().map(|x| *x == 0.0).collect())
        .collect();
    (model, zeros)
}

type MakeOptim = Box<dyn Fn(&Mlp) -> ModuleOptimizer>;

fn optimizers() -> Vec<(&'static str, MakeOptim)> {
    let sgdm = || SgdConfig::new().with_momentum(Some(MomentumConfig::new().with_dampening(0.0)));
    let decay = || SelectiveDecayConfig::new().with_gamma(1e-2);
    vec![
        ("sgd-momentum", Box::new(move |_: &Mlp| sgdm().init())),
        ("adam", Box::new(|_: &Mlp| AdamConfig::new().init())),
        ("adamw", Box::new(|_: &Mlp| AdamWConfig::new().init())),
        (
            "sgd-momentum+decay",
            Box::new(move |m: &Mlp| decay().init(sgdm().build(), m).unwrap()),
        ),
        (
            "adam+decay",
            Box::new(move |m: &Mlp| decay().init(AdamConfig::new().build(), m).unwrap()),
        ),
        (
            "adamw+decay",
            Box::new(move |m: &Mlp| decay().init(AdamWConfig::new().build(), m).unwrap()),
        ),
    ]
}

fn train(
    mut model: Mlp,
    optim: &mut ModuleOptimizer,
    task: &Task,
    steps: usize,
    device: &Device,
) -> Mlp {
    for s in 0..steps {
        let (x, y) = task.batch((s * 16) % (task.len() - 16), 16, device);
        let loss = model.loss(x, y);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    model
}

fn assert_still_zero(model: &Mlp, zeros: &[Vec<bool>], what: &str) {
    for (t, (w, z)) in weights(model).iter().zip(zeros).enumerate() {
        for (i, (w, z)) in w.iter().zip(z).enumerate() {
            if *z {
                assert_eq!(*w, 0.0, "{what}: tensor {t} entry {i} revived");
            }
        }
    }
}

#[test]
fn no_optimizer_revives_a_pruned_entry_even_across_save_and_load() {
    let device = Device::flex().autodiff();
    let task = Task::new(256, 8, 3);
    let dir = std::env::temp_dir().join(format!("sparse-prune-revival-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, make) in optimizers() {
        let (model, zeros) = pruned_mlp(&device);
        let mut optim = make(&model);
        let model = train(model, &mut optim, &task, 200, &device);
        assert_still_zero(&model, &zeros, name);
        // The weights did train: the alive ones moved.
        let file = dir.join(format!("{name}.bpk"));
        model.clone().save_file(&file).unwrap();
        optim.save(dir.join(format!("{name}.optim"))).unwrap();
        let loaded = load_masked(Mlp::new(8, 16, 3, &device), &Selection::All, &file).unwrap();
        assert_eq!(
            weights(&loaded),
            weights(&model),
            "{name}: reload changed the weights"
        );
        let mut optim = make(&loaded)
            .load(dir.join(format!("{name}.optim")))
            .unwrap();
        let model = train(loaded, &mut optim, &task, 50, &device);
        assert_still_zero(&model, &zeros, &format!("{name} after reload"));
        // Folding gives plain weights with stored zeros.
        let folded = fold(model.valid());
        assert_eq!(count_masks(&folded), 0);
        assert_still_zero(&folded, &zeros, &format!("{name} folded"));
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn checkpoint_mismatches_are_clear_errors() {
    let device = Device::flex();
    let dir = std::env::temp_dir().join(format!("sparse-prune-mismatch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dense = dir.join("dense.bpk");
    Mlp::new(8, 16, 3, &device).save_file(&dense).unwrap();
    let err = load_masked(Mlp::new(8, 16, 3, &device), &Selection::All, &dense).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "{}: cannot load it as a masked checkpoint",
            dense.display()
        )),
        "{msg}"
    );

    let masked = dir.join("masked.bpk");
    let m = all_pruner().attach(Mlp::new(8, 16, 3, &device)).unwrap();
    m.save_file(&masked).unwrap();
    assert!(
        Mlp::new(8, 16, 3, &device).try_load_file(&masked).is_err(),
        "masked into unmasked"
    );
    let wrong_shape =
        load_masked(Mlp::new(8, 32, 3, &device), &Selection::All, &masked).unwrap_err();
    assert!(matches!(wrong_shape, PruneError::File { .. }));
    let missing = load_masked(
        Mlp::new(8, 16, 3, &device),
        &Selection::All,
        dir.join("nope.bpk"),
    )
    .unwrap_err();
    assert!(missing.to_string().contains("nope.bpk"));
    std::fs::remove_dir_all(&dir).ok();
}

/// A pruner with the paper's selection (every float parameter).
fn all_pruner() -> sparse_prune::Pruner {
    PrunerConfig::new(PruneSchedule::OneShot {
        at: 1,
        sparsity: 0.5,
    })
    .with_params(Selection::All)
    .init()
    .unwrap()
}

#[test]
fn attaching_twice_takes_the_masks_over_and_selecting_nothing_is_an_error() {
    let device = Device::flex();
    let (model, zeros) = pruned_mlp(&device);
    let before = SparsityReport::of(&model);
    let again = all_pruner().attach(model).unwrap();
    assert_eq!(count_masks(&again), 4, "the same masks, not a second set");
    assert_eq!(SparsityReport::of(&again), before);
    let pruned: usize = zeros.iter().map(|z| z.iter().filter(|x| **x).count()).sum();
    assert_eq!(before.params() - before.nonzeros(), pruned as u64);
    let group = burn::module::ParamGroup::from_regex("^conv").unwrap();
    let err = PrunerConfig::new(PruneSchedule::OneShot {
        at: 1,
        sparsity: 0.5,
    })
    .with_params(Selection::Group(group))
    .init()
    .unwrap()
    .attach(Mlp::new(4, 4, 2, &device))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid PrunerConfig.params: the selection matches no float parameter of the model (its \
         parameters: fc1.weight, fc1.bias, fc2.weight, fc2.bias)"
    );
}

#[test]
fn report_counts_masked_and_unmasked_parameters() {
    let device = Device::flex();
    let group = burn::module::ParamGroup::from_regex(r"\.weight$").unwrap();
    let mut pruner = PrunerConfig::new(PruneSchedule::OneShot {
        at: 0,
        sparsity: 0.5,
    })
    .with_params(Selection::Group(group))
    .init()
    .unwrap();
    let model = pruner.attach(Mlp::new(10, 10, 2, &device)).unwrap();
    let (model, event) = pruner.step(model, 0, None).unwrap();
    let event = event.unwrap();
    assert_eq!(event.total, 120);
    assert_eq!(event.alive, 60);
    let report = SparsityReport::of(&model);
    let rows: Vec<(&str, bool)> = report
        .rows
        .iter()
        .map(|r| (r.path.as_str(), r.masked))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("fc1.weight", true),
            ("fc1.bias", false),
            ("fc2.weight", true),
            ("fc2.bias", false)
        ]
    );
    assert_eq!(
        report.params(),
        report.rows.iter().map(|r| r.params).sum::<u64>()
    );
    assert_eq!(report.params(), 132);
    let text = report.to_string();
    assert!(text.contains("fc1.weight") && text.contains("(not masked)") && text.contains("total"));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["params"], 132);
    assert_eq!(json["rows"].as_array().unwrap().len(), 4);
}

#[test]
fn batch_norm_running_statistics_are_neither_masked_nor_counted() {
    let device = Device::flex().autodiff();
    let bn = burn::nn::BatchNormConfig::new(4).init(&device);
    // Burn visits running_mean / running_var like float parameters; they are buffers.
    let bn = all_pruner().attach(bn).unwrap();
    let n = count_masks(&bn);
    assert_eq!(n, 2, "gamma and beta only");
    let report = SparsityReport::of(&bn);
    assert_eq!(report.params(), 8);
    let mut pruner = PrunerConfig::new(PruneSchedule::OneShot {
        at: 0,
        sparsity: 0.5,
    })
    .with_params(Selection::All)
    .init()
    .unwrap();
    let bn = fold(bn);
    let bn = pruner.attach(bn).unwrap();
    let (bn, event) = pruner.prune(bn, 0, Amount::Sparsity(0.5), None).unwrap();
    assert_eq!(event.removed, 4);
    assert_eq!(
        bn.running_var
            .value()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap(),
        vec![1.0; 4]
    );
}

/// The forward pass caches each mask's float keep-mask by the mask's id: every way a mask
/// changes (prune events, loading a checkpoint into a model already used, clones that went
/// separate ways, the inner device of `valid()`) must give the outputs a model built fresh
/// from the same state gives.
#[test]
fn the_cached_keep_mask_follows_every_change_of_the_masks() {
    let device = Device::flex().autodiff();
    let task = Task::new(64, 8, 3);
    let (x, _) = task.batch(0, 64, &device);
    let out = |m: &Mlp| {
        m.forward(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let dir = std::env::temp_dir().join(format!("sparse-prune-keep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A model as saved and loaded into a fresh one (whose masks have never been applied).
    let fresh = |m: &Mlp, name: &str| {
        let file = dir.join(format!("{name}.bpk"));
        m.clone().save_file(&file).unwrap();
        let loaded = load_masked(Mlp::new(8, 16, 3, &device), &Selection::All, &file).unwrap();
        (out(&loaded), file)
    };
    let mut pruner = PrunerConfig::new(PruneSchedule::OneShot {
        at: 0,
        sparsity: 0.3,
    })
    .with_params(Selection::All)
    .init()
    .unwrap();
    let model = pruner.attach(Mlp::new(8, 16, 3, &device)).unwrap();
    let dense = out(&model);
    let (model, _) = pruner.prune(model, 0, Amount::Sparsity(0.3), None).unwrap();
    let at_30 = out(&model);
    assert_ne!(at_30, dense, "the first prune changed nothing");
    let (want_30, file_30) = fresh(&model, "s30");
    assert_eq!(at_30, want_30, "after the first prune");
    // A clone shares the cache; the two then go separate ways.
    let before = model.clone();
    let (model, _) = pruner.prune(model, 1, Amount::Sparsity(0.7), None).unwrap();
    let at_70 = out(&model);
    assert_ne!(at_70, at_30, "the second prune changed nothing");
    assert_eq!(at_70, fresh(&model, "s70").0, "after the second prune");
    assert_eq!(
        out(&before),
        at_30,
        "the clone taken before the second prune"
    );
    assert_eq!(out(&model), at_70, "again after the clone's pass");
    // The inner device (evaluation) and back.
    let valid = model.valid();
    let on_inner = valid
        .forward(x.clone().inner())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(on_inner, at_70, "on the inner device");
    assert_eq!(out(&model), at_70, "back on the autodiff device");
    // Loading an earlier checkpoint into this used model (not a fresh one).
    let reloaded = model.try_load_file(&file_30).unwrap();
    assert_eq!(
        out(&reloaded),
        at_30,
        "an earlier checkpoint loaded into a used model"
    );
    std::fs::remove_dir_all(&dir).ok();
}
