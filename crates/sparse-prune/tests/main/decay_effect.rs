//! A decay that silently does nothing is caught: with gamma > 0 the weights shrink.

use crate::common::{Mlp, Task};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use sparse_reg::SelectiveDecayConfig;

fn epoch(mut model: Mlp, optim: &mut ModuleOptimizer, task: &Task, device: &Device) -> Mlp {
    for b in 0..task.len() / 50 {
        let (x, y) = task.batch(b * 50, 50, device);
        let grads = GradientsParams::from_grads(model.loss(x, y).backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    model
}

#[test]
fn the_decay_is_not_a_no_op() {
    let device = Device::flex().autodiff();
    let train = Task::new(500, 20, 1);
    let run = |gamma: f64| {
        device.seed(11);
        let model = Mlp::new(20, 64, 3, &device);
        let mut optim = SelectiveDecayConfig::new()
            .with_gamma(gamma)
            .init(AdamConfig::new().build(), &model)
            .unwrap();
        let mut model = model;
        for _ in 0..20 {
            model = epoch(model, &mut optim, &train, &device);
        }
        let w = crate::common::weights(&model).concat();
        w.iter().map(|x| (x * x) as f64).sum::<f64>()
    };
    let (plain, decayed) = (run(0.0), run(0.05));
    assert!(decayed < 0.8 * plain, "squared norm {decayed} vs {plain}");
}
