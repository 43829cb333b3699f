//! A pruned LeNet checkpoint, exported to the compact `.sparse` format and run through the
//! sparse CPU layers, beside Burn's dense path: file sizes, accuracy, latency. The sparse
//! logits are checked against the checkpoint's own dense forward: a difference over
//! `--max-diff` (f32 values) ends the run with an error (CI runs it).
//!
//!     cargo run --release --example lenet                       # makes runs/lenet
//!     cargo run --release --example sparse_inference            # reads runs/lenet
//!     cargo run --release --example sparse_inference -- --run DIR --data-dir DIR --f16
//!     cargo run --release --example sparse_inference -- --inspect runs/lenet/model.sparse

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::{Tensor, TensorData};
use clap::Parser;
use sparse_data::{ImageSet, NormalizedImages, Split};
use sparse_export::{
    Inspection, SparseClassifier, SparseLeNet5, SparseLeNet300, ValueType, export, import, read,
};
use sparse_models::{ImageClassifier, LeNet5, LeNet300};

#[derive(Parser, Debug)]
#[command(about = "Export a pruned LeNet run to .sparse and compare sparse and dense inference")]
struct Args {
    /// A run directory of the lenet example (its config.json and checkpoint/model.bpk).
    #[arg(long, default_value = "runs/lenet")]
    run: PathBuf,
    /// MNIST-format test data; the embedded Fashion-MNIST test subset if absent.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Store values as f16 (half the value bytes; not bit-exact: the check then compares the
    /// sparse logits with the dense forward of the imported f16 values).
    #[arg(long)]
    f16: bool,
    /// Largest logit difference accepted between the sparse model and the dense reference.
    #[arg(long, default_value_t = 1e-4)]
    max_diff: f32,
    /// Only print the table of an existing .sparse file.
    #[arg(long)]
    inspect: Option<PathBuf>,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(file) = &args.inspect {
        let tensors = read(file)?;
        let size = std::fs::metadata(file)?.len() as usize;
        // The file's value type is per tensor on disk; the table recomputes sizes as f32.
        println!("{}", Inspection::of(&tensors, ValueType::F32, size));
        return Ok(());
    }
    let config = args.run.join("config.json");
    let text = std::fs::read_to_string(&config).map_err(|e| {
        format!(
            "{}: {e} (run `cargo run --release --example lenet` first, or pass --run DIR)",
            config.display()
        )
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: not a config of the lenet example: {e}",
            config.display()
        )
    })?;
    match json["model"].as_str() {
        Some("lenet5") => compare(LeNet5::new, SparseLeNet5::new, &args),
        Some("lenet300") => compare(LeNet300::new, SparseLeNet300::new, &args),
        other => Err(format!(
            "{}: field `model` is {other:?}, expected lenet5 or lenet300",
            config.display()
        )
        .into()),
    }
}

fn compare<M: ImageClassifier, S: SparseClassifier>(
    init: fn(&burn::tensor::Device) -> M,
    sparse: fn(&[sparse_export::SparseTensor]) -> Result<S, sparse_export::ExportError>,
    args: &Args,
) -> Result<(), Box<dyn std::error::Error>> {
    // The test images first: another size than the models' 28x28 is refused, naming the
    // file, before anything is loaded or written.
    let test = match &args.data_dir {
        Some(d) => ImageSet::load_dir_sized(d, Split::Test, 28, 28)?,
        None => ImageSet::embedded(Split::Test),
    };
    let data = NormalizedImages::mnist_normalised(&test);
    let device = burn::tensor::Device::flex();
    let ckpt = args.run.join("checkpoint/model.bpk");
    let all = sparse_prune::Selection::All; // the examples prune every parameter
    let model = sparse_prune::load_masked(init(&device), &all, &ckpt)?;
    let plain = sparse_prune::fold(model.clone());

    // 1. Files: the masked checkpoint, a plain dense burnpack, the .sparse file.
    let dense_file = args.run.join("model-dense.bpk");
    plain.clone().save_file(&dense_file)?;
    let vt = if args.f16 {
        ValueType::F16
    } else {
        ValueType::F32
    };
    let file = args.run.join("model.sparse");
    let info = export(&model, &file, vt)?;
    println!("{info}\n");
    let size = |p: &PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    println!(
        "checkpoint with masks {} bytes | dense burnpack {} bytes | .sparse {} bytes ({:.1}x smaller than the burnpack)",
        size(&ckpt),
        size(&dense_file),
        size(&file),
        size(&dense_file) as f64 / size(&file).max(1) as f64
    );
    let back = import(init(&device), &file)?;
    let tensors = read(&file)?;
    let net = sparse(&tensors)?;

    // 2. Accuracy and agreement on the test set.
    let n = data.len();
    let idx: Vec<usize> = (0..n).collect();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    // The reference: the checkpoint's dense forward (masks folded in), or with f16 values the
    // dense forward of what the file holds.
    let reference = if args.f16 { &back } else { &model };
    let (mut right_dense, mut right_sparse) = (0usize, 0usize);
    let (mut worst, mut worst_original) = (0f32, 0f32);
    let forward = |m: &M, x: &[f32], b: usize| -> Result<Vec<f32>, Box<dyn std::error::Error>> {
        let t = Tensor::from_data(TensorData::new(x.to_vec(), [b, 1, 28, 28]), &device);
        Ok(m.logits(t).into_data().try_to_vec::<f32>()?)
    };
    let largest = |a: &[f32], b: &[f32], from: f32| {
        a.iter()
            .zip(b)
            .map(|(a, b)| (a - b).abs())
            .fold(from, |m, d| if d.is_nan() || d > m { d } else { m }) // NaN wins
    };
    for chunk in idx.chunks(100) {
        data.gather(chunk, &mut x, &mut y);
        let b = chunk.len();
        let dense = forward(reference, &x, b)?;
        let original = forward(&model, &x, b)?;
        let sp = net.logits(&x, b);
        for (i, label) in y.iter().enumerate() {
            let (d, s) = (&dense[i * 10..(i + 1) * 10], &sp[i * 10..(i + 1) * 10]);
            right_dense += (argmax(d) == *label as usize) as usize;
            right_sparse += (argmax(s) == *label as usize) as usize;
        }
        worst = largest(&dense, &sp, worst);
        worst_original = largest(&original, &sp, worst_original);
    }
    println!(
        "test accuracy: dense Burn {:.2} %, sparse {:.2} % ({n} images)",
        100.0 * right_dense as f64 / n as f64,
        100.0 * right_sparse as f64 / n as f64
    );
    println!(
        "largest logit difference, sparse against the checkpoint's dense forward: \
         {worst_original:.3e}{}",
        if args.f16 {
            format!(" (f16 values); against the dense forward of the f16 file: {worst:.3e}")
        } else {
            String::new()
        }
    );
    if worst.is_nan() || worst > args.max_diff {
        return Err(format!(
            "the sparse model's logits differ from the dense reference by {worst:.3e}, more than \
             --max-diff {:.1e}",
            args.max_diff
        )
        .into());
    }

    // 3. Latency, batch 1 and batch 100 (median of repeated runs).
    for batch in [1usize, 100] {
        data.gather(&idx[..batch], &mut x, &mut y);
        let reps = if batch == 1 { 200 } else { 20 };
        let dense_ms = median_ms(reps, || {
            let t = Tensor::<4>::from_data(TensorData::new(x.clone(), [batch, 1, 28, 28]), &device);
            let _ = plain.logits(t).into_data();
        });
        let sparse_ms = median_ms(reps, || {
            std::hint::black_box(net.logits(&x, batch));
        });
        println!(
            "batch {batch:3}: dense Burn flex {dense_ms:.3} ms, sparse {sparse_ms:.3} ms ({:.1}x)",
            dense_ms / sparse_ms
        );
    }
    Ok(())
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_images_of_another_size_are_refused_before_any_file_is_written() {
        let tmp = std::env::temp_dir().join(format!("sparse-inference-{}", std::process::id()));
        let (data, run_dir) = (tmp.join("data"), tmp.join("run"));
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&run_dir).unwrap();
        std::fs::write(run_dir.join("config.json"), r#"{"model": "lenet5"}"#).unwrap();
        // The fault: 10 test images of 32x32 pixels (a reshape to 28x28 panicked after
        // model-dense.bpk and model.sparse were written).
        let header = |dims: &[u32]| {
            let mut b = vec![0, 0, 8, dims.len() as u8];
            dims.iter().for_each(|d| b.extend(d.to_be_bytes()));
            b
        };
        let mut images = header(&[10, 32, 32]);
        images.resize(images.len() + 10 * 32 * 32, 5);
        let mut labels = header(&[10]);
        labels.extend(0..10u8);
        let file = data.join("t10k-images-idx3-ubyte");
        std::fs::write(&file, images).unwrap();
        std::fs::write(data.join("t10k-labels-idx1-ubyte"), labels).unwrap();
        let args = Args::parse_from([
            "sparse_inference",
            "--run",
            run_dir.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ]);
        let err = run(args).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: images of 32x32 pixels: expected 28x28 (the size the model takes)",
                file.display()
            )
        );
        let written: Vec<_> = std::fs::read_dir(&run_dir).unwrap().collect();
        assert_eq!(written.len(), 1, "only config.json: nothing written");
        std::fs::remove_dir_all(&tmp).ok();
    }
}
