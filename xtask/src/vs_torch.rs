//! Burn against PyTorch on the same machine: training step time of LeNet-300-100 and LeNet-5,
//! dense and with the method, with `../shared/reference/torch_reference.py throughput`
//! (modes `dense`, `fused` = one backward pass, `authors` = the published two-pass way).
//! Burn and PyTorch repetitions alternate, so both see the same machine load, and both use the
//! same number of threads (`RAYON_NUM_THREADS`, else every core).

use std::path::Path;
use std::process::Command;

use burn::optim::{AdamConfig, Optimizer, SgdConfig, momentum::MomentumConfig};
use burn::tensor::Device;
use serde_json::{Value, json};
use sparse_models::{ImageClassifier, LeNet5, LeNet300};

use crate::overhead::{fused_sgd, measure, median, min_max, variants};

fn torch_step_ms(
    script: &Path,
    threads: usize,
    model: &str,
    optim: &str,
    mode: &str,
    steps: usize,
) -> Option<f64> {
    let mut c = Command::new("python3");
    c.arg(script)
        .args(["throughput", "--device", "cpu", "--batch", "100"])
        .args(["--threads", &threads.to_string()])
        .args(["--model", model, "--optimizer", optim, "--mode", mode])
        .args(["--steps", &steps.to_string(), "--warmup", "5"]);
    if mode != "dense" {
        // The method with its masks on both sides: PyTorch masks the gradients and the
        // weights of every step (its pruning loop's way), Burn sets the pruned weights back to
        // 0 in each step (in-place masks with the optimizer from `Pruner::optimizer`, the
        // examples' way).
        c.arg("--masks");
    }
    let out = c.output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line: Value = serde_json::from_str(text.lines().last()?).ok()?;
    line["ms_per_step"].as_f64()
}

/// Run the comparison; returns the JSON lines (also printed).
pub fn run(quick: bool, script: &Path) -> Vec<Value> {
    let has_torch = Command::new("python3")
        .args(["-c", "import torch"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_torch || !script.exists() {
        let v = json!({
            "bench": "vs_torch",
            "skipped": format!(
                "needs python3 with torch (`pip install torch`) and the reference script at {}",
                script.display()
            ),
        });
        println!("{v}");
        return vec![v];
    }
    // Both sides get the same number of threads: flex's pool follows RAYON_NUM_THREADS.
    let threads = crate::overhead::bench_threads();
    let device = Device::flex().autodiff();
    device.seed(0);
    let reps = if quick { 1 } else { 7 };
    let mut lines = Vec::new();
    // `fused-sgd` / `fused-adam`: Burn with sparse-reg's FusedSgd / FusedAdam (the same update,
    // one pass) against PyTorch's SGD / Adam.
    for (model, optim) in [
        ("lenet300", "sgd"),
        ("lenet300", "fused-sgd"),
        ("lenet300", "adam"),
        ("lenet300", "fused-adam"),
        ("lenet5", "sgd"),
        ("lenet5", "fused-sgd"),
        ("lenet5", "adam"),
        ("lenet5", "fused-adam"),
    ] {
        let (burn_steps, torch_steps) = match (model, quick) {
            ("lenet300", false) => (300, 400),
            ("lenet300", true) => (10, 20),
            (_, false) => (20, 40),
            (_, true) => (2, 5),
        };
        let torch_optim = if optim.ends_with("sgd") {
            "sgd"
        } else {
            "adam"
        };
        let (mut bare, mut method) = (Vec::new(), Vec::new());
        let (mut dense, mut fused, mut authors) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..reps {
            let r = match (model, optim) {
                ("lenet300", "sgd") => bench(LeNet300::new(&device), sgd(), burn_steps, &device),
                ("lenet300", "fused-sgd") => {
                    bench(LeNet300::new(&device), fused_sgd(), burn_steps, &device)
                }
                ("lenet300", "adam") => bench(LeNet300::new(&device), adam(), burn_steps, &device),
                ("lenet300", _) => bench(LeNet300::new(&device), fused_adam(), burn_steps, &device),
                (_, "sgd") => bench(LeNet5::new(&device), sgd(), burn_steps, &device),
                (_, "fused-sgd") => bench(LeNet5::new(&device), fused_sgd(), burn_steps, &device),
                (_, "adam") => bench(LeNet5::new(&device), adam(), burn_steps, &device),
                _ => bench(LeNet5::new(&device), fused_adam(), burn_steps, &device),
            };
            bare.push(r["bare_ms_per_step"].as_f64().unwrap_or(f64::NAN));
            method.push(
                r["decay+masks_in_step_ms_per_step"]
                    .as_f64()
                    .unwrap_or(f64::NAN),
            );
            for (mode, into) in [
                ("dense", &mut dense),
                ("fused", &mut fused),
                ("authors", &mut authors),
            ] {
                let ms = torch_step_ms(script, threads, model, torch_optim, mode, torch_steps);
                into.push(ms.unwrap_or(f64::NAN));
            }
        }
        // Each repetition's Burn run and PyTorch runs follow each other: their ratio, per
        // repetition, shows how far the machine drifted (the headline is medians' ratio).
        let paired = |burn: &[f64], torch: &[f64]| -> Vec<f64> {
            burn.iter()
                .zip(torch)
                .map(|(b, t)| b / t)
                .filter(|r| r.is_finite())
                .collect()
        };
        let (pd, pf) = (paired(&bare, &dense), paired(&method, &fused));
        let range = |v: &[f64]| {
            if v.is_empty() {
                json!(null)
            } else {
                json!(min_max(v))
            }
        };
        dense.retain(|x| x.is_finite());
        fused.retain(|x| x.is_finite());
        authors.retain(|x| x.is_finite());
        let m = |v: &Vec<f64>| {
            if v.is_empty() {
                f64::NAN
            } else {
                median(v.clone())
            }
        };
        let (b, bm, d, f, a) = (m(&bare), m(&method), m(&dense), m(&fused), m(&authors));
        let v = json!({
            "bench": "vs_torch",
            "model": model,
            "optimizer": match optim {
                "sgd" => "sgd-momentum",
                "fused-sgd" => "fused-sgd-momentum",
                other => other,
            },
            "batch": 100,
            "threads": threads,
            "reps": reps,
            "burn_dense_ms": b,
            "burn_method_ms": bm,
            "torch_dense_ms": d,
            "torch_fused_ms": f,
            "torch_authors_ms": a,
            "burn_over_torch_dense": b / d,
            "burn_over_torch_dense_min_max": range(&pd),
            "burn_method_over_torch_fused": bm / f,
            "burn_method_over_torch_fused_min_max": range(&pf),
            "burn_method_over_torch_authors": bm / a,
        });
        println!("{v}");
        lines.push(v);
    }
    lines
}

/// One repetition of the overhead bench's variants (bare, decay, decay + masks).
fn bench<M: ImageClassifier, O: Optimizer + sparse_reg::InnerOptimizer>(
    model: M,
    inner: O,
    steps: usize,
    device: &Device,
) -> Value {
    measure("", "", variants(model, inner), 1, steps, device)
}

fn adam() -> burn::optim::Adam {
    AdamConfig::new().build()
}

fn fused_adam() -> sparse_reg::FusedAdam {
    sparse_reg::FusedAdamConfig::new()
        .build()
        .expect("valid Adam")
}

fn sgd() -> burn::optim::Sgd {
    SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new().with_momentum(0.9).with_dampening(0.0),
        ))
        .build()
}
