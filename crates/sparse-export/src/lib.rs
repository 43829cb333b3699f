//! # sparse-export
//!
//! Real compression for pruned Burn models: [`export`] writes a `.sparse` file that keeps only
//! the surviving weights, [`import`] puts it back into the Burn module exactly, and the sparse
//! CPU layers run the file's network at a cost that follows the number of surviving weights,
//! with no Burn device. LeNet-300-100 pruned to 95 % is a 59 KB file in f32 (33 KB in f16),
//! 18x smaller than its Burn checkpoint.
//!
//! ```
//! use burn::tensor::Device;
//! use sparse_export::{SparseClassifier, SparseLeNet300, ValueType, export, import, read};
//! use sparse_models::LeNet300;
//! use sparse_prune::{Amount, PruneSchedule, PrunerConfig};
//!
//! // A LeNet-300-100 with 95 % of its weights pruned (in practice: a model trained sparse).
//! let device = Device::flex();
//! let mut pruner = PrunerConfig::new(PruneSchedule::OneShot { at: 1, sparsity: 0.95 }).init()?;
//! let model = pruner.attach(LeNet300::new(&device))?;
//! let (model, _) = pruner.prune(model, 1, Amount::Sparsity(0.95), None)?;
//!
//! // The file: masks folded in, the surviving weights only.
//! let file = std::env::temp_dir().join(format!("lib-doc-{}.sparse", std::process::id()));
//! let info = export(&model, &file, ValueType::F32)?;
//! println!("{info}"); // per tensor: shape, entries, non-zeros, encoding, bytes
//! assert!(info.file_bytes * 10 < info.dense_f32_bytes());
//!
//! // Sparse inference on the CPU, from the file alone: two images in, two rows of logits out.
//! let net = SparseLeNet300::new(&read(&file)?)?;
//! assert_eq!(net.logits(&[0.0; 2 * 784], 2).len(), 2 * 10);
//!
//! // Or back into the Burn module (with f32 values, bit for bit).
//! let back = import(LeNet300::new(&device), &file)?;
//! # std::fs::remove_file(&file).ok();
//! # let _ = back;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Sparse inference pays off from about 90 % sparsity (fully connected layers at batch 1 most);
//! below about 80 % the file is still smaller but the dense model is as fast. The workspace's
//! `docs/GUIDE.md` and `docs/BENCHMARKS.md` have the measurements.
//!
//! ## The main items
//!
//! - From and to Burn (feature `burn`, on by default): [`export`], [`import`], [`read`], and
//!   [`sparse_tensors`] (a module's parameters, masks folded in, as [`SparseTensor`]s).
//! - The format: [`encode`] / [`decode`] a list of [`SparseTensor`]s. A versioned file
//!   ([`MAGIC`], [`VERSION`]) stores per tensor the smallest [`Encoding`] (dense, bitmask or
//!   delta-coded indices), values as a [`ValueType`] (f32, f16 or bf16) and a CRC-32; a bad
//!   file is an [`ExportError`] naming the file and tensor. [`Inspection`] is the per-tensor
//!   table ([`InspectRow`]) and the sizes against dense f32.
//! - Sparse CPU layers on `f32` slices: [`SparseLinear`] and [`SparseConv2d`] (compressed rows
//!   over the outputs; a layer more than a quarter non-zero keeps a dense kernel), with
//!   [`max_pool2`] and [`relu`]; a large batch is split over [`threads`] cores. The networks of
//!   `sparse-models`: [`SparseLeNet300`] and [`SparseLeNet5`], both [`SparseClassifier`]s.
//!
//! Without the default `burn` feature the crate is the format and the sparse layers alone, with
//! no Burn in the build.
#![warn(missing_docs)]

mod error;
mod format;
mod infer;
mod inspect;
mod lenet;
#[cfg(feature = "burn")]
mod model;

pub use error::ExportError;
pub use format::{Encoding, MAGIC, MAX_NUMEL, SparseTensor, VERSION, ValueType, decode, encode};
pub use infer::{SparseConv2d, SparseLinear, max_pool2, relu, threads};
pub use inspect::{InspectRow, Inspection};
pub use lenet::{SparseClassifier, SparseLeNet5, SparseLeNet300};
#[cfg(feature = "burn")]
pub use model::{export, import, read, sparse_tensors};
