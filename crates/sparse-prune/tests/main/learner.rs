//! The method inside burn-train's `Learner`: the model is wrapped in `Sparse`, whose
//! `TrainStep::optimize` runs `Sparsity::step` (the user's model keeps burn-train's default
//! `optimize`). The masks act in place; the best model comes back from the wrapper.

use crate::common::Task;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::lr_scheduler::constant::ConstantLr;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn::train::logger::InMemoryMetricLogger;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::renderer::CliMetricsRenderer;
use burn::train::{
    ClassificationOutput, InferenceStep, Learner, LearnerModel, SupervisedTraining, TrainOutput,
    TrainStep,
};
use sparse_prune::{
    Floor, Masking, PruneSchedule, PrunerConfig, Selection, Sparse, SparsityConfig, SparsityReport,
};
use sparse_reg::{FusedAdamConfig, GammaSchedule, SelectiveDecayConfig};

#[derive(Module, Debug)]
struct Net {
    fc1: Linear,
    fc2: Linear,
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

fn fit<M>(
    model: M,
    optim: ModuleOptimizer,
    train: &Task,
    val: &Task,
    epochs: usize,
    dir: &std::path::Path,
) -> M
where
    M: LearnerModel
        + TrainStep<Input = Batch, Output = ClassificationOutput>
        + InferenceStep<Input = Batch, Output = ClassificationOutput>,
{
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
    };
    let dense = fit(model, AdamConfig::new().init(), &train, &val, 8, &dir);
    let dense_val = accuracy(&dense, &val, &plain);
    let dense_test = accuracy(&dense, &test, &plain);
    assert!(dense_test > 0.9, "dense model trained: {dense_test}");

    // The method: three lines (the configuration, init, the wrapper).
    let floor = dense_val - 0.01;
    let schedule = PruneSchedule::Gated {
        every: 20,
        fraction: 0.1,
        floor: Floor::Above(floor),
    };
    let config = SparsityConfig::new(PrunerConfig::new(schedule).with_masking(Masking::InPlace))
        .with_decay(SelectiveDecayConfig::new().with_schedule(GammaSchedule::Linear { steps: 40 }))
        .with_keep_best(true)
        .select(Selection::All);
    let (model, optim, sparsity) = config.init(dense.train(), FusedAdamConfig::new()).unwrap();
    let val2 = Task::new(1000, 20, 2);
    let model = Sparse::new(model, sparsity, move |m: &Net| {
        accuracy(m, &val2, &Device::flex())
    });
    let last = fit(model, optim, &train, &val, 40, &dir);

    assert!(last.error().is_none(), "{:?}", last.error());
    assert!(
        last.events().len() > 10,
        "the Learner drove the pruner: {} events",
        last.events().len()
    );
    assert_eq!(last.steps(), 40 * 40, "one count per optimizer step");
    assert!(SparsityReport::of(&last.model).sparsity() > 0.5);
    let best = last.best().expect("a model passed the floor");
    let acc = accuracy(&best.model, &test, &plain);
    println!(
        "Learner: dense test {dense_test:.4}; sparsest passing {:.4} at test {acc:.4}",
        best.sparsity
    );
    assert!(best.sparsity >= 0.9, "sparsity {}", best.sparsity);
    assert!(
        acc >= dense_test - 0.01,
        "test accuracy {acc} vs dense {dense_test}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
