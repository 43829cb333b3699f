//! `cargo xtask bench flex-ops`: ResNet-20's training step on flex as shipped (the per-image
//! convolution `sparse_models::conv2d` and the fused `sparse_models::batch_norm`) against the
//! same model through Burn's `Conv2d` and `BatchNorm`, and against Burn's `BatchNorm` alone,
//! with the method (SGD with momentum + selective decay + masks); repetitions interleaved in one
//! process, the same weights and batch for every contestant.

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::activation::relu;
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Distribution, Int, Tensor};
use serde_json::json;
use sparse_models::{ImageClassifier, ResNet, ResNetConfig};
use sparse_reg::SelectiveDecayConfig;

use crate::overhead::{bench_threads, half_pruned, median, min_max};

/// Which ops a contestant's ResNet-20 runs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ops {
    /// `sparse_models::conv2d` and `sparse_models::batch_norm`, as the model ships.
    Shipped,
    /// The shipped convolutions, Burn's `BatchNorm::forward`.
    BurnBatchNorm,
    /// Burn's `Conv2d::forward` and `BatchNorm::forward`.
    Burn,
}

/// ResNet-20 through the chosen ops.
#[derive(Module, Debug)]
struct Net {
    net: ResNet,
    #[module(skip)]
    ops: Ops,
}

impl ImageClassifier for Net {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        if self.ops == Ops::Shipped {
            return self.net.forward(images);
        }
        let conv = |c: &burn::nn::conv::Conv2d, x| match self.ops {
            Ops::Burn => c.forward(x),
            _ => sparse_models::conv2d(c, x),
        };
        let bn = |b: &burn::nn::BatchNorm, x| b.forward(x);
        let n = &self.net;
        let mut x = relu(bn(&n.stem_bn, conv(&n.stem, images)));
        for b in &n.blocks {
            let y = relu(bn(&b.bn1, conv(&b.conv1, x.clone())));
            let y = bn(&b.bn2, conv(&b.conv2, y));
            let skip = match &b.shortcut {
                Some(s) => bn(&s.bn, conv(&s.conv, x)),
                None => x,
            };
            x = relu(y + skip);
        }
        n.head.forward(adaptive_avg_pool2d(x, [1, 1]).flatten(1, 3))
    }
}

/// One contestant: its model, optimizer and the shared batch.
struct Lane {
    model: Option<Net>,
    optim: ModuleOptimizer,
}

impl Lane {
    fn new(device: &Device, ops: Ops) -> Self {
        device.seed(11);
        let net = ResNetConfig::new(20).init(device).expect("ResNet-20");
        let (model, _) = half_pruned(Net { net, ops }, sparse_prune::Masking::Forward);
        let inner = SgdConfig::new()
            .with_momentum(Some(burn::optim::momentum::MomentumConfig::new()))
            .build();
        let optim = SelectiveDecayConfig::new()
            .with_gamma(1e-3)
            .init(inner, &model)
            .expect("valid decay");
        Self {
            model: Some(model),
            optim,
        }
    }

    fn train_steps(&mut self, x: &Tensor<4>, y: &Tensor<1, Int>, steps: usize) -> f64 {
        let device = x.device();
        let t = Instant::now();
        for _ in 0..steps {
            let model = self.model.take().expect("a model");
            let loss = CrossEntropyLossConfig::new()
                .init(&device)
                .forward(model.logits(x.clone()), y.clone());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            self.model = Some(self.optim.step(0.05, model, grads));
        }
        device.sync().expect("device sync");
        t.elapsed().as_secs_f64() * 1e3 / steps as f64
    }
}

/// Run the benchmark; returns its JSON line (also printed).
pub fn run(quick: bool) -> Vec<serde_json::Value> {
    let (reps, steps, batch) = if quick { (2, 1, 8) } else { (5, 2, 128) };
    let device = Device::flex().autodiff();
    device.seed(7);
    let x = Tensor::<4>::random([batch, 3, 32, 32], Distribution::Default, &device);
    let y = Tensor::<1>::random([batch], Distribution::Uniform(0.0, 10.0), &device).int();
    let mut lanes = [Ops::Shipped, Ops::BurnBatchNorm, Ops::Burn].map(|o| Lane::new(&device, o));
    for lane in lanes.iter_mut() {
        lane.train_steps(&x, &y, 1);
    }
    let mut times = [vec![], vec![], vec![]];
    for _ in 0..reps {
        for (lane, t) in lanes.iter_mut().zip(times.iter_mut()) {
            t.push(lane.train_steps(&x, &y, steps));
        }
    }
    let over = |t: &[f64]| -> Vec<f64> { t.iter().zip(&times[0]).map(|(b, s)| b / s).collect() };
    let (r_bn, r_burn) = (over(&times[1]), over(&times[2]));
    let line = json!({
        "bench": "flex-ops",
        "model": "resnet20",
        "optimizer": "sgd-momentum + selective decay + masks (50 %)",
        "batch": batch,
        "threads": bench_threads(),
        "reps": reps,
        "steps_per_rep": steps,
        "shipped_train_ms": median(times[0].clone()),
        "burn_bn_train_ms": median(times[1].clone()),
        "burn_bn_over_shipped": median(r_bn.clone()),
        "burn_bn_over_shipped_min_max": min_max(&r_bn),
        "burn_ops_train_ms": median(times[2].clone()),
        "burn_ops_over_shipped": median(r_burn.clone()),
        "burn_ops_over_shipped_min_max": min_max(&r_burn),
    });
    println!("{line}");
    vec![line]
}
