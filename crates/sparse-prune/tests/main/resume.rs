//! Model + masks + optimizer state + schedule position survive a save/load round trip: N steps,
//! save, load, N more steps equals 2N uninterrupted steps, bit for bit.

use crate::common::{Mlp, Task, weights};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use sparse_prune::Selection;
use sparse_prune::{Floor, PruneSchedule, Pruner, PrunerConfig, load_masked};
use sparse_reg::{GammaSchedule, SelectiveDecay, SelectiveDecayConfig};

fn setup() -> (SelectiveDecay<burn::optim::Adam>, Pruner) {
    let decay = SelectiveDecayConfig::new()
        .with_gamma(1e-2)
        .with_schedule(GammaSchedule::Linear { steps: 15 })
        .build(AdamConfig::new().build())
        .unwrap();
    let pruner = PrunerConfig::new(PruneSchedule::Gated {
        every: 10,
        fraction: 0.2,
        floor: Floor::Above(0.0),
    })
    .with_params(Selection::All)
    .init()
    .unwrap();
    (decay, pruner)
}

fn run(
    mut model: Mlp,
    optim: &mut ModuleOptimizer,
    pruner: &mut Pruner,
    task: &Task,
    steps: std::ops::Range<u64>,
    device: &Device,
) -> Mlp {
    for step in steps {
        let (x, y) = task.batch((step as usize * 16) % 480, 16, device);
        let grads = GradientsParams::from_grads(model.loss(x, y).backward(), &model);
        model = optim.step(1e-2, model, grads);
        let metric = pruner
            .needs_metric(step + 1)
            .then(|| task.accuracy(&model, device));
        model = pruner.step(model, step + 1, metric).unwrap().0;
    }
    model
}

#[test]
fn n_steps_save_load_n_steps_equals_2n_steps() {
    let device = Device::flex().autodiff();
    let task = Task::new(500, 8, 9);
    device.seed(3);
    let init = Mlp::new(8, 16, 3, &device);
    let dir = std::env::temp_dir().join(format!("sparse-prune-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // Uninterrupted: 2N = 50 steps (prunes at 10, 20, 30, 40, 50; resume point 25 is mid-schedule).
    let (decay, mut pruner) = setup();
    let model = pruner.attach(init.clone()).unwrap();
    let mut optim = pruner.optimizer(decay, &model).unwrap();
    let straight = run(model, &mut optim, &mut pruner, &task, 0..50, &device);
    let straight_events = pruner.events().to_vec();

    // Interrupted: 25 steps, save everything, load into fresh objects, 25 more.
    let (decay, mut pruner) = setup();
    let model = pruner.attach(init.clone()).unwrap();
    let mut optim = pruner.optimizer(decay, &model).unwrap();
    let half = run(model, &mut optim, &mut pruner, &task, 0..25, &device);
    half.save_file(dir.join("model.bpk")).unwrap();
    optim.save(dir.join("optim.bpk")).unwrap();
    pruner.save_state(dir.join("pruner.json")).unwrap();
    drop((optim, pruner));

    let (decay, mut pruner) = setup();
    let clock = decay.clock();
    let model = load_masked(
        Mlp::new(8, 16, 3, &device),
        &Selection::All,
        dir.join("model.bpk"),
    )
    .unwrap();
    let model = pruner.attach(model).unwrap(); // taken over: pruning continues
    let mut optim = pruner
        .optimizer(decay, &model)
        .unwrap()
        .load(dir.join("optim.bpk"))
        .unwrap();
    pruner.load_state(dir.join("pruner.json")).unwrap();
    assert_eq!(clock.state().step, 25, "the schedule position came back");
    let resumed = run(model, &mut optim, &mut pruner, &task, 25..50, &device);

    assert_eq!(
        pruner.events(),
        straight_events.as_slice(),
        "same prune events and metrics"
    );
    assert_eq!(
        weights(&resumed),
        weights(&straight),
        "same weights and masks"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_corrupt_pruner_state_names_the_file() {
    let dir = std::env::temp_dir().join(format!("sparse-prune-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pruner.json");
    std::fs::write(&file, "{not json").unwrap();
    let (_, mut pruner) = setup();
    let err = pruner.load_state(&file).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "{}: not a pruner state (JSON with events, skipped, clock)",
            file.display()
        )),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
