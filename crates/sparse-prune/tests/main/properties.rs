//! Properties over random small models, random prune sequences, random optimizers and random
//! step counts (proptest): masked entries stay exactly zero, the alive count only decreases,
//! and a report's totals are the sums of its rows.

use crate::common::{Mlp, Task, weights};
use burn::optim::{
    AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, RmsPropConfig, SgdConfig,
    momentum::MomentumConfig,
};
use burn::tensor::Device;
use proptest::prelude::*;
use sparse_prune::Selection;
use sparse_prune::{Amount, PruneSchedule, PrunerConfig, SparsityReport};
use sparse_reg::SelectiveDecayConfig;

/// Optimizer `kind` (0-4: SGD, SGD-momentum, Adam, AdamW, RMSProp), wrapped in the selective
/// decay when `decay`.
fn optimizer(kind: u8, decay: bool, model: &Mlp) -> ModuleOptimizer {
    let d = SelectiveDecayConfig::new().with_gamma(1e-2);
    let sgdm = || SgdConfig::new().with_momentum(Some(MomentumConfig::new().with_dampening(0.0)));
    match (kind, decay) {
        (0, false) => SgdConfig::new().init(),
        (0, true) => d.init(SgdConfig::new().build(), model).unwrap(),
        (1, false) => sgdm().init(),
        (1, true) => d.init(sgdm().build(), model).unwrap(),
        (2, false) => AdamConfig::new().init(),
        (2, true) => d.init(AdamConfig::new().build(), model).unwrap(),
        (3, false) => AdamWConfig::new().init(),
        (3, true) => d.init(AdamWConfig::new().build(), model).unwrap(),
        (_, false) => RmsPropConfig::new().init(),
        (_, true) => d.init(RmsPropConfig::new().build(), model).unwrap(),
    }
}

fn zeros(model: &Mlp) -> Vec<Vec<bool>> {
    weights(model)
        .iter()
        .map(|w| w.iter().map(|x| *x == 0.0).collect())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn pruned_entries_stay_zero_and_the_alive_count_never_grows(
        inputs in 4usize..10,
        hidden in 1usize..12,
        kind in 0u8..5,
        decay in any::<bool>(),
        fractions in prop::collection::vec(0.05f64..0.8, 1..4),
        steps in 1usize..8,
        seed in 0u64..1000,
    ) {
        let device = Device::flex().autodiff();
        device.seed(seed);
        let task = Task::new(64, inputs, seed);
        let mut pruner = PrunerConfig::new(PruneSchedule::OneShot { at: 0, sparsity: 0.5 }).with_params(Selection::All)
            .init()
            .unwrap();
        let mut model = pruner.attach(Mlp::new(inputs, hidden, 3, &device)).unwrap();
        let mut optim = optimizer(kind, decay, &model);
        let mut alive = SparsityReport::of(&model).nonzeros();
        for (round, fraction) in fractions.iter().enumerate() {
            let (m, _) = pruner
                .prune(model, round as u64, Amount::FractionOfAlive(*fraction), None)
                .unwrap();
            model = m;
            let pruned = zeros(&model);
            for s in 0..steps {
                let (x, y) = task.batch((s * 8) % 56, 8, &device);
                let grads = GradientsParams::from_grads(model.loss(x, y).backward(), &model);
                model = optim.step(1e-2, model, grads);
            }
            for (w, z) in weights(&model).iter().zip(&pruned) {
                for (w, z) in w.iter().zip(z) {
                    prop_assert!(!*z || *w == 0.0, "a pruned entry came back: {w}");
                }
            }
            let report = SparsityReport::of(&model);
            prop_assert!(report.nonzeros() <= alive, "alive grew: {} > {alive}", report.nonzeros());
            alive = report.nonzeros();
            prop_assert_eq!(report.params(), report.rows.iter().map(|r| r.params).sum::<u64>());
            prop_assert_eq!(
                report.nonzeros(),
                report.rows.iter().map(|r| r.nonzeros).sum::<u64>()
            );
            prop_assert_eq!(
                report.params(),
                ((inputs + 1) * hidden + (hidden + 1) * 3) as u64
            );
        }
    }
}
