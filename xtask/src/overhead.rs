//! Overhead of the method per training step: bare inner optimizer, with SelectiveDecay, and
//! with SelectiveDecay + masks; interleaved repetitions in one process, median ratios.

use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{
    AdamConfig, GradientsParams, ModuleOptimizer, Optimizer, SgdConfig, momentum::MomentumConfig,
};
use burn::tensor::{Device, Distribution, Int, Tensor};
use serde_json::json;
use sparse_models::{ImageClassifier, LeNet5, LeNet300};
use sparse_prune::{Amount, Masking, PruneSchedule, Pruner, PrunerConfig};
use sparse_reg::{FusedAdamConfig, SelectiveDecayConfig};

/// One contestant: a model and its optimizer.
pub struct Variant<M> {
    name: &'static str,
    model: Option<M>,
    optim: ModuleOptimizer,
    /// With in-place masks: the pruner whose `enforce` follows every optimizer step.
    pruner: Option<Pruner>,
}

fn step<M: ImageClassifier>(
    v: &mut Variant<M>,
    x: &Tensor<4>,
    y: &Tensor<1, Int>,
    device: &Device,
) {
    let model = v.model.take().expect("a model");
    let logits = model.logits(x.clone());
    let loss = CrossEntropyLossConfig::new()
        .init(device)
        .forward(logits, y.clone());
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    // The model moves into the step (no clone): its weights are uniquely owned there.
    let model = v.optim.step(1e-3, model, grads);
    v.model = Some(match v.pruner.as_mut() {
        Some(pruner) => pruner.enforce(model),
        None => model,
    });
}

/// `model` with masks acting as `masking` says attached and half of its weights pruned (one
/// global magnitude ranking), with its pruner.
pub fn half_pruned<M: ImageClassifier>(model: M, masking: Masking) -> (M, Pruner) {
    let mut pruner = PrunerConfig::new(PruneSchedule::OneShot {
        at: 0,
        sparsity: 0.5,
    })
    .with_masking(masking)
    .init()
    .expect("valid pruner");
    let masked = pruner.attach(model).expect("masks attach");
    let (masked, _) = pruner
        .prune(masked, 0, Amount::Sparsity(0.5), None)
        .expect("prune");
    (masked, pruner)
}

/// `[min, max]` of `v`.
pub fn min_max(v: &[f64]) -> [f64; 2] {
    let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    [lo, hi]
}

pub fn variants<M: ImageClassifier, O: Optimizer>(model: M, inner: O) -> Vec<Variant<M>> {
    let decay = SelectiveDecayConfig::new().with_gamma(1e-3);
    let (masked, _) = half_pruned(model.clone(), Masking::Forward);
    let (in_place, pruner) = half_pruned(model.clone(), Masking::InPlace);
    let (fused, mut fused_pruner) = half_pruned(model.clone(), Masking::InPlace);
    let fused_optim = fused_pruner
        .optimizer(decay.build(inner.clone()).expect("valid decay"), &fused)
        .expect("masks attached");
    vec![
        Variant {
            name: "bare",
            optim: ModuleOptimizer::from(inner.clone()),
            model: Some(model.clone()),
            pruner: None,
        },
        Variant {
            name: "decay",
            optim: decay.init(inner.clone(), &model).expect("valid decay"),
            model: Some(model),
            pruner: None,
        },
        Variant {
            name: "decay+masks",
            optim: decay.init(inner.clone(), &masked).expect("valid decay"),
            model: Some(masked),
            pruner: None,
        },
        Variant {
            name: "decay+masks_in_place",
            optim: decay.init(inner, &in_place).expect("valid decay"),
            model: Some(in_place),
            pruner: Some(pruner),
        },
        // The examples' set-up: the optimizer from `Pruner::optimizer`, whose step zeroes the
        // pruned entries (in the fused optimizers' own pass), so that `enforce` skips them.
        Variant {
            name: "decay+masks_in_step",
            optim: fused_optim,
            model: Some(fused),
            pruner: Some(fused_pruner),
        },
    ]
}

/// Threads both sides of a comparison use: flex's pool follows `RAYON_NUM_THREADS`.
pub fn bench_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

pub fn measure<M: ImageClassifier>(
    model_name: &str,
    optim_name: &str,
    mut vs: Vec<Variant<M>>,
    reps: usize,
    steps: usize,
    device: &Device,
) -> serde_json::Value {
    let x = Tensor::<4>::random([100, 1, 28, 28], Distribution::Default, device);
    let y = Tensor::<1>::random([100], Distribution::Uniform(0.0, 10.0), device).int();
    // Warm-up.
    for v in vs.iter_mut() {
        for _ in 0..3 {
            step(v, &x, &y, device);
        }
    }
    device.sync().expect("device sync");
    let mut times: Vec<Vec<f64>> = vec![vec![]; vs.len()];
    let n = vs.len();
    for rep in 0..reps {
        // The order rotates between repetitions, so that whatever the previous contestant
        // leaves behind (caches, the allocator's free lists, the clock) favours none of them.
        for i in (0..n).map(|k| (rep + k) % n) {
            let v = &mut vs[i];
            let t = Instant::now();
            for _ in 0..steps {
                step(v, &x, &y, device);
            }
            device.sync().expect("device sync");
            times[i].push(t.elapsed().as_secs_f64() * 1e3 / steps as f64);
        }
    }
    let ratio =
        |i: usize| -> Vec<f64> { times[i].iter().zip(&times[0]).map(|(a, b)| a / b).collect() };
    let mut out = json!({
        "bench": "overhead",
        "backend": "flex",
        "model": model_name,
        "optimizer": optim_name,
        "batch": 100,
        "reps": reps,
        "steps_per_rep": steps,
    });
    for (i, v) in vs.iter().enumerate() {
        out[format!("{}_ms_per_step", v.name)] = json!(median(times[i].clone()));
        if i > 0 {
            let r = ratio(i);
            out[format!("ratio_{}", v.name.replace('+', "_"))] = json!(median(r.clone()));
            out[format!("ratio_{}_min_max", v.name.replace('+', "_"))] = json!(min_max(&r));
            // The ratio of the fastest repetitions: noise on these machines only ever adds
            // time, so each contestant's minimum is the estimate least disturbed by it.
            out[format!("ratio_{}_of_minima", v.name.replace('+', "_"))] =
                json!(min_max(&times[i])[0] / min_max(&times[0])[0]);
        }
    }
    out
}

/// Run the benchmark; returns the JSON lines (also printed).
pub fn run(quick: bool) -> Vec<serde_json::Value> {
    let device = Device::flex().autodiff();
    device.seed(0);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let machine = json!({"bench": "machine", "cpus": threads, "os": std::env::consts::OS, "arch": std::env::consts::ARCH, "allocator": std::env::var_os("MALLOC_MMAP_THRESHOLD_").map(|_| crate::allocator::settings())});
    println!("{machine}");
    let mut lines = vec![machine];
    let sgd = || {
        SgdConfig::new()
            .with_momentum(Some(
                MomentumConfig::new().with_momentum(0.9).with_dampening(0.0),
            ))
            .build()
    };
    // LeNet-300-100's ~1.5 ms step is the one where a few tens of microseconds decide the 5 %
    // target, and the one most disturbed by the machine: twice the repetitions.
    let (reps300, reps5, steps300, steps5) = if quick {
        (3, 3, 10, 2)
    } else {
        (61, 31, 50, 5)
    };
    let mut emit = |v: serde_json::Value| {
        println!("{v}");
        lines.push(v);
    };
    emit(measure(
        "lenet300",
        "sgd-momentum",
        variants(LeNet300::new(&device), sgd()),
        reps300,
        steps300,
        &device,
    ));
    emit(measure(
        "lenet300",
        "fused-sgd-momentum",
        variants(LeNet300::new(&device), fused_sgd()),
        reps300,
        steps300,
        &device,
    ));
    emit(measure(
        "lenet300",
        "adam",
        variants(LeNet300::new(&device), AdamConfig::new().build()),
        reps300,
        steps300,
        &device,
    ));
    emit(measure(
        "lenet300",
        "fused-adam",
        variants(
            LeNet300::new(&device),
            FusedAdamConfig::new().build().expect("valid Adam"),
        ),
        reps300,
        steps300,
        &device,
    ));
    emit(measure(
        "lenet5",
        "sgd-momentum",
        variants(LeNet5::new(&device), sgd()),
        reps5,
        steps5,
        &device,
    ));
    emit(measure(
        "lenet5",
        "fused-sgd-momentum",
        variants(LeNet5::new(&device), fused_sgd()),
        reps5,
        steps5,
        &device,
    ));
    emit(measure(
        "lenet5",
        "adam",
        variants(LeNet5::new(&device), AdamConfig::new().build()),
        reps5,
        steps5,
        &device,
    ));
    emit(measure(
        "lenet5",
        "fused-adam",
        variants(
            LeNet5::new(&device),
            FusedAdamConfig::new().build().expect("valid Adam"),
        ),
        reps5,
        steps5,
        &device,
    ));
    lines
}

/// sparse-reg's one-pass SGD with the benchmark's momentum (0.9, no dampening).
pub fn fused_sgd() -> sparse_reg::FusedSgd {
    sparse_reg::FusedSgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new().with_momentum(0.9).with_dampening(0.0),
        ))
        .build()
        .expect("valid SGD")
}
