//! # sparse-export
//!
//! Real compression for pruned Burn models: a versioned `.sparse` file that stores only the
//! surviving weights (per tensor the smallest of dense, bitmask or delta-coded indices, values
//! in f32, f16 or bf16, a CRC-32 per tensor), exact import back into the Burn module, and
//! sparse CPU layers whose cost follows the number of surviving weights.
//!
//! Without the default `burn` feature the crate is the format and the sparse layers alone.
//!
//! ```
//! use burn::nn::LinearConfig;
//! use burn::tensor::Device;
//! use sparse_export::{ValueType, export, import, read};
//! let device = Device::flex();
//! let layer = LinearConfig::new(16, 8).init(&device);
//! let file = std::env::temp_dir().join(format!("lib-doc-{}.sparse", std::process::id()));
//! let info = export(&layer, &file, ValueType::F32).unwrap();
//! println!("{info}"); // the per-tensor table
//! let tensors = read(&file).unwrap();
//! assert_eq!(tensors[0].path, "weight");
//! let back = import(LinearConfig::new(16, 8).init(&device), &file).unwrap();
//! # std::fs::remove_file(&file).ok();
//! # let _ = back;
//! ```
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
