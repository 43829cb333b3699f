//! Project tasks. `cargo xtask bench overhead [--quick]`: the cost of the method per step;
//! `cargo xtask reproduce lenet|text`: the results tables of docs/RESULTS.md.

mod allocator;
#[cfg(feature = "ndarray")]
mod backends;
mod bench_report;
mod export;
mod figures;
mod flex_ops;
mod gpu_check;
mod loader;
mod markers;
mod overhead;
mod park;
mod prune_cost;
mod records;
mod reproduce;
mod reproduce_text;
mod vs_torch;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "sparse-burn project tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmarks; JSON lines on stdout and in `target/bench/NAME.json`.
    Bench {
        /// Which benchmark.
        #[arg(value_enum, default_value = "all")]
        which: Which,
        /// A short run (about a minute) to keep the harness alive in CI.
        #[arg(long)]
        quick: bool,
        /// The backend of `bench overhead`; wgpu and cuda need xtask built with that feature
        /// (`cargo run --release -p xtask --features wgpu -- bench overhead --backend wgpu`).
        #[arg(long, value_enum, default_value = "flex")]
        backend: overhead::Backend,
        /// Repetitions of each contestant in `bench overhead` on a GPU backend (default 9, or 2
        /// with --quick): more narrow the ratios' spread on a shared machine.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        reps: Option<u16>,
    },
    /// On a GPU machine, in one command: step times bare / with the method, start-up cost,
    /// a ResNet-20 CIFAR-10 epoch and PyTorch on the same GPU (docs/GPU.md).
    GpuCheck(Box<gpu_check::Args>),
    /// The markdown tables of docs/BENCHMARKS.md from `target/bench/*.json`.
    BenchReport {
        /// Also write them into docs/BENCHMARKS.md (between its markers).
        #[arg(long)]
        write: bool,
        /// Instead, the tables of a committed `gpu-check` record: DIR/gpu_check.json (a GPU
        /// machine's output, kept under docs/results/gpu-check/), into a section of their own.
        #[arg(long, value_name = "DIR")]
        gpu_record: Option<std::path::PathBuf>,
    },
    /// Keep the unfinished runs under a run root in the repository (`parked/` in their record
    /// directories under docs/results/, to be committed): `reproduce` brings them back on
    /// another machine and they resume. Stop the runs first; a live run is skipped.
    Park {
        /// The run root, as given to `reproduce --out` (e.g. runs/mnist, runs/cifar10).
        out: std::path::PathBuf,
    },
    /// Reproduce a results table of docs/RESULTS.md (long: run it in the background).
    Reproduce {
        /// Which results.
        #[command(subcommand)]
        what: Results,
    },
}

#[derive(Subcommand)]
enum Results {
    /// LeNet-5 and LeNet-300-100 on Fashion-MNIST: methods x seeds, alpha sweep, PyTorch.
    Lenet(Box<reproduce::Args>),
    /// The Transformer language model: bits per character at 50-90 % sparsity, method vs
    /// magnitude-only, over seeds.
    Text(Box<reproduce_text::Args>),
    /// ResNet-20 on CIFAR-10 (an image folder or the binary version): the method, magnitude-only,
    /// L2 and GMP from one dense start per seed.
    Cifar(Box<reproduce::CifarArgs>),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Which {
    /// Everything.
    All,
    /// Step time of the bare optimizer vs SelectiveDecay vs SelectiveDecay + masks.
    Overhead,
    /// Burn against the PyTorch reference, dense and with the method.
    Torch,
    /// One global prune event at 0.4 M, 15 M, 60 M parameters.
    Prune,
    /// Loader batches per second against the training step.
    Loader,
    /// .sparse file size and sparse inference latency at 90-99 % sparsity.
    Export,
    /// flex against ndarray: a training step with the method and a forward pass (xtask built
    /// with `--features ndarray`).
    Backends,
    /// ResNet-20's training step on flex: the shipped convolution and BatchNorm against
    /// Burn's `Conv2d` and `BatchNorm`.
    FlexOps,
}

/// The options of `bench` that only some benchmarks have: `--backend` (other than flex) and
/// `--reps` belong to `bench overhead`, `--reps` on a GPU backend.
fn check_bench_options(
    which: Which,
    backend: overhead::Backend,
    reps: Option<u16>,
) -> Result<(), String> {
    let overhead = matches!(which, Which::Overhead);
    if backend != overhead::Backend::Flex && !overhead {
        return Err(format!(
            "--backend {}: only `bench overhead` has it",
            backend.name()
        ));
    }
    if reps.is_some() && (backend == overhead::Backend::Flex || !overhead) {
        return Err("--reps: only `bench overhead --backend wgpu` (or cuda) has it".into());
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench {
            which,
            quick,
            backend,
            reps,
        } => {
            if let Some(code) = allocator::rerun_steady() {
                std::process::exit(code);
            }
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let script = root.join("../shared/reference/torch_reference.py");
            let all = matches!(which, Which::All);
            let mut jobs: Vec<(String, Vec<serde_json::Value>)> = Vec::new();
            if let Err(e) = check_bench_options(which, backend, reps) {
                eprintln!("error: {e}");
                std::process::exit(2);
            }
            if all || matches!(which, Which::Overhead) {
                let name = match backend {
                    overhead::Backend::Flex => "overhead".to_string(),
                    other => format!("overhead_{}", other.name()),
                };
                match overhead::run(quick, backend, reps.map(usize::from)) {
                    Ok(lines) => jobs.push((name, lines)),
                    Err(e) => {
                        eprintln!("error: {e}");
                        std::process::exit(2);
                    }
                }
            }
            if all || matches!(which, Which::Torch) {
                // Fewer threads than cores (`RAYON_NUM_THREADS=1 cargo xtask bench torch`): a
                // file of its own, so that the default comparison is kept beside it.
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                let threads = overhead::bench_threads();
                let name = if threads == cores {
                    "vs_torch".to_string()
                } else {
                    format!("vs_torch_{threads}threads")
                };
                jobs.push((name, vs_torch::run(quick, &script)));
            }
            if all || matches!(which, Which::Prune) {
                jobs.push(("prune_event".into(), prune_cost::run(quick)));
            }
            if all || matches!(which, Which::Loader) {
                jobs.push(("loader".into(), loader::run(quick)));
            }
            if all || matches!(which, Which::Export) {
                jobs.push(("export".into(), export::run(quick, &script)));
            }
            if all || matches!(which, Which::Backends) {
                #[cfg(feature = "ndarray")]
                jobs.push(("backends".into(), backends::run(quick)));
                #[cfg(not(feature = "ndarray"))]
                {
                    let how = "build xtask with the ndarray backend: cargo run --release -p xtask \
                               --features ndarray -- bench backends";
                    if !all {
                        eprintln!("error: bench backends compares flex with ndarray: {how}");
                        std::process::exit(2);
                    }
                    eprintln!(
                        "bench all: `backends` (flex against ndarray) is not run, and \
                         target/bench/backends.json not written: {how}"
                    );
                }
            }
            if all || matches!(which, Which::FlexOps) {
                jobs.push(("flex_ops".into(), flex_ops::run(quick)));
            }
            let dir = root.join("target/bench");
            std::fs::create_dir_all(&dir).expect("create target/bench");
            for (name, lines) in jobs {
                let file = dir.join(format!("{name}.json"));
                let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
                std::fs::write(&file, text).expect("write the benchmark JSON");
                eprintln!("wrote {}", file.display());
            }
        }
        Command::GpuCheck(args) => {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            if let Err(e) = gpu_check::run(&args, &root) {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
        Command::BenchReport { write, gpu_record } => {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            if let Some(dir) = gpu_record {
                let file = write.then(|| root.join("docs/BENCHMARKS.md"));
                if let Err(e) = bench_report::gpu_record(&dir, file.as_deref()) {
                    eprintln!("error: {e}");
                    std::process::exit(1);
                }
                return;
            }
            let tables = bench_report::render(&root.join("target/bench"));
            print!("{tables}");
            if write {
                let file = root.join("docs/BENCHMARKS.md");
                if let Err(e) = bench_report::write_into(&file, &tables) {
                    eprintln!("error: {e}");
                    std::process::exit(1);
                }
                eprintln!("wrote {}", file.display());
            }
        }
        Command::Park { out } => {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let records = records::dir_for(&root, &out);
            match park::park(&root.join(&out), &records) {
                Ok(parked) => eprintln!(
                    "{} run(s) parked under {}: commit them",
                    parked.len(),
                    records.display()
                ),
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::exit(1);
                }
            }
        }
        Command::Reproduce { what } => {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let result = match what {
                Results::Lenet(args) => reproduce::run(&args, &root),
                Results::Text(args) => reproduce_text::run(&args, &root),
                Results::Cifar(args) => reproduce::run(&reproduce::Args::from(*args), &root),
            };
            if let Err(e) = result {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Which, check_bench_options, overhead::Backend};

    #[test]
    fn bench_options_only_where_they_apply() {
        assert_eq!(
            check_bench_options(Which::Overhead, Backend::Wgpu, Some(9)),
            Ok(())
        );
        assert_eq!(check_bench_options(Which::All, Backend::Flex, None), Ok(()));
        assert_eq!(
            check_bench_options(Which::Torch, Backend::Wgpu, None).unwrap_err(),
            "--backend wgpu: only `bench overhead` has it"
        );
        let reps = "--reps: only `bench overhead --backend wgpu` (or cuda) has it";
        assert_eq!(
            check_bench_options(Which::Overhead, Backend::Flex, Some(9)).unwrap_err(),
            reps
        );
        assert_eq!(
            check_bench_options(Which::All, Backend::Flex, Some(9)).unwrap_err(),
            reps
        );
    }
}
