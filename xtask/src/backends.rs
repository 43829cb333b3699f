//! Which CPU backend is faster: flex against ndarray, for a training step with the method
//! (SelectiveDecay + masks, Adam) and for a batch-100 forward pass, LeNet-300-100 and LeNet-5,
//! repetitions interleaved in one process. The examples' CPU default follows this benchmark.

use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Int, Tensor};
use serde_json::json;
use sparse_models::{ImageClassifier, LeNet5, LeNet300};
use sparse_reg::SelectiveDecayConfig;

use crate::overhead::{bench_threads, half_pruned, median, min_max};

/// LeNet-5 through Burn's own ops where the model has its own: `max_pool2d` then `relu`
/// instead of the fused `max_pool2x2_relu`, and, with `conv2d_convs`, both convolutions
/// through `Conv2d::forward` rather than `conv2d_unfolded` (patches + one product), so that
/// ndarray is measured on both.
#[derive(burn::module::Module, Debug)]
struct LeNet5BurnOps {
    net: LeNet5,
    #[module(skip)]
    conv2d_convs: bool,
}

impl LeNet5BurnOps {
    fn new(device: &Device, conv2d_convs: bool) -> Self {
        Self {
            net: LeNet5::new(device),
            conv2d_convs,
        }
    }
}

impl ImageClassifier for LeNet5BurnOps {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        use burn::tensor::activation::relu;
        let pool = burn::nn::pool::MaxPool2dConfig::new([2, 2]).init();
        let n = &self.net;
        let conv = |conv: &burn::nn::conv::Conv2d, x: Tensor<4>| match self.conv2d_convs {
            true => conv.forward(x),
            false => sparse_models::conv2d_unfolded(conv, x),
        };
        let x = relu(pool.forward(conv(&n.conv1, images)));
        let x = relu(pool.forward(conv(&n.conv2, x)));
        n.fc2.forward(relu(n.fc1.forward(x.flatten::<2>(1, 3))))
    }
}

/// One backend's contestant: the masked model with the method's optimizer, and its batch.
struct Lane<M> {
    backend: &'static str,
    device: Device,
    model: Option<M>,
    optim: ModuleOptimizer,
    x: Tensor<4>,
    y: Tensor<1, Int>,
}

impl<M: ImageClassifier> Lane<M> {
    fn new(backend: &'static str, device: Device, init: impl Fn(&Device) -> M) -> Self {
        let (model, _) = half_pruned(init(&device), sparse_prune::Masking::Forward);
        let optim = SelectiveDecayConfig::new()
            .with_gamma(1e-3)
            .init(AdamConfig::new().build(), &model)
            .expect("valid decay");
        // The same batch on both backends.
        let flex = Device::flex();
        flex.seed(7);
        let x = Tensor::<4>::random([100, 1, 28, 28], Distribution::Default, &flex);
        let y = Tensor::<1>::random([100], Distribution::Uniform(0.0, 10.0), &flex).int();
        Self {
            backend,
            x: Tensor::from_data(x.into_data(), &device),
            y: Tensor::from_data(y.into_data(), &device),
            device,
            model: Some(model),
            optim,
        }
    }

    fn train_steps(&mut self, steps: usize) -> f64 {
        let t = Instant::now();
        for _ in 0..steps {
            let model = self.model.take().expect("a model");
            let logits = model.logits(self.x.clone());
            let loss = CrossEntropyLossConfig::new()
                .init(&self.device)
                .forward(logits, self.y.clone());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            self.model = Some(self.optim.step(1e-3, model, grads));
        }
        self.device.sync().expect("device sync");
        t.elapsed().as_secs_f64() * 1e3 / steps as f64
    }

    fn forward_passes(&mut self, passes: usize) -> f64 {
        let model = self.model.as_ref().expect("a model").valid();
        let x = self.x.clone().inner();
        let t = Instant::now();
        for _ in 0..passes {
            let _ = model.logits(x.clone()).into_data();
        }
        t.elapsed().as_secs_f64() * 1e3 / passes as f64
    }
}

// ndarray is deprecated upstream; comparing against it is the point here.
#[allow(deprecated)]
fn compare<M: ImageClassifier>(
    name: &str,
    init: impl Fn(&Device) -> M,
    reps: usize,
    steps: usize,
) -> serde_json::Value {
    let mut lanes = [
        Lane::new("flex", Device::flex().autodiff(), &init),
        Lane::new("ndarray", Device::ndarray().autodiff(), &init),
    ];
    for lane in lanes.iter_mut() {
        lane.train_steps(2);
        lane.forward_passes(2);
    }
    let mut train = [vec![], vec![]];
    let mut infer = [vec![], vec![]];
    for _ in 0..reps {
        for (i, lane) in lanes.iter_mut().enumerate() {
            train[i].push(lane.train_steps(steps));
            infer[i].push(lane.forward_passes(steps));
        }
    }
    let ratios =
        |t: &[Vec<f64>; 2]| -> Vec<f64> { t[1].iter().zip(&t[0]).map(|(n, f)| n / f).collect() };
    let (rt, ri) = (ratios(&train), ratios(&infer));
    let mut out = json!({
        "bench": "backends",
        "model": name,
        "optimizer": "adam + selective decay + masks (50 %)",
        "batch": 100,
        "threads": bench_threads(),
        "reps": reps,
        "steps_per_rep": steps,
        "ndarray_over_flex_train": median(rt.clone()),
        "ndarray_over_flex_train_min_max": min_max(&rt),
        "ndarray_over_flex_forward": median(ri.clone()),
        "ndarray_over_flex_forward_min_max": min_max(&ri),
    });
    for (i, lane) in lanes.iter().enumerate() {
        out[format!("{}_train_ms", lane.backend)] = json!(median(train[i].clone()));
        out[format!("{}_forward_ms", lane.backend)] = json!(median(infer[i].clone()));
    }
    out
}

/// On flex alone: LeNet-5's training step as shipped against the same model through Burn's
/// own ops for what this project replaced (the max-pools; the max-pools and both
/// convolutions), repetitions interleaved in one process.
fn flex_variants(reps: usize, steps: usize) -> serde_json::Value {
    let device = Device::flex().autodiff();
    let mut shipped = Lane::new("flex", device.clone(), LeNet5::new);
    let mut burn_pool = Lane::new("flex", device.clone(), |d: &Device| {
        LeNet5BurnOps::new(d, false)
    });
    let mut burn_all = Lane::new("flex", device, |d: &Device| LeNet5BurnOps::new(d, true));
    let (mut a, mut b, mut c) = (vec![], vec![], vec![]);
    shipped.train_steps(2);
    burn_pool.train_steps(2);
    burn_all.train_steps(2);
    for _ in 0..reps {
        a.push(shipped.train_steps(steps));
        b.push(burn_pool.train_steps(steps));
        c.push(burn_all.train_steps(steps));
    }
    let over = |t: &[f64]| -> Vec<f64> { t.iter().zip(&a).map(|(x, s)| x / s).collect() };
    let (rb, rc) = (over(&b), over(&c));
    json!({
        "bench": "flex-variants",
        "model": "lenet5",
        "optimizer": "adam + selective decay + masks (50 %)",
        "batch": 100,
        "threads": bench_threads(),
        "reps": reps,
        "steps_per_rep": steps,
        "shipped_train_ms": median(a.clone()),
        "burn_pool_train_ms": median(b.clone()),
        "burn_pool_over_shipped": median(rb.clone()),
        "burn_pool_over_shipped_min_max": min_max(&rb),
        "burn_ops_train_ms": median(c.clone()),
        "burn_ops_over_shipped": median(rc.clone()),
        "burn_ops_over_shipped_min_max": min_max(&rc),
    })
}

/// Run the benchmark; returns the JSON lines (also printed).
pub fn run(quick: bool) -> Vec<serde_json::Value> {
    let (reps, steps300, steps5) = if quick { (3, 5, 1) } else { (9, 30, 4) };
    let mut lines = vec![];
    for line in [
        compare("lenet300", LeNet300::new, reps, steps300),
        compare("lenet5", LeNet5::new, reps, steps5),
        compare(
            "lenet5 (convolutions as Conv2d)",
            |d: &Device| LeNet5BurnOps::new(d, true),
            reps,
            steps5,
        ),
        flex_variants(reps, steps5),
    ] {
        println!("{line}");
        lines.push(line);
    }
    lines
}
