//! The method inside burn-train's `Learner`: SelectiveDecay is the Learner's optimizer and a
//! PruningHook runs the gated schedule from `TrainStep::optimize`. The masks act in place and
//! the optimizer comes from `Pruner::optimizer`: its step zeroes the pruned weights, the hook's
//! `enforce` checks that it did.

mod common;

use std::sync::{Arc, Mutex};

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::lr_scheduler::constant::ConstantLr;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn::train::logger::InMemoryMetricLogger;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::renderer::CliMetricsRenderer;
use burn::train::{
    ClassificationOutput, InferenceStep, Learner, SupervisedTraining, TrainOutput, TrainStep,
};
use common::Task;
use sparse_prune::{Floor, Masking, PruneSchedule, PrunerConfig, PruningHook, SparsityReport};
use sparse_reg::{FusedAdamConfig, GammaSchedule, SelectiveDecayConfig};

#[derive(Module, Debug)]
struct Net {
    fc1: Linear,
    fc2: Linear,
    #[module(skip)]
    pruning: Option<PruningHook<Net>>,
}

impl Net {
    fn logits(&self, x: Tensor<2>) -> Tensor<2> {
        self.fc2
            .forward(burn::tensor::activation::relu(self.fc1.forward(x)))
    }

    fn classify(&self, b: Batch) -> ClassificationOutput {
        let logits = self.logits(b.x);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), b.y.clone());
        ClassificationOutput::new(loss, logits, b.y)
    }
}

impl TrainStep for Net {
    type Input = Batch;
    type Output = ClassificationOutput;

    fn step(&self, b: Batch) -> TrainOutput<ClassificationOutput> {
        let item = self.classify(b);
        TrainOutput::new(self, item.loss.backward(), item)
    }

    // The one line that plugs pruning into the Learner.
    fn optimize(
        self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        grads: GradientsParams,
    ) -> Self {
        let hook = self.pruning.clone();
        let model = optim.step(lr, self, grads);
        match hook {
            Some(hook) => hook.after_step(model),
            None => model,
        }
    }
}

impl InferenceStep for Net {
    type Input = Batch;
    type Output = ClassificationOutput;

    fn step(&self, b: Batch) -> ClassificationOutput {
        self.classify(b)
    }
}

#[derive(Clone, Debug)]
struct Batch {
    x: Tensor<2>,
    y: Tensor<1, Int>,
}

#[derive(Clone)]
struct Rows;

impl Batcher<(Vec<f32>, i64), Batch> for Rows {
    fn batch(&self, items: Vec<(Vec<f32>, i64)>, device: &Device) -> Batch {
        let (n, d) = (items.len(), items[0].0.len());
        let x: Vec<f32> = items.iter().flat_map(|(x, _)| x.clone()).collect();
        let y: Vec<i64> = items.iter().map(|(_, y)| *y).collect();
        Batch {
            x: Tensor::from_data(TensorData::new(x, [n, d]), device),
            y: Tensor::from_data(TensorData::new(y, [n]), device),
        }
    }
}

fn items(t: &Task) -> Vec<(Vec<f32>, i64)> {
    (0..t.len())
        .map(|i| (t.x[i * t.inputs..(i + 1) * t.inputs].to_vec(), t.y[i]))
        .collect()
}

fn accuracy(model: &Net, t: &Task, device: &Device) -> f64 {
    let b = Rows.batch(items(t), device);
    let pred = model.logits(b.x).argmax(1).flatten::<1>(0, 1);
    let correct: i64 = pred.equal(b.y).int().sum().into_scalar();
    correct as f64 / t.len() as f64
}

fn fit(
    model: Net,
    optim: ModuleOptimizer,
    train: &Task,
    val: &Task,
    epochs: usize,
    dir: &std::path::Path,
) -> Net {
    let dl_train = DataLoaderBuilder::new(Rows)
        .batch_size(50)
        .shuffle(1)
        .build(InMemDataset::new(items(train)));
    let dl_valid = DataLoaderBuilder::new(Rows)
        .batch_size(250)
        .build(InMemDataset::new(items(val)));
    let result = SupervisedTraining::new(dir, dl_train, dl_valid)
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .with_metric_logger(InMemoryMetricLogger::new())
        .renderer(Box::new(CliMetricsRenderer::new()))
        .with_application_logger(None)
        .num_epochs(epochs)
        .launch(Learner::new(model, optim, ConstantLr::new(1e-2)));
    assert!(result.error.is_none(), "{:?}", result.error);
    result.model
}

#[test]
fn learner_reaches_90_percent_sparsity_within_one_point() {
    let device = Device::flex().autodiff();
    device.seed(5);
    let (train, val, test) = (
        Task::new(2000, 20, 1),
        Task::new(1000, 20, 2),
        Task::new(1000, 20, 3),
    );
    let dir = std::env::temp_dir().join(format!("sparse-prune-learner-{}", std::process::id()));
    let plain = Device::flex();

    // Dense phase: a plain Learner run.
    let model = Net {
        fc1: LinearConfig::new(20, 64).init(&device),
        fc2: LinearConfig::new(64, 3).init(&device),
        pruning: None,
    };
    let dense = fit(model, AdamConfig::new().init(), &train, &val, 8, &dir);
    let dense_val = accuracy(&dense, &val, &plain);
    let dense_test = accuracy(&dense, &test, &plain);
    assert!(dense_test > 0.9, "dense model trained: {dense_test}");

    // The method: the decay is the Learner's optimizer, the hook prunes from `optimize`.
    let floor = dense_val - 0.01;
    let decay = SelectiveDecayConfig::new()
        .with_gamma(1e-3)
        .with_schedule(GammaSchedule::Linear { steps: 40 })
        .build(FusedAdamConfig::new().build().unwrap())
        .unwrap();
    let mut pruner = PrunerConfig::new(PruneSchedule::Gated {
        every: 20,
        fraction: 0.1,
        floor: Floor::AtLeast(floor),
    })
    .with_masking(Masking::InPlace)
    .init()
    .unwrap()
    .with_decay_clock(decay.clock());
    let model = pruner.attach(dense.train()).unwrap();
    let optim = pruner.optimizer(decay, &model).unwrap();
    // The evaluator measures the gate and keeps the sparsest model above the floor.
    let best: Arc<Mutex<Option<(f64, Net)>>> = Arc::default();
    let (val2, best2, plain2) = (Task::new(1000, 20, 2), best.clone(), plain.clone());
    let hook = PruningHook::new(pruner, move |m: &Net| {
        let acc = accuracy(m, &val2, &plain2);
        if acc > floor {
            let s = SparsityReport::of(m).sparsity();
            let mut best = best2.lock().unwrap();
            if best.as_ref().is_none_or(|(b, _)| s > *b) {
                *best = Some((s, m.clone()));
            }
        }
        acc
    });
    let model = Net {
        pruning: Some(hook.clone()),
        ..model
    };
    let last = fit(model, optim, &train, &val, 40, &dir);
    assert!(hook.error().is_none(), "{:?}", hook.error());
    assert!(
        hook.events().len() > 10,
        "the Learner drove the pruner: {} events",
        hook.events().len()
    );
    assert_eq!(hook.step(), 40 * 40, "one count per optimizer step");
    assert!(SparsityReport::of(&last).sparsity() > 0.5);

    let (sparsity, best) = best
        .lock()
        .unwrap()
        .take()
        .expect("a model passed the floor");
    let acc = accuracy(&best, &test, &plain);
    println!(
        "Learner: dense test {dense_test:.4}; sparsest passing {sparsity:.4} at test {acc:.4}"
    );
    assert!(sparsity >= 0.9, "sparsity {sparsity}");
    assert!(
        acc >= dense_test - 0.01,
        "test accuracy {acc} vs dense {dense_test}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
