//! Overhead of the method per training step: bare inner optimizer, with SelectiveDecay, and
//! with SelectiveDecay + masks; interleaved repetitions in one process, median ratios.
//!
//! `--backend flex` (the default) or, in a build with the backend's cargo feature, a GPU
//! backend: `cargo run --release -p xtask --features wgpu -- bench overhead --backend wgpu`
//! (on a machine without a GPU, wgpu runs on the CPU through Mesa's lavapipe). On the GPU
//! backends each row also counts the kernels launched per step (CubeCL's launch observer:
//! with Burn's fusion, a fused kernel is one launch).

use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{
    AdamConfig, GradientsParams, ModuleOptimizer, Optimizer, SgdConfig, momentum::MomentumConfig,
};
use burn::tensor::{Device, Distribution, Int, Tensor};
use serde_json::json;
use sparse_models::{ImageClassifier, LeNet5, LeNet300, ResNetConfig};
use sparse_prune::{Amount, Masking, PruneSchedule, Pruner, PrunerConfig};
use sparse_reg::{FusedAdamConfig, InnerOptimizer, SelectiveDecayConfig};

/// One contestant: a model and its optimizer.
pub struct Variant<M> {
    name: &'static str,
    model: Option<M>,
    optim: ModuleOptimizer,
    /// With in-place masks: the pruner whose `enforce` follows every optimizer step.
    pruner: Option<Pruner>,
}

/// One training step of `v` on the batch `x`, `y` (the model moves through the step).
pub fn step<M: ImageClassifier>(
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

pub fn variants<M: ImageClassifier, O: Optimizer + InnerOptimizer>(
    model: M,
    inner: O,
) -> Vec<Variant<M>> {
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

/// The bare optimizer and the method with its masks in the step (`Pruner::optimizer`, the
/// examples' set-up), in that order: [`variants`]' first and last contestants.
pub fn bare_and_method<M: ImageClassifier, O: Optimizer + InnerOptimizer>(
    model: M,
    inner: O,
) -> Vec<Variant<M>> {
    let mut all = variants(model, inner);
    let method = all.pop().expect("the method's contestant");
    vec![all.swap_remove(0), method]
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
    vs: Vec<Variant<M>>,
    reps: usize,
    steps: usize,
    device: &Device,
) -> serde_json::Value {
    let input = Input {
        backend: Backend::Flex,
        shape: [100, 1, 28, 28],
    };
    measure_on(model_name, optim_name, vs, reps, steps, device, input)
}

/// What a row of the benchmark feeds its contestants: random images of `shape` (batch first)
/// on `backend`'s device, labels among 10 classes.
#[derive(Clone, Copy)]
pub struct Input {
    /// The backend, named in the row.
    pub backend: Backend,
    /// `[batch, channels, height, width]`.
    pub shape: [usize; 4],
}

/// [`measure`] on any input and backend; on the GPU backends, also the kernels launched per
/// step by each contestant (`NAME_launches_per_step`), counted over `steps` more steps after the
/// timed ones.
pub fn measure_on<M: ImageClassifier>(
    model_name: &str,
    optim_name: &str,
    mut vs: Vec<Variant<M>>,
    reps: usize,
    steps: usize,
    device: &Device,
    input: Input,
) -> serde_json::Value {
    let batch = input.shape[0];
    let x = Tensor::<4>::random(input.shape, Distribution::Default, device);
    let y = Tensor::<1>::random([batch], Distribution::Uniform(0.0, 10.0), device).int();
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
        "backend": input.backend.name(),
        "model": model_name,
        "optimizer": optim_name,
        "batch": batch,
        "reps": reps,
        "steps_per_rep": steps,
    });
    if input.backend != Backend::Flex {
        for v in vs.iter_mut() {
            let launches = launches::count(|| {
                for _ in 0..steps {
                    step(v, &x, &y, device);
                }
                device.sync().expect("device sync");
            });
            if let Some(n) = launches {
                out[format!("{}_launches_per_step", v.name)] = json!(n as f64 / steps as f64);
            }
        }
    }
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

/// The backend a benchmark runs on. The GPU backends need xtask built with their cargo feature
/// (`--features wgpu`, `--features cuda`); flex is always there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Burn's pure-Rust CPU backend.
    Flex,
    /// wgpu (Vulkan, Metal, DX12; on a machine without a GPU, Mesa's lavapipe on the CPU).
    Wgpu,
    /// CUDA.
    Cuda,
}

impl Backend {
    /// The backend's name, as in `--backend NAME` and the JSON rows.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        }
    }

    /// The GPU backends this build has, in `--backend` order.
    pub fn built_gpus() -> Vec<Backend> {
        let mut out = Vec::new();
        if cfg!(feature = "wgpu") {
            out.push(Backend::Wgpu);
        }
        if cfg!(feature = "cuda") {
            out.push(Backend::Cuda);
        }
        out
    }

    /// The training (autodiff) device, or why this build has none.
    pub fn autodiff_device(self) -> Result<Device, String> {
        match self {
            Backend::Flex => Ok(Device::flex().autodiff()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice).autodiff()),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Ok(Device::cuda(0).autodiff()),
            #[allow(unreachable_patterns)]
            other => Err(format!(
                "--backend {0}: this xtask was built without the `{0}` feature; build it with \
                 `cargo run --release -p xtask --features {0} -- ...`",
                other.name()
            )),
        }
    }

    /// The device's name as its driver reports it (`llvmpipe (LLVM ...)` for lavapipe); `None`
    /// on flex.
    pub fn adapter(self) -> Option<String> {
        #[cfg(feature = "wgpu")]
        if self == Backend::Wgpu {
            return burn::cubecl::Device::wgpu(Default::default())
                .ok()
                .map(|d| d.client().properties().identity.name.clone());
        }
        #[cfg(feature = "cuda")]
        if self == Backend::Cuda {
            return burn::cubecl::Device::cuda(0)
                .ok()
                .map(|d| d.client().properties().identity.name.clone());
        }
        None
    }
}

/// The benchmark's machine line: cores, OS, the allocator settings and, on a GPU backend, the
/// device's name and the Vulkan driver files in use.
pub fn machine(backend: Backend) -> serde_json::Value {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut machine = json!({"bench": "machine", "cpus": threads, "os": std::env::consts::OS, "arch": std::env::consts::ARCH, "allocator": std::env::var_os("MALLOC_MMAP_THRESHOLD_").map(|_| crate::allocator::settings())});
    if backend != Backend::Flex {
        machine["backend"] = json!(backend.name());
        machine["adapter"] = json!(backend.adapter());
        machine["vk_driver_files"] = json!(std::env::var("VK_DRIVER_FILES").ok());
    }
    machine
}

/// Run the benchmark on `backend`; returns the JSON lines (also printed). `reps` replaces the
/// GPU rows' repetitions.
pub fn run(
    quick: bool,
    backend: Backend,
    reps: Option<usize>,
) -> Result<Vec<serde_json::Value>, String> {
    if backend != Backend::Flex {
        return run_gpu(quick, backend, reps);
    }
    Ok(run_flex(quick))
}

/// The rows on a GPU backend: LeNet-5 and ResNet-20 with Burn's SGD with momentum, sparse-reg's
/// one-pass SGD (the examples' optimizer) and Adam, at batch sizes small enough for lavapipe.
fn run_gpu(
    quick: bool,
    backend: Backend,
    reps: Option<usize>,
) -> Result<Vec<serde_json::Value>, String> {
    let device = backend.autodiff_device()?;
    device.seed(0);
    let machine = machine(backend);
    println!("{machine}");
    let mut lines = vec![machine];
    let mut emit = |v: serde_json::Value| {
        println!("{v}");
        lines.push(v);
    };
    let sizes = GpuSizes::new(quick);
    let lenet = Input {
        backend,
        shape: [sizes.lenet_batch, 1, 28, 28],
    };
    let resnet = Input {
        backend,
        shape: [sizes.resnet_batch, 3, 32, 32],
    };
    let resnet20 = || ResNetConfig::new(20).init(&device).expect("ResNet-20");
    let (reps, steps) = (reps.unwrap_or(sizes.reps), sizes.steps);
    emit(measure_on(
        "lenet5",
        "sgd-momentum",
        variants(LeNet5::new(&device), sgd()),
        reps,
        steps,
        &device,
        lenet,
    ));
    emit(measure_on(
        "lenet5",
        "fused-sgd-momentum",
        variants(LeNet5::new(&device), fused_sgd()),
        reps,
        steps,
        &device,
        lenet,
    ));
    emit(measure_on(
        "lenet5",
        "adam",
        variants(LeNet5::new(&device), AdamConfig::new().build()),
        reps,
        steps,
        &device,
        lenet,
    ));
    emit(measure_on(
        "resnet20",
        "sgd-momentum",
        variants(resnet20(), sgd()),
        reps,
        steps,
        &device,
        resnet,
    ));
    emit(measure_on(
        "resnet20",
        "fused-sgd-momentum",
        variants(resnet20(), fused_sgd()),
        reps,
        steps,
        &device,
        resnet,
    ));
    Ok(lines)
}

/// Batch sizes and repetitions of the GPU rows.
pub struct GpuSizes {
    /// LeNet-5's batch.
    pub lenet_batch: usize,
    /// ResNet-20's batch.
    pub resnet_batch: usize,
    /// Repetitions of each contestant.
    pub reps: usize,
    /// Steps per repetition.
    pub steps: usize,
}

impl GpuSizes {
    /// The full run or the `--quick` one.
    pub fn new(quick: bool) -> Self {
        if quick {
            GpuSizes {
                lenet_batch: 8,
                resnet_batch: 4,
                reps: 2,
                steps: 2,
            }
        } else {
            GpuSizes {
                lenet_batch: 32,
                resnet_batch: 16,
                reps: 9,
                steps: 3,
            }
        }
    }
}

/// Burn's SGD with the benchmark's momentum (0.9, no dampening).
pub fn sgd() -> burn::optim::Sgd {
    SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new().with_momentum(0.9).with_dampening(0.0),
        ))
        .build()
}

fn run_flex(quick: bool) -> Vec<serde_json::Value> {
    let device = Device::flex().autodiff();
    device.seed(0);
    let machine = machine(Backend::Flex);
    println!("{machine}");
    let mut lines = vec![machine];
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

/// Kernel launches, counted with CubeCL's launch observer (process-wide, on the thread that
/// issues each launch; with Burn's fusion a fused kernel is one launch).
pub mod launches {
    /// The kernels launched while `f` runs (`f` syncs the device, so that every queued op has
    /// been launched); `None` in a build without a CubeCL backend, where nothing launches.
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    pub fn count(f: impl FnOnce()) -> Option<usize> {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        use burn::cubecl::logging::{LaunchObservation, LaunchObserver};

        #[derive(Default)]
        struct Count(AtomicUsize);

        impl LaunchObserver for Count {
            fn launched(&self, _kernel: &'static str) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }

        let counter = Arc::new(Count::default());
        let watching = LaunchObservation::new(counter.clone());
        f();
        drop(watching);
        Some(counter.0.load(Ordering::Relaxed))
    }

    /// The kernels launched while `f` runs (`f` syncs the device, so that every queued op has
    /// been launched); `None` in a build without a CubeCL backend, where nothing launches.
    #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
    pub fn count(f: impl FnOnce()) -> Option<usize> {
        f();
        None
    }
}
