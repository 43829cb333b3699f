//! Data pipeline speed: batches per second of the MNIST-format loader (gather + normalised
//! pixels + tensor creation on the device) against the training step time it feeds.

use std::time::Instant;

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde_json::{Value, json};
use sparse_data::{ImageSet, NormalizedImages, Split};
use sparse_models::LeNet300;

use crate::overhead::{measure, variants};

/// Run the benchmark; returns the JSON lines (also printed).
pub fn run(quick: bool) -> Vec<Value> {
    let device = Device::flex().autodiff();
    let data = NormalizedImages::mnist_normalised(&ImageSet::embedded(Split::Train));
    let batches = if quick { 200 } else { 2000 };
    let order = sparse_data::epoch_order(data.len(), 7);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let t = Instant::now();
    for b in 0..batches {
        let start = (b * 100) % (data.len() - 100);
        data.gather(&order[start..start + 100], &mut x, &mut y);
        let xs: Tensor<4> =
            Tensor::from_data(TensorData::new(x.clone(), [100, 1, 28, 28]), &device);
        let ys: Tensor<1, Int> = Tensor::from_data(TensorData::new(y.clone(), [100]), &device);
        std::hint::black_box((xs, ys));
    }
    let per_batch_ms = t.elapsed().as_secs_f64() * 1e3 / batches as f64;
    // The fastest step it feeds: LeNet-300-100, plain Adam.
    let step = measure(
        "lenet300",
        "adam",
        variants(
            LeNet300::new(&device),
            burn::optim::AdamConfig::new().build(),
        ),
        3,
        if quick { 10 } else { 50 },
        &device,
    );
    let step_ms = step["bare_ms_per_step"].as_f64().unwrap_or(f64::NAN);
    let v = json!({
        "bench": "loader",
        "loader": "sparse_data::NormalizedImages::gather + Tensor::from_data (flex)",
        "batch": 100,
        "batches": batches,
        "loader_ms_per_batch": per_batch_ms,
        "batches_per_s": 1e3 / per_batch_ms,
        "lenet300_adam_step_ms": step_ms,
        "step_over_loader": step_ms / per_batch_ms,
    });
    println!("{v}");
    vec![v]
}
