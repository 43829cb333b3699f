//! The paper's method through the public API, in a hand-written Burn training loop: a small
//! MLP on generated data reaches >= 90 % sparsity within 1 point of its dense accuracy.

use crate::common::{Mlp, Task};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use sparse_prune::Selection;
use sparse_prune::{Floor, PruneSchedule, PrunerConfig, SparsityReport};
use sparse_reg::{GammaSchedule, SelectiveDecayConfig};

const BATCH: usize = 50;

fn epoch(mut model: Mlp, optim: &mut ModuleOptimizer, task: &Task, device: &Device) -> Mlp {
    for b in 0..task.len() / BATCH {
        let (x, y) = task.batch(b * BATCH, BATCH, device);
        let grads = GradientsParams::from_grads(model.loss(x, y).backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    model
}

#[test]
fn hand_written_loop_reaches_90_percent_sparsity_within_one_point() {
    let device = Device::flex().autodiff();
    device.seed(7);
    let (train, val, test) = (
        Task::new(2000, 20, 1),
        Task::new(1000, 20, 2),
        Task::new(1000, 20, 3),
    );
    let steps_per_epoch = (train.len() / BATCH) as u64;

    // Dense phase.
    let mut model = Mlp::new(20, 64, 3, &device);
    let mut optim = AdamConfig::new().init();
    for _ in 0..8 {
        model = epoch(model, &mut optim, &train, &device);
    }
    let dense_val = val.accuracy(&model, &device);
    let dense_test = test.accuracy(&model, &device);
    assert!(dense_test > 0.9, "dense model trained: {dense_test}");

    // The method: selective decay around Adam + gated global magnitude pruning.
    let decay = SelectiveDecayConfig::new()
        .with_gamma(1e-3)
        .with_schedule(GammaSchedule::Linear {
            steps: steps_per_epoch,
        })
        .build(AdamConfig::new().build())
        .unwrap();
    let mut pruner = PrunerConfig::new(PruneSchedule::Gated {
        every: 20,
        fraction: 0.1,
        floor: Floor::Above(dense_val - 0.005),
    })
    .with_params(Selection::All)
    .init()
    .unwrap();
    let mut model = pruner.attach(model).unwrap();
    let mut optim = pruner.optimizer(decay, &model).unwrap();

    let mut best: Option<(f64, f64)> = None; // (sparsity, test accuracy) of the sparsest passing
    let mut step = 0u64;
    for _ in 0..60 {
        for b in 0..train.len() / BATCH {
            let (x, y) = train.batch(b * BATCH, BATCH, &device);
            let grads = GradientsParams::from_grads(model.loss(x, y).backward(), &model);
            model = optim.step(1e-2, model, grads);
            step += 1;
            let metric = pruner
                .needs_metric(step)
                .then(|| val.accuracy(&model, &device));
            // The checkpoint the metric was measured on is the model before this step's prune.
            if let Some(acc) = metric
                && acc > dense_val - 0.005
            {
                let sparsity = SparsityReport::of(&model).sparsity();
                if best.is_none_or(|(s, _)| sparsity > s) {
                    best = Some((sparsity, test.accuracy(&model, &device)));
                }
            }
            model = pruner.step(model, step, metric).unwrap().0;
        }
    }
    let (sparsity, acc) = best.expect("some checkpoint passed the floor");
    println!("dense test {dense_test:.4}; sparsest passing: sparsity {sparsity:.4}, test {acc:.4}");
    assert!(sparsity >= 0.9, "sparsity {sparsity}");
    assert!(
        acc >= dense_test - 0.01,
        "test accuracy {acc} vs dense {dense_test}"
    );
}
