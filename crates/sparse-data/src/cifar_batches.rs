//! CIFAR batches on the host: per-channel normalisation, and the standard augmentation
//! (random 32x32 crop of the image padded by 4 pixels, horizontal flip with probability 1/2).

use crate::{CIFAR_IMAGE_BYTES, CifarSet};

/// CIFAR-10's per-channel mean and standard deviation (of pixels scaled to [0, 1]).
pub const CIFAR10_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// See [`CIFAR10_MEAN`].
pub const CIFAR10_STD: [f32; 3] = [0.2470, 0.2435, 0.2616];

/// A [`CifarSet`] kept as bytes (50,000 images are 154 MB as bytes, 614 MB as `f32`),
/// normalised while it is gathered into batches.
///
/// ```
/// use sparse_data::{CifarBatches, CifarSet};
/// let data = CifarBatches::new(CifarSet::synthetic(8, 1));
/// let (mut x, mut y) = (Vec::new(), Vec::new());
/// data.gather_augmented(&[0, 5, 2], 42, &mut x, &mut y);
/// assert_eq!((x.len(), y.len()), (3 * 3 * 32 * 32, 3));
/// ```
#[derive(Clone, Debug)]
pub struct CifarBatches {
    set: CifarSet,
    /// Normalised value of each byte, per channel.
    lut: [[f32; 256]; 3],
}

impl CifarBatches {
    /// Batches of `set`, normalised with [`CIFAR10_MEAN`] and [`CIFAR10_STD`].
    pub fn new(set: CifarSet) -> Self {
        let mut lut = [[0.0; 256]; 3];
        for (c, table) in lut.iter_mut().enumerate() {
            for (b, v) in table.iter_mut().enumerate() {
                *v = (b as f32 / 255.0 - CIFAR10_MEAN[c]) / CIFAR10_STD[c];
            }
        }
        Self { set, lut }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Replace `x` (`idx.len() * 3 * 32 * 32` values) and `y` with the images at `idx`, as
    /// they are. Panics on an index out of range.
    pub fn gather(&self, idx: &[usize], x: &mut Vec<f32>, y: &mut Vec<i64>) {
        self.fill(idx, x, y, |_| (4, 4, false));
    }

    /// As [`CifarBatches::gather`], each image randomly shifted by up to 4 pixels (the padding
    /// is 0 after normalisation: the mean colour) and flipped left-right with probability
    /// 1/2; `seed` (e.g. derived from the step) makes the draw reproducible.
    pub fn gather_augmented(&self, idx: &[usize], seed: u64, x: &mut Vec<f32>, y: &mut Vec<i64>) {
        let mut state = seed;
        self.fill(idx, x, y, |_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (
                (z % 9) as usize,
                ((z >> 8) % 9) as usize,
                (z >> 16) & 1 == 1,
            )
        });
    }

    /// Crop at offset `(dy, dx)` of the 40x40 padded image, optionally flipped.
    fn fill(
        &self,
        idx: &[usize],
        x: &mut Vec<f32>,
        y: &mut Vec<i64>,
        mut draw: impl FnMut(usize) -> (usize, usize, bool),
    ) {
        x.clear();
        y.clear();
        x.resize(idx.len() * CIFAR_IMAGE_BYTES, 0.0);
        for (k, &i) in idx.iter().enumerate() {
            let (dy, dx, flip) = draw(k);
            let src = &self.set.pixels[i * CIFAR_IMAGE_BYTES..(i + 1) * CIFAR_IMAGE_BYTES];
            let dst = &mut x[k * CIFAR_IMAGE_BYTES..(k + 1) * CIFAR_IMAGE_BYTES];
            for c in 0..3 {
                let lut = &self.lut[c];
                for row in 0..32 {
                    let sr = row + dy;
                    if !(4..36).contains(&sr) {
                        continue; // padding: stays 0
                    }
                    let srow = &src[c * 1024 + (sr - 4) * 32..][..32];
                    let drow = &mut dst[c * 1024 + row * 32..][..32];
                    for (col, d) in drow.iter_mut().enumerate() {
                        let sc = if flip { 31 - col } else { col } + dx;
                        if (4..36).contains(&sc) {
                            *d = lut[srow[sc - 4] as usize];
                        }
                    }
                }
            }
            y.push(self.set.labels[i] as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_gather_normalises_each_channel() {
        let mut set = CifarSet::synthetic(2, 1);
        set.pixels[..1024].fill(255); // red of image 0
        let data = CifarBatches::new(set);
        let (mut x, mut y) = (vec![], vec![]);
        data.gather(&[0], &mut x, &mut y);
        let want = (1.0 - CIFAR10_MEAN[0]) / CIFAR10_STD[0];
        assert!(x[..1024].iter().all(|v| (v - want).abs() < 1e-6));
    }

    #[test]
    fn augmentation_shifts_flips_and_pads_with_zero() {
        let set = CifarSet::synthetic(64, 5);
        let data = CifarBatches::new(set);
        let idx: Vec<usize> = (0..64).collect();
        let (mut plain, mut aug, mut y) = (vec![], vec![], vec![]);
        data.gather(&idx, &mut plain, &mut y);
        data.gather_augmented(&idx, 9, &mut aug, &mut y);
        assert_ne!(plain, aug);
        // Some image has a padded (exactly zero) border row or column, none is all zero.
        let zero_rows = aug
            .chunks(32)
            .filter(|r| r.iter().all(|v| *v == 0.0))
            .count();
        assert!(zero_rows > 0);
        assert!(
            aug.chunks(CIFAR_IMAGE_BYTES)
                .all(|img| img.iter().any(|v| *v != 0.0))
        );
        // The same seed draws the same batch.
        let mut again = vec![];
        data.gather_augmented(&idx, 9, &mut again, &mut y);
        assert_eq!(aug, again);
    }
}
