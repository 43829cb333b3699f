//! Normalised images, gathered into training batches on the host.

use crate::ImageSet;

/// An [`ImageSet`] as normalised `f32` pixels (`(p / 255 - mean) / std`) and `i64` labels,
/// ready to be gathered into batches: the loader of the examples.
///
/// ```
/// use sparse_data::{ImageSet, NormalizedImages, Split};
/// let set = NormalizedImages::mnist_normalised(&ImageSet::embedded(Split::Test));
/// let (mut x, mut y) = (Vec::new(), Vec::new());
/// set.gather(&[3, 1, 4], &mut x, &mut y);
/// assert_eq!((x.len(), y.len()), (3 * 784, 3));
/// ```
#[derive(Clone, Debug)]
pub struct NormalizedImages {
    /// `len * image_size` normalised pixels.
    pub pixels: Vec<f32>,
    /// One label per image.
    pub labels: Vec<i64>,
    /// Pixels per image.
    pub image_size: usize,
}

impl NormalizedImages {
    /// Normalise with the given mean and standard deviation (of pixels scaled to [0, 1]).
    pub fn new(set: &ImageSet, mean: f32, std: f32) -> Self {
        let pixels = set
            .pixels
            .iter()
            .map(|p| (*p as f32 / 255.0 - mean) / std)
            .collect();
        Self {
            pixels,
            labels: set.labels.iter().map(|l| *l as i64).collect(),
            image_size: set.image_size(),
        }
    }

    /// The normalisation of the paper and of PyTorch's MNIST examples (0.1307, 0.3081).
    pub fn mnist_normalised(set: &ImageSet) -> Self {
        Self::new(set, 0.1307, 0.3081)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Replace `x` and `y` with the images and labels at `idx`, in that order (buffers are
    /// reused, so a loop allocates nothing once they have grown). Panics on an index out of
    /// range.
    pub fn gather(&self, idx: &[usize], x: &mut Vec<f32>, y: &mut Vec<i64>) {
        let n = self.image_size;
        x.clear();
        y.clear();
        x.reserve(idx.len() * n);
        for &i in idx {
            x.extend_from_slice(&self.pixels[i * n..(i + 1) * n]);
            y.push(self.labels[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_in_order_and_normalises() {
        let set = ImageSet {
            pixels: vec![0, 255, 51, 102],
            labels: vec![7, 2],
            rows: 1,
            cols: 2,
        };
        let data = NormalizedImages::new(&set, 0.0, 0.5);
        let (mut x, mut y) = (vec![9.0], vec![9]);
        data.gather(&[1, 0, 1], &mut x, &mut y);
        assert_eq!(y, vec![2, 7, 2]);
        assert_eq!(x, vec![0.4, 0.8, 0.0, 2.0, 0.4, 0.8]);
    }
}
