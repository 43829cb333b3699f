//! Export -> import is exact, sparse inference gives the dense model's outputs, and files that
//! do not fit the model are refused by name.

use crate::common;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use sparse_export::{
    SparseClassifier, SparseLeNet5, SparseLeNet300, ValueType, export, import, read, sparse_tensors,
};
use sparse_models::{ImageClassifier, LeNet5, LeNet300};
use sparse_prune::{Amount, Floor, PruneSchedule, PrunerConfig};

fn pruned<M: Module>(model: M, sparsity: f64) -> M {
    let mut pruner = PrunerConfig::new(PruneSchedule::Gated {
        every: 1,
        fraction: 0.5,
        floor: Floor::AtLeast(0.0),
    })
    .init()
    .unwrap();
    let model = pruner.attach(model).unwrap();
    pruner
        .prune(model, 1, Amount::Sparsity(sparsity), None)
        .unwrap()
        .0
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "sparse-export-{name}-{}.sparse",
        std::process::id()
    ))
}

/// Deterministic images.
fn images(n: usize) -> Vec<f32> {
    common::inputs(n * 784)
}

#[test]
fn lenet300_round_trip_is_bit_exact_and_small() {
    let device = Device::flex();
    let model = pruned(LeNet300::new(&device), 0.99);
    let file = tmp("lenet300");
    let info = export(&model, &file, ValueType::F32).unwrap();
    // 99 % sparse: the file is far below dense f32.
    assert!(info.file_bytes * 50 <= info.dense_f32_bytes(), "{info}");
    let back = import(LeNet300::new(&device), &file).unwrap();
    assert_eq!(sparse_tensors(&back), sparse_tensors(&model));
    let x = Tensor::<4>::from_data(TensorData::new(images(5), [5, 1, 28, 28]), &device);
    let (a, b) = (model.forward(x.clone()), back.forward(x));
    assert_eq!(
        a.into_data().try_to_vec::<f32>().unwrap(),
        b.into_data().try_to_vec::<f32>().unwrap()
    );
    std::fs::remove_file(&file).ok();
}

/// Largest |difference| between the sparse network's logits and the dense Burn model's.
fn max_diff<M: ImageClassifier>(model: &M, net: &dyn SparseClassifier, batch: usize) -> f32 {
    let x = images(batch);
    let got = net.logits(&x, batch);
    let device = Device::flex();
    let want = model
        .logits(Tensor::from_data(
            TensorData::new(x, [batch, 1, 28, 28]),
            &device,
        ))
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    common::max_abs_diff(&got, &want)
}

#[test]
fn sparse_lenet300_matches_the_dense_model() {
    let model = pruned(LeNet300::new(&Device::flex()), 0.95);
    let net = SparseLeNet300::new(&sparse_tensors(&model)).unwrap();
    for batch in [1, 7] {
        let diff = max_diff(&model, &net, batch);
        assert!(diff <= 1e-5, "batch {batch}: max difference {diff}");
    }
}

#[test]
fn sparse_lenet5_matches_the_dense_model() {
    let model = pruned(LeNet5::new(&Device::flex()), 0.9);
    let net = SparseLeNet5::new(&sparse_tensors(&model)).unwrap();
    for batch in [1, 3] {
        let diff = max_diff(&model, &net, batch);
        assert!(diff <= 1e-5, "batch {batch}: max difference {diff}");
    }
}

#[test]
fn a_file_of_another_model_is_refused_by_name() {
    let device = Device::flex();
    let file = tmp("other");
    export(&LeNet5::new(&device), &file, ValueType::F16).unwrap();
    let err = import(LeNet300::new(&device), &file).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: fc1.weight: shape [800, 500] in the file, [784, 300] in the model",
            file.display()
        )
    );
    assert_eq!(read(&file).unwrap().len(), 8);
    let missing = tmp("missing");
    let err = import(LeNet300::new(&device), &missing).unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
    std::fs::remove_file(&file).ok();
}
