//! Cost of one prune event: the global selection of the `round(p * alive)` smallest scores
//! over every prunable entry, and the mask update, for 0.4 M, 15 M and 60 M parameters (flex).

use std::time::Instant;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Device;
use serde_json::{Value, json};
use sparse_prune::{Amount, Floor, PruneSchedule, PrunerConfig};

use crate::overhead::median;

/// A stack of square linear layers with about `params` parameters.
#[derive(Module, Debug)]
struct Stack {
    layers: Vec<Linear>,
}

fn stack(params: usize, device: &Device) -> Stack {
    let width = 1000.min(((params as f64).sqrt()) as usize);
    let per = width * width + width;
    let layers = (0..params.div_ceil(per))
        .map(|_| LinearConfig::new(width, width).init(device))
        .collect();
    Stack { layers }
}

/// Run the benchmark; returns the JSON lines (also printed).
pub fn run(quick: bool) -> Vec<Value> {
    let device = Device::flex();
    device.seed(0);
    let sizes: &[usize] = if quick {
        &[400_000, 15_000_000]
    } else {
        &[400_000, 15_000_000, 60_000_000]
    };
    let reps = if quick { 2 } else { 5 };
    let mut lines = Vec::new();
    for &size in sizes {
        let model = stack(size, &device);
        let params = model.num_params();
        let mut pruner = PrunerConfig::new(PruneSchedule::Gated {
            every: 1,
            fraction: 0.04,
            floor: Floor::AtLeast(0.0),
        })
        .with_params(sparse_prune::Selection::All) // every parameter (the paper)
        .init()
        .expect("valid pruner");
        let mut model = pruner.attach(model).expect("masks attach");
        let mut times = Vec::new();
        for step in 0..reps as u64 {
            let t = Instant::now();
            let (m, _) = pruner
                .prune(model, step, Amount::FractionOfAlive(0.04), None)
                .expect("prune");
            device.sync().expect("device sync");
            times.push(t.elapsed().as_secs_f64());
            model = m;
        }
        let v = json!({
            "bench": "prune_event",
            "backend": "flex",
            "params": params,
            "criterion": "magnitude",
            "distribution": "global",
            "fraction": 0.04,
            "reps": reps,
            "median_s": median(times.clone()),
            "min_s": times.iter().cloned().fold(f64::INFINITY, f64::min),
        });
        println!("{v}");
        lines.push(v);
    }
    lines
}
