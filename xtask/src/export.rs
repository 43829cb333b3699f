//! Compression and sparse inference: `.sparse` file size against the dense burnpack, and
//! inference latency of the sparse CPU layers against Burn's dense flex path and PyTorch's
//! dense CPU path, at 90 / 95 / 98 / 99 % sparsity (global magnitude pruning of LeNet-300-100
//! and LeNet-5).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use serde_json::{Value, json};
use sparse_export::{SparseClassifier, SparseLeNet5, SparseLeNet300, ValueType, export, read};
use sparse_models::{ImageClassifier, LeNet5, LeNet300};
use sparse_prune::{Amount, Floor, PruneSchedule, PrunerConfig};

use crate::overhead::median;

/// Medians (ms) of `a` and `b`, their repetitions interleaved (a, b, a, b, ...) so that both
/// see the same machine state: their ratio holds on a noisy machine where absolute times drift.
fn paired_median_ms(reps: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64) {
    a();
    b();
    let (mut ta, mut tb) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
    for _ in 0..reps {
        let t = Instant::now();
        a();
        ta.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        b();
        tb.push(t.elapsed().as_secs_f64() * 1e3);
    }
    (median(ta), median(tb))
}

/// PyTorch dense inference latency of the reference script's model, in ms (None without torch).
fn torch_ms(script: &Path, model: &str, batch: usize, threads: usize) -> Option<f64> {
    let dir = script.parent()?;
    let code = format!(
        "import sys, time, json, torch\nsys.path.insert(0, {dir:?})\nimport torch_reference as r\n\
         torch.set_num_threads({threads})\nm = r.MODELS['{model}'][0]().eval()\n\
         x = torch.randn({batch}, 1, 28, 28)\nts = []\nwith torch.no_grad():\n    m(x)\n\
         \x20   for _ in range(200 if {batch} == 1 else 20):\n        t = time.perf_counter(); m(x); ts.append(time.perf_counter() - t)\n\
         ts.sort(); print(json.dumps(1e3 * ts[len(ts) // 2]))\n",
        dir = dir.display().to_string()
    );
    let out = Command::new("python3").args(["-c", &code]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn one<M: ImageClassifier, S: SparseClassifier>(
    name: &str,
    model: M,
    sparse: fn(&[sparse_export::SparseTensor]) -> Result<S, sparse_export::ExportError>,
    sparsity: f64,
    quick: bool,
    script: &Path,
    threads: usize,
) -> Value {
    let device = Device::flex();
    let mut pruner = PrunerConfig::new(PruneSchedule::Gated {
        every: 1,
        fraction: 0.5,
        floor: Floor::AtLeast(0.0),
    })
    .with_params(sparse_prune::Selection::All) // every parameter (the paper)
    .init()
    .expect("valid pruner");
    let model = pruner.attach(model).expect("masks");
    let model = pruner
        .prune(model, 1, Amount::Sparsity(sparsity), None)
        .expect("prune")
        .0;
    let plain = sparse_prune::fold(model.clone());
    let dir = std::env::temp_dir().join(format!("sparse-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bpk = dir.join(format!("{name}.bpk"));
    plain.clone().save_file(&bpk).expect("save burnpack");
    let bpk_bytes = std::fs::metadata(&bpk).map(|m| m.len()).unwrap_or(0);
    let mut sizes = json!({});
    for (vt, label) in [(ValueType::F32, "f32"), (ValueType::F16, "f16")] {
        let file = dir.join(format!("{name}-{label}.sparse"));
        let info = export(&model, &file, vt).expect("export");
        sizes[label] = json!(info.file_bytes);
    }
    let net = sparse(&read(dir.join(format!("{name}-f32.sparse"))).expect("read")).expect("net");
    std::fs::remove_dir_all(&dir).ok();
    let mut out = json!({
        "bench": "export",
        "model": name,
        "sparsity": sparsity,
        "burnpack_bytes": bpk_bytes,
        "sparse_f32_bytes": sizes["f32"],
        "sparse_f16_bytes": sizes["f16"],
        "burnpack_over_sparse_f32": bpk_bytes as f64 / sizes["f32"].as_f64().unwrap_or(1.0),
        "threads": threads,
    });
    for batch in [1usize, 100] {
        let x: Vec<f32> = (0..batch * 784).map(|i| (i % 255) as f32 / 255.0).collect();
        let reps = match (batch, quick) {
            (1, false) => 2000,
            (1, true) => 100,
            (_, false) => 30,
            _ => 3,
        };
        let (dense, sp) = paired_median_ms(
            reps,
            || {
                let t =
                    Tensor::<4>::from_data(TensorData::new(x.clone(), [batch, 1, 28, 28]), &device);
                let _ = plain.logits(t).into_data();
            },
            || {
                std::hint::black_box(net.logits(&x, batch));
            },
        );
        out[format!("burn_dense_ms_b{batch}")] = json!(dense);
        out[format!("sparse_ms_b{batch}")] = json!(sp);
        out[format!("speedup_vs_burn_b{batch}")] = json!(dense / sp);
        if let Some(t) = (!quick)
            .then(|| torch_ms(script, name, batch, threads))
            .flatten()
        {
            out[format!("torch_dense_ms_b{batch}")] = json!(t);
            out[format!("speedup_vs_torch_b{batch}")] = json!(t / sp);
        }
    }
    out
}

/// Run the benchmark; returns the JSON lines (also printed).
pub fn run(quick: bool, script: &Path) -> Vec<Value> {
    let threads = crate::overhead::bench_threads();
    let device = Device::flex();
    let levels: &[f64] = if quick {
        &[0.99]
    } else {
        &[0.9, 0.95, 0.98, 0.99]
    };
    let mut lines = Vec::new();
    for &s in levels {
        for v in [
            one(
                "lenet300",
                LeNet300::new(&device),
                SparseLeNet300::new,
                s,
                quick,
                script,
                threads,
            ),
            one(
                "lenet5",
                LeNet5::new(&device),
                SparseLeNet5::new,
                s,
                quick,
                script,
                threads,
            ),
        ] {
            println!("{v}");
            lines.push(v);
        }
    }
    lines
}
