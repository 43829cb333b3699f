//! MNIST-format image sets (MNIST, Fashion-MNIST): loading, the embedded subset, splits.

use std::path::{Path, PathBuf};

use crate::shuffle::validation_indices;
use crate::{DataError, IdxArray, parse_idx, read_idx};

/// Which half of an MNIST-format data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The training files (`train-*`).
    Train,
    /// The test files (`t10k-*`).
    Test,
}

impl Split {
    fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// Grey-scale images with labels, row-major `u8` pixels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSet {
    /// `len * rows * cols` pixels.
    pub pixels: Vec<u8>,
    /// One label per image, `< 10`.
    pub labels: Vec<u8>,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
}

/// Where the Debian package `dataset-fashion-mnist` installs the full Fashion-MNIST.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

const EMBEDDED_TRAIN_IMAGES: &[u8] = include_bytes!("../data/train-images-idx3-ubyte.gz");
const EMBEDDED_TRAIN_LABELS: &[u8] = include_bytes!("../data/train-labels-idx1-ubyte.gz");
const EMBEDDED_TEST_IMAGES: &[u8] = include_bytes!("../data/t10k-images-idx3-ubyte.gz");
const EMBEDDED_TEST_LABELS: &[u8] = include_bytes!("../data/t10k-labels-idx1-ubyte.gz");

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image.
    pub fn image_size(&self) -> usize {
        self.rows * self.cols
    }

    /// Load `split` from `dir`, which holds `train-images-idx3-ubyte[.gz]`,
    /// `train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`.
    pub fn load_dir(dir: impl AsRef<Path>, split: Split) -> Result<Self, DataError> {
        let dir = dir.as_ref();
        let images = find(dir, &format!("{}-images-idx3-ubyte", split.prefix()))?;
        let labels = find(dir, &format!("{}-labels-idx1-ubyte", split.prefix()))?;
        Self::from_idx(&images, read_idx(&images)?, &labels, read_idx(&labels)?)
    }

    /// [`load_dir`](Self::load_dir), refusing images that are not `rows x cols` pixels (the
    /// size the model takes: a mismatch would only show up as a tensor of the wrong shape) or
    /// a split with no image, naming the images file.
    ///
    /// ```
    /// use sparse_data::{ImageSet, Split};
    /// let dir = std::env::temp_dir().join(format!("idx-sized-doc-{}", std::process::id()));
    /// assert!(ImageSet::load_dir_sized(&dir, Split::Test, 28, 28).is_err()); // no files
    /// ```
    pub fn load_dir_sized(
        dir: impl AsRef<Path>,
        split: Split,
        rows: usize,
        cols: usize,
    ) -> Result<Self, DataError> {
        let dir = dir.as_ref();
        let set = Self::load_dir(dir, split)?;
        let images = find(dir, &format!("{}-images-idx3-ubyte", split.prefix()))?;
        if (set.rows, set.cols) != (rows, cols) {
            return Err(DataError::new(
                images,
                format!(
                    "images of {}x{} pixels: expected {rows}x{cols} (the size the model takes)",
                    set.rows, set.cols
                ),
            ));
        }
        if set.is_empty() {
            return Err(DataError::new(
                images,
                "no images: expected at least one".to_string(),
            ));
        }
        Ok(set)
    }

    /// The embedded subset of Fashion-MNIST (MIT licence, (c) Zalando SE): the first 6,000
    /// training and the first 1,000 test images, for runs with no data installed.
    ///
    /// ```
    /// use sparse_data::{ImageSet, Split};
    /// let test = ImageSet::embedded(Split::Test);
    /// assert_eq!(test.len(), 1000);
    /// assert_eq!((test.rows, test.cols), (28, 28));
    /// ```
    pub fn embedded(split: Split) -> Self {
        let (images, labels) = match split {
            Split::Train => (EMBEDDED_TRAIN_IMAGES, EMBEDDED_TRAIN_LABELS),
            Split::Test => (EMBEDDED_TEST_IMAGES, EMBEDDED_TEST_LABELS),
        };
        let (ip, lp) = (
            Path::new("<embedded images>"),
            Path::new("<embedded labels>"),
        );
        let parsed =
            parse_idx(ip, images).and_then(|i| Self::from_idx(ip, i, lp, parse_idx(lp, labels)?));
        parsed.expect("the embedded subset is valid (checked by the tests)")
    }

    /// Check and combine an images array `[n, rows, cols]` and a labels array `[n]`.
    pub fn from_idx(
        images_path: &Path,
        images: IdxArray,
        labels_path: &Path,
        labels: IdxArray,
    ) -> Result<Self, DataError> {
        let [n, rows, cols] = images.dims[..] else {
            return Err(DataError::new(
                images_path,
                format!(
                    "expected images with 3 dimensions [count, rows, cols], found {:?}",
                    images.dims
                ),
            ));
        };
        let [m] = labels.dims[..] else {
            return Err(DataError::new(
                labels_path,
                format!(
                    "expected labels with 1 dimension [count], found {:?}",
                    labels.dims
                ),
            ));
        };
        if n != m {
            return Err(DataError::new(
                labels_path,
                format!(
                    "{m} labels for {n} images in {}: expected one label per image",
                    images_path.display()
                ),
            ));
        }
        if let Some(i) = labels.data.iter().position(|l| *l > 9) {
            return Err(DataError::new(
                labels_path,
                format!(
                    "label {} of image {i} is out of range: expected a class in 0..=9",
                    labels.data[i]
                ),
            ));
        }
        Ok(Self {
            pixels: images.data,
            labels: labels.data,
            rows,
            cols,
        })
    }

    /// Split off a seeded random validation set of `n_val` images (never the test set).
    /// Returns `(train, validation)`.
    pub fn split_validation(self, n_val: usize, seed: u64) -> Result<(Self, Self), DataError> {
        let (train_idx, val_idx) = validation_indices(self.len(), n_val, seed)?;
        Ok((self.subset(&train_idx), self.subset(&val_idx)))
    }

    fn subset(&self, idx: &[usize]) -> Self {
        let s = self.image_size();
        Self {
            pixels: idx
                .iter()
                .flat_map(|i| self.pixels[i * s..(i + 1) * s].iter().copied())
                .collect(),
            labels: idx.iter().map(|i| self.labels[*i]).collect(),
            rows: self.rows,
            cols: self.cols,
        }
    }
}

fn find(dir: &Path, stem: &str) -> Result<PathBuf, DataError> {
    for name in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(DataError::new(
        dir,
        format!(
            "no {stem}.gz (or {stem}) here: expected the MNIST-format files; for Fashion-MNIST \
             on Debian `apt install dataset-fashion-mnist` puts them in {DEBIAN_FASHION_MNIST}"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IDX files of `n` images of `rows x cols` (and `n` labels) for `split` in `dir`.
    fn write_idx(dir: &Path, split: Split, n: u32, rows: u32, cols: u32) {
        let header = |dims: &[u32]| {
            let mut b = vec![0, 0, 8, dims.len() as u8];
            dims.iter().for_each(|d| b.extend(d.to_be_bytes()));
            b
        };
        let mut images = header(&[n, rows, cols]);
        images.resize(images.len() + (n * rows * cols) as usize, 7);
        let mut labels = header(&[n]);
        labels.resize(labels.len() + n as usize, 3);
        let p = split.prefix();
        std::fs::write(dir.join(format!("{p}-images-idx3-ubyte")), images).unwrap();
        std::fs::write(dir.join(format!("{p}-labels-idx1-ubyte")), labels).unwrap();
    }

    #[test]
    fn images_of_another_size_or_none_are_refused_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("idx-sized-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("train-images-idx3-ubyte");
        // The fault: 32x32 images where the model takes 28x28.
        write_idx(&dir, Split::Train, 3, 32, 32);
        let err = ImageSet::load_dir_sized(&dir, Split::Train, 28, 28).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: images of 32x32 pixels: expected 28x28 (the size the model takes)",
                file.display()
            )
        );
        // A file of no image.
        write_idx(&dir, Split::Train, 0, 28, 28);
        let err = ImageSet::load_dir_sized(&dir, Split::Train, 28, 28).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: no images: expected at least one", file.display())
        );
        write_idx(&dir, Split::Train, 2, 28, 28);
        let set = ImageSet::load_dir_sized(&dir, Split::Train, 28, 28).unwrap();
        assert_eq!((set.len(), set.rows, set.cols), (2, 28, 28));
        std::fs::remove_dir_all(&dir).ok();
    }
}
