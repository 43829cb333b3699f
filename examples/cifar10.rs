//! CIFAR-10 with VGG-16 or ResNet-(6n+2): dense training (SGD momentum, cosine learning
//! rate, crop + flip augmentation), then the relevance-weighted decay with validation-gated
//! global magnitude pruning.
//!
//!     cargo run --release --example cifar10 -- --model resnet20 --data-dir DIR   # DIR/train/<class>/*.jpg
//!     cargo run --release --example cifar10 --features wgpu -- --data-dir data/cifar10
//!     cargo run --release --example cifar10 --features wgpu -- --download   # into data/cifar10
//!     cargo run --release --example cifar10 -- --model resnet20 --synthetic 200 \
//!         --dense-epochs 1 --epochs 2                   # generated CIFAR-format data, on CPU
//!
//! Same run directory as the LeNet example: config.json, metrics.csv, accuracy.png,
//! checkpoint/ (--resume), dense/ (--from), summary.json. By default every parameter is
//! regularised and pruned, BatchNorm gains and shifts included (the paper's choice);
//! `--keep-bn` leaves BatchNorm out of both.

use std::path::PathBuf;
use std::time::Instant;

use burn::module::ParamGroup;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use clap::{Parser, ValueEnum};
use serde::Serialize;
use sparse_data::{CifarBatches, CifarSet, ImageFolder, Split};
use sparse_examples::classify::{self, Check, DenseRecord, Progress};
use sparse_examples::masking::MaskingArg;
use sparse_examples::method::Method;
use sparse_examples::progress::ProgressLine;
use sparse_examples::run;
use sparse_models::{ImageClassifier, ResNetConfig, Vgg16};
use sparse_prune::{Floor, PrunerConfig, SparsityReport};
use sparse_reg::FusedSgdConfig;

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Model {
    /// VGG-16 with BatchNorm (14.7 M parameters).
    Vgg16,
    /// ResNet-20 (0.27 M).
    Resnet20,
    /// ResNet-32 (0.47 M).
    Resnet32,
    /// ResNet-56 (0.86 M).
    Resnet56,
}

impl Model {
    fn name(self) -> String {
        self.to_possible_value()
            .expect("no skipped variant")
            .get_name()
            .to_string()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum LrSchedule {
    /// Half a cosine from the initial rate to 0.
    Cosine,
    /// x0.1 at 50 % and at 75 % of the steps.
    Step,
}

impl LrSchedule {
    fn at(self, lr: f64, step: u64, total: u64) -> f64 {
        let t = step as f64 / total.max(1) as f64;
        match self {
            LrSchedule::Cosine => 0.5 * lr * (1.0 + (std::f64::consts::PI * t).cos()),
            LrSchedule::Step if t < 0.5 => lr,
            LrSchedule::Step if t < 0.75 => 0.1 * lr,
            LrSchedule::Step => 0.01 * lr,
        }
    }
}

#[derive(Parser, Debug, Serialize)]
#[command(about = "CIFAR-10 + relevance-weighted decay + gated iterative pruning")]
// `--gamma -0.1` reaches validation, which names the option, instead of clap's "unexpected
// argument" (the float options also take `-1e-3`: `allow_hyphen_values`).
#[command(allow_negative_numbers = true)]
struct Args {
    #[arg(long, value_enum, default_value = "resnet32")]
    model: Model,
    /// The data: an image folder (DIR/train/<class>/*.jpg|png and DIR/test/<class>/..., 32x32
    /// RGB; decoded once, then read from a cache next to the images) or CIFAR-10's binary
    /// version (DIR or DIR/cifar-10-batches-bin/).
    #[arg(long, default_value = "data/cifar10")]
    data_dir: PathBuf,
    /// Download cifar-10-binary.tar.gz (SHA-256 verified) into --data-dir if it is not there.
    #[arg(long)]
    download: bool,
    /// Base URL to download from instead of the official host (a mirror, a test server).
    #[arg(long)]
    download_url: Option<String>,
    /// Write a generated CIFAR-format data set (N images per training file, N / 5 test)
    /// into --data-dir if it holds no CIFAR files, and train on it (tests, CI, timing).
    #[arg(long, value_name = "N")]
    synthetic: Option<usize>,
    /// Validation images held out from the training set [5,000, or a tenth of a small set].
    #[arg(long)]
    val_size: Option<usize>,
    #[arg(long, value_enum, default_value = "relevance")]
    method: Method,
    /// Decay strength gamma0 (2 * gamma = 5e-4 is CIFAR's usual weight decay).
    #[arg(long, allow_hyphen_values = true, default_value_t = 2.5e-4)]
    gamma: f64,
    /// Relevance scale alpha of exp(-|g|/alpha).
    #[arg(long, allow_hyphen_values = true, default_value_t = 1.0)]
    alpha: f64,
    /// Learning rate of dense training (SGD, momentum 0.9, weight decay 5e-4).
    #[arg(long, allow_hyphen_values = true, default_value_t = 0.1)]
    lr: f64,
    /// Learning rate of the pruning phase (SGD, momentum 0.9, the method's decay).
    #[arg(long, allow_hyphen_values = true, default_value_t = 0.01)]
    prune_lr: f64,
    #[arg(long, value_enum, default_value = "cosine")]
    lr_schedule: LrSchedule,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Epochs of dense training (checkpointed after each epoch: --resume continues them).
    #[arg(long, default_value_t = 160)]
    dense_epochs: usize,
    #[arg(long, default_value_t = 60)]
    epochs: usize,
    /// Stop the pruning phase after this many steps (smoke runs; 0: train the dense start
    /// only); the schedules still span --epochs.
    #[arg(long)]
    max_steps: Option<u64>,
    /// Prune check every E optimizer steps.
    #[arg(long, default_value_t = 300)]
    every: u64,
    /// Fraction p of the alive weights removed per prune.
    #[arg(long, allow_hyphen_values = true, default_value_t = 0.05)]
    fraction: f64,
    /// Validation accuracy floor [the dense validation accuracy minus 0.01].
    #[arg(long, allow_hyphen_values = true)]
    floor: Option<f64>,
    /// Leave BatchNorm gains and shifts out of the decay and of pruning.
    #[arg(long)]
    keep_bn: bool,
    /// Final sparsity of the gmp method.
    #[arg(long, allow_hyphen_values = true, default_value_t = 0.95)]
    gmp_sparsity: f64,
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    #[arg(long, default_value = "runs/cifar10")]
    out: PathBuf,
    /// Overwrite a run directory that already holds results.
    #[arg(long)]
    force: bool,
    /// Continue the run in --out from its last checkpoint (of the pruning phase, or of the
    /// dense phase's last epoch). The options that define the run must be the ones it was
    /// started with (they are checked against its config.json); these may change: --max-steps
    /// (the budget; --epochs sets the schedules' span), --out, --force, --quiet,
    /// --on-nonfinite, --download, --download-url; --floor and --from may be left out (the
    /// run's are kept).
    #[arg(long)]
    resume: bool,
    /// Start from the dense model of another run (its dense/ directory or run directory).
    #[arg(long)]
    from: Option<PathBuf>,
    /// Where the masks act: in-place (pruned weights set back to 0 after every optimizer
    /// step, one pass) or forward (multiplied in every forward pass, two). Same results.
    #[arg(long, value_enum, default_value = "in-place")]
    masking: MaskingArg,
    #[arg(long)]
    quiet: bool,
    /// A NaN or Inf training loss: stop (keeping the last good checkpoint) or skip the step.
    #[arg(long, value_enum, default_value = "stop")]
    on_nonfinite: run::OnNonFinite,
}

/// The options (`Args` fields) that may change when a run is resumed: the budget, where the
/// output goes and how it is shown, what a NaN does, how the data is fetched (`--data-dir` is
/// what is compared). Listed in `--resume`'s help.
const MAY_CHANGE_ON_RESUME: [&str; 8] = [
    "max_steps",
    "out",
    "force",
    "resume",
    "quiet",
    "on_nonfinite",
    "download",
    "download_url",
];

/// Options the run derives when they are not given (the floor from the dense model, the dense
/// start from `--from`, or from the run's own `dense/` once the dense phase is done): left out
/// on resume, the run's are kept.
const DERIVED_ON_RESUME: [&str; 2] = ["floor", "from"];

/// Refuse a `--resume` whose options differ from the run's (see
/// [`run::check_resumed_options`]).
fn check_resume(args: &Args) -> Result<(), run::Error> {
    if !args.resume {
        return Ok(());
    }
    let given = serde_json::to_value(args)?;
    run::check_resumed_options(&args.out, &given, &MAY_CHANGE_ON_RESUME, &DERIVED_ON_RESUME)?;
    Ok(())
}

/// A split of CIFAR-10 on the host; batches are gathered (and augmented) per step.
struct Data(CifarBatches);

impl Data {
    fn len(&self) -> usize {
        self.0.len()
    }

    /// The images at `idx`; augmented (crop + flip) when `augment` holds a seed.
    fn batch(
        &self,
        idx: &[usize],
        augment: Option<u64>,
        device: &Device,
    ) -> (Tensor<4>, Tensor<1, Int>) {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        match augment {
            Some(seed) => self.0.gather_augmented(idx, seed, &mut x, &mut y),
            None => self.0.gather(idx, &mut x, &mut y),
        }
        let n = idx.len();
        (
            Tensor::from_data(TensorData::new(x, [n, 3, 32, 32]), device),
            Tensor::from_data(TensorData::new(y, [n]), device),
        )
    }

    fn accuracy<M: ImageClassifier>(&self, model: &M, device: &Device) -> f64 {
        classify::accuracy(model, self.len(), device, |idx, d| self.batch(idx, None, d))
    }
}

fn main() {
    let args = Args::parse();
    let result = match args.model {
        Model::Vgg16 => train(|c, d| Ok(Vgg16::new(c, d)), args),
        Model::Resnet20 => train(|c, d| ResNetConfig::new(20).with_classes(c).init(d), args),
        Model::Resnet32 => train(|c, d| ResNetConfig::new(32).with_classes(c).init(d), args),
        Model::Resnet56 => train(|c, d| ResNetConfig::new(56).with_classes(c).init(d), args),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Checks that need no data: every field in range, before any work starts.
fn validate(args: &Args) -> Result<(), String> {
    run::check_fields(&[
        ("--batch", args.batch >= 1, "at least 1"),
        ("--every", args.every >= 1, "at least 1"),
        (
            "--fraction",
            args.fraction > 0.0 && args.fraction < 1.0,
            "in (0, 1)",
        ),
        (
            "--lr",
            args.lr > 0.0 && args.lr.is_finite(),
            "a positive number",
        ),
        (
            "--prune-lr",
            args.prune_lr > 0.0 && args.prune_lr.is_finite(),
            "a positive number",
        ),
        (
            "--gamma",
            args.gamma >= 0.0 && args.gamma.is_finite(),
            ">= 0",
        ),
        (
            "--alpha",
            args.alpha > 0.0 && args.alpha.is_finite(),
            "a positive number",
        ),
        (
            "--floor",
            args.floor.is_none_or(|f| (0.0..1.0).contains(&f)),
            "an accuracy in [0, 1)",
        ),
        (
            "--gmp-sparsity",
            args.gmp_sparsity > 0.0 && args.gmp_sparsity < 1.0,
            "in (0, 1)",
        ),
        (
            "--synthetic",
            args.synthetic != Some(0),
            "at least 1 image per file",
        ),
    ])
}

/// The training and test images of `args.data_dir` and the class count: an image folder or
/// CIFAR-10's binary version (written first when `--synthetic` asks for generated data).
fn load_data(args: &Args) -> Result<(CifarSet, CifarSet, usize), run::Error> {
    let dir = &args.data_dir;
    if ImageFolder::is_split_root(dir) {
        let t = Instant::now();
        let (train, test) = ImageFolder::load_split(dir, Some((32, 32)))?;
        let decoded = train.decoded + test.decoded;
        println!(
            "{}: image folder, {} classes ({}), {} images {} in {:.1} s",
            dir.display(),
            train.classes.len(),
            train.classes.join(", "),
            train.len() + test.len(),
            if decoded == 0 {
                "read from the cache".to_string()
            } else {
                format!("decoded ({decoded})")
            },
            t.elapsed().as_secs_f64()
        );
        let classes = train.classes.len();
        let train = train.into_cifar(dir.join("train"))?;
        return Ok((train, test.into_cifar(dir.join("test"))?, classes));
    }
    if let Some(n) = args.synthetic
        && !sparse_data::cifar_dir(dir).join("test_batch.bin").exists()
    {
        CifarSet::write_synthetic(dir, n, (n / 5).max(10), args.seed)?;
        println!("{}: generated CIFAR-format data written", dir.display());
    }
    if args.download
        && sparse_data::download_cifar(&sparse_data::CIFAR10, args.download_url.as_deref(), dir)?
    {
        println!("{}: CIFAR-10 downloaded and verified", dir.display());
    }
    let train = CifarSet::load_dir(dir, Split::Train).map_err(|e| {
        format!(
            "{e}\n(an image folder needs {}/train/<class>/ and {}/test/<class>/; to try the \
             whole pipeline without a data set: --synthetic 1000)",
            dir.display(),
            dir.display()
        )
    })?;
    Ok((train, CifarSet::load_dir(dir, Split::Test)?, 10))
}

/// Where the dense phase is after an epoch: `dense-checkpoint/` holds this (`progress.json`,
/// written last), the model and the optimizer state.
#[derive(Serialize, serde::Deserialize)]
struct DenseProgress {
    epochs_done: usize,
    step: u64,
}

const DENSE_CHECKPOINT: &str = "dense-checkpoint";

/// Save the dense phase's state atomically (see [`run::write_dir_atomically`]).
fn save_dense_checkpoint<M: ImageClassifier>(
    out: &std::path::Path,
    model: &M,
    optim: &ModuleOptimizer,
    progress: &DenseProgress,
) -> Result<(), run::Error> {
    run::write_dir_atomically(out, DENSE_CHECKPOINT, |tmp| {
        run::save_model_and_optim(tmp, model, optim)?;
        let file = tmp.join("progress.json");
        std::fs::write(&file, serde_json::to_string(progress)?)
            .map_err(|e| format!("{}: cannot write: {e}", file.display()))?;
        Ok(())
    })
}

/// The dense phase's newest complete checkpoint, if any, verified against its checksums
/// ([`run::verify_dir`]): a corrupt one is an error, not a silent restart of the dense phase.
fn find_dense_checkpoint(
    out: &std::path::Path,
) -> Result<Option<(PathBuf, DenseProgress)>, run::Error> {
    for dir in [out.join(DENSE_CHECKPOINT), out.join("dense-checkpoint.old")] {
        let file = dir.join("progress.json");
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        run::verify_dir(&dir)?;
        let progress = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a dense-phase progress record: {e}", file.display()))?;
        return Ok(Some((dir, progress)));
    }
    Ok(None)
}

fn train<M: ImageClassifier>(
    init: fn(usize, &Device) -> Result<M, String>,
    mut args: Args,
) -> Result<(), run::Error> {
    let started = Instant::now();
    validate(&args)?;
    let _lock = run::guard_out(&args.out, args.force, args.resume)?;
    // --resume continues the same run or nothing: checked before anything is written.
    check_resume(&args)?;

    // 1. Data: train / validation (from the training set) / test.
    let (train_set, test_set, classes) = load_data(&args)?;
    let val_size = args.val_size.unwrap_or(if train_set.len() >= 50_000 {
        5_000
    } else {
        train_set.len() / 10
    });
    // Every epoch has a step and validation an image, or nothing starts.
    run::check_split(train_set.len(), val_size, args.batch)?;
    let (train_set, val_set) = train_set.split_validation(val_size, args.seed)?;
    let (train, val, test) = (
        Data(CifarBatches::new(train_set)),
        Data(CifarBatches::new(val_set)),
        Data(CifarBatches::new(test_set)),
    );
    let steps_per_epoch = (train.len() / args.batch) as u64;
    println!(
        "backend {} | {} train, {} validation, {} test images | {:?} {:?}",
        sparse_examples::backend::name(),
        train.len(),
        val.len(),
        test.len(),
        args.model,
        args.method
    );

    let device = sparse_examples::backend::autodiff();
    device.seed(args.seed);
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    // --resume: the pruning phase's checkpoint; before there is one, the dense start (finished,
    // or its last epoch's checkpoint) is picked up instead.
    let dense_done = args.out.join("dense/dense.json").exists();
    let dense_partial = if args.resume {
        find_dense_checkpoint(&args.out)?
    } else {
        None
    };
    // A pruning checkpoint that is there but corrupt is an error, never a restart from the
    // dense start.
    let pruning_started = ["checkpoint", "checkpoint.old"]
        .iter()
        .any(|d| args.out.join(d).join("progress.json").exists());
    let resume = match args.resume {
        true if pruning_started || !(dense_done || dense_partial.is_some()) => {
            Some(run::find_checkpoint::<Progress>(&args.out)?)
        }
        _ => None,
    };
    if args.resume && resume.is_none() && dense_done && args.from.is_none() {
        println!(
            "resuming after the dense phase: {}",
            args.out.join("dense").display()
        );
        args.from = Some(args.out.clone());
    }
    let dense_partial = dense_partial.filter(|_| args.resume && args.from.is_none());

    // 2. The dense start: trained here, loaded with --from, or the checkpoint's.
    let (model, dense_val, dense_test) = match (&resume, &args.from) {
        (Some((dir, p)), _) => {
            println!("resuming from {} at step {}", dir.display(), p.step);
            args.floor = Some(p.floor);
            (init(classes, &device)?, p.dense_val, p.dense_test)
        }
        (None, Some(from)) => {
            let (record, file) = DenseRecord::load(from, &args.model.name())?;
            let model = init(classes, &device)?
                .try_load_file(&file)
                .map_err(|e| format!("{}: cannot load the dense model: {e}", file.display()))?;
            println!(
                "dense start {}: validation {:.2} %, test {:.2} %",
                file.display(),
                100.0 * record.val_acc,
                100.0 * record.test_acc
            );
            (model, record.val_acc, record.test_acc)
        }
        (None, None) => {
            let mut model = init(classes, &device)?;
            let mut optim: ModuleOptimizer = SgdConfig::new()
                .with_momentum(Some(MomentumConfig::new().with_dampening(0.0)))
                .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
                .init();
            if dense_partial.is_none() {
                // The options, before the dense phase's first checkpoint: its --resume is
                // checked against them (rewritten with the floor once the dense phase is done).
                run::write_file_atomically(
                    &args.out.join("config.json"),
                    serde_json::to_string_pretty(&args)?,
                )?;
            }
            let total = steps_per_epoch * args.dense_epochs as u64;
            let (mut step, mut first_epoch) = (0, 0);
            if let Some((dir, p)) = &dense_partial {
                model = model
                    .try_load_file(dir.join("model.bpk"))
                    .map_err(|e| format!("{}: cannot load the model: {e}", dir.display()))?;
                let file = dir.join("optim.bpk");
                optim = optim.load(&file).map_err(|e| {
                    format!(
                        "{}: cannot load the optimizer state (the file is corrupt or cut \
                         short): {e}",
                        file.display()
                    )
                })?;
                (step, first_epoch) = (p.step, p.epochs_done);
                println!("resuming the dense phase after epoch {first_epoch}");
            }
            let mut guard = run::LossGuard::new(args.on_nonfinite);
            for epoch in first_epoch..args.dense_epochs {
                let order = sparse_data::epoch_order(train.len(), args.seed ^ (epoch as u64 + 1));
                for b in order.chunks_exact(args.batch) {
                    let (x, y) = train.batch(b, Some(args.seed ^ (step << 16)), &device);
                    let loss = loss_fn.forward(model.logits(x), y);
                    let value = loss.clone().into_scalar::<f64>();
                    step += 1;
                    if !guard
                        .check(step, value, &args.out)
                        .map_err(|e| format!("dense phase: {e}"))?
                    {
                        continue;
                    }
                    let grads = GradientsParams::from_grads(loss.backward(), &model);
                    let lr = args.lr_schedule.at(args.lr, step - 1, total);
                    model = optim.step(lr, model, grads);
                }
                println!(
                    "dense epoch {:3}: validation {:.2} % ({:.0} s)",
                    epoch + 1,
                    100.0 * val.accuracy(&model, &device),
                    started.elapsed().as_secs_f64()
                );
                let progress = DenseProgress {
                    epochs_done: epoch + 1,
                    step,
                };
                save_dense_checkpoint(&args.out, &model, &optim, &progress)?;
            }
            let (val_acc, test_acc) = (
                val.accuracy(&model, &device),
                test.accuracy(&model, &device),
            );
            println!(
                "dense: validation {:.2} %, test {:.2} %",
                100.0 * val_acc,
                100.0 * test_acc
            );
            let record = DenseRecord {
                model: args.model.name(),
                seed: args.seed,
                epochs: args.dense_epochs,
                kept_epoch: None,
                val_acc,
                test_acc,
            };
            record.save(&args.out.join("dense"), &model)?;
            let _ = std::fs::remove_dir_all(args.out.join(DENSE_CHECKPOINT));
            (model, val_acc, test_acc)
        }
    };
    let floor = *args.floor.get_or_insert(dense_val - 0.01);
    run::write_file_atomically(
        &args.out.join("config.json"),
        serde_json::to_string_pretty(&args)?,
    )?;

    // 3. The method (or a baseline) + gated pruning, over every parameter or all but BN.
    let params = args.keep_bn.then(|| {
        ParamGroup::all().exclude(ParamGroup::from_regex(r"(^|\.)(stem_)?bn\d?\.").unwrap())
    });
    let decay = args
        .method
        .decay(args.gamma, args.alpha, steps_per_epoch)
        .with_params(params.clone().into())
        .build(
            // Burn's SGD with momentum, bit for bit, as one pass on CPU backends.
            FusedSgdConfig::new()
                .with_momentum(Some(MomentumConfig::new().with_dampening(0.0)))
                .build()?,
        )?;
    // The learning-rate and gmp schedules span --epochs; --max-steps only stops early (so a
    // run stopped and resumed follows the same schedule as an uninterrupted one).
    let horizon = steps_per_epoch * args.epochs as u64;
    let total_steps = args.max_steps.map_or(horizon, |m| m.min(horizon));
    let schedule = args.method.schedule(
        args.every,
        args.fraction,
        Floor::Above(floor), // the paper's gate: validation accuracy > Q
        horizon,
        args.gmp_sparsity,
    );
    let mut pruner = PrunerConfig::new(schedule)
        .with_params(params.into()) // None: every parameter (the paper)
        .with_masking(args.masking.into())
        .init()?;
    println!(
        "pruning: every {} steps remove {:.1} % of the alive weights while validation > {:.2} %{}",
        args.every,
        100.0 * args.fraction,
        100.0 * floor,
        if args.keep_bn {
            " (BatchNorm kept)"
        } else {
            ""
        }
    );
    let checkpoint = resume.as_ref().map(|(dir, _)| dir.as_path());
    let (mut model, mut optim) = run::start_or_resume(model, &decay, &mut pruner, checkpoint)?;
    let (mut step, mut best) = resume
        .as_ref()
        .map_or((0, None), |(_, p)| (p.step, p.best.clone()));

    let metrics = args.out.join("metrics.csv");
    let mut csv = run::open_metrics(
        &metrics,
        classify::METRICS_HEADER,
        resume.as_ref().map(|_| step),
    )?;
    let mut progress = ProgressLine::new(!args.quiet, total_steps);
    let mut last_val = f64::NAN;
    let mut guard = run::LossGuard::new(args.on_nonfinite);
    'training: for epoch in (step / steps_per_epoch) as usize.. {
        let order = sparse_data::epoch_order(train.len(), args.seed ^ (1000 + epoch as u64));
        for (i, b) in order.chunks_exact(args.batch).enumerate() {
            if (epoch as u64 * steps_per_epoch + i as u64) < step {
                continue; // done before the checkpoint
            }
            if step >= total_steps {
                break 'training;
            }
            let (x, y) = train.batch(b, Some(args.seed ^ (1 << 40) ^ (step << 16)), &device);
            let loss = loss_fn.forward(model.logits(x), y);
            // Every step: a non-finite loss never reaches the weights or a checkpoint.
            let value = loss.clone().into_scalar::<f64>();
            let apply = guard
                .check(step, value, &args.out)
                .inspect_err(|_| progress.clear())?;
            if step.is_multiple_of(20) {
                let sparsity = pruner.events().last().map_or(0.0, |e| e.sparsity);
                progress.show(step, value, last_val, sparsity);
            }
            if apply {
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                let finite = run::grads_finite(&model, &grads);
                if guard.check_grads(step, finite, &args.out)? {
                    let lr = args.lr_schedule.at(args.prune_lr, step, horizon);
                    model = optim.step(lr, model, grads);
                }
            }
            model = pruner.enforce(model); // in-place masks: pruned weights back to 0
            step += 1;
            if !step.is_multiple_of(args.every) {
                model = pruner.step(model, step, None)?.0; // advances the decay clock
                continue;
            }
            // A check: measure the checkpoint, then let the pruner decide.
            let check = Check {
                step,
                epoch: step as f64 / steps_per_epoch as f64,
                val_acc: val.accuracy(&model, &device),
                test_acc: test.accuracy(&model, &device),
            };
            last_val = check.val_acc;
            progress.clear();
            let report = check.record(&model, decay.gamma(), floor, &mut csv, &mut best)?;
            let (m, event) = pruner.step(model, step, Some(check.val_acc))?;
            model = m;
            let record = Progress {
                step,
                best: best.clone(),
                dense_val,
                dense_test,
                floor,
            };
            run::save_checkpoint(&args.out, &model, &optim, &pruner, &record)?;
            println!("{}", check.line(&report, event.map(|e| e.sparsity)));
        }
    }

    // 4. Report: per-layer sparsity, summary.json, the plot.
    progress.clear();
    let report = SparsityReport::of(&model);
    println!("\nfinal model:\n{report}\n");
    let summary = serde_json::json!({
        "dense_test_acc": dense_test,
        "dense_val_acc": dense_val,
        "best": best,
        "final": { "remaining": 1.0 - report.sparsity(), "test_acc": test.accuracy(&model, &device) },
        "steps": step,
        "wall_s": started.elapsed().as_secs_f64(),
        "backend": sparse_examples::backend::name(),
        "seed": args.seed,
        "method": args.method,
        "model": args.model,
        "keep_bn": args.keep_bn,
    });
    run::write_file_atomically(
        &args.out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    classify::plot_accuracy(&metrics, report.params(), &args.out.join("accuracy.png"))?;
    println!(
        "{}",
        classify::best_line(best.as_ref(), floor, dense_val, dense_test)
    );
    println!("results in {}", args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_options_are_refused_by_name() {
        let args = |extra: &[&str]| {
            let mut v = vec!["cifar10"];
            v.extend(extra);
            validate(&Args::parse_from(v)).err()
        };
        assert_eq!(args(&[]), None);
        assert_eq!(
            args(&["--fraction", "0"]).unwrap(),
            "--fraction: expected in (0, 1)"
        );
        assert_eq!(
            args(&["--floor", "1.5"]).unwrap(),
            "--floor: expected an accuracy in [0, 1)"
        );
        assert_eq!(
            args(&["--synthetic", "0"]).unwrap(),
            "--synthetic: expected at least 1 image per file"
        );
    }

    #[test]
    fn a_split_that_leaves_no_step_or_no_validation_is_refused_before_anything_is_written() {
        let tmp = std::env::temp_dir().join(format!("cifar10-sizes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let out = tmp.join("run");
        let refused = |per_file: &str, extra: &[&str]| {
            let data = tmp.join(format!("data-{per_file}"));
            let mut v = vec!["cifar10", "--model", "resnet20", "--quiet"];
            v.extend([
                "--data-dir",
                data.to_str().unwrap(),
                "--synthetic",
                per_file,
            ]);
            v.extend(["--out", out.to_str().unwrap()]);
            v.extend(extra);
            let args = Args::parse_from(v);
            let err = train(|c, d| ResNetConfig::new(20).with_classes(c).init(d), args)
                .unwrap_err()
                .to_string();
            assert!(!out.exists(), "{}: written after `{err}`", out.display());
            err
        };
        // The faults: a tiny data set (5 training images: a tenth is none), a batch larger
        // than the training images, a validation split that takes them all.
        assert_eq!(
            refused("1", &[]),
            "--val-size: the validation split of the 5 training examples is empty: expected \
             at least 1 (the default holds out a share of them, rounded down)"
        );
        assert_eq!(
            refused("20", &[]),
            "--batch: 128 is more than the 90 training examples left after the validation \
             split (--val-size 10 of 100): an epoch would have no step; expected at most 90"
        );
        assert_eq!(
            refused("20", &["--val-size", "100", "--batch", "10"]),
            "--val-size: 100 validation examples leave none of the 100 training examples to \
             train on: expected fewer than 100"
        );
        std::fs::remove_dir_all(&tmp).ok();
    }

    #[test]
    fn a_negative_number_after_a_space_is_refused_by_name() {
        let args = |extra: &[&str]| {
            let mut v = vec!["cifar10"];
            v.extend(extra);
            validate(&Args::parse_from(v)).err()
        };
        assert_eq!(
            args(&["--gamma", "-0.1"]).unwrap(),
            "--gamma: expected >= 0"
        );
        assert_eq!(
            args(&["--prune-lr", "-1e-2"]).unwrap(),
            "--prune-lr: expected a positive number"
        );
        let err = Args::try_parse_from(["cifar10", "--every", "-3"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("invalid value '-3' for '--every <EVERY>'"),
            "{err}"
        );
    }

    #[test]
    fn the_options_that_may_change_on_resume_are_in_the_help() {
        use clap::CommandFactory;
        let fields = MAY_CHANGE_ON_RESUME
            .iter()
            .chain(&DERIVED_ON_RESUME)
            .copied()
            .collect::<Vec<_>>();
        let missing = run::missing_from_resume_help(&Args::command(), &fields);
        assert!(missing.is_empty(), "not in --resume's help: {missing:?}");
    }

    #[test]
    fn a_resume_with_another_option_is_refused_before_anything_is_written() {
        let out = std::env::temp_dir().join(format!("cifar10-resume-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let out_arg = out.to_str().unwrap();
        let mut started = Args::parse_from(["cifar10", "--out", out_arg, "--synthetic", "100"]);
        started.floor = Some(0.3); // derived from the dense model once it is trained
        let config = out.join("config.json");
        std::fs::write(&config, serde_json::to_string_pretty(&started).unwrap()).unwrap();
        let before = std::fs::read(&config).unwrap();
        let resume = |extra: &[&str]| {
            let mut v = vec![
                "cifar10",
                "--out",
                out_arg,
                "--resume",
                "--synthetic",
                "100",
            ];
            v.extend(extra);
            check_resume(&Args::parse_from(v)).map_err(|e| e.to_string())
        };
        assert_eq!(resume(&["--max-steps", "12", "--quiet"]), Ok(()));
        // The fault: another batch size and learning-rate schedule on resume.
        assert_eq!(
            resume(&["--batch", "64", "--lr-schedule", "step"]).unwrap_err(),
            format!(
                "{}: --resume continues the run started with other options (--batch: stored \
                 128, given 64; --lr-schedule: stored cosine, given step): give the stored \
                 values, or start a new run with another --out (--force replaces this one); \
                 only --download, --download-url, --force, --max-steps, --on-nonfinite, --out, \
                 --quiet, --resume may change on resume",
                out.display()
            )
        );
        // --epochs spans the learning-rate schedule here: not a budget.
        assert!(
            resume(&["--epochs", "90"])
                .unwrap_err()
                .contains("(--epochs: stored 60, given 90)")
        );
        assert!(
            resume(&["--floor", "0.5"])
                .unwrap_err()
                .contains("(--floor: stored 0.3, given 0.5)")
        );
        assert_eq!(
            std::fs::read(&config).unwrap(),
            before,
            "config.json untouched"
        );
        std::fs::remove_dir_all(&out).ok();
    }

    #[test]
    fn the_learning_rate_schedules_end_low() {
        assert_eq!(LrSchedule::Cosine.at(0.1, 0, 100), 0.1);
        assert!(LrSchedule::Cosine.at(0.1, 100, 100) < 1e-12);
        assert_eq!(LrSchedule::Step.at(0.1, 80, 100), 0.001);
    }
}
