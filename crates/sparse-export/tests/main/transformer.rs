//! The Transformer language model's linear layers (attention query/key/value/output and the
//! feed-forward) run sparse from a pruned model and give the dense Burn layers' outputs; the
//! whole pruned model round-trips through a `.sparse` file bit for bit.

use crate::common;

use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use sparse_export::{SparseLinear, SparseTensor, ValueType, export, import, sparse_tensors};
use sparse_models::{TransformerLm, TransformerLmConfig};
use sparse_prune::{Amount, Floor, PruneSchedule, PrunerConfig};

fn config() -> TransformerLmConfig {
    TransformerLmConfig::new(40)
        .with_d_model(32)
        .with_layers(2)
        .with_heads(4)
        .with_context(16)
}

/// The model with 90 % of all its weights (embeddings, attention, feed-forward, LayerNorm,
/// biases) removed by one global magnitude ranking, masks folded in.
fn pruned(device: &Device) -> TransformerLm {
    let mut pruner = PrunerConfig::new(PruneSchedule::Gated {
        every: 1,
        fraction: 0.5,
        floor: Floor::AtLeast(0.0),
    })
    .init()
    .unwrap();
    let model = pruner.attach(config().init(device).unwrap()).unwrap();
    let model = pruner
        .prune(model, 1, Amount::Sparsity(0.9), None)
        .unwrap()
        .0;
    sparse_prune::fold(model)
}

/// Largest |sparse - dense| over a deterministic `[rows, inputs]` input.
fn max_diff(dense: &Linear, sparse: &SparseLinear, rows: usize, device: &Device) -> f32 {
    let x = common::inputs(rows * sparse.inputs());
    let want = dense
        .forward(Tensor::<2>::from_data(
            TensorData::new(x.clone(), [rows, sparse.inputs()]),
            device,
        ))
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let mut got = Vec::new();
    sparse.forward(&x, rows, &mut got);
    common::max_abs_diff(&got, &want)
}

#[test]
fn every_linear_layer_of_a_pruned_transformer_runs_sparse_with_the_dense_outputs() {
    let device = Device::flex();
    let model = pruned(&device);
    let tensors: Vec<SparseTensor> = sparse_tensors(&model);
    let mut checked = 0;
    for (b, block) in model.blocks.iter().enumerate() {
        let layers = [
            ("attn.query", &block.attn.query),
            ("attn.key", &block.attn.key),
            ("attn.value", &block.attn.value),
            ("attn.output", &block.attn.output),
            ("ff_in", &block.ff_in),
            ("ff_out", &block.ff_out),
        ];
        for (name, dense) in layers {
            let path = format!("blocks.{b}.{name}");
            let sparse = SparseLinear::from_tensors(&tensors, &path).unwrap();
            // The layer really is sparse: most of its weights are gone.
            let w = tensors
                .iter()
                .find(|t| t.path == format!("{path}.weight"))
                .unwrap();
            assert!(
                w.values.len() * 2 < w.numel(),
                "{path}: {} of {}",
                w.values.len(),
                w.numel()
            );
            let diff = max_diff(dense, &sparse, 7, &device);
            assert!(diff <= 1e-5, "{path}: max |sparse - dense| = {diff}");
            checked += 1;
        }
    }
    assert_eq!(checked, 12);
}

#[test]
fn a_pruned_transformer_round_trips_through_a_sparse_file_bit_for_bit() {
    let device = Device::flex();
    let model = pruned(&device);
    let file = std::env::temp_dir().join(format!("sparse-export-lm-{}.sparse", std::process::id()));
    let info = export(&model, &file, ValueType::F32).unwrap();
    // 90 % sparse: far below the dense f32 size, tied embedding stored once.
    assert!(info.file_bytes * 4 <= info.dense_f32_bytes(), "{info}");
    let back = import(config().init(&device).unwrap(), &file).unwrap();
    std::fs::remove_file(&file).ok();
    assert_eq!(sparse_tensors(&back), sparse_tensors(&model));
    let tokens = Tensor::<2, burn::tensor::Int>::from_data(
        TensorData::new((0..2 * 16).map(|i| (i * 7 % 40) as i64).collect(), [2, 16]),
        &device,
    );
    let (a, b) = (model.forward(tokens.clone()), back.forward(tokens));
    assert_eq!(
        a.into_data().try_to_vec::<f32>().unwrap(),
        b.into_data().try_to_vec::<f32>().unwrap()
    );
}
