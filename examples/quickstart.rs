//! The method in one readable loop, on generated data (no download, seconds on a laptop):
//!
//!     cargo run --release --example quickstart                 # flex (CPU, default)
//!     cargo run --release --example quickstart --features wgpu # GPU (or Mesa lavapipe)
//!     cargo run --release --example quickstart -- --help        # options
//!
//! The integration is three lines (marked `// +` below): a configuration, one `init` that
//! attaches the masks and builds the optimizer with the decay inside, and `sparsity.step` in
//! place of `optim.step`. It keeps the sparsest model whose validation accuracy passed the
//! floor (`sparsity.best()`).
//!
//! A 20-256-3 perceptron learns a task that depends on 4 of its 20 inputs; then Adam wrapped
//! in the relevance-weighted decay trains it while the gated global magnitude pruner removes
//! 10 % of the alive weights every 20 steps, as long as validation accuracy stays within a
//! point of dense. Like the paper, it prunes every parameter (`Selection::All`; the default is
//! the weights of rank >= 2).

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use clap::Parser;
use sparse_prune::{Floor, PruneSchedule, PrunerConfig, Selection, SparsityConfig, SparsityReport};
use sparse_reg::{GammaSchedule, SelectiveDecayConfig};

#[derive(Module, Debug)]
struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.fc2.forward(relu(self.fc1.forward(x)))
    }
}

/// `n` rows of 20 uniform features; the class is the argmax of a fixed linear map of 4 of them.
fn data(n: usize, seed: u64, device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let mut s = seed;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let teacher = [
        [1.0, -1.0, 0.5, 0.0],
        [-0.5, 1.0, 1.0, -1.0],
        [0.0, 0.2, -1.0, 1.0f32],
    ];
    let (mut x, mut y) = (vec![], vec![]);
    for _ in 0..n {
        let row: Vec<f32> = (0..20).map(|_| next()).collect();
        let score = |t: &[f32; 4]| t.iter().zip(&row).map(|(a, b)| a * b).sum::<f32>();
        y.push(
            (0..3)
                .max_by(|a, b| score(&teacher[*a]).total_cmp(&score(&teacher[*b])))
                .unwrap() as i64,
        );
        x.extend(row);
    }
    (
        Tensor::from_data(TensorData::new(x, [n, 20]), device),
        Tensor::from_data(TensorData::new(y, [n]), device),
    )
}

fn accuracy(model: &Mlp, (x, y): &(Tensor<2>, Tensor<1, Int>)) -> f64 {
    let pred = model.forward(x.clone()).argmax(1).flatten::<1>(0, 1);
    pred.equal(y.clone()).int().sum().into_scalar::<i64>() as f64 / y.dims()[0] as f64
}

/// The method on generated data.
#[derive(Parser)]
// `--dense-epochs -1` is refused naming the option, not as an unexpected argument.
#[command(allow_negative_numbers = true)]
struct Args {
    /// Epochs of dense training before pruning starts.
    #[arg(long, default_value_t = 5)]
    dense_epochs: usize,
    /// Epochs of training with the decay and the gated pruner.
    #[arg(long, default_value_t = 30)]
    prune_epochs: usize,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Checks before any work: the sparsest model is chosen at the prune checks of the pruning
/// epochs, so there must be one.
fn validate(args: &Args) -> Result<(), String> {
    sparse_examples::run::check_fields(&[(
        "--prune-epochs",
        args.prune_epochs >= 1,
        "at least 1 (the model is chosen at the prune checks of the pruning epochs, every 20 \
         steps)",
    )])
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    validate(&args)?;
    let device = sparse_examples::backend::autodiff();
    println!("backend: {}", sparse_examples::backend::name());
    device.seed(42);
    let (train, val, test) = (
        data(4000, 1, &device),
        data(1000, 2, &device),
        data(2000, 3, &device),
    );
    let batch = 50;
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut model = Mlp {
        fc1: LinearConfig::new(20, 256).init(&device),
        fc2: LinearConfig::new(256, 3).init(&device),
    };

    // 1. Dense training.
    let mut optim = AdamConfig::new().init();
    for _ in 0..args.dense_epochs {
        for b in 0..4000 / batch {
            let (x, y) = (
                train.0.clone().narrow(0, b * batch, batch),
                train.1.clone().narrow(0, b * batch, batch),
            );
            let grads = GradientsParams::from_grads(
                loss_fn.forward(model.forward(x), y).backward(),
                &model,
            );
            model = optim.step(1e-2, model, grads);
        }
    }
    let (dense_val, dense_test) = (accuracy(&model, &val), accuracy(&model, &test));
    println!(
        "dense: validation {:.2} %, test {:.2} %",
        100.0 * dense_val,
        100.0 * dense_test
    );

    // 2. The method: the decay around Adam + the gated pruner, keeping the best model.
    let schedule = PruneSchedule::Gated {
        every: 20,
        fraction: 0.1,                         // of the weights still alive
        floor: Floor::Above(dense_val - 0.01), // the paper's gate: validation accuracy > Q
    };
    let decay = SelectiveDecayConfig::new().with_schedule(GammaSchedule::Linear {
        steps: (4000 / batch) as u64, // gamma fades over an epoch after each prune event
    });
    let config = SparsityConfig::new(PrunerConfig::new(schedule)) // +
        .with_decay(decay)
        .with_keep_best(true)
        .select(Selection::All);
    let (mut model, mut optim, mut sparsity) = config.init(model, AdamConfig::new())?; // +
    for epoch in 1..=args.prune_epochs {
        for b in 0..4000 / batch {
            let (x, y) = (
                train.0.clone().narrow(0, b * batch, batch),
                train.1.clone().narrow(0, b * batch, batch),
            );
            let grads = GradientsParams::from_grads(
                loss_fn.forward(model.forward(x), y).backward(),
                &model,
            );
            model = sparsity.step(model, &mut optim, 1e-2, grads, |m| accuracy(m, &val))?; // +
        }
        println!(
            "epoch {epoch:2}: {} prune events, {:.2} % of the weights pruned",
            sparsity.events().len(),
            100.0 * sparsity.sparsity()
        );
    }
    let Some(best) = sparsity.best() else {
        return Err(format!(
            "no model passed the validation floor ({:.2} %, a point under dense) at the prune \
             checks: give more --prune-epochs or --dense-epochs",
            100.0 * (dense_val - 0.01)
        )
        .into());
    };
    let (report, val_acc, test_acc) = (
        SparsityReport::of(&best.model),
        best.metric,
        accuracy(&best.model, &test),
    );
    println!("\n{report}\n");
    println!(
        "sparsest model above the floor: {:.2} % of the weights left ({:.0}x), validation {:.2} %, \
         test {:.2} % (dense {:.2} %)",
        100.0 * (1.0 - report.sparsity()),
        report.compression(),
        100.0 * val_acc,
        100.0 * test_acc,
        100.0 * dense_test
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_pruning_epoch_is_refused_by_name_before_any_work() {
        // The fault: `--prune-epochs 0` (no prune check, so no model to report: a panic).
        let err = run(Args::parse_from(["quickstart", "--prune-epochs", "0"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--prune-epochs: expected at least 1 (the model is chosen at the prune checks of \
             the pruning epochs, every 20 steps)"
        );
        assert_eq!(validate(&Args::parse_from(["quickstart"])), Ok(()));
    }
}
