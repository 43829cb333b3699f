//! CIFAR-10, binary version: `data_batch_1.bin` .. `data_batch_5.bin` and `test_batch.bin`,
//! each a sequence of 3,073-byte records (1 label byte, then 1,024 red, 1,024 green and 1,024
//! blue pixel bytes, rows of 32).

use std::path::{Path, PathBuf};

use crate::shuffle::validation_indices;
use crate::{DataError, Split};

/// Pixel bytes of one image (3 x 32 x 32, channel-major).
pub const CIFAR_IMAGE_BYTES: usize = 3 * 32 * 32;
/// Bytes of one record: the label, then the image.
pub const CIFAR_RECORD_BYTES: usize = 1 + CIFAR_IMAGE_BYTES;
/// Where the official archive unpacks its files.
pub const CIFAR10_SUBDIR: &str = "cifar-10-batches-bin";

const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
const TEST_FILE: &str = "test_batch.bin";

/// Every file of the binary version, training batches first.
pub const CIFAR10_FILES: [&str; 6] = [
    TRAIN_FILES[0],
    TRAIN_FILES[1],
    TRAIN_FILES[2],
    TRAIN_FILES[3],
    TRAIN_FILES[4],
    TEST_FILE,
];

/// How to get the data, said by every "missing file" error.
const HOW_TO_GET: &str = "expected CIFAR-10's binary version: pass --download, or fetch \
     https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz, unpack it (tar xzf) and pass the \
     directory with --data-dir";

/// RGB 32x32 images with labels (0-9), as stored by CIFAR-10's binary version.
///
/// ```
/// use sparse_data::{CIFAR_RECORD_BYTES, CifarSet};
/// let mut file = vec![3u8];
/// file.extend([128u8; 3072]);
/// let set = CifarSet::parse("one.bin", &file).unwrap();
/// assert_eq!((set.len(), set.labels[0]), (1, 3));
/// assert_eq!(file.len(), CIFAR_RECORD_BYTES);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CifarSet {
    /// `len * 3072` pixel bytes, channel-major per image.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
}

impl CifarSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Parse the bytes of one batch file (`path` names it in errors).
    pub fn parse(path: impl AsRef<Path>, bytes: &[u8]) -> Result<Self, DataError> {
        let path = path.as_ref();
        if bytes.is_empty() {
            return Err(DataError::new(
                path,
                "empty file: expected records of 3073 bytes",
            ));
        }
        if !bytes.len().is_multiple_of(CIFAR_RECORD_BYTES) {
            return Err(DataError::new(
                path,
                format!(
                    "{} bytes is not a whole number of 3073-byte records (1 label + 3072 pixels): \
                     truncated, or not CIFAR-10's binary version",
                    bytes.len()
                ),
            ));
        }
        let n = bytes.len() / CIFAR_RECORD_BYTES;
        let mut set = Self {
            pixels: Vec::with_capacity(n * CIFAR_IMAGE_BYTES),
            labels: Vec::with_capacity(n),
        };
        for (i, record) in bytes.chunks_exact(CIFAR_RECORD_BYTES).enumerate() {
            if record[0] >= 10 {
                return Err(DataError::new(
                    path,
                    format!(
                        "record {i}: label {}, expected 0-9 (CIFAR-100's files have two label \
                         bytes and are not supported)",
                        record[0]
                    ),
                ));
            }
            set.labels.push(record[0]);
            set.pixels.extend(&record[1..]);
        }
        Ok(set)
    }

    /// Read one batch file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| {
            DataError::new(
                path,
                if e.kind() == std::io::ErrorKind::NotFound {
                    format!("missing: {HOW_TO_GET}")
                } else {
                    format!("cannot read the file: {e}")
                },
            )
        })?;
        Self::parse(path, &bytes)
    }

    /// The training (5 batches) or test files in `dir`, or in its `cifar-10-batches-bin/`.
    /// The training files hold as many records each (CIFAR-10's 10,000; the generated ones
    /// [`write_synthetic`](Self::write_synthetic)'s count): one holding fewer, cut short at a
    /// record boundary, is refused by name.
    pub fn load_dir(dir: impl AsRef<Path>, split: Split) -> Result<Self, DataError> {
        let dir = cifar_dir(dir.as_ref());
        let files: &[&str] = match split {
            Split::Train => &TRAIN_FILES,
            Split::Test => &[TEST_FILE],
        };
        let mut set = Self {
            pixels: vec![],
            labels: vec![],
        };
        let mut counts = vec![];
        for name in files {
            let part = Self::read(dir.join(name))?;
            counts.push(part.len());
            set.pixels.extend(part.pixels);
            set.labels.extend(part.labels);
        }
        let most = counts.iter().copied().max().unwrap_or(0);
        if let Some(i) = counts.iter().position(|&n| n < most) {
            let fullest = files[counts.iter().position(|&n| n == most).unwrap_or(0)];
            return Err(DataError::new(
                dir.join(files[i]),
                format!(
                    "{} records, fewer than the {most} of {fullest}: the training files hold \
                     as many each (CIFAR-10's 10,000): this one is cut short at a record \
                     boundary, or comes from another set",
                    counts[i]
                ),
            ));
        }
        Ok(set)
    }

    /// Split off a seeded random validation set of `n_val` images (never the test set).
    /// Returns `(train, validation)`.
    pub fn split_validation(self, n_val: usize, seed: u64) -> Result<(Self, Self), DataError> {
        let (train, val) = validation_indices(self.len(), n_val, seed)?;
        Ok((self.subset(&train), self.subset(&val)))
    }

    fn subset(&self, idx: &[usize]) -> Self {
        let s = CIFAR_IMAGE_BYTES;
        Self {
            pixels: idx
                .iter()
                .flat_map(|i| self.pixels[i * s..(i + 1) * s].iter().copied())
                .collect(),
            labels: idx.iter().map(|i| self.labels[*i]).collect(),
        }
    }

    /// The records of this set, in CIFAR-10's binary format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() * CIFAR_RECORD_BYTES);
        for (label, image) in self
            .labels
            .iter()
            .zip(self.pixels.chunks_exact(CIFAR_IMAGE_BYTES))
        {
            out.push(*label);
            out.extend(image);
        }
        out
    }

    /// A generated, learnable CIFAR-shaped set (for tests, CI and benchmarks: the real data
    /// cannot be downloaded everywhere): each class has its own colour and stripe frequency,
    /// drawn at a random phase, plus noise.
    pub fn synthetic(n: usize, seed: u64) -> Self {
        let mut state = seed ^ 0x5EED_C1FA;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        let mut set = Self {
            pixels: Vec::with_capacity(n * CIFAR_IMAGE_BYTES),
            labels: Vec::with_capacity(n),
        };
        for _ in 0..n {
            let class = next() % 10;
            let phase = (next() % 32) as f32;
            for c in 0..3u32 {
                let tint = 60.0 + 40.0 * ((class * (c + 2)) % 5) as f32;
                for row in 0..32 {
                    for col in 0..32 {
                        let along = if class < 5 { row } else { col } as f32;
                        let wave = (along * (1.0 + (class % 5) as f32) * 0.35 + phase).sin();
                        let noise = (next() % 61) as f32 - 30.0;
                        let v = tint + 50.0 * wave + noise;
                        set.pixels.push(v.clamp(0.0, 255.0) as u8);
                    }
                }
            }
            set.labels.push(class as u8);
        }
        set
    }

    /// Write a generated data set ([`CifarSet::synthetic`]) as the six files of CIFAR-10's
    /// binary version into `dir`: `train_per_file` images in each training batch and `test`
    /// in the test batch.
    pub fn write_synthetic(
        dir: impl AsRef<Path>,
        train_per_file: usize,
        test: usize,
        seed: u64,
    ) -> Result<(), DataError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)
            .map_err(|e| DataError::new(dir, format!("cannot create the directory: {e}")))?;
        for (i, name) in CIFAR10_FILES.iter().enumerate() {
            let n = if *name == TEST_FILE {
                test
            } else {
                train_per_file
            };
            let path = dir.join(name);
            std::fs::write(&path, Self::synthetic(n, seed + i as u64).to_bytes())
                .map_err(|e| DataError::new(&path, format!("cannot write: {e}")))?;
        }
        Ok(())
    }
}

/// `dir/cifar-10-batches-bin` when the files are there (the archive's layout), else `dir`.
pub fn cifar_dir(dir: &Path) -> PathBuf {
    let sub = dir.join(CIFAR10_SUBDIR);
    if sub.join(TEST_FILE).is_file() {
        sub
    } else {
        dir.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_training_file_cut_at_a_record_boundary_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("cifar-cut-{}", std::process::id()));
        CifarSet::write_synthetic(&dir, 20, 10, 1).unwrap();
        assert_eq!(CifarSet::load_dir(&dir, Split::Train).unwrap().len(), 100);
        // The fault: data_batch_4.bin cut after its second record (whole records: its size
        // alone does not tell).
        let file = dir.join("data_batch_4.bin");
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..2 * CIFAR_RECORD_BYTES]).unwrap();
        let err = CifarSet::load_dir(&dir, Split::Train).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: 2 records, fewer than the 20 of data_batch_1.bin: the training files hold \
                 as many each (CIFAR-10's 10,000): this one is cut short at a record boundary, \
                 or comes from another set",
                file.display()
            )
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn records_round_trip_and_splits_are_disjoint() {
        let set = CifarSet::synthetic(50, 7);
        assert_eq!(CifarSet::parse("s.bin", &set.to_bytes()).unwrap(), set);
        let (train, val) = set.clone().split_validation(10, 1).unwrap();
        assert_eq!((train.len(), val.len()), (40, 10));
        let mut all: Vec<&[u8]> = train
            .pixels
            .chunks(CIFAR_IMAGE_BYTES)
            .chain(val.pixels.chunks(CIFAR_IMAGE_BYTES))
            .collect();
        let mut orig: Vec<&[u8]> = set.pixels.chunks(CIFAR_IMAGE_BYTES).collect();
        all.sort();
        orig.sort();
        assert_eq!(all, orig);
    }

    #[test]
    fn the_synthetic_set_uses_every_class() {
        let set = CifarSet::synthetic(200, 3);
        for c in 0..10 {
            assert!(set.labels.contains(&c), "class {c} missing");
        }
    }
}
