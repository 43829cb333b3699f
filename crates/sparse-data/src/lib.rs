//! # sparse-data
//!
//! Data for the sparse-burn examples: the IDX format of MNIST and Fashion-MNIST (raw or
//! gzip), an embedded 6,000 + 1,000 image subset of Fashion-MNIST so examples run on a fresh
//! machine, and seeded validation splits taken from the training set. Every bad input gives an
//! error naming the file and what was expected.
#![warn(missing_docs)]

mod batches;
mod download;
mod error;
mod idx;
mod images;
mod sha256;

pub use batches::NormalizedImages;
pub use download::{Checksum, FASHION_MNIST, MNIST, Source, download, http_get};
pub use error::DataError;
pub use idx::{IdxArray, MAX_BYTES, parse_idx, read_idx};
pub use images::{DEBIAN_FASHION_MNIST, ImageSet, Split};
pub use sha256::sha256_hex;
