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
/// A layer whose weights are more than [`SparseLinear::DENSE_ABOVE`] non-zero is kept dense
/// instead: a gathered weight costs about five times a multiply-add over a contiguous row, so
/// past that density the dense kernel is faster (measured on the benchmark machine; see
/// docs/BENCHMARKS.md). The outputs are the same either way.
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
    /// `(o, start, end)` for every output `o` that has weights: `start..end` are its entries.
    /// Outputs with none are left out, so a pass costs nothing for them (they are the bias).
    rows: Vec<(u32, u32, u32)>,
    cols: Vec<u32>,
    vals: Vec<f32>,
    bias: Vec<f32>,
    /// The whole `[inputs, outputs]` weight, for a layer above `DENSE_ABOVE`.
    dense: Option<Vec<f32>>,
}

impl SparseLinear {
    /// Density (non-zero weights / weights) above which the layer is computed densely.
    pub const DENSE_ABOVE: f64 = 0.25;

    /// From a `[inputs, outputs]` weight and an optional `[outputs]` bias.
    pub fn new(weight: &SparseTensor, bias: Option<&SparseTensor>) -> Result<Self, ExportError> {
        let [inputs, outputs] = weight.shape[..] else {
            return Err(ExportError::new(
                &weight.path,
                format!("a linear weight has 2 dimensions, got {:?}", weight.shape),
            ));
        };
        if inputs == 0 || outputs == 0 {
            return Err(ExportError::new(
                &weight.path,
                format!(
                    "a linear weight needs inputs and outputs, got {:?}",
                    weight.shape
                ),
            ));
        }
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
        let rows = (0..outputs)
            .filter(|&o| count[o + 1] > count[o])
            .map(|o| (o as u32, count[o] as u32, count[o + 1] as u32))
            .collect();
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
            rows,
            cols,
            vals,
            bias,
            dense: (weight.values.len() as f64 > Self::DENSE_ABOVE * (inputs * outputs) as f64)
                .then(|| weight.to_dense()),
        })
    }

    /// Whether this layer runs the dense kernel (it is more than `DENSE_ABOVE` non-zero).
    pub fn is_dense(&self) -> bool {
        self.dense.is_some()
    }

    /// The Burn `Linear` at module path `name` among `tensors` (as read from a `.sparse` file or
    /// taken by `sparse_tensors`): `{name}.weight`, and `{name}.bias` when the layer has one.
    /// Any Linear of a model works this way, e.g. a Transformer's attention projections.
    ///
    /// ```
    /// use sparse_export::{SparseLinear, SparseTensor};
    /// let w = SparseTensor::from_dense("blocks.0.ff_in.weight", vec![2, 1], &[0., 3.]);
    /// let b = SparseTensor::from_dense("blocks.0.ff_in.bias", vec![1], &[1.]);
    /// let layer = SparseLinear::from_tensors(&[w, b], "blocks.0.ff_in").unwrap();
    /// let mut y = Vec::new();
    /// layer.forward(&[5., 2.], 1, &mut y);
    /// assert_eq!(y, vec![7.]);
    /// let missing = SparseLinear::from_tensors(&[], "fc9").unwrap_err();
    /// assert_eq!(missing.to_string(), "fc9.weight: missing from the file (is it this model?)");
    /// ```
    pub fn from_tensors(tensors: &[SparseTensor], name: &str) -> Result<Self, ExportError> {
        let weight = crate::lenet::find(tensors, &format!("{name}.weight"))?;
        let bias_path = format!("{name}.bias");
        Self::new(weight, tensors.iter().find(|t| t.path == bias_path))
    }

    /// Inputs per example.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Outputs per example.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// `x` is `[batch, inputs]` row-major; `out` becomes `[batch, outputs]`. A large batch is
    /// split over threads (see [`threads`]).
    pub fn forward(&self, x: &[f32], batch: usize, out: &mut Vec<f32>) {
        assert_eq!(x.len(), batch * self.inputs, "input is not [batch, inputs]");
        out.clear();
        out.resize(batch * self.outputs, 0.0);
        let per_example = self.dense.as_ref().map_or(self.vals.len(), Vec::len);
        split_batch(
            x,
            out,
            [self.inputs, self.outputs],
            per_example,
            move |x, out| self.forward_examples(x, out),
        );
    }

    /// `forward` on one thread, for whole examples of `x` into `out`.
    fn forward_examples(&self, x: &[f32], out: &mut [f32]) {
        for yb in out.chunks_exact_mut(self.outputs) {
            yb.copy_from_slice(&self.bias);
        }
        if let Some(w) = &self.dense {
            // Compiled for the widest instruction set the CPU has (the gathers of the sparse
            // rows below are not: wide gather instructions were slower than scalar loads here).
            pulp::Arch::new().dispatch(DenseKernel {
                w,
                x,
                out,
                inputs: self.inputs,
                outputs: self.outputs,
            });
            return;
        }
        if self.rows.is_empty() {
            return;
        }
        // Each example is copied into a buffer whose length is a power of two, so that the
        // gathers index it with `col & mask`, which the compiler knows is in bounds: no bounds
        // check (a compare and a branch) per surviving weight.
        // The buffer is reused across calls on a thread (no allocation per call at batch 1).
        let mask = self.inputs.next_power_of_two() - 1;
        let mut padded = PADDED.take();
        if padded.len() <= mask {
            padded.resize(mask + 1, 0.0);
        }
        for (xb, yb) in x
            .chunks_exact(self.inputs)
            .zip(out.chunks_exact_mut(self.outputs))
        {
            padded[..self.inputs].copy_from_slice(xb);
            for &(o, s, e) in &self.rows {
                let (s, e) = (s as usize, e as usize);
                yb[o as usize] += row_dot(&self.cols[s..e], &self.vals[s..e], &padded, mask);
            }
        }
        PADDED.set(padded);
    }
}

/// Threads that sparse inference splits a large batch over: the environment variable
/// `SPARSE_INFER_THREADS` when it is a positive number, else the machine's available
/// parallelism (any other value of the variable is reported on stderr and ignored). Read once
/// per process.
///
/// ```
/// assert!(sparse_export::threads() >= 1);
/// ```
pub fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        let cores = || std::thread::available_parallelism().map_or(1, |n| n.get());
        match std::env::var("SPARSE_INFER_THREADS") {
            Err(_) => cores(),
            Ok(v) => match v.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    let n = cores();
                    eprintln!(
                        "SPARSE_INFER_THREADS={v:?}: expected a positive number of threads; \
                         using {n} (the available cores)"
                    );
                    n
                }
            },
        }
    })
}

/// Multiply-adds below which a batch stays on the calling thread: starting a thread costs
/// about as much as this many (tens of microseconds).
const PARALLEL_ABOVE: usize = 200_000;

/// Runs `f` over whole examples of `x` (`[batch, sizes[0]]`) and `out` (`[batch, sizes[1]]`),
/// split over up to [`threads`] scoped threads when the batch costs more than `PARALLEL_ABOVE`
/// multiply-adds (`cost` per example). Every example is computed by the same code either way,
/// so the outputs do not depend on the split.
fn split_batch(
    x: &[f32],
    out: &mut [f32],
    [inputs, outputs]: [usize; 2],
    cost: usize,
    f: impl Fn(&[f32], &mut [f32]) + Sync,
) {
    let batch = x.len() / inputs.max(1);
    let n = threads()
        .min(batch)
        .min((batch * cost).div_ceil(PARALLEL_ABOVE));
    if n <= 1 {
        return f(x, out);
    }
    let per = batch.div_ceil(n);
    std::thread::scope(|scope| {
        let mut parts = x.chunks(per * inputs).zip(out.chunks_mut(per * outputs));
        let first = parts.next();
        for (xc, oc) in parts {
            let f = &f;
            scope.spawn(move || f(xc, oc));
        }
        if let Some((xc, oc)) = first {
            f(xc, oc);
        }
    });
}

// The kernels run through `pulp`'s run-time dispatch: their bodies (inlined into `with_simd`)
// are compiled once per instruction set (AVX-512, AVX2 + FMA, the x86-64 baseline, ...) and the
// widest one the CPU has runs, with no `unsafe` here and no `-C target-cpu` in the build. (They
// are structs, not closures: a closure is not inlined into the per-instruction-set copies.)

/// `y += x W` for every example (`W` dense, `[inputs, outputs]`): contiguous rows that
/// vectorise; inputs that are zero (after a ReLU, about half) are skipped.
struct DenseKernel<'a> {
    w: &'a [f32],
    x: &'a [f32],
    out: &'a mut [f32],
    inputs: usize,
    outputs: usize,
}

impl pulp::WithSimd for DenseKernel<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let Self {
            w,
            x,
            out,
            inputs,
            outputs,
        } = self;
        for (xb, yb) in x.chunks_exact(inputs).zip(out.chunks_exact_mut(outputs)) {
            for (xi, wi) in xb.iter().zip(w.chunks_exact(outputs)) {
                if *xi != 0.0 {
                    for (y, wo) in yb.iter_mut().zip(wi) {
                        *y += xi * wo;
                    }
                }
            }
        }
    }
}

struct ConvKernel<'a>(&'a SparseConv2d, &'a [f32], [usize; 2], &'a mut [f32]);

impl pulp::WithSimd for ConvKernel<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        self.0.examples(self.1, self.2, self.3)
    }
}

thread_local! {
    /// One example's inputs, zero-padded to a power of two (see `SparseLinear::forward`).
    static PADDED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `sum(vals[k] * x[cols[k]])` with eight independent partial sums: one running sum would
/// make every gathered product wait for the previous addition (a 3-4 cycle chain per weight),
/// which is what bounded the batch-1 latency. `x.len()` is `mask + 1`, a power of two, and every
/// column is below it.
#[inline(always)]
fn row_dot(cols: &[u32], vals: &[f32], x: &[f32], mask: usize) -> f32 {
    let x = &x[..=mask];
    if cols.len() <= 4 {
        // A short row (most rows of a very sparse layer): the eight sums would cost more than
        // the chain they break.
        let mut sum = 0.0;
        for (c, v) in cols.iter().zip(vals) {
            sum += v * x[*c as usize & mask];
        }
        return sum;
    }
    let mut acc = [0f32; 8];
    let (cs, vs) = (cols.chunks_exact(8), vals.chunks_exact(8));
    let (cr, vr) = (cs.remainder(), vs.remainder());
    for (c8, v8) in cs.zip(vs) {
        for k in 0..8 {
            acc[k] += v8[k] * x[c8[k] as usize & mask];
        }
    }
    // The last < 8 entries also go to separate sums: a serial tail would be a chain again.
    for ((a, c), v) in acc.iter_mut().zip(cr).zip(vr) {
        *a += v * x[*c as usize & mask];
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
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
        if weight.shape.contains(&0) {
            return Err(ExportError::new(
                &weight.path,
                format!(
                    "a conv2d weight has no empty dimension, got {:?}",
                    weight.shape
                ),
            ));
        }
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
        let taps: usize = self.taps.iter().map(Vec::len).sum();
        let sizes = [self.channels_in * h * w, self.channels_out * oh * ow];
        split_batch(x, out, sizes, taps * oh * ow, move |x, out| {
            self.forward_examples(x, [h, w], out)
        });
    }

    /// `forward` on one thread, for whole examples of `x` into `out`, compiled for the
    /// widest instruction set the CPU has.
    fn forward_examples(&self, x: &[f32], hw: [usize; 2], out: &mut [f32]) {
        pulp::Arch::new().dispatch(ConvKernel(self, x, hw, out));
    }

    #[inline(always)]
    fn examples(&self, x: &[f32], [h, w]: [usize; 2], out: &mut [f32]) {
        let [oh, ow] = self.output_size([h, w]);
        let (plane_in, plane_out) = (h * w, oh * ow);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic `[inputs, outputs]` weight with about `density` of it non-zero.
    fn weight(inputs: usize, outputs: usize, density: f64) -> SparseTensor {
        let dense: Vec<f32> = (0..inputs * outputs)
            .map(|i| {
                let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
                if (h % 1000) as f64 <= density * 1000.0 {
                    (h % 97) as f32 / 48.0 - 1.0
                } else {
                    0.0
                }
            })
            .collect();
        SparseTensor::from_dense("w", vec![inputs, outputs], &dense)
    }

    /// `x W + b` the plain way.
    fn reference(w: &SparseTensor, b: &[f32], x: &[f32], batch: usize) -> Vec<f32> {
        let (inputs, outputs) = (w.shape[0], w.shape[1]);
        let w = w.to_dense();
        let mut y = vec![0f32; batch * outputs];
        for n in 0..batch {
            for o in 0..outputs {
                y[n * outputs + o] = b[o]
                    + (0..inputs)
                        .map(|i| x[n * inputs + i] * w[i * outputs + o])
                        .sum::<f32>();
            }
        }
        y
    }

    #[test]
    fn both_kernels_give_the_plain_product_at_every_density() {
        for density in [0.0, 0.01, 0.1, 0.24, 0.3, 0.6, 1.0] {
            // 37 inputs: rows of every length mod 8, and a power-of-two pad of 64.
            let w = weight(37, 13, density);
            let b: Vec<f32> = (0..13).map(|o| o as f32 / 10.0).collect();
            let bias = SparseTensor::from_dense("b", vec![13], &b);
            let layer = SparseLinear::new(&w, Some(&bias)).unwrap();
            let nnz = w.values.len() as f64 / (37 * 13) as f64;
            assert_eq!(
                layer.is_dense(),
                nnz > SparseLinear::DENSE_ABOVE,
                "{density}"
            );
            // Inputs with zeros in them, as after a ReLU.
            let x: Vec<f32> = (0..3 * 37)
                .map(|i| {
                    if i % 3 == 0 {
                        0.0
                    } else {
                        (i % 11) as f32 - 5.0
                    }
                })
                .collect();
            let mut y = Vec::new();
            layer.forward(&x, 3, &mut y);
            let want = reference(&w, &b, &x, 3);
            for (a, e) in y.iter().zip(&want) {
                assert!(
                    (a - e).abs() <= 1e-4 * e.abs().max(1.0),
                    "{density}: {a} vs {e}"
                );
            }
        }
    }

    #[test]
    fn a_batch_split_over_threads_gives_each_example_its_own_result() {
        // 64 examples of a 300x100 layer at 40 % (dense kernel) and 15 % (rows), and a
        // convolution: each batch costs more than PARALLEL_ABOVE, so it is split when the
        // machine has two threads or more; one example at a time never is.
        let x: Vec<f32> = (0..64 * 300).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
        for density in [0.4, 0.15] {
            let layer = SparseLinear::new(&weight(300, 100, density), None).unwrap();
            assert!(64 * layer.vals.len() > PARALLEL_ABOVE || layer.is_dense());
            let mut batched = Vec::new();
            layer.forward(&x, 64, &mut batched);
            let mut one = Vec::new();
            for (n, xb) in x.chunks_exact(300).enumerate() {
                layer.forward(xb, 1, &mut one);
                assert_eq!(
                    one[..],
                    batched[n * 100..(n + 1) * 100],
                    "{density}, example {n}"
                );
            }
        }
        let w = weight(8 * 3 * 5 * 5, 1, 0.5);
        let w = SparseTensor::from_dense("c", vec![8, 3, 5, 5], &w.to_dense());
        let conv = SparseConv2d::new(&w, None).unwrap();
        let x: Vec<f32> = (0..64 * 3 * 20 * 20)
            .map(|i| ((i * 5) % 11) as f32)
            .collect();
        let mut batched = Vec::new();
        conv.forward(&x, 64, [20, 20], &mut batched);
        let mut one = Vec::new();
        for (n, xb) in x.chunks_exact(3 * 20 * 20).enumerate() {
            conv.forward(xb, 1, [20, 20], &mut one);
            assert_eq!(
                one[..],
                batched[n * 8 * 256..(n + 1) * 8 * 256],
                "conv, example {n}"
            );
        }
    }

    #[test]
    fn empty_dimensions_are_refused_by_name() {
        let w = SparseTensor::from_dense("fc.weight", vec![0, 4], &[]);
        assert_eq!(
            SparseLinear::new(&w, None).unwrap_err().to_string(),
            "fc.weight: a linear weight needs inputs and outputs, got [0, 4]"
        );
        let w = SparseTensor::from_dense("conv.weight", vec![2, 0, 3, 3], &[]);
        assert_eq!(
            SparseConv2d::new(&w, None).unwrap_err().to_string(),
            "conv.weight: a conv2d weight has no empty dimension, got [2, 0, 3, 3]"
        );
    }
}
