//! # sparse-data
//!
//! The data sets of the sparse-burn examples, read into plain host vectors that any training
//! loop can turn into tensors: MNIST-format images (with an embedded 6,000 + 1,000 image subset
//! of Fashion-MNIST, so that a program runs on a fresh machine with no download), CIFAR-10,
//! folders of your own images, and character-level text. Splits and epoch orders are seeded,
//! the same on every machine, and every bad input gives an error naming the file and what was
//! expected.
//!
//! ```
//! use sparse_data::{ImageSet, NormalizedImages, Split, TextCorpus, epoch_order};
//!
//! // Fashion-MNIST's embedded subset (or `ImageSet::load_dir(dir, Split::Train)` for IDX files),
//! // with a seeded validation set taken from the training images, never from the test set.
//! let (train, valid) = ImageSet::embedded(Split::Train).split_validation(1_000, 7)?;
//! assert_eq!((train.len(), valid.len(), train.rows, train.cols), (5_000, 1_000, 28, 28));
//!
//! // One batch of 100 normalised images in the first epoch's seeded order.
//! let train = NormalizedImages::mnist_normalised(&train);
//! let order = epoch_order(train.len(), 0);
//! let (mut x, mut y) = (Vec::new(), Vec::new());
//! train.gather(&order[..100], &mut x, &mut y);
//! assert_eq!((x.len(), y.len()), (100 * 28 * 28, 100)); // `[100, 1, 28, 28]` pixels, labels
//!
//! // Text for a language model: four Shakespeare plays, 4 windows of 65 characters.
//! let corpus = TextCorpus::shakespeare();
//! let (text_train, _text_valid) = corpus.split(0.1, 1024, 7).unwrap();
//! let windows = text_train.windows(4, 65, 0).unwrap();
//! assert_eq!(windows.len(), 4 * 65);
//! assert_eq!(corpus.tokenizer().decode(&windows[..65]).chars().count(), 65);
//! # Ok::<(), sparse_data::DataError>(())
//! ```
//!
//! The batches are `Vec<f32>` pixels and `Vec<i64>` labels: with Burn,
//! `Tensor::from_data(TensorData::new(x, [100, 1, 28, 28]), &device)`.
//!
//! ## The main items
//!
//! - Images in the IDX format of MNIST and Fashion-MNIST: [`ImageSet`] ([`ImageSet::embedded`],
//!   [`ImageSet::load_dir`], [`ImageSet::split_validation`]), normalised and gathered into
//!   batches by [`NormalizedImages`]; [`read_idx`] / [`parse_idx`] read one IDX file (raw or
//!   gzip) as an [`IdxArray`]. [`download`] fetches [`FASHION_MNIST`] or [`MNIST`] and checks
//!   every file's SHA-256; [`DEBIAN_FASHION_MNIST`] is where Debian's package installs it.
//! - CIFAR-10: [`CifarSet`] reads the binary version (`cifar-10-batches-bin`), [`download_cifar`]
//!   fetches and unpacks [`CIFAR10`] in pure Rust, and [`CifarBatches`] gathers batches
//!   normalised with [`CIFAR10_MEAN`] / [`CIFAR10_STD`], with the standard augmentation (random
//!   crop of the padded image, horizontal flip).
//! - Your own images: [`ImageFolder`] loads `DIR/<class>/*.jpg|*.jpeg|*.png` (labels from the
//!   sorted class folders), decodes them once and caches the pixels in `DIR/.sparse-data-cache`
//!   ([`IMAGE_FOLDER_CACHE`]); [`ImageFolder::into_cifar`] turns 32x32 images into a
//!   [`CifarSet`].
//! - Text: [`TextCorpus`] (a UTF-8 file, or the embedded [`SHAKESPEARE`]) with its
//!   [`CharTokenizer`] (characters, then a byte fallback: any text round-trips), split by
//!   contiguous blocks into [`TextSplit`]s that draw random training windows.
//! - [`epoch_order`]: the seeded shuffle of one epoch, so that a resumed run replays the
//!   batches an uninterrupted one would have seen.
//! - [`DataError`]: the file concerned and what was expected there.
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
mod shuffle;
mod tar;
mod text;

pub use batches::NormalizedImages;
pub use cifar::{
    CIFAR_IMAGE_BYTES, CIFAR_RECORD_BYTES, CIFAR10_FILES, CIFAR10_SUBDIR, CifarSet, cifar_dir,
};
pub use cifar_batches::{CIFAR10_MEAN, CIFAR10_STD, CifarBatches};
pub use cifar_download::{CIFAR10, CifarSource, download_cifar};
pub use download::{Checksum, FASHION_MNIST, Http, MNIST, Source, download, http_get, sha256_hex};
pub use error::DataError;
pub use idx::{IdxArray, MAX_BYTES, parse_idx, read_idx};
pub use image_folder::{IMAGE_FOLDER_CACHE, ImageFolder};
pub use images::{DEBIAN_FASHION_MNIST, ImageSet, Split};
pub use shuffle::epoch_order;
pub use text::{CharTokenizer, SHAKESPEARE, TextCorpus, TextSplit};
