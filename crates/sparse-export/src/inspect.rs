//! What a `.sparse` file holds: one row per tensor, and the sizes.

use crate::format::{Encoding, SparseTensor, ValueType};

/// One tensor of a file.
#[derive(Clone, Debug, PartialEq)]
pub struct InspectRow {
    /// Parameter path.
    pub path: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Stored (non-zero) entries.
    pub nnz: usize,
    /// Encoding chosen.
    pub encoding: Encoding,
    /// Payload bytes.
    pub bytes: usize,
}

/// The per-tensor table of a file and its size against dense f32.
///
/// ```
/// use sparse_export::{Inspection, SparseTensor, ValueType, encode};
/// let t = SparseTensor::from_dense("w", vec![2, 4], &[0., 1., 0., 0., 0., 0., 2., 0.]);
/// let bytes = encode(std::slice::from_ref(&t), ValueType::F32);
/// let info = Inspection::of(&[t], ValueType::F32, bytes.len());
/// assert_eq!(info.nnz(), 2);
/// println!("{info}");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    /// One row per tensor.
    pub rows: Vec<InspectRow>,
    /// Value type of the file.
    pub value_type: ValueType,
    /// File size in bytes.
    pub file_bytes: usize,
}

impl Inspection {
    /// The table of `tensors` written as `vt` into a file of `file_bytes`.
    pub fn of(tensors: &[SparseTensor], vt: ValueType, file_bytes: usize) -> Self {
        let rows = tensors
            .iter()
            .map(|t| {
                let encoding = t.best_encoding(vt);
                InspectRow {
                    path: t.path.clone(),
                    shape: t.shape.clone(),
                    nnz: t.values.len(),
                    encoding,
                    bytes: t.encoded_size(encoding, vt),
                }
            })
            .collect();
        Self {
            rows,
            value_type: vt,
            file_bytes,
        }
    }

    /// Entries of all tensors.
    pub fn numel(&self) -> usize {
        self.rows
            .iter()
            .map(|r| r.shape.iter().product::<usize>())
            .sum()
    }

    /// Stored entries of all tensors.
    pub fn nnz(&self) -> usize {
        self.rows.iter().map(|r| r.nnz).sum()
    }

    /// Bytes of the same values stored dense in f32.
    pub fn dense_f32_bytes(&self) -> usize {
        4 * self.numel()
    }
}

impl std::fmt::Display for Inspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<28} {:>14} {:>10} {:>10} {:>8} {:>10}",
            "tensor", "shape", "entries", "non-zero", "encoding", "bytes"
        )?;
        for r in &self.rows {
            let n: usize = r.shape.iter().product();
            writeln!(
                f,
                "{:<28} {:>14} {:>10} {:>10} {:>8} {:>10}",
                r.path,
                format!("{:?}", r.shape),
                n,
                r.nnz,
                format!("{:?}", r.encoding).to_lowercase(),
                r.bytes
            )?;
        }
        write!(
            f,
            "total {} entries, {} non-zero ({:.2} %), values {:?}: file {} bytes, dense f32 {} bytes ({:.1}x smaller)",
            self.numel(),
            self.nnz(),
            100.0 * self.nnz() as f64 / self.numel().max(1) as f64,
            self.value_type,
            self.file_bytes,
            self.dense_f32_bytes(),
            self.dense_f32_bytes() as f64 / self.file_bytes.max(1) as f64
        )
    }
}
