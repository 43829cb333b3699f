//! The method inside burn-train's `Learner`: LeNet-5 on the embedded Fashion-MNIST subset,
//! trained dense and then with the relevance-weighted decay and gated pruning, with
//! burn-train's `SupervisedTraining` (its metrics, renderer and checkpoint directory):
//!
//!     cargo run --release --example learner
//!     cargo run --release --example learner -- --dense-epochs 1 --epochs 6   # short
//!
//! Sparsity is added to a Learner run in three lines (marked `// +`): the configuration,
//! `init` (masks, and the optimizer with the decay inside), and the `Sparse` wrapper, whose
//! `TrainStep::optimize` runs the method; the model keeps burn-train's default `optimize`.
//! The sparsest model whose validation accuracy passed the floor comes back from the wrapper.
//! `--out` receives burn-train's files and summary.json (that model's sparsity and accuracy).

use std::path::PathBuf;
use std::sync::Arc;

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::lr_scheduler::constant::ConstantLr;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::renderer::CliMetricsRenderer;
use burn::train::{
    ClassificationOutput, InferenceStep, Learner, LearnerModel, SupervisedTraining, TrainOutput,
    TrainStep,
};
use clap::Parser;
use sparse_data::{ImageSet, NormalizedImages, Split};
use sparse_models::{ImageClassifier, LeNet5};
use sparse_prune::{
    Floor, PruneSchedule, PrunerConfig, Selection, Sparse, SparsityConfig, SparsityReport,
};
use sparse_reg::{GammaSchedule, SelectiveDecayConfig};

/// LeNet-5 as a burn-train model: the usual `TrainStep` and `InferenceStep`, nothing about
/// sparsity.
#[derive(Module, Debug)]
struct Net {
    lenet: LeNet5,
}

impl Net {
    fn classify(&self, b: Batch) -> ClassificationOutput {
        let logits = self.lenet.logits(b.x);
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
    x: Tensor<4>,
    y: Tensor<1, Int>,
}

/// Batches of images by index, normalised as the paper does.
#[derive(Clone)]
struct Images(Arc<NormalizedImages>);

impl Images {
    fn batch(&self, idx: &[usize], device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        self.0.gather(idx, &mut x, &mut y);
        let n = idx.len();
        (
            Tensor::from_data(TensorData::new(x, [n, 1, 28, 28]), device),
            Tensor::from_data(TensorData::new(y, [n]), device),
        )
    }

    fn accuracy(&self, model: &LeNet5, device: &Device) -> f64 {
        sparse_examples::classify::accuracy(model, self.0.len(), device, |i, d| self.batch(i, d))
    }
}

impl Batcher<usize, Batch> for Images {
    fn batch(&self, items: Vec<usize>, device: &Device) -> Batch {
        let (x, y) = Images::batch(self, &items, device);
        Batch { x, y }
    }
}

#[derive(Parser, Debug)]
#[command(about = "LeNet-5 in burn-train's Learner + relevance-weighted decay + gated pruning")]
struct Args {
    /// Epochs of dense training (a plain Learner run).
    #[arg(long, default_value_t = 4)]
    dense_epochs: usize,
    /// Epochs of training with the method.
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Prune check every E optimizer steps.
    #[arg(long, default_value_t = 25)]
    every: u64,
    /// Fraction p of the alive weights removed per prune.
    #[arg(long, default_value_t = 0.1)]
    fraction: f64,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 100)]
    batch: usize,
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    /// burn-train's directory and summary.json.
    #[arg(long, default_value = "runs/learner")]
    out: PathBuf,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let (train_set, val_set) = ImageSet::embedded(Split::Train).split_validation(500, args.seed)?;
    let images = |s: &ImageSet| Images(Arc::new(NormalizedImages::mnist_normalised(s)));
    let (train, val) = (images(&train_set), images(&val_set));
    let test = images(&ImageSet::embedded(Split::Test));
    let device = sparse_examples::backend::autodiff();
    device.seed(args.seed);
    let plain = device.clone().inner();
    std::fs::create_dir_all(&args.out)?;
    println!(
        "backend {} | {} train, {} validation, {} test images",
        sparse_examples::backend::name(),
        train.0.len(),
        val.0.len(),
        test.0.len()
    );

    // 1. Dense training: a plain Learner run.
    let net = Net {
        lenet: LeNet5::new(&device),
    };
    let optim = AdamConfig::new().with_epsilon(1e-8).init();
    let dense = fit(net, optim, &train, &val, args.dense_epochs, &args)?;
    let dense_val = val.accuracy(&dense.lenet, &plain);
    let dense_test = test.accuracy(&dense.lenet, &plain);
    println!(
        "dense: validation {:.2} %, test {:.2} %",
        100.0 * dense_val,
        100.0 * dense_test
    );

    // 2. The method in the Learner: three lines.
    let floor = dense_val - 0.01;
    let schedule = PruneSchedule::Gated {
        every: args.every,
        fraction: args.fraction,
        floor: Floor::Above(floor), // the paper's gate: validation accuracy > Q
    };
    let steps_per_epoch = (train.0.len() / args.batch) as u64;
    let decay = SelectiveDecayConfig::new().with_schedule(GammaSchedule::Linear {
        steps: steps_per_epoch,
    });
    let config = SparsityConfig::new(PrunerConfig::new(schedule)) // +
        .with_decay(decay)
        .with_keep_best(true)
        .select(Selection::All); // the paper: every parameter
    let optim = AdamConfig::new().with_epsilon(1e-8);
    let (net, optim, sparsity) = config.init(dense.train(), optim)?; // +
    let gate = val.clone();
    let net = Sparse::new(net, sparsity, move |n: &Net| {
        gate.accuracy(&n.lenet, &plain)
    }); // +
    let done = fit(net, optim, &train, &val, args.epochs, &args)?;
    if let Some(e) = done.error() {
        return Err(format!("pruning stopped: {e}").into());
    }

    let plain = device.clone().inner();
    let best = done.best().ok_or("no model passed the floor")?;
    let report = SparsityReport::of(&best.model);
    let test_acc = test.accuracy(&best.model.lenet, &plain);
    println!("\n{report}\n");
    println!(
        "sparsest model above the floor ({:.2} %): step {}, {:.2} % of the weights left \
         ({:.0}x), validation {:.2} %, test {:.2} % (dense {:.2} %); {} prune events in {} steps",
        100.0 * floor,
        best.step,
        100.0 * (1.0 - report.sparsity()),
        report.compression(),
        100.0 * best.metric,
        100.0 * test_acc,
        100.0 * dense_test,
        done.events().len(),
        done.steps()
    );
    let summary = serde_json::json!({
        "dense_val_acc": dense_val,
        "dense_test_acc": dense_test,
        "floor": floor,
        "events": done.events().len(),
        "steps": done.steps(),
        "best": {
            "step": best.step,
            "remaining": 1.0 - report.sparsity(),
            "val_acc": best.metric,
            "test_acc": test_acc,
        },
    });
    let file = args.out.join("summary.json");
    std::fs::write(&file, serde_json::to_string_pretty(&summary)?)?;
    println!("results in {}", file.display());
    Ok(())
}

/// `epochs` of burn-train's supervised training (accuracy and loss metrics, the CLI
/// renderer) of `model`, validated on `val` every epoch.
fn fit<M>(
    model: M,
    optim: ModuleOptimizer,
    train: &Images,
    val: &Images,
    epochs: usize,
    args: &Args,
) -> Result<M, String>
where
    M: LearnerModel
        + TrainStep<Input = Batch, Output = ClassificationOutput>
        + InferenceStep<Input = Batch, Output = ClassificationOutput>,
{
    let dl_train = DataLoaderBuilder::new(train.clone())
        .batch_size(args.batch)
        .shuffle(args.seed)
        .build(InMemDataset::new((0..train.0.len()).collect()));
    let dl_valid = DataLoaderBuilder::new(val.clone())
        .batch_size(500)
        .build(InMemDataset::new((0..val.0.len()).collect()));
    let result = SupervisedTraining::new(&args.out, dl_train, dl_valid)
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .renderer(Box::new(CliMetricsRenderer::new()))
        .with_application_logger(None)
        .num_epochs(epochs)
        .launch(Learner::new(model, optim, ConstantLr::new(args.lr)));
    match result.error {
        Some(e) => Err(format!("training failed: {e:?}")),
        None => Ok(result.model),
    }
}
