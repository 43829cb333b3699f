//! `cargo xtask gpu-check`: what a machine with a GPU is lent for, measured in one command
//! (under 8 minutes on a GPU; `--quick` runs end to end on Mesa's lavapipe in a few minutes).
//!
//! For each GPU backend of the build (wgpu with `--features wgpu`, CUDA with `--features cuda`):
//! 1. LeNet-5 and ResNet-20 training steps, the bare optimizer against the method with its masks
//!    in the step (`Pruner::optimizer`, the examples' set-up), interleaved in one process as in
//!    `bench overhead`, with the kernels launched per step;
//! 2. the start-up cost of a first run (shader compilation and autotuning: a child process with
//!    an empty cache) and of a second one that finds the first one's cache;
//! 3. one dense and one pruning epoch of ResNet-20 on CIFAR-10 with the `cifar10` example's
//!    binary, on `--data-dir` (generated data with `--quick`; skipped otherwise);
//! 4. the PyTorch reference on the same machine, when `python3` can import torch.
//!
//! Writes `gpu_check.json` (JSON lines) and `gpu_check.md` (the tables) into `--out`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};
use serde_json::{Value, json};
use sparse_models::{ImageClassifier, LeNet5, ResNetConfig};

use crate::overhead::{Backend, Input, bare_and_method, fused_sgd, measure_on, median, sgd, step};

/// `cargo xtask gpu-check`'s options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Small batches and few steps: checks the whole command in a few minutes on lavapipe.
    #[arg(long)]
    pub quick: bool,
    /// The backends to measure, repeatable [every GPU backend of this build]. `--backend flex`
    /// runs the whole command on the CPU: a check of the command itself in a build without a
    /// GPU backend (its test does that).
    #[arg(long = "backend", value_enum)]
    pub backends: Vec<Backend>,
    /// CIFAR-10 for the epoch of ResNet-20 (an image folder `DIR/train/<class>/*.png` or the
    /// binary version); without it the epoch is skipped (with `--quick`: run on generated data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The `cifar10` example's binary [`examples/cifar10` or `cifar10` next to this binary].
    #[arg(long)]
    pub cifar10_bin: Option<PathBuf>,
    /// The PyTorch reference script [`../shared/reference/torch_reference.py` of the checkout,
    /// or `torch_reference.py` next to this binary].
    #[arg(long)]
    pub torch_script: Option<PathBuf>,
    /// Directory for gpu_check.json and gpu_check.md [`target/bench` of the checkout, or
    /// `gpu-check` in the current directory].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Internal: time the first steps of this backend in this process (the start-up probe).
    #[arg(long, hide = true, value_enum)]
    pub startup_probe: Option<Backend>,
}

/// Batch sizes and step counts of one run.
struct Plan {
    lenet_batch: usize,
    resnet_batch: usize,
    reps: usize,
    steps: usize,
    probe_steps: usize,
    torch_steps: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Plan {
                lenet_batch: 8,
                resnet_batch: 4,
                reps: 2,
                steps: 2,
                probe_steps: 4,
                torch_steps: 5,
            }
        } else {
            // The PyTorch reference's sizes (LeNet-5 at 100, CIFAR models at 128).
            Plan {
                lenet_batch: 100,
                resnet_batch: 128,
                reps: 7,
                steps: 20,
                probe_steps: 30,
                torch_steps: 200,
            }
        }
    }
}

/// Run the check (or, with `--startup-probe`, the probe of a child process).
pub fn run(args: &Args, root: &Path) -> Result<(), String> {
    let plan = Plan::new(args.quick);
    if let Some(backend) = args.startup_probe {
        let v = probe(backend, &plan)?;
        println!("{v}");
        return Ok(());
    }
    let backends = if args.backends.is_empty() {
        Backend::built_gpus()
    } else {
        args.backends.clone()
    };
    if backends.is_empty() {
        return Err(
            "gpu-check needs a GPU backend: build xtask with `--features wgpu` (and/or \
             `--features cuda`): cargo run --release -p xtask --features wgpu -- gpu-check"
                .into(),
        );
    }
    let exe = std::env::current_exe().map_err(|e| format!("this binary's path: {e}"))?;
    let exe_dir = exe.parent().unwrap_or(Path::new(".")).to_path_buf();
    let out = match &args.out {
        Some(dir) => dir.clone(),
        None if root.join("Cargo.toml").exists() => root.join("target/bench"),
        None => PathBuf::from("gpu-check"),
    };
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let started = Instant::now();
    let mut lines = Vec::new();
    let mut emit = |v: Value| {
        println!("{v}");
        lines.push(v);
    };
    for &backend in &backends {
        let mut machine = crate::overhead::machine(backend);
        machine["bench"] = json!("gpu_check_machine");
        machine["backend"] = json!(backend.name());
        machine["quick"] = json!(args.quick);
        emit(machine);
        eprintln!(
            "gpu-check {}: step times ({:.0} s)",
            backend.name(),
            secs(started)
        );
        for v in steps(backend, &plan)? {
            emit(v);
        }
        eprintln!(
            "gpu-check {}: start-up ({:.0} s)",
            backend.name(),
            secs(started)
        );
        emit(startup(&exe, backend, args.quick)?);
    }
    eprintln!("gpu-check: CIFAR-10 epoch ({:.0} s)", secs(started));
    emit(cifar_epoch(args, &exe_dir));
    eprintln!("gpu-check: PyTorch reference ({:.0} s)", secs(started));
    for v in torch(args, root, &exe_dir, &plan) {
        emit(v);
    }
    emit(json!({"bench": "gpu_check_total", "wall_s": secs(started)}));
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let json_file = out.join("gpu_check.json");
    std::fs::write(&json_file, text).map_err(|e| format!("{}: {e}", json_file.display()))?;
    let table = tables(&lines);
    let md_file = out.join("gpu_check.md");
    std::fs::write(&md_file, &table).map_err(|e| format!("{}: {e}", md_file.display()))?;
    print!("{table}");
    eprintln!("wrote {} and {}", json_file.display(), md_file.display());
    Ok(())
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// Part 1: LeNet-5 and ResNet-20, bare against the method, with Burn's SGD with momentum and
/// with sparse-reg's one-pass SGD (the examples' optimizer).
fn steps(backend: Backend, plan: &Plan) -> Result<Vec<Value>, String> {
    let device = backend.autodiff_device()?;
    device.seed(0);
    let lenet = Input {
        backend,
        shape: [plan.lenet_batch, 1, 28, 28],
    };
    let resnet = Input {
        backend,
        shape: [plan.resnet_batch, 3, 32, 32],
    };
    let resnet20 = || ResNetConfig::new(20).init(&device).expect("ResNet-20");
    let (reps, n) = (plan.reps, plan.steps);
    let mut rows = vec![
        measure_on(
            "lenet5",
            "sgd-momentum",
            bare_and_method(LeNet5::new(&device), sgd()),
            reps,
            n,
            &device,
            lenet,
        ),
        measure_on(
            "lenet5",
            "fused-sgd-momentum",
            bare_and_method(LeNet5::new(&device), fused_sgd()),
            reps,
            n,
            &device,
            lenet,
        ),
        measure_on(
            "resnet20",
            "sgd-momentum",
            bare_and_method(resnet20(), sgd()),
            reps,
            n,
            &device,
            resnet,
        ),
        measure_on(
            "resnet20",
            "fused-sgd-momentum",
            bare_and_method(resnet20(), fused_sgd()),
            reps,
            n,
            &device,
            resnet,
        ),
    ];
    for r in rows.iter_mut() {
        r["bench"] = json!("gpu_check_steps");
    }
    Ok(rows)
}

/// Part 2: two child processes time their first steps, the first with an empty cache (a fresh
/// `XDG_CACHE_HOME`, which also empties the driver's own shader cache, and a working directory
/// outside any Cargo project, so that CubeCL keeps its cache there), the second with the cache
/// the first one left.
fn startup(exe: &Path, backend: Backend, quick: bool) -> Result<Value, String> {
    let dir = std::env::temp_dir().join(format!("gpu-check-{}", std::process::id()));
    let (cache, work) = (dir.join("cache"), dir.join("work"));
    for d in [&cache, &work] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let run = || -> Result<Value, String> {
        let t = Instant::now();
        let mut c = Command::new(exe);
        c.args(["gpu-check", "--startup-probe", backend.name()])
            .current_dir(&work)
            .env("XDG_CACHE_HOME", &cache);
        if quick {
            c.arg("--quick");
        }
        let out = c
            .output()
            .map_err(|e| format!("start-up probe ({}): {e}", exe.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut v: Value = stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| {
                format!(
                    "start-up probe failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                )
            })?;
        v["process_wall_s"] = json!(secs(t));
        Ok(v)
    };
    let cold = run()?;
    let warm = run()?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(json!({
        "bench": "gpu_check_startup",
        "backend": backend.name(),
        "cold": cold,
        "warm": warm,
    }))
}

/// The start-up probe (in its own process): device set-up, then `probe_steps` steps of
/// LeNet-5 and of ResNet-20 with the method, each step synced and timed.
fn probe(backend: Backend, plan: &Plan) -> Result<Value, String> {
    let t = Instant::now();
    let device = backend.autodiff_device()?;
    device.seed(0);
    // The device's set-up (adapter, queue) happens on its first use.
    let _ = Tensor::<1>::zeros([1], &device);
    device.sync().map_err(|e| format!("{e:?}"))?;
    let device_s = secs(t);
    let lenet = first_steps(
        LeNet5::new(&device),
        [plan.lenet_batch, 1, 28, 28],
        plan.probe_steps,
        &device,
    );
    let resnet = first_steps(
        ResNetConfig::new(20).init(&device).expect("ResNet-20"),
        [plan.resnet_batch, 3, 32, 32],
        plan.probe_steps,
        &device,
    );
    Ok(json!({
        "device_s": device_s,
        "lenet5": lenet,
        "resnet20": resnet,
        "total_s": secs(t),
    }))
}

/// `n` steps of `model` with the method (the examples' set-up), each synced and timed: the first
/// step's time, the steady step (median of the last half) and the start-up cost (the time
/// above `n` steady steps).
fn first_steps<M: ImageClassifier>(
    model: M,
    shape: [usize; 4],
    n: usize,
    device: &Device,
) -> Value {
    let mut v = bare_and_method(model, fused_sgd())
        .pop()
        .expect("the method's contestant");
    let x = Tensor::<4>::random(shape, Distribution::Default, device);
    let y = Tensor::<1>::random([shape[0]], Distribution::Uniform(0.0, 10.0), device).int();
    let ms: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            step(&mut v, &x, &y, device);
            device.sync().expect("device sync");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let steady = median(ms[n / 2..].to_vec());
    let total: f64 = ms.iter().sum();
    json!({
        "batch": shape[0],
        "steps": n,
        "first_step_s": ms[0] / 1e3,
        "steady_ms": steady,
        "startup_s": (total - n as f64 * steady).max(0.0) / 1e3,
    })
}

/// The `cifar10` example's binary: `--cifar10-bin`, else next to this binary.
fn cifar10_bin(args: &Args, exe_dir: &Path) -> Option<PathBuf> {
    if let Some(bin) = &args.cifar10_bin {
        return Some(bin.clone());
    }
    [exe_dir.join("examples/cifar10"), exe_dir.join("cifar10")]
        .into_iter()
        .find(|p| p.is_file())
}

/// Part 3: one dense epoch (Burn's SGD) and one pruning epoch (the method, masks in the step)
/// of ResNet-20 at batch 128 on CIFAR-10, by the `cifar10` example's binary.
fn cifar_epoch(args: &Args, exe_dir: &Path) -> Value {
    let skipped = |why: String| {
        let v = json!({"bench": "gpu_check_cifar", "skipped": why});
        eprintln!("gpu-check: CIFAR-10 epoch skipped: {}", v["skipped"]);
        v
    };
    let Some(bin) = cifar10_bin(args, exe_dir) else {
        return skipped(format!(
            "no cifar10 binary (looked for examples/cifar10 and cifar10 in {}; build it with \
             `cargo build --release --example cifar10 --features wgpu` or pass --cifar10-bin)",
            exe_dir.display()
        ));
    };
    let tmp = std::env::temp_dir().join(format!("gpu-check-cifar-{}", std::process::id()));
    let run_dir = tmp.join("run");
    let mut c = Command::new(&bin);
    c.args([
        "--model",
        "resnet20",
        "--dense-epochs",
        "1",
        "--epochs",
        "1",
    ])
    .arg("--out")
    .arg(&run_dir)
    .args(["--force", "--quiet"]);
    let data = match (&args.data_dir, args.quick) {
        (Some(dir), _) => {
            c.arg("--data-dir").arg(dir);
            "cifar10"
        }
        (None, true) => {
            // Generated CIFAR-format data, 20 images per training file: checks the path.
            c.arg("--data-dir").arg(tmp.join("data")).args([
                "--synthetic",
                "20",
                "--batch",
                "25",
                "--every",
                "2",
            ]);
            "generated (--synthetic 20)"
        }
        (None, false) => {
            return skipped(
                "no --data-dir (CIFAR-10 as an image folder DIR/train/<class>/*.png or its binary \
                 version)"
                    .into(),
            );
        }
    };
    let t = Instant::now();
    let out = c.output();
    let wall = secs(t);
    let v = match out {
        Err(e) => skipped(format!("{}: {e}", bin.display())),
        Ok(o) if !o.status.success() => skipped(format!(
            "{} failed ({}): {}",
            bin.display(),
            o.status,
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
        Ok(o) => {
            let stdout = String::from_utf8_lossy(&o.stdout);
            // "dense epoch   1: validation 41.20 % (63 s)": seconds since the run started,
            // data loading included.
            let dense_s = stdout
                .lines()
                .find(|l| l.trim_start().starts_with("dense epoch"))
                .and_then(|l| l.rsplit('(').next())
                .and_then(|s| s.trim_end_matches(" s)").trim().parse::<f64>().ok());
            let summary: Value = std::fs::read_to_string(run_dir.join("summary.json"))
                .ok()
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or(Value::Null);
            json!({
                "bench": "gpu_check_cifar",
                "data": data,
                "binary": bin.display().to_string(),
                "backend": summary["backend"],
                "process_wall_s": wall,
                "dense_epoch_done_at_s": dense_s,
                "run_wall_s": summary["wall_s"],
                "pruning_steps": summary["steps"],
                "dense_test_acc": summary["dense_test_acc"],
                "final_test_acc": summary["final"]["test_acc"],
                "final_remaining": summary["final"]["remaining"],
            })
        }
    };
    std::fs::remove_dir_all(&tmp).ok();
    v
}

/// Part 4: the PyTorch reference's step times (dense, and the one-pass method with masks) for
/// the same models and batches, on CUDA when torch sees a GPU.
fn torch(args: &Args, root: &Path, exe_dir: &Path, plan: &Plan) -> Vec<Value> {
    let script = args.torch_script.clone().or_else(|| {
        [
            root.join("../shared/reference/torch_reference.py"),
            exe_dir.join("torch_reference.py"),
        ]
        .into_iter()
        .find(|p| p.is_file())
    });
    let probe = Command::new("python3")
        .args([
            "-c",
            "import torch; print('cuda' if torch.cuda.is_available() else 'cpu', torch.__version__)",
        ])
        .output();
    let (Some(script), Ok(probe)) = (script, probe) else {
        return vec![json!({"bench": "gpu_check_torch", "skipped":
            "needs python3 with torch and the reference script (--torch-script)"})];
    };
    if !probe.status.success() {
        return vec![json!({"bench": "gpu_check_torch", "skipped": "python3 cannot import torch"})];
    }
    let said = String::from_utf8_lossy(&probe.stdout);
    let mut words = said.split_whitespace();
    let device = words.next().unwrap_or("cpu").to_string();
    let version = words.next().unwrap_or("?").to_string();
    let mut rows = Vec::new();
    for (model, batch) in [
        ("lenet5", plan.lenet_batch),
        ("resnet20", plan.resnet_batch),
    ] {
        let ms = |mode: &str| -> Option<f64> {
            let mut c = Command::new("python3");
            c.arg(&script)
                .args([
                    "throughput",
                    "--device",
                    &device,
                    "--optimizer",
                    "sgd",
                    "--lr",
                    "0.01",
                ])
                .args([
                    "--model",
                    model,
                    "--mode",
                    mode,
                    "--batch",
                    &batch.to_string(),
                ])
                .args(["--steps", &plan.torch_steps.to_string(), "--warmup", "5"]);
            if mode != "dense" {
                c.arg("--masks");
            }
            let out = c.output().ok()?;
            let text = String::from_utf8_lossy(&out.stdout);
            let line: Value = serde_json::from_str(text.lines().last()?).ok()?;
            line["ms_per_step"].as_f64()
        };
        rows.push(json!({
            "bench": "gpu_check_torch",
            "model": model,
            "batch": batch,
            "device": device,
            "torch": version,
            "dense_ms": ms("dense"),
            "fused_masks_ms": ms("fused"),
        }));
    }
    rows
}

fn f(v: &Value, digits: usize) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.digits$}"))
}

/// The markdown tables of gpu-check's JSON lines.
pub fn tables(lines: &[Value]) -> String {
    let of =
        |bench: &str| -> Vec<&Value> { lines.iter().filter(|v| v["bench"] == bench).collect() };
    let mut out = String::new();
    for m in of("gpu_check_machine") {
        out.push_str(&format!(
            "Machine: {} ({}), {} CPUs, {} {}{}.\n\n",
            m["adapter"].as_str().unwrap_or("unknown adapter"),
            m["backend"].as_str().unwrap_or("?"),
            m["cpus"],
            m["os"].as_str().unwrap_or("?"),
            m["arch"].as_str().unwrap_or("?"),
            if m["quick"] == true {
                ", --quick sizes"
            } else {
                ""
            },
        ));
    }
    let torch = of("gpu_check_torch");
    let torch_of = |model: &str| torch.iter().find(|t| t["model"] == model);
    out.push_str(
        "| backend | model | optimizer | batch | bare ms/step | method + masks ms/step | method / \
         bare [per repetition] | kernels per step: bare | method | PyTorch dense ms | PyTorch \
         method + masks ms | Burn / PyTorch dense | Burn method / PyTorch method |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for v in of("gpu_check_steps") {
        let model = v["model"].as_str().unwrap_or("?");
        let t = torch_of(model).filter(|t| t["batch"] == v["batch"]);
        let per = |key: &str, tk: &str| match (v[key].as_f64(), t.and_then(|t| t[tk].as_f64())) {
            (Some(b), Some(p)) => format!("{:.2}", b / p),
            _ => "-".into(),
        };
        out.push_str(&format!(
            "| {} | {model} | {} | {} | {} | {} | {} [{}] | {} | {} | {} | {} | {} | {} |\n",
            v["backend"].as_str().unwrap_or("?"),
            v["optimizer"].as_str().unwrap_or("?"),
            v["batch"],
            f(&v["bare_ms_per_step"], 2),
            f(&v["decay+masks_in_step_ms_per_step"], 2),
            f(&v["ratio_decay_masks_in_step"], 2),
            v["ratio_decay_masks_in_step_min_max"]
                .as_array()
                .map_or("-".into(), |a| format!("{}-{}", f(&a[0], 2), f(&a[1], 2))),
            f(&v["bare_launches_per_step"], 0),
            f(&v["decay+masks_in_step_launches_per_step"], 0),
            t.map_or("-".into(), |t| f(&t["dense_ms"], 2)),
            t.map_or("-".into(), |t| f(&t["fused_masks_ms"], 2)),
            per("bare_ms_per_step", "dense_ms"),
            per("decay+masks_in_step_ms_per_step", "fused_masks_ms"),
        ));
    }
    out.push('\n');
    if let Some(t) = torch.first() {
        match t["skipped"].as_str() {
            Some(why) => out.push_str(&format!("PyTorch: skipped ({why}).\n\n")),
            None => out.push_str(&format!(
                "PyTorch {} on {}, SGD with momentum; its method is the one-pass decay with masks \
                 (`throughput --mode fused --masks`).\n\n",
                t["torch"].as_str().unwrap_or("?"),
                t["device"].as_str().unwrap_or("?"),
            )),
        }
    }
    let startup = of("gpu_check_startup");
    if !startup.is_empty() {
        out.push_str(
            "| backend | model | first run: first step s | start-up s | process s | second run \
             (cache): first step s | start-up s | process s | steady step ms |\n\
             |---|---|---|---|---|---|---|---|---|\n",
        );
        for s in startup {
            for model in ["lenet5", "resnet20"] {
                let (c, w) = (&s["cold"][model], &s["warm"][model]);
                out.push_str(&format!(
                    "| {} | {model} (batch {}) | {} | {} | {} | {} | {} | {} | {} |\n",
                    s["backend"].as_str().unwrap_or("?"),
                    c["batch"],
                    f(&c["first_step_s"], 1),
                    f(&c["startup_s"], 1),
                    f(&s["cold"]["process_wall_s"], 1),
                    f(&w["first_step_s"], 1),
                    f(&w["startup_s"], 1),
                    f(&s["warm"]["process_wall_s"], 1),
                    f(&w["steady_ms"], 2),
                ));
            }
        }
        out.push_str(
            "\nStart-up: the time the first steps took above as many steady steps (shader \
             compilation and autotuning); the first run starts from an empty cache, the second \
             finds the first one's. Process: the whole child process, both models.\n\n",
        );
    }
    for c in of("gpu_check_cifar") {
        match c["skipped"].as_str() {
            Some(why) => out.push_str(&format!("ResNet-20 CIFAR-10 epoch: skipped ({why}).\n\n")),
            None => out.push_str(&format!(
                "ResNet-20 CIFAR-10 ({} data, `cifar10` example on {}): one dense epoch done at \
                 {} s (data loading included), with one pruning epoch ({} steps) {} s in all; \
                 dense test accuracy {}, final {} with {} of the weights left.\n\n",
                c["data"].as_str().unwrap_or("?"),
                c["backend"].as_str().unwrap_or("?"),
                f(&c["dense_epoch_done_at_s"], 0),
                c["pruning_steps"],
                f(&c["run_wall_s"], 0),
                f(&c["dense_test_acc"], 3),
                f(&c["final_test_acc"], 3),
                f(&c["final_remaining"], 3),
            )),
        }
    }
    for t in of("gpu_check_total") {
        out.push_str(&format!("gpu-check took {} s.\n", f(&t["wall_s"], 0)));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn the_tables_pair_each_burn_row_with_pytorch_on_the_same_model_and_batch() {
        let lines = vec![
            json!({"bench": "gpu_check_machine", "backend": "wgpu", "adapter": "NVIDIA H100",
                   "cpus": 16, "os": "linux", "arch": "x86_64", "quick": false}),
            json!({"bench": "gpu_check_steps", "backend": "wgpu", "model": "lenet5",
                   "optimizer": "sgd-momentum", "batch": 100, "bare_ms_per_step": 3.0,
                   "decay+masks_in_step_ms_per_step": 3.3, "ratio_decay_masks_in_step": 1.1,
                   "ratio_decay_masks_in_step_min_max": [1.0, 1.2],
                   "bare_launches_per_step": 40.0, "decay+masks_in_step_launches_per_step": 52.0}),
            json!({"bench": "gpu_check_torch", "model": "lenet5", "batch": 100, "device": "cuda",
                   "torch": "2.5.1", "dense_ms": 2.5, "fused_masks_ms": 3.0}),
            json!({"bench": "gpu_check_cifar", "skipped": "no --data-dir"}),
        ];
        let text = super::tables(&lines);
        assert!(text.contains("Machine: NVIDIA H100 (wgpu), 16 CPUs, linux x86_64."));
        assert!(text.contains(
            "| wgpu | lenet5 | sgd-momentum | 100 | 3.00 | 3.30 | 1.10 [1.00-1.20] | 40 | 52 | \
             2.50 | 3.00 | 1.20 | 1.10 |"
        ));
        assert!(text.contains("PyTorch 2.5.1 on cuda"));
        assert!(text.contains("ResNet-20 CIFAR-10 epoch: skipped (no --data-dir)."));
    }
}
