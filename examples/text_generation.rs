//! A character-level Transformer language model (GPT-style, tied embedding) trained dense, then
//! with the relevance-weighted decay and gated magnitude pruning, where the gate is the
//! validation bits per character staying under the dense value plus a slack.
//!
//!     cargo run --release --example text_generation                  # embedded Shakespeare
//!     cargo run --release --example text_generation -- --text input.txt --dense-steps 2000 \
//!         --steps 6000 --out runs/mytext                             # your own UTF-8 text
//!     cargo run --release --example text_generation -- --method magnitude   # gamma = 0
//!     cargo run --release --example text_generation -- --from-checkpoint runs/text \
//!         --generate 500 --temperature 0.8 --prompt "MACBETH."        # sample a saved run
//!
//! The run directory (`--out`) receives config.json, metrics.csv (one row per prune check:
//! step, val_bpc, alive, sparsity, test_bpc), checkpoint/ (for --resume and --from-checkpoint)
//! and summary.json (the dense bits per character, the sparsest checkpoint whose validation bits
//! per character stayed under the floor, and the final model). The test text is the corpus'
//! last tenth (`--test-fraction`), the same for every seed: nothing is chosen on it. Validation
//! text is a seeded tenth of the rest in contiguous blocks; neither is trained on.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use clap::Parser;
use serde::{Deserialize, Serialize};
use sparse_data::{CharTokenizer, TextCorpus, TextSplit};
use sparse_examples::masking::MaskingArg;
use sparse_examples::method::Method;
use sparse_examples::progress::ProgressLine;
use sparse_examples::run::{self, Error};
use sparse_models::{TransformerLm, TransformerLmConfig};
use sparse_prune::{Floor, Pruner, PrunerConfig, Selection, SparsityReport};
// Burn's Adam as one pass on CPU backends (bit-identical; Burn's Adam on GPU backends).
use sparse_reg::FusedAdamConfig;

#[derive(Parser, Debug, Serialize)]
#[command(about = "Character-level Transformer LM + relevance-weighted decay + gated pruning")]
// `--gamma -0.1` reaches validation, which names the option, instead of clap's "unexpected
// argument" (the float options also take `-1e-3`: `allow_hyphen_values`).
#[command(allow_negative_numbers = true)]
struct Args {
    /// UTF-8 text file to model; the embedded Shakespeare (four plays, ~414 KB) if absent.
    #[arg(long)]
    text: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "relevance")]
    method: Method,
    /// Decay strength gamma0 (the paper's Transformers: 1e-5).
    #[arg(long, allow_hyphen_values = true, default_value_t = 1e-5)]
    gamma: f64,
    /// Relevance scale alpha of exp(-|g|/alpha).
    #[arg(long, allow_hyphen_values = true, default_value_t = 1.0)]
    alpha: f64,
    #[arg(long, allow_hyphen_values = true, default_value_t = 1e-3)]
    lr: f64,
    /// Windows per batch.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Tokens the model sees (windows are context + 1 tokens: inputs and next-token targets).
    #[arg(long, default_value_t = 128)]
    context: usize,
    #[arg(long, default_value_t = 128)]
    d_model: usize,
    #[arg(long, default_value_t = 4)]
    layers: usize,
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// Optimizer steps of dense training (Adam) first (default sized for ~10 minutes on 2
    /// CPU cores; give it thousands for a good model).
    #[arg(long, default_value_t = 200)]
    dense_steps: u64,
    /// Optimizer steps of training with the method.
    #[arg(long, default_value_t = 250)]
    steps: u64,
    /// Stop after this many optimizer steps of the method (for smoke runs).
    #[arg(long)]
    max_steps: Option<u64>,
    /// Prune check every E optimizer steps.
    #[arg(long, default_value_t = 25)]
    every: u64,
    /// Fraction p of the alive weights removed per prune.
    #[arg(long, allow_hyphen_values = true, default_value_t = 0.1)]
    fraction: f64,
    /// The gate: prune while validation bits per character < dense * (1 + slack).
    #[arg(long, allow_hyphen_values = true, default_value_t = 0.03)]
    slack: f64,
    /// Final sparsity of the gmp method.
    #[arg(long, allow_hyphen_values = true, default_value_t = 0.8)]
    gmp_sparsity: f64,
    /// Validation windows (fixed, seeded) measured at each check; as many test windows.
    #[arg(long, default_value_t = 128)]
    val_windows: usize,
    /// Fraction of the text held out as the test split: its tail, the same for every seed.
    /// Nothing is tuned or chosen on it (the floor and the reported checkpoint use validation);
    /// its bits per character are reported beside validation's. 0: no test split (the
    /// protocol of the runs recorded before it existed).
    #[arg(long, allow_hyphen_values = true, default_value_t = 0.1)]
    test_fraction: f64,
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    /// Run directory.
    #[arg(long, default_value = "runs/text")]
    out: PathBuf,
    /// Overwrite a run directory that already holds results.
    #[arg(long)]
    force: bool,
    /// Continue the run in --out from its last checkpoint (written at every prune check). The
    /// options that define the run must be the ones it was started with (they are checked
    /// against its config.json); these may change: --max-steps (the budget), --out, --force,
    /// --quiet, --on-nonfinite, --generate, --temperature, --prompt, --from-checkpoint.
    #[arg(long)]
    resume: bool,
    /// Characters to generate at the end (0: none).
    #[arg(long, default_value_t = 300)]
    generate: usize,
    /// Sampling temperature (0: greedy).
    #[arg(long, allow_hyphen_values = true, default_value_t = 0.8)]
    temperature: f64,
    /// Text the generated sample continues.
    #[arg(long, default_value = "MACBETH.\n")]
    prompt: String,
    /// Only sample from a saved run (its directory, or a checkpoint directory) and exit.
    #[arg(long)]
    from_checkpoint: Option<PathBuf>,
    /// Where the masks act: in-place (pruned weights set back to 0 after every optimizer
    /// step, one pass) or forward (multiplied in every forward pass, two). Same results.
    #[arg(long, value_enum, default_value = "in-place")]
    masking: MaskingArg,
    /// No progress line on the terminal.
    #[arg(long)]
    quiet: bool,
    /// A NaN or Inf training loss: stop (keeping the last good checkpoint) or skip the step.
    #[arg(long, value_enum, default_value = "stop")]
    on_nonfinite: run::OnNonFinite,
}

/// The options (`Args` fields) that may change when a run is resumed: the budget, where the
/// output goes and how it is shown, what a NaN does, the sample at the end. Listed in
/// `--resume`'s help.
const MAY_CHANGE_ON_RESUME: [&str; 10] = [
    "max_steps",
    "out",
    "force",
    "resume",
    "quiet",
    "on_nonfinite",
    "generate",
    "temperature",
    "prompt",
    "from_checkpoint",
];

/// The sparsest checkpoint whose validation bits per character stayed under the floor.
#[derive(Serialize, Deserialize, Clone, Debug)]
struct Best {
    step: u64,
    sparsity: f64,
    val_bpc: f64,
    /// Test bits per character of the same checkpoint (reported, never used to choose it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    test_bpc: Option<f64>,
    /// Per-character perplexity, `2^bpc`.
    perplexity: f64,
}

/// What a checkpoint needs besides its weights: where the run stands, and the model and
/// vocabulary (so `--from-checkpoint` can rebuild it).
#[derive(Serialize, Deserialize, Clone, Debug)]
struct Progress {
    step: u64,
    best: Option<Best>,
    dense_val_bpc: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dense_test_bpc: Option<f64>,
    floor: f64,
    alphabet: String,
    d_model: usize,
    layers: usize,
    heads: usize,
    context: usize,
}

impl Progress {
    fn model_config(&self) -> TransformerLmConfig {
        TransformerLmConfig::new(CharTokenizer::from_text(&self.alphabet).vocab_size())
            .with_d_model(self.d_model)
            .with_layers(self.layers)
            .with_heads(self.heads)
            .with_context(self.context)
    }
}

fn main() {
    let args = Args::parse();
    let result = match &args.from_checkpoint {
        Some(dir) => sample_only(&args, dir),
        None => train(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// `[batch, window]` token windows as model inputs (the first `window - 1`) and targets (the
/// last `window - 1`, flattened).
fn batch(windows: &[u32], window: usize, device: &Device) -> (Tensor<2, Int>, Tensor<1, Int>) {
    let n = windows.len() / window;
    let (mut x, mut y) = (Vec::with_capacity(n * (window - 1)), Vec::new());
    for w in windows.chunks_exact(window) {
        x.extend(w[..window - 1].iter().map(|&t| t as i64));
        y.extend(w[1..].iter().map(|&t| t as i64));
    }
    let len = y.len();
    (
        Tensor::from_data(TensorData::new(x, [n, window - 1]), device),
        Tensor::from_data(TensorData::new(y, [len]), device),
    )
}

/// Mean next-token cross-entropy in nats.
fn loss(model: &TransformerLm, windows: &[u32], window: usize, device: &Device) -> Tensor<1> {
    let (x, y) = batch(windows, window, device);
    let logits = model.forward(x);
    let [b, s, v] = logits.dims();
    CrossEntropyLossConfig::new()
        .init(device)
        .forward(logits.reshape([b * s, v]), y)
}

/// Validation bits per character (per token: the same when every character of the text is in
/// the vocabulary, as it is for the text the vocabulary is built from), on fixed windows.
fn bits_per_char(model: &TransformerLm, windows: &[u32], window: usize, device: &Device) -> f64 {
    let model = model.valid();
    let device = device.clone().inner();
    let chunks: Vec<&[u32]> = windows.chunks(32 * window).collect();
    let nats: f64 = chunks
        .iter()
        .map(|c| loss(&model, c, window, &device).into_scalar::<f64>() * c.len() as f64)
        .sum();
    nats / windows.len() as f64 / std::f64::consts::LN_2
}

/// The parameter kind of a report row, by its path.
fn kind(path: &str) -> &'static str {
    let parts: Vec<&str> = path.split('.').collect();
    if parts.iter().any(|p| p.starts_with("ln")) {
        "layernorm"
    } else if path.ends_with(".bias") {
        "bias"
    } else if path.contains("emb") {
        "embedding"
    } else if parts.contains(&"attn") {
        "attention"
    } else if parts.iter().any(|p| p.starts_with("ff_")) {
        "feed-forward"
    } else {
        "other"
    }
}

/// Parameters, non-zeros and sparsity per kind; the total row is the sum of the others.
fn kind_table(report: &SparsityReport) -> String {
    let kinds = [
        "embedding",
        "attention",
        "feed-forward",
        "layernorm",
        "bias",
        "other",
    ];
    let mut out = format!(
        "{:<14} {:>10} {:>10} {:>9}\n",
        "kind", "params", "nonzero", "sparsity"
    );
    let (mut params, mut nonzero) = (0u64, 0u64);
    for k in kinds {
        let rows = report.rows.iter().filter(|r| kind(&r.path) == k);
        let (p, n) = rows.fold((0, 0), |(p, n), r| (p + r.params, n + r.nonzeros));
        if p == 0 {
            continue;
        }
        params += p;
        nonzero += n;
        let s = 100.0 * (1.0 - n as f64 / p as f64);
        out.push_str(&format!("{k:<14} {p:>10} {n:>10} {s:>8.2}%\n"));
    }
    let s = 100.0 * (1.0 - nonzero as f64 / params.max(1) as f64);
    out.push_str(&format!(
        "{:<14} {params:>10} {nonzero:>10} {s:>8.2}%",
        "total"
    ));
    out
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` characters sampled after `prompt` at `temperature` (0: greedy).
fn generate(
    model: &TransformerLm,
    tok: &CharTokenizer,
    prompt: &str,
    n: usize,
    temperature: f64,
    seed: u64,
) -> String {
    let model = model.valid();
    let device = sparse_examples::backend::device();
    let mut tokens = tok.encode(prompt);
    if tokens.is_empty() {
        tokens = tok.encode("\n");
    }
    let start = tokens.len();
    let mut state = seed;
    for _ in 0..n {
        let ctx = &tokens[tokens.len().saturating_sub(model.context())..];
        let x = TensorData::new(ctx.iter().map(|&t| t as i64).collect(), [1, ctx.len()]);
        let logits = model.forward(Tensor::from_data(x, &device));
        let [_, s, v] = logits.dims();
        let last = logits.slice([0..1, s - 1..s, 0..v]).reshape([v]);
        let next = if temperature <= 0.0 {
            last.argmax(0).into_scalar::<i64>() as u32
        } else {
            let probs: Vec<f32> = softmax(last.div_scalar(temperature), 0)
                .into_data()
                .try_to_vec()
                .expect("f32 probabilities");
            let mut u = (splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
            let mut pick = v - 1;
            for (i, p) in probs.iter().enumerate() {
                u -= *p as f64;
                if u < 0.0 {
                    pick = i;
                    break;
                }
            }
            pick as u32
        };
        tokens.push(next);
    }
    format!("{prompt}{}", tok.decode(&tokens[start..]))
}

/// `--from-checkpoint DIR`: sample from a saved run (DIR is the run directory or one of its
/// checkpoint directories).
fn sample_only(args: &Args, dir: &Path) -> Result<(), Error> {
    let (ckpt, p) = if dir.join("progress.json").exists() {
        let file = dir.join("progress.json");
        let p: Progress = serde_json::from_str(&std::fs::read_to_string(&file)?)
            .map_err(|e| format!("{}: not a checkpoint of this example: {e}", file.display()))?;
        (dir.to_path_buf(), p)
    } else {
        run::find_checkpoint::<Progress>(dir)?
    };
    let device = sparse_examples::backend::device();
    let model = p.model_config().init(&device)?;
    let model = sparse_prune::load_masked(model, &Selection::All, ckpt.join("model.bpk"))?;
    let report = SparsityReport::of(&model);
    println!(
        "{} (step {}, sparsity {:.2} %):\n",
        ckpt.display(),
        p.step,
        100.0 * report.sparsity()
    );
    let tok = CharTokenizer::from_text(&p.alphabet);
    let text = generate(
        &model,
        &tok,
        &args.prompt,
        args.generate,
        args.temperature,
        args.seed,
    );
    println!("{text}");
    Ok(())
}

/// Checks that need no data: every field in range, before any work starts (the model's
/// sizes are checked by `TransformerLmConfig::validate`).
fn validate(args: &Args) -> Result<(), String> {
    let positive = |v: f64| v > 0.0 && v.is_finite();
    run::check_fields(&[
        (
            "--every",
            args.every >= 1,
            "a number of optimizer steps > 0",
        ),
        (
            "--slack",
            args.slack >= 0.0 && args.slack.is_finite(),
            "a fraction >= 0",
        ),
        (
            "--fraction",
            args.fraction > 0.0 && args.fraction < 1.0,
            "in (0, 1)",
        ),
        ("--lr", positive(args.lr), "a positive number"),
        (
            "--gamma",
            args.gamma >= 0.0 && args.gamma.is_finite(),
            ">= 0",
        ),
        ("--alpha", positive(args.alpha), "a positive number"),
        ("--batch", args.batch >= 1, "at least 1"),
        ("--context", args.context >= 1, "at least 1"),
        ("--val-windows", args.val_windows >= 1, "at least 1"),
        (
            "--test-fraction",
            (0.0..1.0).contains(&args.test_fraction),
            "in [0, 1)",
        ),
        (
            "--gmp-sparsity",
            args.gmp_sparsity > 0.0 && args.gmp_sparsity < 1.0,
            "in (0, 1)",
        ),
        (
            "--temperature",
            args.temperature >= 0.0 && args.temperature.is_finite(),
            ">= 0 (0: greedy)",
        ),
    ])
}

fn train(args: Args) -> Result<(), Error> {
    let started = Instant::now();
    // Nothing a user has is overwritten silently.
    validate(&args)?;
    let _lock = run::guard_out(&args.out, args.force, args.resume)?;
    if args.resume {
        let given = serde_json::to_value(&args)?;
        run::check_resumed_options(&args.out, &given, &MAY_CHANGE_ON_RESUME, &[])?;
    }

    // 1. Data: the text, its vocabulary, a seeded split in contiguous blocks.
    let corpus = match &args.text {
        Some(path) => TextCorpus::from_file(path)?,
        None => TextCorpus::shakespeare(),
    };
    let tok = corpus.tokenizer().clone();
    // Every split holds a window of --context + 1 tokens, or nothing starts: each refusal
    // names the options that size it.
    let window = args.context + 1;
    let shorter = |e: String, more: &str, note: &str| {
        format!(
            "{e}: give a longer --text{more} or a smaller --context ({}{note})",
            args.context
        )
    };
    let (train_text, val_text, test_text): (TextSplit, TextSplit, TextSplit) = corpus
        .split_with_test(0.1, args.test_fraction, (16 * window).max(1024), args.seed)
        .map_err(|e| {
            let blocks = "; the blocks are 16 x (--context + 1) tokens, at least 1024";
            format!("{}: {}", source_name(&args), shorter(e, "", blocks))
        })?;
    let val = val_text
        .windows(args.val_windows, window, args.seed ^ 0x005E_ED0F_7E57)
        .map_err(|e| format!("validation text: {}", shorter(e, "", "")))?;
    // The same test windows for every seed.
    let test = match test_text.is_empty() {
        true => None,
        false => Some(
            test_text
                .windows(args.val_windows, window, 0x7E57_7E57)
                .map_err(|e| {
                    format!(
                        "test text: {}",
                        shorter(e, ", a larger --test-fraction", "")
                    )
                })?,
        ),
    };
    train_text
        .windows(1, window, 0)
        .map_err(|e| format!("training text: {}", shorter(e, "", "")))?;
    println!(
        "backend {} | {} | {} training, {} validation, {} test characters | vocabulary {} \
         characters + 256 bytes | {:?}",
        sparse_examples::backend::name(),
        source_name(&args),
        train_text.len(),
        val_text.len(),
        test_text.len(),
        tok.alphabet().chars().count(),
        args.method
    );

    let device = sparse_examples::backend::autodiff();
    device.seed(args.seed);
    let test_bpc = |model: &TransformerLm| {
        test.as_ref()
            .map(|t| bits_per_char(model, t, window, &device))
    };
    let config = TransformerLmConfig::new(tok.vocab_size())
        .with_d_model(args.d_model)
        .with_layers(args.layers)
        .with_heads(args.heads)
        .with_context(args.context);
    let train_batch = |step: u64, phase: u64| {
        let seed = args.seed ^ (phase << 40) ^ step.wrapping_mul(0x2545_F491_4F6C_DD1D);
        train_text
            .windows(args.batch, window, seed)
            .expect("checked above")
    };

    let resume = if args.resume {
        Some(run::find_checkpoint::<Progress>(&args.out)?)
    } else {
        None
    };
    let model = config.init(&device)?;
    println!(
        "model: {} parameters ({} layers, d_model {}, {} heads, context {})",
        model.num_params(),
        args.layers,
        args.d_model,
        args.heads,
        args.context
    );
    // 2. Dense training (Adam), unless resuming the pruning phase.
    let (model, dense_bpc, dense_test) = match &resume {
        Some((dir, p)) => {
            println!("resuming from {} at step {}", dir.display(), p.step);
            (model, p.dense_val_bpc, p.dense_test_bpc)
        }
        None => {
            let mut model = model;
            let mut optim: ModuleOptimizer = FusedAdamConfig::new().init()?;
            let mut progress = ProgressLine::new(!args.quiet, args.dense_steps);
            let mut guard = run::LossGuard::new(args.on_nonfinite);
            for step in 0..args.dense_steps {
                let loss = loss(&model, &train_batch(step, 1), window, &device);
                // Every step: a non-finite loss never reaches the weights.
                let value = loss.clone().into_scalar::<f64>();
                let apply = guard
                    .check(step, value, &args.out)
                    .map_err(|e| format!("dense phase: {e}"))
                    .inspect_err(|_| progress.clear())?;
                if step.is_multiple_of(20) {
                    progress.show(step, value, f64::NAN, 0.0);
                }
                if apply {
                    let grads = GradientsParams::from_grads(loss.backward(), &model);
                    model = optim.step(args.lr, model, grads);
                }
                if (step + 1).is_multiple_of(100) && step + 1 < args.dense_steps {
                    progress.clear();
                    let bpc = bits_per_char(&model, &val, window, &device);
                    println!("dense step {:5}: validation {bpc:.3} bits/char", step + 1);
                }
            }
            progress.clear();
            let bpc = bits_per_char(&model, &val, window, &device);
            let test = test_bpc(&model);
            println!(
                "dense: {} steps, validation {bpc:.3} bits/char{} ({:.0} s)",
                args.dense_steps,
                test.map_or(String::new(), |t| format!(", test {t:.3}")),
                started.elapsed().as_secs_f64()
            );
            (model, bpc, test)
        }
    };
    let floor = dense_bpc * (1.0 + args.slack);
    println!(
        "pruning: every {} steps remove {:.1} % of the alive weights while validation < {floor:.3} \
         bits/char (dense {dense_bpc:.3} + {:.1} %)",
        args.every,
        100.0 * args.fraction,
        100.0 * args.slack
    );
    let mut config_json = serde_json::to_value(&args)?;
    config_json["vocab"] = tok.vocab_size().into();
    config_json["alphabet"] = tok.alphabet().into();
    run::write_file_atomically(
        &args.out.join("config.json"),
        serde_json::to_string_pretty(&config_json)?,
    )?;

    // 3. The method with gated pruning; every parameter (embedding, attention, feed-forward,
    //    LayerNorm, biases) is prunable.
    let decay = args
        .method
        .decay(args.gamma, args.alpha, (args.steps / 10).max(1))
        .build(FusedAdamConfig::new().build()?)?;
    let total_steps = args.max_steps.unwrap_or(args.steps).min(args.steps);
    let schedule = args.method.schedule(
        args.every,
        args.fraction,
        Floor::Below(floor),
        args.steps,
        args.gmp_sparsity,
    );
    let mut pruner: Pruner = PrunerConfig::new(schedule)
        .with_params(Selection::All)
        .with_masking(args.masking.into())
        .init()?;
    let checkpoint = resume.as_ref().map(|(dir, _)| dir.as_path());
    let (mut model, mut optim) = run::start_or_resume(model, &decay, &mut pruner, checkpoint)?;
    let (mut step, mut best) = resume
        .as_ref()
        .map_or((0, None), |(_, p)| (p.step, p.best.clone()));
    let progress_record = |step: u64, best: &Option<Best>| Progress {
        step,
        best: best.clone(),
        dense_val_bpc: dense_bpc,
        dense_test_bpc: dense_test,
        floor,
        alphabet: tok.alphabet(),
        d_model: args.d_model,
        layers: args.layers,
        heads: args.heads,
        context: args.context,
    };

    let mut csv = run::open_metrics(
        &args.out.join("metrics.csv"),
        match test {
            Some(_) => "step,val_bpc,alive,sparsity,test_bpc",
            None => "step,val_bpc,alive,sparsity",
        },
        resume.as_ref().map(|_| step),
    )?;
    let mut progress = ProgressLine::new(!args.quiet, total_steps);
    let mut last_val = f64::NAN;
    let mut guard = run::LossGuard::new(args.on_nonfinite);
    while step < total_steps {
        let loss = loss(&model, &train_batch(step, 2), window, &device);
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
                model = optim.step(args.lr, model, grads); // moved, not cloned
            }
        }
        model = pruner.enforce(model); // in-place masks: pruned weights back to 0
        step += 1;
        if !step.is_multiple_of(args.every) {
            model = pruner.step(model, step, None)?.0; // advances the decay clock
            continue;
        }
        // A check: measure, then let the pruner decide.
        let val_bpc = bits_per_char(&model, &val, window, &device);
        let check_test = test_bpc(&model);
        last_val = val_bpc;
        progress.clear();
        let report = SparsityReport::of(&model);
        writeln!(
            csv,
            "{step},{val_bpc:.5},{},{:.6}{}",
            report.nonzeros(),
            report.sparsity(),
            check_test.map_or(String::new(), |t| format!(",{t:.5}"))
        )?;
        if val_bpc < floor
            && best
                .as_ref()
                .is_none_or(|b: &Best| report.sparsity() > b.sparsity)
        {
            best = Some(Best {
                step,
                sparsity: report.sparsity(),
                val_bpc,
                test_bpc: check_test,
                perplexity: val_bpc.exp2(),
            });
        }
        let (m, event) = pruner.step(model, step, Some(val_bpc))?;
        model = m;
        run::save_checkpoint(
            &args.out,
            &model,
            &optim,
            &pruner,
            &progress_record(step, &best),
        )?;
        println!(
            "step {step:5}: validation {val_bpc:.3} bits/char, sparsity {:6.2} %{}",
            100.0 * report.sparsity(),
            match event {
                Some(e) => format!(" -> pruned to {:.2} %", 100.0 * e.sparsity),
                None if val_bpc >= floor => " (above the floor: no prune)".to_string(),
                None => String::new(),
            }
        );
    }
    progress.clear();

    // 4. The final model: bits per character, sparsity per kind, a sample.
    let final_bpc = bits_per_char(&model, &val, window, &device);
    let final_test = test_bpc(&model);
    let report = SparsityReport::of(&model);
    run::save_checkpoint(
        &args.out,
        &model,
        &optim,
        &pruner,
        &progress_record(step, &best),
    )?;
    let mut summary = serde_json::json!({
        "dense_val_bpc": dense_bpc,
        "floor": floor,
        "best": best,
        "final": {
            "val_bpc": final_bpc,
            "perplexity": final_bpc.exp2(),
            "sparsity": report.sparsity(),
            "nonzeros": report.nonzeros(),
            "params": report.params(),
        },
        "steps": step,
        "wall_s": started.elapsed().as_secs_f64(),
        "backend": sparse_examples::backend::name(),
        "seed": args.seed,
        "method": args.method,
    });
    if let (Some(dense), Some(last)) = (dense_test, final_test) {
        summary["dense_test_bpc"] = dense.into();
        summary["final"]["test_bpc"] = last.into();
    }
    run::write_file_atomically(
        &args.out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    println!("\n{}\n", kind_table(&report));
    let test_note = |t: Option<f64>| t.map_or(String::new(), |t| format!(", test {t:.3}"));
    println!(
        "dense:  validation {dense_bpc:.3} bits/char{} (floor {floor:.3})",
        test_note(dense_test)
    );
    println!(
        "pruned: validation {final_bpc:.3} bits/char{} at {:.2} % sparsity ({} of {} weights left)",
        test_note(final_test),
        100.0 * report.sparsity(),
        report.nonzeros(),
        report.params()
    );
    match &best {
        Some(b) => println!(
            "best under the floor (chosen on validation): step {}, {:.2} % sparsity, {:.3} \
             bits/char (perplexity {:.2}){}",
            b.step,
            100.0 * b.sparsity,
            b.val_bpc,
            b.perplexity,
            test_note(b.test_bpc)
        ),
        None => println!("no check stayed under the floor"),
    }
    if args.generate > 0 {
        let text = generate(
            &model,
            &tok,
            &args.prompt,
            args.generate,
            args.temperature,
            args.seed,
        );
        println!("\nsample (temperature {}):\n{text}\n", args.temperature);
    }
    println!(
        "results in {} ({:.0} s)",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn source_name(args: &Args) -> String {
    match &args.text {
        Some(p) => p.display().to_string(),
        None => "embedded Shakespeare".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_too_short_for_a_window_is_refused_before_anything_is_written() {
        let tmp = std::env::temp_dir().join(format!("text-sizes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        let out = tmp.join("run");
        let refused = |text: &str, extra: &[&str]| {
            let file = tmp.join("text.txt");
            std::fs::write(&file, text).unwrap();
            let mut v = vec!["text_generation", "--quiet", "--generate", "0"];
            v.extend([
                "--text",
                file.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ]);
            v.extend(extra);
            let err = train(Args::parse_from(v)).unwrap_err().to_string();
            assert!(!out.exists(), "{}: written after `{err}`", out.display());
            err
        };
        // The faults: a one-byte text; a test split (its last hundredth) shorter than a
        // window of --context + 1 tokens.
        assert_eq!(
            refused("a", &[]),
            format!(
                "{}: the text has 1 tokens: too short for a train/validation split in blocks of \
                 2064 tokens (at least two blocks are needed): give a longer --text or a \
                 smaller --context (128; the blocks are 16 x (--context + 1) tokens, at least \
                 1024)",
                tmp.join("text.txt").display()
            )
        );
        let text: String = (0..5000)
            .map(|i| (b'a' + (i * 7 % 26) as u8) as char)
            .collect();
        assert_eq!(
            refused(&text, &["--test-fraction", "0.01"]),
            "test text: no window of 129 tokens fits in the split (longest segment: 50 tokens): \
             give a longer --text, a larger --test-fraction or a smaller --context (128)"
        );
        std::fs::remove_dir_all(&tmp).ok();
    }

    #[test]
    fn bad_options_are_refused_by_name_before_any_work() {
        let check = |extra: &[&str]| {
            let mut v = vec!["text_generation"];
            v.extend(extra);
            validate(&Args::parse_from(v)).err()
        };
        assert_eq!(check(&[]), None);
        assert_eq!(
            check(&["--every", "0"]).unwrap(),
            "--every: expected a number of optimizer steps > 0"
        );
        assert_eq!(
            check(&["--fraction", "0"]).unwrap(),
            "--fraction: expected in (0, 1)"
        );
        assert_eq!(
            check(&["--temperature=-1"]).unwrap(),
            "--temperature: expected >= 0 (0: greedy)"
        );
        assert_eq!(
            check(&["--test-fraction", "1"]).unwrap(),
            "--test-fraction: expected in [0, 1)"
        );
        assert_eq!(check(&["--test-fraction", "0"]), None);
    }

    #[test]
    fn the_options_that_may_change_on_resume_are_in_the_help() {
        use clap::CommandFactory;
        let fields = MAY_CHANGE_ON_RESUME.to_vec();
        let missing = run::missing_from_resume_help(&Args::command(), &fields);
        assert!(missing.is_empty(), "not in --resume's help: {missing:?}");
    }

    #[test]
    fn a_resume_with_another_option_is_refused_and_a_negative_value_is_named() {
        let out = std::env::temp_dir().join(format!("text-resume-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let out_arg = out.to_str().unwrap();
        let started = Args::parse_from(["text_generation", "--out", out_arg]);
        let mut config = serde_json::to_value(&started).unwrap();
        config["vocab"] = 331.into(); // written by the run beside its options
        let file = out.join("config.json");
        std::fs::write(&file, serde_json::to_string_pretty(&config).unwrap()).unwrap();
        let before = std::fs::read(&file).unwrap();
        let resume = |extra: &[&str]| {
            let mut v = vec!["text_generation", "--out", out_arg, "--resume"];
            v.extend(extra);
            let args = Args::parse_from(v);
            let given = serde_json::to_value(&args).unwrap();
            run::check_resumed_options(&args.out, &given, &MAY_CHANGE_ON_RESUME, &[])
                .map_err(|e| e.to_string())
        };
        assert_eq!(resume(&["--max-steps", "9", "--quiet"]), Ok(()));
        let err = resume(&["--test-fraction", "0"]).unwrap_err();
        assert!(
            err.contains("(--test-fraction: stored 0.1, given 0.0)"),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&file).unwrap(),
            before,
            "config.json untouched"
        );
        std::fs::remove_dir_all(&out).ok();
        let args = Args::parse_from(["text_generation", "--gamma", "-0.1"]);
        assert_eq!(validate(&args).unwrap_err(), "--gamma: expected >= 0");
    }

    #[test]
    fn parameter_kinds_follow_the_paths() {
        for (path, k) in [
            ("tok_emb.weight", "embedding"),
            ("pos_emb.weight", "embedding"),
            ("blocks.0.attn.query.weight", "attention"),
            ("blocks.3.attn.output.bias", "bias"),
            ("blocks.1.ff_in.weight", "feed-forward"),
            ("blocks.1.ff_out.bias", "bias"),
            ("blocks.2.ln1.gamma", "layernorm"),
            ("blocks.2.ln2.beta", "layernorm"),
            ("ln_f.gamma", "layernorm"),
        ] {
            assert_eq!(kind(path), k, "{path}");
        }
    }
}
