//! Helpers shared by the integration tests.

/// `n` deterministic values in [-1, 1) (the device seed is process-global and tests run in
/// parallel, so random inputs would not be reproducible).
pub fn inputs(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect()
}

/// Largest |got - want| over two outputs of the same length.
pub fn max_abs_diff(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}
