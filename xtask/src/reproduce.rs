//! `cargo xtask reproduce lenet`: the LeNet results grid (models x methods x seeds, one shared
//! dense start per model and seed, the PyTorch reference beside it) and its tables in
//! `docs/RESULTS.md`.
//!
//! Every run is a run directory of `examples/lenet.rs` under `--out`; a finished run
//! (summary.json) is never run again and an interrupted one is resumed from its checkpoint, so
//! the command can be stopped and started again at will. A finished run's small files are kept
//! under `docs/results/` (see [`crate::records`]), so that it is not run again on another
//! machine either. Two grids can run side by side (one per core): each skips the runs the
//! other is writing. `--report-only` rebuilds the tables from the records and the runs there.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// What to run.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// MNIST-format data (the full Fashion-MNIST from Debian's `dataset-fashion-mnist`).
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    pub data_dir: PathBuf,
    /// The data set (the example's `--dataset`: its floors); the grid's defaults follow it:
    /// fashion-mnist 6 methods x 5 seeds + an alpha sweep, mnist the paper's task 1 (the
    /// method, magnitude-only and L2 on 3 seeds, and the method at a 99.2 % floor).
    #[arg(long, default_value = "fashion-mnist", value_parser = ["fashion-mnist", "mnist"])]
    pub dataset: String,
    /// Models, comma separated.
    #[arg(long, value_delimiter = ',', default_value = MODELS)]
    pub models: Vec<String>,
    /// Methods of the example (`--method`), comma separated.
    #[arg(long, value_delimiter = ',', default_value = METHODS)]
    pub methods: Vec<String>,
    /// Seeds, comma separated (each seed: its own dense start, split and shuffles).
    #[arg(long, value_delimiter = ',', default_value = SEEDS)]
    pub seeds: Vec<u64>,
    /// Extra alpha values for the paper method (alpha sweep), comma separated.
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = ALPHAS)]
    pub alphas: Vec<f64>,
    /// Extra validation floors for the paper method (the example's `--floor`), comma separated.
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    pub floors: Vec<f64>,
    /// Dense epochs and epochs with the method (the paper: 14 and 75).
    #[arg(long, default_value_t = 14)]
    pub dense_epochs: usize,
    #[arg(long, default_value_t = 75)]
    pub epochs: usize,
    /// Run the PyTorch reference (`../shared/reference/torch_reference.py prune`) on the same
    /// seeds and schedule, when torch is installed.
    #[arg(long)]
    pub torch: bool,
    /// Path of the PyTorch reference script.
    #[arg(long, default_value = "../shared/reference/torch_reference.py")]
    pub torch_script: PathBuf,
    /// The dense epoch each method starts from: `best` on validation (as the PyTorch reference
    /// does) or `last` (the runs made before this option existed).
    #[arg(long, default_value = "best", value_parser = ["best", "last"])]
    pub dense_keep: String,
    /// Root of the run directories.
    #[arg(long, default_value = "runs/reproduce")]
    pub out: PathBuf,
    /// Use this build of the lenet example instead of building one (e.g. a copy, so that
    /// rebuilding the workspace does not change a grid that is running).
    #[arg(long)]
    pub exe: Option<PathBuf>,
    /// Only rebuild the tables of docs/RESULTS.md from the runs already there.
    #[arg(long)]
    pub report_only: bool,
}

/// The `dataset` of the CIFAR-10 grid (`cargo xtask reproduce cifar`, the cifar10 example).
pub const CIFAR10: &str = "cifar10";

/// `cargo xtask reproduce cifar`: ResNet-20 on CIFAR-10, the method and its baselines from one
/// dense start per seed (the same budget for every method).
#[derive(clap::Args, Clone, Debug)]
pub struct CifarArgs {
    /// An image folder (`train/<class>/*.jpg`, `test/<class>/*.jpg`) or CIFAR-10's binary
    /// version.
    #[arg(long, default_value = "data/cifar10")]
    pub data_dir: PathBuf,
    /// Models, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "resnet20")]
    pub models: Vec<String>,
    /// Methods of the example (`--method`), comma separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "relevance,magnitude,l2,gmp"
    )]
    pub methods: Vec<String>,
    /// Seeds, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub seeds: Vec<u64>,
    /// Dense epochs, and epochs of each method from the dense start.
    #[arg(long, default_value_t = CIFAR_DENSE_EPOCHS)]
    pub dense_epochs: usize,
    #[arg(long, default_value_t = CIFAR_EPOCHS)]
    pub epochs: usize,
    /// Root of the run directories.
    #[arg(long, default_value = "runs/cifar10")]
    pub out: PathBuf,
    /// Use this build of the cifar10 example instead of building one.
    #[arg(long)]
    pub exe: Option<PathBuf>,
    /// Only rebuild the tables of docs/RESULTS.md from the runs already there.
    #[arg(long)]
    pub report_only: bool,
}

/// The CIFAR-10 budget, the same for every method (docs/RESULTS.md says how it was sized).
const CIFAR_DENSE_EPOCHS: usize = 20;
const CIFAR_EPOCHS: usize = 10;

impl From<CifarArgs> for Args {
    fn from(c: CifarArgs) -> Self {
        Args {
            data_dir: c.data_dir,
            dataset: CIFAR10.into(),
            models: c.models,
            methods: c.methods,
            seeds: c.seeds,
            alphas: vec![],
            floors: vec![],
            dense_epochs: c.dense_epochs,
            epochs: c.epochs,
            torch: false,
            torch_script: PathBuf::new(),
            dense_keep: "last".into(),
            out: c.out,
            exe: c.exe,
            report_only: c.report_only,
        }
    }
}

/// The whole grid: the defaults of `--models`, `--methods`, `--seeds` and `--alphas`.
const MODELS: &str = "lenet5,lenet300";
const METHODS: &str = "relevance,magnitude,l2,l1,lobster,gmp";
const SEEDS: &str = "1,2,3,4,5";
const ALPHAS: &str = "0.1,0.01,0.001";
/// The MNIST grid (`--dataset mnist`): methods, seeds and extra floors.
const MNIST_METHODS: &str = "relevance,magnitude,l2";
const MNIST_SEEDS: &str = "1,2,3";
const MNIST_FLOORS: &str = "0.992";

/// `defaults` (comma separated), then whatever of `named` they lack.
pub(crate) fn union<T: PartialEq + Clone + std::str::FromStr>(
    defaults: &str,
    named: &[T],
) -> Vec<T> {
    let mut all: Vec<T> = defaults.split(',').filter_map(|v| v.parse().ok()).collect();
    for v in named {
        if !all.contains(v) {
            all.push(v.clone());
        }
    }
    all
}

impl Args {
    /// The scope of docs/RESULTS.md's tables: the whole grid plus whatever this invocation
    /// names. An invocation that runs part of the grid (one seed, some methods) rewrites the
    /// document at its end, and must not drop the other results from it.
    pub fn whole_grid(&self) -> Args {
        if self.dataset == CIFAR10 {
            return Args {
                models: union("resnet20", &self.models),
                methods: union("relevance,magnitude,l2,gmp", &self.methods),
                seeds: union("1,2,3", &self.seeds),
                ..self.clone()
            };
        }
        if self.dataset == "mnist" {
            return Args {
                models: union(MODELS, &self.models),
                methods: union(MNIST_METHODS, &self.methods),
                seeds: union(MNIST_SEEDS, &self.seeds),
                alphas: self.alphas.clone(),
                floors: union(MNIST_FLOORS, &self.floors),
                ..self.clone()
            };
        }
        Args {
            models: union(MODELS, &self.models),
            methods: union(METHODS, &self.methods),
            seeds: union(SEEDS, &self.seeds),
            alphas: union(ALPHAS, &self.alphas),
            floors: union("", &self.floors),
            ..self.clone()
        }
    }
}

/// Run the grid (skipping what is done), then write the tables.
pub fn run(args: &Args, root: &Path) -> Result<(), String> {
    let out = root.join(&args.out);
    let example = args.example();
    if !args.report_only && args.exe.is_none() {
        let status = Command::new("cargo")
            .current_dir(root)
            .args(["build", "--release", "--example", example])
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("cargo build --release --example {example} failed"));
        }
    }
    let records = crate::records::dir_for(root, &args.out);
    if !args.report_only {
        let exe = args
            .exe
            .clone()
            .unwrap_or_else(|| target_dir(root).join("release/examples").join(example));
        for model in &args.models {
            for seed in &args.seeds {
                grid_for(args, &exe, &out, &records, model, *seed)?;
            }
        }
    }
    // Finished runs are recorded however they were launched (this command, or the example
    // run by hand into the same layout), also with --report-only.
    for model in &args.models {
        let Ok(entries) = std::fs::read_dir(out.join(model)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with("dense-") {
                let record = records.join(model).join(&name);
                crate::records::keep(&entry.path(), &record, "summary.json", &RECORDED)?;
            }
        }
    }
    let (tables, found) = report(&args.whole_grid(), &out, &records)?;
    if found == 0 {
        return Err(format!(
            "no runs under {} and no records under {}: docs/RESULTS.md is left as it is",
            out.display(),
            records.display()
        ));
    }
    let (command, default_out) = args.command();
    crate::markers::write_results(root, command, &args.out, default_out, &tables)
}

impl Args {
    /// The command that runs this grid, and its default run root.
    fn command(&self) -> (&'static str, &'static str) {
        match self.dataset.as_str() {
            CIFAR10 => ("cargo xtask reproduce cifar", "runs/cifar10"),
            "mnist" => ("cargo xtask reproduce lenet --dataset mnist", "runs/mnist"),
            _ => ("cargo xtask reproduce lenet", "runs/reproduce"),
        }
    }

    /// The example that runs this grid.
    fn example(&self) -> &'static str {
        if self.dataset == CIFAR10 {
            "cifar10"
        } else {
            "lenet"
        }
    }
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, else `target/` under `root`).
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// The files of a finished run the tables are built from: `(in the run, in the record)`.
pub(crate) const RECORDED: [(&str, &str); 5] = [
    ("config.json", "config.json"),
    ("metrics.csv", "metrics.csv"),
    ("checkpoint/progress.json", "progress.json"),
    (crate::records::PROVENANCE, crate::records::PROVENANCE),
    ("summary.json", "summary.json"),
];

fn grid_for(
    args: &Args,
    exe: &Path,
    out: &Path,
    records: &Path,
    model: &str,
    seed: u64,
) -> Result<(), String> {
    let dir = out.join(model);
    let kept = records.join(model);
    let dense = dir.join(format!("dense-s{seed}"));
    let mut runs: Vec<(String, Vec<String>)> = args
        .methods
        .iter()
        .map(|m| (format!("{m}-s{seed}"), vec!["--method".into(), m.clone()]))
        .collect();
    for a in &args.alphas {
        runs.push((
            format!("relevance-a{a}-s{seed}"),
            vec![
                "--method".into(),
                "relevance".into(),
                "--alpha".into(),
                a.to_string(),
            ],
        ));
    }
    for f in &args.floors {
        runs.push((
            format!("relevance-f{f}-s{seed}"),
            vec![
                "--method".into(),
                "relevance".into(),
                "--floor".into(),
                f.to_string(),
            ],
        ));
    }
    for (name, _) in &runs {
        crate::records::keep(&dir.join(name), &kept.join(name), "summary.json", &RECORDED)?;
    }
    runs.retain(|(name, _)| {
        !crate::records::finished(&dir.join(name), &kept.join(name), "summary.json")
    });
    let torch_file = format!("torch-s{seed}.jsonl");
    let torch_done = |file: &Path| {
        std::fs::read_to_string(file)
            .map(|t| t.contains("\"summary\": true"))
            .unwrap_or(false)
    };
    let keep_torch = || -> Result<(), String> {
        if torch_done(&dir.join(&torch_file)) && !torch_done(&kept.join(&torch_file)) {
            std::fs::create_dir_all(&kept).map_err(|e| format!("{}: {e}", kept.display()))?;
            std::fs::copy(dir.join(&torch_file), kept.join(&torch_file))
                .map_err(|e| format!("{}: {e}", kept.join(&torch_file).display()))?;
        }
        Ok(())
    };
    keep_torch()?;
    let torch_pending = args.torch && !torch_done(&kept.join(&torch_file));
    if runs.is_empty() && !torch_pending {
        return Ok(());
    }
    let common = |run: &Path| {
        let mut c = Command::new(exe);
        crate::allocator::steady(&mut c);
        c.arg("--model")
            .arg(model)
            .arg("--data-dir")
            .arg(&args.data_dir)
            .arg("--seed")
            .arg(seed.to_string())
            .arg("--quiet")
            .arg("--out")
            .arg(run);
        if args.dataset != CIFAR10 {
            c.arg("--dataset").arg(&args.dataset);
        }
        c
    };
    crate::park::unpark(&dense, &kept.join(format!("dense-s{seed}")))?;
    if let Some(pid) = busy(&dense) {
        eprintln!(
            "skipping {model} seed {seed}: its dense start is being trained by process {pid}"
        );
        return Ok(());
    }
    let record = dense.join("dense/dense.json");
    if !record.exists() {
        let mut c = common(&dense);
        c.args(["--max-steps", "0", "--dense-epochs"])
            .arg(args.dense_epochs.to_string());
        if args.dataset != CIFAR10 {
            c.arg("--dense-keep").arg(&args.dense_keep);
        }
        // The cifar10 example checkpoints its dense phase after every epoch.
        if args.dataset == CIFAR10 && dense.join("dense-checkpoint/progress.json").exists() {
            c.arg("--resume");
        } else {
            c.arg("--force");
        }
        crate::records::stamp(&dense, exe)?;
        launch(c, &dense)?;
    }
    let text =
        std::fs::read_to_string(&record).map_err(|e| format!("{}: {e}", record.display()))?;
    same_dense_kind(&record, &text, &args.dense_keep)?;
    for (name, extra) in runs {
        let run = dir.join(&name);
        crate::park::unpark(&run, &kept.join(&name))?;
        if let Some(pid) = busy(&run) {
            eprintln!("skipping {}: being run by process {pid}", run.display());
            continue;
        }
        let mut c = common(&run);
        c.args(&extra)
            .arg("--from")
            .arg(&dense)
            .arg("--epochs")
            .arg(args.epochs.to_string());
        if run.join("checkpoint/progress.json").exists()
            || run.join("checkpoint.old/progress.json").exists()
        {
            c.arg("--resume");
        } else {
            c.arg("--force");
        }
        crate::records::stamp(&run, exe)?;
        launch(c, &run)?;
        crate::records::keep(&run, &kept.join(&name), "summary.json", &RECORDED)?;
    }
    if torch_pending {
        let file = dir.join(&torch_file);
        {
            let log =
                std::fs::File::create(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            eprintln!(
                "running the PyTorch reference, {model} seed {seed} -> {}",
                file.display()
            );
            let status = Command::new("python3")
                .arg(&args.torch_script)
                .args([
                    "prune",
                    "--device",
                    "cpu",
                    "--threads",
                    "1",
                    "--model",
                    model,
                ])
                .arg("--data")
                .arg(&args.data_dir)
                .arg("--seed")
                .arg(seed.to_string())
                .arg("--dense-epochs")
                .arg(args.dense_epochs.to_string())
                .arg("--epochs")
                .arg(args.epochs.to_string())
                // The floors the lenet example uses on the full data set.
                .arg("--floor")
                .arg(match (args.dataset.as_str(), model) {
                    ("mnist", "lenet5") => "0.98",
                    ("mnist", _) => "0.97",
                    (_, "lenet5") => "0.905",
                    _ => "0.88",
                })
                .stdout(log)
                .status()
                .map_err(|e| format!("cannot run python3 {}: {e}", args.torch_script.display()))?;
            if !status.success() {
                eprintln!("the PyTorch reference failed (is torch installed? `pip install torch`)");
            } else {
                keep_torch()?;
            }
        }
    }
    Ok(())
}

/// The other live process writing the run directory `run` now, if any (from the `.lock` the
/// examples hold, see `sparse_examples::run::RunLock`): so that two grids can run side by side,
/// each skipping what the other is running. Only known on Linux.
pub(crate) fn busy(run: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(run.join(".lock"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let running = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()?
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .is_some_and(|state| state != 'Z' && state != 'X');
    (pid != std::process::id() && running).then_some(pid)
}

/// Never mix dense starts: a record written before `--dense-keep` existed (no `kept_epoch`)
/// kept its last epoch; `text` is the `dense.json` at `record`.
fn same_dense_kind(record: &Path, text: &str, dense_keep: &str) -> Result<(), String> {
    let kept = serde_json::from_str::<Value>(text)
        .map_err(|e| format!("{}: {e}", record.display()))?
        .get("kept_epoch")
        .is_some_and(|v| !v.is_null());
    if kept == (dense_keep == "best") {
        return Ok(());
    }
    Err(format!(
        "{}: this dense start kept its {} epoch, but --dense-keep is {dense_keep}; use another \
         --out (or the matching --dense-keep)",
        record.display(),
        if kept { "best" } else { "last" },
    ))
}

/// Run `c` with its output appended to `run/log.txt`; an error names the run and its log.
pub(crate) fn launch(mut c: Command, run: &Path) -> Result<(), String> {
    std::fs::create_dir_all(run).map_err(|e| format!("{}: {e}", run.display()))?;
    let log = run.join("log.txt");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    eprintln!("running {}", run.display());
    let status = c
        .stdout(file.try_clone().map_err(|e| e.to_string())?)
        .stderr(file)
        .status()
        .map_err(|e| format!("cannot start {}: {e}", c.get_program().to_string_lossy()))?;
    if !status.success() {
        return Err(format!("{} failed: see {}", run.display(), log.display()));
    }
    Ok(())
}

/// Compression levels of the ladder tables: LeNet's, and CIFAR's (80, 90, 95, 98 % sparse).
const LADDER: [f64; 6] = [10.0, 30.0, 100.0, 200.0, 300.0, 500.0];
const CIFAR_LADDER: [f64; 4] = [5.0, 10.0, 20.0, 50.0];

impl Args {
    /// The ladder tables' compression levels for this data set.
    fn levels(&self) -> &'static [f64] {
        if self.dataset == CIFAR10 {
            &CIFAR_LADDER
        } else {
            &LADDER
        }
    }
}

/// One run, as the tables need it.
struct Outcome {
    compression: Option<f64>,
    test_at_best: Option<f64>,
    /// Every check of the run, in order (the ladder tables read them).
    points: Vec<Check>,
    dense_test: f64,
    wall_s: Option<f64>,
    /// Set when the run has not finished: the step of its last checkpoint.
    partial_step: Option<u64>,
    /// The validation floor of the run.
    floor: f64,
    /// Every check: `(compression, test accuracy)` (the figure's curve).
    curve: Vec<(f64, f64)>,
    /// The seed of the run.
    seed: u64,
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// One check of a run: compression, validation accuracy, test accuracy, validation above the
/// floor.
type Check = (f64, f64, f64, bool);

/// Per LADDER level, the test accuracy of the check `pick` takes among those at or past it whose
/// validation accuracy passed the floor (in order).
fn at_levels(
    points: &[Check],
    levels: &[f64],
    pick: impl Fn(&[&Check]) -> Option<f64>,
) -> Vec<Option<f64>> {
    levels
        .iter()
        .map(|level| {
            let passed: Vec<&Check> = points
                .iter()
                .filter(|(c, _, _, passed)| *c >= *level && *passed)
                .collect();
            pick(&passed)
        })
        .collect()
}

/// Per LADDER level, the test accuracy of the first check at or past it.
fn ladder(points: &[Check], levels: &[f64]) -> Vec<Option<f64>> {
    at_levels(points, levels, |passed| passed.first().map(|p| p.2))
}

/// Per LADDER level, the test accuracy of the check that validation alone would pick among
/// those at or past it (the first of equals).
fn ladder_best_val(points: &[Check], levels: &[f64]) -> Vec<Option<f64>> {
    at_levels(points, levels, |passed| {
        passed
            .iter()
            .fold(None::<&Check>, |best, p| match best {
                Some(b) if b.1 >= p.1 => Some(b),
                _ => Some(p),
            })
            .map(|p| p.2)
    })
}

/// A finished run (summary.json; a run directory or its record), or an unfinished one from its
/// last checkpoint.
fn burn_outcome(run: &Path, seed: u64) -> Option<Outcome> {
    let csv = std::fs::read_to_string(run.join("metrics.csv")).ok()?;
    let rows: Vec<Vec<f64>> = csv
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .filter_map(|v| v.parse().ok())
                .collect::<Vec<f64>>()
        })
        .filter(|f| f.len() >= 6)
        .collect();
    let first = rows.first()?;
    let total = first[4] / (1.0 - first[5]);
    let progress = read_json(&run.join("progress.json"))
        .or_else(|| read_json(&run.join("checkpoint/progress.json")))
        .or_else(|| read_json(&run.join("checkpoint.old/progress.json")))?;
    let floor = progress["floor"].as_f64()?;
    let points: Vec<Check> = rows
        .iter()
        .map(|f| (total / f[4].max(1.0), f[2], f[3], f[2] > floor))
        .collect();
    let (best, dense_test, wall_s, partial_step) = match read_json(&run.join("summary.json")) {
        Some(s) => (
            s["best"].clone(),
            s["dense_test_acc"].as_f64()?,
            s["wall_s"].as_f64(),
            None,
        ),
        None => (
            progress["best"].clone(),
            progress["dense_test"].as_f64()?,
            None,
            progress["step"].as_u64(),
        ),
    };
    Some(Outcome {
        compression: best["compression"].as_f64(),
        test_at_best: best["test_acc"].as_f64(),
        curve: points.iter().map(|p| (p.0, p.2)).collect(),
        points,
        dense_test,
        wall_s,
        partial_step,
        floor,
        seed,
    })
}

fn torch_outcome(file: &Path, seed: u64) -> Option<Outcome> {
    let text = std::fs::read_to_string(file).ok()?;
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let s = lines.iter().find(|v| v["summary"] == Value::Bool(true))?;
    let floor = s["floor"].as_f64()?;
    let points: Vec<Check> = lines
        .iter()
        .filter_map(|v| {
            let val = v["val_acc"].as_f64()?;
            Some((
                1.0 / v["remaining"].as_f64()?,
                val,
                v["test_acc"].as_f64()?,
                val > floor,
            ))
        })
        .collect();
    Some(Outcome {
        compression: s["best_compression"].as_f64(),
        test_at_best: s["best_test_acc"].as_f64(),
        curve: points.iter().map(|p| (p.0, p.2)).collect(),
        points,
        dense_test: s["dense_test_acc"].as_f64()?,
        wall_s: s["wall_s"].as_f64(),
        partial_step: None,
        floor,
        seed,
    })
}

/// "median (min-max)" of the values, with a format for each.
/// `median (min-max)` of `values` written with `fmt` (`-` when empty, the value alone for one).
pub(crate) fn spread(values: &[f64], fmt: impl Fn(f64) -> String) -> String {
    if values.is_empty() {
        return "-".into();
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    };
    if n == 1 {
        fmt(median)
    } else {
        format!("{} ({}-{})", fmt(median), fmt(v[0]), fmt(v[n - 1]))
    }
}

/// The tables, and how many runs they are built from.
fn report(args: &Args, out: &Path, records: &Path) -> Result<(String, usize), String> {
    let mut count = 0;
    let options = match args.dataset.as_str() {
        CIFAR10 => String::new(),
        _ => format!(" --dense-keep {}", args.dense_keep),
    } + &format!(
        " --dense-epochs {} --epochs {}",
        args.dense_epochs, args.epochs
    );
    let mut text = format!(
        "Built by `{} --report-only --out {}{options}` from the finished runs recorded under `{}` (and any run still going under `{}`) ({} dense + {} \
         epochs, the method starting from {}); \
         `runs` = seeds, cells = median (min-max) over them; wall s = the last process of a run \
         (a resumed run counts only its last part).\n\n",
        args.command().0,
        args.out.display(),
        crate::records::dir_for(Path::new(""), &args.out).display(),
        args.out.display(),
        args.dense_epochs,
        args.epochs,
        if args.dense_keep == "best" {
            "the dense epoch with the best validation accuracy"
        } else {
            "the last dense epoch"
        },
    );
    for model in &args.models {
        let dir = out.join(model);
        let kept = records.join(model);
        let mut rows: Vec<(String, Vec<Outcome>)> = Vec::new();
        let mut labels: Vec<(String, String)> = args
            .methods
            .iter()
            .map(|m| (m.clone(), m.clone()))
            .collect();
        for a in &args.alphas {
            labels.push((format!("relevance-a{a}"), format!("relevance, alpha {a}")));
        }
        for f in &args.floors {
            labels.push((
                format!("relevance-f{f}"),
                format!("relevance, floor {:.1} %", 100.0 * f),
            ));
        }
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (prefix, label) in &labels {
            let (found, row_dirs): (Vec<Outcome>, Vec<PathBuf>) = args
                .seeds
                .iter()
                .filter_map(|s| {
                    let name = format!("{prefix}-s{s}");
                    [kept.join(&name), dir.join(&name)]
                        .into_iter()
                        .find_map(|run| burn_outcome(&run, *s).map(|o| (o, run)))
                })
                .unzip();
            crate::records::same_protocol(&format!("{model}, {label}"), &row_dirs)?;
            dirs.extend(row_dirs);
            rows.push((format!("Burn: {label}"), found));
        }
        let torch: Vec<Outcome> = args
            .seeds
            .iter()
            .filter_map(|s| {
                let name = format!("torch-s{s}.jsonl");
                torch_outcome(&kept.join(&name), *s).or_else(|| torch_outcome(&dir.join(&name), *s))
            })
            .collect();
        rows.push(("PyTorch reference (relevance, fused)".into(), torch));
        if rows.iter().all(|(_, found)| found.is_empty()) {
            text.push_str(&format!(
                "### {model}\n\nNo run of this model is recorded yet.\n\n"
            ));
            continue;
        }
        text.push_str(&format!(
            "### {model}\n\n| method | runs | compression at the floor | test acc there | dense test acc | wall s |\n|---|---|---|---|---|---|\n"
        ));
        // Unfinished runs are left out of the statistics once the row has a finished one; the
        // label says how far they are.
        let rows: Vec<(String, Vec<Outcome>, Vec<u64>)> = rows
            .into_iter()
            .map(|(label, found)| {
                let partial: Vec<u64> = found.iter().filter_map(|o| o.partial_step).collect();
                let finished = found.iter().any(|o| o.partial_step.is_none());
                let kept = found
                    .into_iter()
                    .filter(|o| !finished || o.partial_step.is_none())
                    .collect();
                (label, kept, partial)
            })
            .collect();
        for (label, found, partial) in &rows {
            if found.is_empty() {
                continue;
            }
            count += found.len();
            let col = |f: &dyn Fn(&Outcome) -> Option<f64>| -> Vec<f64> {
                found.iter().filter_map(f).collect()
            };
            text.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                label_of(label, found, partial),
                found.len(),
                spread(&col(&|o| o.compression), |v| format!("{v:.0}x")),
                spread(&col(&|o| o.test_at_best), pct),
                spread(&col(&|o| Some(o.dense_test)), pct),
                spread(&col(&|o| o.wall_s), |v| format!("{v:.0}")),
            ));
        }
        text.push_str(&figure(records, model, &args.dataset, &rows)?);
        text.push_str(&ladder_table(
            &format!(
                "Test accuracy at the first check reaching each compression with validation \
                 above the floor ({model})"
            ),
            &rows,
            args.levels(),
            ladder,
        ));
        text.push_str(&ladder_table(
            &format!(
                "Test accuracy of the check validation picks at each compression: the best \
                 validation accuracy among the checks at or past it with validation above the \
                 floor ({model})"
            ),
            &rows,
            args.levels(),
            ladder_best_val,
        ));
        text.push_str(&per_seed(model, &args.seeds, &rows));
        text.push('\n');
        text.push_str(&crate::records::provenance_line(&dirs));
        text.push('\n');
    }
    Ok((text, count))
}

/// The figure of a model's table: every row's test accuracy against compression (median over
/// its seeds, min-max shaded), the dense test accuracy and the floor; returns its link.
fn figure(
    records: &Path,
    model: &str,
    grid_dataset: &str,
    rows: &[(String, Vec<Outcome>, Vec<u64>)],
) -> Result<String, String> {
    use crate::figures::{Runs, Spec, median};
    // The data set, as the recorded runs' configs name it (the grid's while none is recorded).
    let dataset = std::fs::read_dir(records.join(model))
        .into_iter()
        .flatten()
        .flatten()
        .find_map(|e| {
            Some(
                read_json(&e.path().join("config.json"))?["dataset"]
                    .as_str()?
                    .to_string(),
            )
        })
        .unwrap_or_else(|| grid_dataset.to_string());
    let all: Vec<&Outcome> = rows.iter().flat_map(|r| &r.1).collect();
    let dense: Vec<f64> = all.iter().map(|o| 100.0 * o.dense_test).collect();
    let floors: Vec<f64> = all.iter().map(|o| 100.0 * o.floor).collect();
    let runs: Vec<Runs> = rows
        .iter()
        .map(|(label, found, _)| Runs {
            label: label.trim_start_matches("Burn: ").to_string(),
            seeds: found
                .iter()
                .map(|o| o.curve.iter().map(|p| (p.0, 100.0 * p.1)).collect())
                .collect(),
        })
        .collect();
    let spec = Spec {
        name: crate::figures::name(records, Some(model)),
        title: format!("{model} on {dataset}: test accuracy against compression"),
        x_label: "compression (all weights / weights left)",
        y_label: "test accuracy (%)",
        x_axis: sparse_examples::plot::XAxis::Compression,
        levels: vec![
            (
                format!("dense test, median ({:.2} %)", median(&dense)),
                median(&dense),
                false,
            ),
            (
                format!("validation floor ({:.1} %)", median(&floors)),
                median(&floors),
                true,
            ),
        ],
    };
    crate::figures::write(&crate::figures::dir(records), &spec, &runs)
}

/// An accuracy as a percentage with two decimals.
fn pct(v: f64) -> String {
    format!("{:.2} %", 100.0 * v)
}

/// A row's label, saying how many of its runs are unfinished and where they stand.
fn label_of(label: &str, found: &[Outcome], partial: &[u64]) -> String {
    let steps = partial
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if partial.is_empty() {
        label.to_string()
    } else if found.iter().all(|o| o.partial_step.is_some()) {
        format!("{label} (unfinished: last checkpoint at step {steps})")
    } else {
        format!(
            "{label} (not counted: {} unfinished, last checkpoint at step {steps})",
            partial.len()
        )
    }
}

/// A table with one column per LADDER level: the median (min-max) over each row's runs of the
/// accuracies `levels` gives for a run.
fn ladder_table(
    title: &str,
    rows: &[(String, Vec<Outcome>, Vec<u64>)],
    levels: &[f64],
    at: fn(&[Check], &[f64]) -> Vec<Option<f64>>,
) -> String {
    let mut text = format!(
        "\n{title}:\n\n| method |{}\n|---|{}\n",
        levels
            .iter()
            .map(|l| format!(" >= {l:.0}x |"))
            .collect::<String>(),
        levels.iter().map(|_| "---|").collect::<String>()
    );
    for (label, found, partial) in rows {
        if found.is_empty() {
            continue;
        }
        let per_run: Vec<Vec<Option<f64>>> = found.iter().map(|o| at(&o.points, levels)).collect();
        let cells: String = (0..levels.len())
            .map(|i| {
                let v: Vec<f64> = per_run.iter().filter_map(|l| l[i]).collect();
                format!(" {} |", spread(&v, pct))
            })
            .collect();
        text.push_str(&format!("| {} |{cells}\n", label_of(label, found, partial)));
    }
    text
}

/// The per-seed table: compression at the floor and test accuracy there, one column per seed
/// (the Burn methods of a seed share its dense start, shown in the first row).
fn per_seed(model: &str, seeds: &[u64], rows: &[(String, Vec<Outcome>, Vec<u64>)]) -> String {
    let seeds: Vec<u64> = seeds
        .iter()
        .copied()
        .filter(|s| {
            rows.iter()
                .any(|(_, found, _)| found.iter().any(|o| o.seed == *s))
        })
        .collect();
    if seeds.is_empty() {
        return String::new();
    }
    let mut text = format!(
        "\nPer seed ({model}): compression at the floor, test acc there; `-` = not run yet, \
         `*` = unfinished (its last checkpoint):\n\n| method |{}\n|---|{}\n",
        seeds
            .iter()
            .map(|s| format!(" seed {s} |"))
            .collect::<String>(),
        seeds.iter().map(|_| "---|").collect::<String>()
    );
    let burn = |s: u64| {
        rows.iter()
            .filter(|(label, _, _)| label.starts_with("Burn"))
            .flat_map(|(_, found, _)| found)
            .find(|o| o.seed == s)
    };
    let dense: String = seeds
        .iter()
        .map(|s| format!(" {} |", burn(*s).map_or("-".into(), |o| pct(o.dense_test))))
        .collect();
    text.push_str(&format!("| Burn: dense start (test acc) |{dense}\n"));
    for (label, found, _) in rows {
        if found.is_empty() {
            continue;
        }
        let cells: String = seeds
            .iter()
            .map(|s| match found.iter().find(|o| o.seed == *s) {
                None => " - |".to_string(),
                Some(o) => format!(
                    " {}{}, {} |",
                    o.compression.map_or("-".into(), |c| format!("{c:.0}x")),
                    if o.partial_step.is_some() { "*" } else { "" },
                    o.test_at_best.map_or("-".into(), pct)
                ),
            })
            .collect();
        text.push_str(&format!("| {label} |{cells}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_starts_of_the_other_kind_are_refused_by_name() {
        let file = Path::new("runs/x/dense-s1/dense/dense.json");
        let old =
            r#"{"model": "lenet5", "seed": 1, "epochs": 14, "val_acc": 0.9, "test_acc": 0.9}"#;
        let new = r#"{"model": "lenet5", "seed": 1, "epochs": 14, "kept_epoch": 13,
                      "val_acc": 0.9, "test_acc": 0.9}"#;
        assert_eq!(same_dense_kind(file, new, "best"), Ok(()));
        assert_eq!(same_dense_kind(file, old, "last"), Ok(()));
        assert_eq!(
            same_dense_kind(file, old, "best").unwrap_err(),
            "runs/x/dense-s1/dense/dense.json: this dense start kept its last epoch, but \
             --dense-keep is best; use another --out (or the matching --dense-keep)"
        );
        assert!(same_dense_kind(file, "{", "best").is_err());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_run_locked_by_another_live_process_is_busy() {
        let run = std::env::temp_dir().join(format!("xtask-busy-{}", std::process::id()));
        std::fs::create_dir_all(&run).unwrap();
        assert_eq!(busy(&run), None, "no lock");
        std::fs::write(run.join(".lock"), "1").unwrap(); // init: always alive
        assert_eq!(busy(&run), Some(1));
        std::fs::write(run.join(".lock"), "4294967295").unwrap(); // no such process
        assert_eq!(busy(&run), None);
        std::fs::write(run.join(".lock"), std::process::id().to_string()).unwrap();
        assert_eq!(busy(&run), None, "this process");
        std::fs::remove_dir_all(&run).ok();
    }

    /// A LeNet run: checks at 10x and 100x (validation above the 0.9 floor), finished or not.
    fn fake_lenet_run(dir: &Path, finished: bool, compression: f64) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("metrics.csv"),
            "step,epoch,val_acc,test_acc,alive,sparsity,gamma\n\
             250,1,0.95,0.94,100,0.9,0\n500,2,0.95,0.93,10,0.99,0\n",
        )
        .unwrap();
        let best = format!(
            r#"{{"compression": {compression}, "test_acc": 0.93, "remaining": 0.01, "step": 500, "val_acc": 0.95}}"#
        );
        std::fs::write(
            dir.join("progress.json"),
            format!(r#"{{"step": 500, "floor": 0.9, "dense_test": 0.95, "best": {best}}}"#),
        )
        .unwrap();
        if finished {
            std::fs::write(
                dir.join("summary.json"),
                format!(r#"{{"best": {best}, "dense_test_acc": 0.95, "wall_s": 10.0}}"#),
            )
            .unwrap();
        }
    }

    use clap::Parser;

    /// The command line of `reproduce lenet`, for parsing `Args` as the CLI does.
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn an_unfinished_run_is_not_counted_beside_finished_ones() {
        let root = std::env::temp_dir().join(format!("xtask-lenet-{}", std::process::id()));
        let (out, records) = (root.join("runs"), root.join("records"));
        fake_lenet_run(&out.join("lenet5/magnitude-s1"), true, 100.0);
        fake_lenet_run(&out.join("lenet5/magnitude-s2"), false, 2.0);
        fake_lenet_run(&out.join("lenet5/l2-s1"), false, 3.0);
        let args = Cli::parse_from([
            "x",
            "--models",
            "lenet5",
            "--methods",
            "magnitude,l2",
            "--seeds",
            "1,2",
            "--alphas",
        ])
        .args;
        let (text, count) = report(&args, &out, &records).unwrap();
        assert_eq!(count, 2, "{text}");
        assert!(
            text.contains(
                "| Burn: magnitude (not counted: 1 unfinished, last checkpoint at step 500) | 1 \
                 | 100x | 93.00 % |"
            ),
            "{text}"
        );
        assert!(
            text.contains("| Burn: l2 (unfinished: last checkpoint at step 500) | 1 | 3x |"),
            "{text}"
        );
        assert!(
            text.contains("| Burn: magnitude | 100x, 93.00 % |\n| Burn: l2 | 3x*, 93.00 % |\n"),
            "{text}"
        );
        std::fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn a_run_of_part_of_the_grid_reports_the_whole_grid() {
        let root = std::env::temp_dir().join(format!("xtask-grid-{}", std::process::id()));
        let (out, records) = (root.join("runs"), root.join("records"));
        // Recorded by earlier invocations, and one still under the run directory.
        fake_lenet_run(&records.join("lenet5/relevance-s1"), true, 400.0);
        fake_lenet_run(&records.join("lenet300/l2-s3"), true, 200.0);
        fake_lenet_run(&out.join("lenet5/l2-s4"), true, 370.0);
        // An invocation that ran LeNet-5's L2 on seed 4 only, and one with an extra seed.
        let args = Cli::parse_from(["x", "--models", "lenet5", "--methods", "l2", "--seeds", "4"])
            .args
            .whole_grid();
        assert_eq!(args.models, ["lenet5", "lenet300"]);
        assert_eq!(args.seeds, [1, 2, 3, 4, 5]);
        assert_eq!(args.alphas, [0.1, 0.01, 0.001]);
        let (text, count) = report(&args, &out, &records).unwrap();
        assert_eq!(count, 3, "{text}");
        assert!(text.contains("| Burn: relevance | 1 | 400x |"), "{text}");
        assert!(
            text.contains(
                "| method | seed 1 | seed 4 |\n|---|---|---|\n\
                 | Burn: dense start (test acc) | 95.00 % | 95.00 % |\n\
                 | Burn: relevance | 400x, 93.00 % | - |\n\
                 | Burn: l2 | - | 370x, 93.00 % |\n"
            ),
            "{text}"
        );
        assert!(text.contains("### lenet300"), "{text}");
        assert!(text.contains("| Burn: l2 | 1 | 200x |"), "{text}");
        let extra = Cli::parse_from(["x", "--seeds", "7", "--methods", "relevance,new"])
            .args
            .whole_grid();
        assert_eq!(extra.seeds, [1, 2, 3, 4, 5, 7]);
        assert_eq!(extra.methods.last().map(String::as_str), Some("new"));
        std::fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn ladders_take_the_first_check_or_the_one_validation_picks_above_the_floor() {
        let points: Vec<Check> = vec![
            (5.0, 0.95, 0.90, true),
            (12.0, 0.91, 0.92, true),
            (15.0, 0.96, 0.89, true),
            (16.0, 0.96, 0.87, true), // equal validation: the first of equals is kept
            (40.0, 0.99, 0.80, false), // under the floor: never counted
            (120.0, 0.93, 0.88, true),
        ];
        assert_eq!(
            ladder(&points, &LADDER),
            [Some(0.92), Some(0.88), Some(0.88), None, None, None]
        );
        assert_eq!(
            ladder_best_val(&points, &LADDER),
            [Some(0.89), Some(0.88), Some(0.88), None, None, None]
        );
    }

    #[test]
    fn the_references_checks_under_its_floor_are_not_counted() {
        let file = std::env::temp_dir().join(format!("xtask-torch-{}.jsonl", std::process::id()));
        std::fs::write(
            &file,
            r#"{"phase": "dense", "epoch": 1, "val_acc": 0.9}
{"phase": "prune", "step": 250, "val_acc": 0.95, "remaining": 0.05, "test_acc": 0.91}
{"phase": "prune", "step": 500, "val_acc": 0.89, "remaining": 0.009, "test_acc": 0.85}
{"phase": "prune", "step": 750, "val_acc": 0.93, "remaining": 0.008, "test_acc": 0.90}
{"summary": true, "floor": 0.9, "dense_test_acc": 0.95, "best_compression": 125.0, "best_test_acc": 0.9, "wall_s": 3.0}
"#,
        )
        .unwrap();
        let o = torch_outcome(&file, 1).unwrap();
        std::fs::remove_file(&file).ok();
        let (l, b) = (
            ladder(&o.points, &LADDER),
            ladder_best_val(&o.points, &LADDER),
        );
        assert_eq!(l[..4], [Some(0.91), Some(0.90), Some(0.90), None]);
        assert_eq!(b[..3], [Some(0.91), Some(0.90), Some(0.90)]);
        assert_eq!((o.compression, o.test_at_best), (Some(125.0), Some(0.9)));
    }

    #[test]
    fn spread_is_median_min_max() {
        let f = |v: f64| format!("{v}");
        assert_eq!(spread(&[3.0, 1.0, 2.0], f), "2 (1-3)");
        assert_eq!(spread(&[4.0, 1.0, 2.0, 3.0], f), "2.5 (1-4)");
        assert_eq!(spread(&[5.0], f), "5");
        assert_eq!(spread(&[], f), "-");
    }
}
