//! The IDX format of MNIST and Fashion-MNIST (raw or gzip-compressed).
//!
//! Header: two zero bytes, a type byte (0x08 = unsigned byte, the only type these data sets
//! use), the number of dimensions, then each dimension as a big-endian `u32`; then the data.

use std::io::Read;
use std::path::Path;

use crate::DataError;

/// The largest data body accepted (the full 60k MNIST images are 47 MB): a header that claims
/// more is an error, never an allocation.
pub const MAX_BYTES: usize = 1 << 30;

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first (e.g. `[60000, 28, 28]`).
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

/// Read an IDX file, gzip-compressed or not (told apart by the gzip magic bytes).
///
/// ```
/// let dir = std::env::temp_dir().join("sparse-data-idx-doc");
/// std::fs::create_dir_all(&dir).unwrap();
/// let file = dir.join("labels.idx");
/// std::fs::write(&file, [0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]).unwrap();
/// let labels = sparse_data::read_idx(&file).unwrap();
/// assert_eq!(labels.dims, vec![3]);
/// assert_eq!(labels.data, vec![7, 8, 9]);
/// ```
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray, DataError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path)
        .map_err(|e| DataError::new(path, format!("cannot read the file: {e}")))?;
    parse_idx(path, &bytes)
}

/// Parse IDX bytes (gzip-compressed or not); `path` only names the source in errors.
pub fn parse_idx(path: impl AsRef<Path>, bytes: &[u8]) -> Result<IdxArray, DataError> {
    let path = path.as_ref();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .take(MAX_BYTES as u64 + 1024)
            .read_to_end(&mut raw)
            .map_err(|e| DataError::new(path, format!("not a valid gzip stream: {e}")))?;
        return parse_raw(path, &raw);
    }
    parse_raw(path, bytes)
}

fn parse_raw(path: &Path, b: &[u8]) -> Result<IdxArray, DataError> {
    if b.len() < 4 || b[0] != 0 || b[1] != 0 {
        return Err(DataError::new(
            path,
            format!(
                "not an IDX file: expected the magic bytes 00 00 08 NN, found {:02x?}",
                &b[..b.len().min(4)]
            ),
        ));
    }
    if b[2] != 0x08 {
        return Err(DataError::new(
            path,
            format!(
                "unsupported IDX element type 0x{:02x}: expected 0x08 (unsigned byte)",
                b[2]
            ),
        ));
    }
    let ndim = b[3] as usize;
    if ndim == 0 {
        return Err(DataError::new(
            path,
            "IDX header with 0 dimensions: expected at least 1",
        ));
    }
    let header = 4 + 4 * ndim;
    if b.len() < header {
        return Err(DataError::new(
            path,
            format!(
                "truncated IDX header: {ndim} dimensions need {header} bytes, the file has {}",
                b.len()
            ),
        ));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| u32::from_be_bytes(b[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize)
        .collect();
    let size = dims
        .iter()
        .try_fold(1usize, |acc, d| acc.checked_mul(*d))
        .filter(|s| *s <= MAX_BYTES);
    let Some(size) = size else {
        return Err(DataError::new(
            path,
            format!(
                "IDX dimensions {dims:?} claim more than {MAX_BYTES} bytes: not a data set this loader accepts"
            ),
        ));
    };
    let body = &b[header..];
    if body.len() < size {
        return Err(DataError::new(
            path,
            format!(
                "truncated IDX data: dimensions {dims:?} need {size} bytes, found {}",
                body.len()
            ),
        ));
    }
    if body.len() > size {
        return Err(DataError::new(
            path,
            format!(
                "IDX data longer than its dimensions {dims:?}: expected {size} bytes, found {}",
                body.len()
            ),
        ));
    }
    Ok(IdxArray {
        dims,
        data: body.to_vec(),
    })
}
