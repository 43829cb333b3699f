//! Sparse CPU inference: layers whose cost is proportional to their non-zero weights.
//!
//! Plain Rust on `f32` slices (no Burn device): a pruned layer is stored as compressed rows
//! (one row per output), so a forward pass touches only the surviving weights. It pays off once
//! most weights are gone (see docs/BENCHMARKS.md for where it overtakes Burn's dense kernels).

use crate::SparseTensor;
use crate::error::ExportError;

/// A linear layer `y = x W + b` (Burn's layout: `W` is `[inputs, outputs]`) in compressed rows
/// over the outputs.
///
/// ```
/// use sparse_export::{SparseLinear, SparseTensor};
/// // W = [[1, 0], [0, 2], [3, 0]]: 3 inputs, 2 outputs.
/// let w = SparseTensor::from_dense("w", vec![3, 2], &[1., 0., 0., 2., 3., 0.]);
/// let layer = SparseLinear::new(&w, None).unwrap();
/// let mut y = Vec::new();
/// layer.forward(&[1., 1., 1.], 1, &mut y);
/// assert_eq!(y, vec![4., 2.]);
/// ```
#[derive(Clone, Debug)]
pub struct SparseLinear {
    inputs: usize,
    outputs: usize,
    /// `row_start[o]..row_start[o + 1]` are output `o`'s entries.
    row_start: Vec<usize>,
    cols: Vec<u32>,
    vals: Vec<f32>,
    bias: Vec<f32>,
}

impl SparseLinear {
    /// From a `[inputs, outputs]` weight and an optional `[outputs]` bias.
    pub fn new(weight: &SparseTensor, bias: Option<&SparseTensor>) -> Result<Self, ExportError> {
        let [inputs, outputs] = weight.shape[..] else {
            return Err(ExportError::new(
                &weight.path,
                format!("a linear weight has 2 dimensions, got {:?}", weight.shape),
            ));
        };
        let bias = match bias {
            Some(b) if b.shape != [outputs] => {
                return Err(ExportError::new(
                    &b.path,
                    format!("bias shape {:?}, expected [{outputs}]", b.shape),
                ));
            }
            Some(b) => b.to_dense(),
            None => vec![0.0; outputs],
        };
        // Transpose the row-major [inputs, outputs] entries into rows per output.
        let mut count = vec![0usize; outputs + 1];
        for i in &weight.indices {
            count[*i as usize % outputs + 1] += 1;
        }
        for o in 0..outputs {
            count[o + 1] += count[o];
        }
        let row_start = count.clone();
        let mut fill = count;
        let (mut cols, mut vals) = (
            vec![0u32; weight.values.len()],
            vec![0f32; weight.values.len()],
        );
        for (i, v) in weight.indices.iter().zip(&weight.values) {
            let (input, output) = (*i as usize / outputs, *i as usize % outputs);
            cols[fill[output]] = input as u32;
            vals[fill[output]] = *v;
            fill[output] += 1;
        }
        Ok(Self {
            inputs,
            outputs,
            row_start,
            cols,
            vals,
            bias,
        })
    }

    /// Inputs per example.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Outputs per example.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// `x` is `[batch, inputs]` row-major; `out` becomes `[batch, outputs]`.
    pub fn forward(&self, x: &[f32], batch: usize, out: &mut Vec<f32>) {
        assert_eq!(x.len(), batch * self.inputs, "input is not [batch, inputs]");
        out.clear();
        out.resize(batch * self.outputs, 0.0);
        for (xb, yb) in x
            .chunks_exact(self.inputs)
            .zip(out.chunks_exact_mut(self.outputs))
        {
            for (o, y) in yb.iter_mut().enumerate() {
                let (s, e) = (self.row_start[o], self.row_start[o + 1]);
                let mut acc = self.bias[o];
                for (c, v) in self.cols[s..e].iter().zip(&self.vals[s..e]) {
                    acc += v * xb[*c as usize];
                }
                *y = acc;
            }
        }
    }
}

/// A 2-D convolution (stride 1, no padding) computed from its non-zero weights only: each
/// surviving weight adds a scaled, shifted input plane to its output plane, row by row.
///
/// ```
/// use sparse_export::{SparseConv2d, SparseTensor};
/// // One 2x2 kernel with a single weight 2 at (1, 1): a shifted copy of the input times 2.
/// let w = SparseTensor::from_dense("w", vec![1, 1, 2, 2], &[0., 0., 0., 2.]);
/// let conv = SparseConv2d::new(&w, None).unwrap();
/// let mut y = Vec::new();
/// conv.forward(&[1., 2., 3., 4., 5., 6., 7., 8., 9.], 1, [3, 3], &mut y);
/// assert_eq!(y, vec![10., 12., 16., 18.]);
/// ```
#[derive(Clone, Debug)]
pub struct SparseConv2d {
    channels_in: usize,
    channels_out: usize,
    kernel: [usize; 2],
    /// Per output channel: (input channel, ky, kx, weight).
    taps: Vec<Vec<(u32, u16, u16, f32)>>,
    bias: Vec<f32>,
}

impl SparseConv2d {
    /// From a `[out, in, kh, kw]` weight and an optional `[out]` bias.
    pub fn new(weight: &SparseTensor, bias: Option<&SparseTensor>) -> Result<Self, ExportError> {
        let [co, ci, kh, kw] = weight.shape[..] else {
            return Err(ExportError::new(
                &weight.path,
                format!("a conv2d weight has 4 dimensions, got {:?}", weight.shape),
            ));
        };
        let bias = match bias {
            Some(b) if b.shape != [co] => {
                return Err(ExportError::new(
                    &b.path,
                    format!("bias shape {:?}, expected [{co}]", b.shape),
                ));
            }
            Some(b) => b.to_dense(),
            None => vec![0.0; co],
        };
        let mut taps = vec![Vec::new(); co];
        for (i, v) in weight.indices.iter().zip(&weight.values) {
            let i = *i as usize;
            let (o, rest) = (i / (ci * kh * kw), i % (ci * kh * kw));
            let (c, k) = (rest / (kh * kw), rest % (kh * kw));
            taps[o].push((c as u32, (k / kw) as u16, (k % kw) as u16, *v));
        }
        Ok(Self {
            channels_in: ci,
            channels_out: co,
            kernel: [kh, kw],
            taps,
            bias,
        })
    }

    /// Output height and width for an input of `[h, w]`.
    pub fn output_size(&self, [h, w]: [usize; 2]) -> [usize; 2] {
        [h + 1 - self.kernel[0], w + 1 - self.kernel[1]]
    }

    /// Output channels.
    pub fn channels_out(&self) -> usize {
        self.channels_out
    }

    /// `x` is `[batch, in, h, w]`; `out` becomes `[batch, out, h - kh + 1, w - kw + 1]`.
    pub fn forward(&self, x: &[f32], batch: usize, [h, w]: [usize; 2], out: &mut Vec<f32>) {
        assert_eq!(
            x.len(),
            batch * self.channels_in * h * w,
            "input is not [batch, in, h, w]"
        );
        let [oh, ow] = self.output_size([h, w]);
        out.clear();
        out.resize(batch * self.channels_out * oh * ow, 0.0);
        let plane_in = h * w;
        let plane_out = oh * ow;
        for (xb, yb) in x
            .chunks_exact(self.channels_in * plane_in)
            .zip(out.chunks_exact_mut(self.channels_out * plane_out))
        {
            for (o, y) in yb.chunks_exact_mut(plane_out).enumerate() {
                y.fill(self.bias[o]);
                for &(c, ky, kx, v) in &self.taps[o] {
                    let src = &xb[c as usize * plane_in..(c as usize + 1) * plane_in];
                    for r in 0..oh {
                        let row = &src[(r + ky as usize) * w + kx as usize..][..ow];
                        for (d, s) in y[r * ow..(r + 1) * ow].iter_mut().zip(row) {
                            *d += v * s;
                        }
                    }
                }
            }
        }
    }
}

/// 2x2 max pooling with stride 2 of `[batch * channels, h, w]` planes (h, w even).
pub fn max_pool2(x: &[f32], planes: usize, [h, w]: [usize; 2], out: &mut Vec<f32>) {
    let (oh, ow) = (h / 2, w / 2);
    out.clear();
    out.resize(planes * oh * ow, 0.0);
    for (src, dst) in x.chunks_exact(h * w).zip(out.chunks_exact_mut(oh * ow)) {
        for r in 0..oh {
            for c in 0..ow {
                let a = src[2 * r * w + 2 * c].max(src[2 * r * w + 2 * c + 1]);
                let b = src[(2 * r + 1) * w + 2 * c].max(src[(2 * r + 1) * w + 2 * c + 1]);
                dst[r * ow + c] = a.max(b);
            }
        }
    }
}

/// In-place ReLU.
pub fn relu(x: &mut [f32]) {
    for v in x {
        *v = v.max(0.0);
    }
}
