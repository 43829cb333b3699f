//! The `.sparse` file format, version 1 (all integers little-endian).
//!
//! ```text
//! file    := magic "SPRSBURN" | version u16 (= 1) | flags u16 (= 0) | count u32 | record*count
//! record  := path_len u16 | path (UTF-8) | rank u8 (<= 8) | dims u32*rank
//!          | value_type u8 (0 f32, 1 f16, 2 bf16) | encoding u8 (0 dense, 1 bitmask, 2 delta)
//!          | nnz u64 | payload_len u64 | payload | crc32 u32 (of the record's bytes before it)
//! payload := dense:   numel values
//!          | bitmask: ceil(numel / 8) bytes (bit i of byte i/8, LSB first, set = stored) | nnz values
//!          | delta:   nnz LEB128 varints (first index, then gap - 1 to the next) | nnz values
//! ```
//!
//! Each tensor takes the smallest of the three encodings. A decoder checks everything before it
//! allocates or indexes (sizes against the bytes left, indices against the shape, the checksum),
//! so a truncated or corrupted file is an error naming the tensor, never a panic.

use half::{bf16, f16};

use crate::ExportError;

/// The file's first 8 bytes.
pub const MAGIC: &[u8; 8] = b"SPRSBURN";
/// The format version written and read.
pub const VERSION: u16 = 1;
/// The largest tensor accepted (entries).
pub const MAX_NUMEL: u64 = u32::MAX as u64;

/// How values are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// 4 bytes, exact.
    F32,
    /// IEEE half: 2 bytes, ~3 significant digits.
    F16,
    /// bfloat16: 2 bytes, f32's range, ~2 significant digits.
    Bf16,
}

impl ValueType {
    fn code(self) -> u8 {
        match self {
            ValueType::F32 => 0,
            ValueType::F16 => 1,
            ValueType::Bf16 => 2,
        }
    }
    fn from_code(c: u8) -> Option<Self> {
        [ValueType::F32, ValueType::F16, ValueType::Bf16]
            .into_iter()
            .find(|v| v.code() == c)
    }
    /// Bytes per value.
    pub fn size(self) -> usize {
        match self {
            ValueType::F32 => 4,
            ValueType::F16 | ValueType::Bf16 => 2,
        }
    }
    fn put(self, v: f32, out: &mut Vec<u8>) {
        match self {
            ValueType::F32 => out.extend(v.to_le_bytes()),
            ValueType::F16 => out.extend(f16::from_f32(v).to_le_bytes()),
            ValueType::Bf16 => out.extend(bf16::from_f32(v).to_le_bytes()),
        }
    }
    fn get(self, b: &[u8]) -> f32 {
        match self {
            ValueType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            ValueType::F16 => f16::from_le_bytes([b[0], b[1]]).to_f32(),
            ValueType::Bf16 => bf16::from_le_bytes([b[0], b[1]]).to_f32(),
        }
    }
}

/// How a tensor's entries are located.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Every entry stored.
    Dense,
    /// One bit per entry, then the stored values.
    Bitmask,
    /// Varint gaps between stored indices, then the values.
    Delta,
}

impl Encoding {
    fn code(self) -> u8 {
        match self {
            Encoding::Dense => 0,
            Encoding::Bitmask => 1,
            Encoding::Delta => 2,
        }
    }
    fn from_code(c: u8) -> Option<Self> {
        [Encoding::Dense, Encoding::Bitmask, Encoding::Delta]
            .into_iter()
            .find(|v| v.code() == c)
    }
}

/// One tensor: its path in the module, its shape and its non-zero entries.
#[derive(Clone, Debug, PartialEq)]
pub struct SparseTensor {
    /// Parameter path, e.g. `fc1.weight`.
    pub path: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Flat (row-major) indices of the stored entries, ascending.
    pub indices: Vec<u32>,
    /// The stored values, one per index.
    pub values: Vec<f32>,
}

impl SparseTensor {
    /// From dense row-major values: keeps the non-zero entries (`-0.0` and `0.0` are both zero).
    pub fn from_dense(path: impl Into<String>, shape: Vec<usize>, dense: &[f32]) -> Self {
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        for (i, v) in dense.iter().enumerate() {
            if *v != 0.0 {
                indices.push(i as u32);
                values.push(*v);
            }
        }
        Self {
            path: path.into(),
            shape,
            indices,
            values,
        }
    }

    /// Number of entries.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The dense row-major values.
    pub fn to_dense(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.numel()];
        for (i, v) in self.indices.iter().zip(&self.values) {
            out[*i as usize] = *v;
        }
        out
    }

    /// Payload bytes under `encoding` with values of `vt`.
    pub fn encoded_size(&self, encoding: Encoding, vt: ValueType) -> usize {
        let nnz = self.values.len();
        match encoding {
            Encoding::Dense => self.numel() * vt.size(),
            Encoding::Bitmask => self.numel().div_ceil(8) + nnz * vt.size(),
            Encoding::Delta => {
                let mut prev: Option<u32> = None;
                let idx: usize = self
                    .indices
                    .iter()
                    .map(|i| {
                        let gap = prev.map_or(*i, |p| i - p - 1);
                        prev = Some(*i);
                        varint_len(gap as u64)
                    })
                    .sum();
                idx + nnz * vt.size()
            }
        }
    }

    /// The smallest encoding for this tensor.
    pub fn best_encoding(&self, vt: ValueType) -> Encoding {
        [Encoding::Delta, Encoding::Bitmask, Encoding::Dense]
            .into_iter()
            .min_by_key(|e| self.encoded_size(*e, vt))
            .expect("three encodings")
    }
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The bytes of a file holding `tensors`, values stored as `vt`.
pub fn encode(tensors: &[SparseTensor], vt: ValueType) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(MAGIC);
    out.extend(VERSION.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend((tensors.len() as u32).to_le_bytes());
    for t in tensors {
        let start = out.len();
        out.extend((t.path.len() as u16).to_le_bytes());
        out.extend(t.path.as_bytes());
        out.push(t.shape.len() as u8);
        for d in &t.shape {
            out.extend((*d as u32).to_le_bytes());
        }
        let encoding = t.best_encoding(vt);
        out.push(vt.code());
        out.push(encoding.code());
        out.extend((t.values.len() as u64).to_le_bytes());
        let mut payload = Vec::with_capacity(t.encoded_size(encoding, vt));
        match encoding {
            Encoding::Dense => {
                for v in t.to_dense() {
                    vt.put(v, &mut payload);
                }
            }
            Encoding::Bitmask => {
                let mut bits = vec![0u8; t.numel().div_ceil(8)];
                for i in &t.indices {
                    bits[*i as usize / 8] |= 1 << (i % 8);
                }
                payload.extend(bits);
                for v in &t.values {
                    vt.put(*v, &mut payload);
                }
            }
            Encoding::Delta => {
                let mut prev: Option<u32> = None;
                for i in &t.indices {
                    put_varint(prev.map_or(*i, |p| i - p - 1) as u64, &mut payload);
                    prev = Some(*i);
                }
                for v in &t.values {
                    vt.put(*v, &mut payload);
                }
            }
        }
        out.extend((payload.len() as u64).to_le_bytes());
        out.extend(payload);
        let crc = crc32fast::hash(&out[start..]);
        out.extend(crc.to_le_bytes());
    }
    out
}

/// A cursor that never reads past the end: every read is checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }
}

/// Decode a file's bytes; `file` names it in errors.
pub fn decode(file: &str, bytes: &[u8]) -> Result<Vec<SparseTensor>, ExportError> {
    let err = |m: String| ExportError::new(file, m);
    let mut r = Reader { bytes, at: 0 };
    let magic = r
        .take(8)
        .ok_or_else(|| err("truncated: shorter than the 8-byte magic".into()))?;
    if magic != MAGIC {
        return Err(err(format!(
            "not a sparse-burn file: the magic is {magic:02x?}, expected \"SPRSBURN\""
        )));
    }
    let version = r.u16().ok_or_else(|| err("truncated header".into()))?;
    if version != VERSION {
        return Err(err(format!(
            "format version {version}, this build reads version {VERSION}"
        )));
    }
    let _flags = r.u16().ok_or_else(|| err("truncated header".into()))?;
    let count = r.u32().ok_or_else(|| err("truncated header".into()))? as usize;
    // Each record takes at least 2 + 1 + 1 + 1 + 8 + 8 + 4 bytes: a count that cannot fit in
    // the bytes left is refused before anything is allocated.
    if count > r.left() / 25 {
        return Err(err(format!(
            "the header claims {count} tensors, more than {} bytes can hold",
            r.left()
        )));
    }
    let mut out = Vec::with_capacity(count);
    for n in 0..count {
        out.push(record(file, n, &mut r)?);
    }
    if r.left() != 0 {
        return Err(err(format!("{} bytes after the last tensor", r.left())));
    }
    Ok(out)
}

fn record(file: &str, n: usize, r: &mut Reader) -> Result<SparseTensor, ExportError> {
    let start = r.at;
    let trunc = || ExportError::new(file, format!("truncated in tensor #{n}"));
    let path_len = r.u16().ok_or_else(trunc)? as usize;
    let path = std::str::from_utf8(r.take(path_len).ok_or_else(trunc)?)
        .map_err(|_| ExportError::new(file, format!("tensor #{n}: path is not UTF-8")))?
        .to_string();
    let err = |m: String| ExportError::new(format!("{file}: {path}"), m);
    let rank = r.u8().ok_or_else(trunc)? as usize;
    if rank > 8 {
        return Err(err(format!("rank {rank}, at most 8 expected")));
    }
    let mut shape = Vec::with_capacity(rank);
    let mut numel: u64 = 1;
    for _ in 0..rank {
        let d = r.u32().ok_or_else(trunc)?;
        numel = numel.saturating_mul(d as u64);
        shape.push(d as usize);
    }
    if numel > MAX_NUMEL {
        return Err(err(format!(
            "shape {shape:?} has {numel} entries, at most {MAX_NUMEL} accepted"
        )));
    }
    let vt = ValueType::from_code(r.u8().ok_or_else(trunc)?)
        .ok_or_else(|| err("unknown value type (0 f32, 1 f16, 2 bf16 expected)".into()))?;
    let encoding = Encoding::from_code(r.u8().ok_or_else(trunc)?)
        .ok_or_else(|| err("unknown encoding (0 dense, 1 bitmask, 2 delta expected)".into()))?;
    let nnz = r.u64().ok_or_else(trunc)?;
    if nnz > numel {
        return Err(err(format!("{nnz} stored entries for {numel} entries")));
    }
    let payload_len = r.u64().ok_or_else(trunc)?;
    if payload_len > r.left() as u64 {
        return Err(err(format!(
            "payload of {payload_len} bytes, only {} left in the file (truncated?)",
            r.left()
        )));
    }
    let payload = r.take(payload_len as usize).ok_or_else(trunc)?;
    let body_end = r.at;
    let crc = r.u32().ok_or_else(trunc)?;
    let got = crc32fast::hash(&r.bytes[start..body_end]);
    if crc != got {
        return Err(err(format!(
            "checksum mismatch (stored {crc:08x}, computed {got:08x}): the file is corrupted"
        )));
    }
    let (numel, nnz, vs) = (numel as usize, nnz as usize, vt.size());
    let values_of = |b: &[u8]| -> Vec<f32> { b.chunks_exact(vs).map(|c| vt.get(c)).collect() };
    let (indices, values) = match encoding {
        Encoding::Dense => {
            // A dense record stores every entry; the header's count of non-zero entries may
            // be below `numel` (a trained or freshly initialised tensor can hold exact zeros).
            if payload.len() != numel * vs {
                return Err(err(format!(
                    "dense payload of {} bytes for {numel} entries of {vs} bytes",
                    payload.len()
                )));
            }
            let dense = values_of(payload);
            let t = SparseTensor::from_dense(String::new(), Vec::new(), &dense);
            (t.indices, t.values)
        }
        Encoding::Bitmask => {
            let nbits = numel.div_ceil(8);
            if payload.len() != nbits + nnz * vs {
                return Err(err(format!(
                    "bitmask payload of {} bytes, expected {nbits} + {nnz} x {vs}",
                    payload.len()
                )));
            }
            let (bits, vals) = payload.split_at(nbits);
            let mut indices = Vec::with_capacity(nnz);
            for (b, byte) in bits.iter().enumerate() {
                for k in 0..8 {
                    if byte >> k & 1 == 1 {
                        let i = b * 8 + k;
                        if i >= numel || indices.len() == nnz {
                            return Err(err(format!(
                                "bitmask marks entry {i} beyond the {nnz} stored of {numel}"
                            )));
                        }
                        indices.push(i as u32);
                    }
                }
            }
            if indices.len() != nnz {
                return Err(err(format!(
                    "bitmask marks {} entries, the header says {nnz}",
                    indices.len()
                )));
            }
            (indices, values_of(vals))
        }
        Encoding::Delta => {
            let mut at = 0usize;
            let mut indices = Vec::with_capacity(nnz.min(payload.len()));
            let mut next: u64 = 0;
            for _ in 0..nnz {
                let mut gap: u64 = 0;
                let mut shift = 0;
                loop {
                    let b = *payload
                        .get(at)
                        .ok_or_else(|| err("delta indices run past the payload".into()))?;
                    at += 1;
                    if shift > 35 {
                        return Err(err("a delta index is longer than 5 bytes".into()));
                    }
                    gap |= ((b & 0x7f) as u64) << shift;
                    shift += 7;
                    if b & 0x80 == 0 {
                        break;
                    }
                }
                let i = next + gap;
                if i >= numel as u64 {
                    return Err(err(format!("index {i} out of range for {numel} entries")));
                }
                indices.push(i as u32);
                next = i + 1;
            }
            if payload.len() - at != nnz * vs {
                return Err(err(format!(
                    "{} value bytes after the indices, expected {nnz} x {vs}",
                    payload.len() - at
                )));
            }
            (indices, values_of(&payload[at..]))
        }
    };
    Ok(SparseTensor {
        path,
        shape,
        indices,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(path: &str, shape: Vec<usize>, keep_every: usize) -> SparseTensor {
        let n: usize = shape.iter().product();
        let dense: Vec<f32> = (0..n)
            .map(|i| {
                if i % keep_every == 0 {
                    i as f32 * 0.5 + 1.0
                } else {
                    0.0
                }
            })
            .collect();
        SparseTensor::from_dense(path, shape, &dense)
    }

    #[test]
    fn round_trip_picks_each_encoding_where_it_is_smallest() {
        let ts = vec![
            tensor("dense", vec![4, 5], 1),
            tensor("half", vec![64, 8], 2),
            tensor("rare", vec![300, 100], 97),
        ];
        let enc: Vec<Encoding> = ts.iter().map(|t| t.best_encoding(ValueType::F32)).collect();
        assert_eq!(
            enc,
            vec![Encoding::Dense, Encoding::Bitmask, Encoding::Delta]
        );
        let bytes = encode(&ts, ValueType::F32);
        let back = decode("x.sparse", &bytes).unwrap();
        for (a, b) in ts.iter().zip(&back) {
            assert_eq!(a.to_dense(), b.to_dense());
            assert_eq!(a.shape, b.shape);
        }
    }

    #[test]
    fn a_dense_record_with_a_few_exact_zeros_round_trips() {
        let mut dense: Vec<f32> = (0..64).map(|i| i as f32 + 1.0).collect();
        dense[17] = 0.0;
        let t = SparseTensor::from_dense("w", vec![8, 8], &dense);
        assert_eq!(t.best_encoding(ValueType::F32), Encoding::Dense);
        let back = decode("f", &encode(std::slice::from_ref(&t), ValueType::F32)).unwrap();
        assert_eq!(back[0], t);
    }

    #[test]
    fn half_precision_values_round() {
        let t = tensor("w", vec![10], 1);
        for vt in [ValueType::F16, ValueType::Bf16] {
            let back = decode("f", &encode(std::slice::from_ref(&t), vt)).unwrap();
            for (a, b) in t.to_dense().iter().zip(back[0].to_dense()) {
                assert!(
                    (a - b).abs() <= 0.01 * a.abs().max(1.0),
                    "{vt:?}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn bad_files_are_errors_naming_the_problem() {
        let good = encode(&[tensor("fc1.weight", vec![30, 20], 7)], ValueType::F32);
        let msg = |b: &[u8]| decode("m.sparse", b).unwrap_err().to_string();
        assert_eq!(
            msg(b"SPRS"),
            "m.sparse: truncated: shorter than the 8-byte magic"
        );
        let mut wrong = good.clone();
        wrong[0] = b'X';
        assert!(msg(&wrong).starts_with("m.sparse: not a sparse-burn file"));
        let mut v2 = good.clone();
        v2[8] = 2;
        assert_eq!(
            msg(&v2),
            "m.sparse: format version 2, this build reads version 1"
        );
        let mut many = good.clone();
        many[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(msg(&many).contains("claims 4294967295 tensors"));
        assert_eq!(
            msg(&good[..good.len() - 3]),
            "m.sparse: truncated in tensor #0"
        );
        let mut flipped = good.clone();
        let last_value = good.len() - 6;
        flipped[last_value] ^= 0x40;
        assert!(msg(&flipped).starts_with("m.sparse: fc1.weight: checksum mismatch"));
        let mut extra = good.clone();
        extra.push(0);
        assert_eq!(msg(&extra), "m.sparse: 1 bytes after the last tensor");
    }

    /// Every truncation and every single-byte corruption of a valid file is an error or a
    /// valid decode: never a panic (the CI-sized cousin of the cargo-fuzz target).
    #[test]
    fn truncations_and_byte_flips_never_panic() {
        let good = encode(
            &[tensor("a", vec![40, 3], 5), tensor("b", vec![9], 1)],
            ValueType::F16,
        );
        for n in 0..good.len() {
            assert!(decode("t", &good[..n]).is_err());
        }
        for i in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = good.clone();
                b[i] ^= flip;
                let _ = decode("t", &b);
            }
        }
    }
}
