//! # sparse-data
//!
//! Data for the sparse-burn examples: the IDX format of MNIST and Fashion-MNIST (raw or
//! gzip), CIFAR-10's binary version (with its augmentation and a pure-Rust download), an embedded 6,000 + 1,000 image subset of Fashion-MNIST so examples run on a fresh
//! machine, and seeded validation splits taken from the training set. Every bad input gives an
//! error naming the file and what was expected.
#![warn(missing_docs)]

mod batches;
mod cifar;
mod cifar_batches;
mod cifar_download;
mod download;
mod error;
mod idx;
mod image_folder;
mod images;
mod sha256;
mod shuffle;
mod tar;
mod text;

pub use batches::NormalizedImages;
pub use cifar::{
    CIFAR_IMAGE_BYTES, CIFAR_RECORD_BYTES, CIFAR10_FILES, CIFAR10_SUBDIR, CifarSet, cifar_dir,
};
pub use cifar_batches::{CIFAR10_MEAN, CIFAR10_STD, CifarBatches};
pub use cifar_download::{CIFAR10, CifarSource, download_cifar};
pub use download::{Checksum, FASHION_MNIST, MNIST, Source, download, http_get};
pub use error::DataError;
pub use image_folder::{IMAGE_FOLDER_CACHE, ImageFolder};
pub use idx::{IdxArray, MAX_BYTES, parse_idx, read_idx};
pub use images::{DEBIAN_FASHION_MNIST, ImageSet, Split};
pub use sha256::sha256_hex;
pub use shuffle::epoch_order;
pub use text::{CharTokenizer, SHAKESPEARE, TextCorpus, TextSplit};
