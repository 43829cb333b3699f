//! Spare buffers for this crate's flex kernels: a buffer handed back after the backward pass
//! (a convolution's patches, a layer's output gradient) is reused by the next step's op of the
//! same size. A fresh `vec![0.0; len]` is zeroed on the calling thread while the thread pool
//! waits: LeNet-5's patches alone are 18.6 MB per step.

use std::any::Any;
use std::sync::Mutex;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Flex};
use burn::tensor::DType;

/// The buffers held, oldest first.
static SPARE: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// The most bytes held: past it the oldest buffers are dropped.
const SPARE_BYTES: usize = 64 << 20;

/// A buffer of `len` entries: a spare one of that length (its entries are stale: the caller
/// writes every one) or a new one of zeros.
pub(crate) fn take(len: usize) -> Vec<f32> {
    let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
    match spare.iter().rposition(|v| v.len() == len) {
        Some(i) => spare.remove(i),
        None => {
            drop(spare);
            vec![0.0; len]
        }
    }
}

/// Hand `buffer` back for a later [`take`].
pub(crate) fn give(buffer: Vec<f32>) {
    let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
    spare.push(buffer);
    while held(&spare) > SPARE_BYTES {
        spare.remove(0);
    }
}

/// Bytes held by `spare`.
fn held(spare: &[Vec<f32>]) -> usize {
    spare.iter().map(|v| v.len() * size_of::<f32>()).sum()
}

/// Hand back the buffer of `t` when it is a flex tensor that nothing else holds (otherwise
/// nothing happens: taking a shared buffer would copy it).
pub(crate) fn give_tensor<B: Backend>(t: FloatTensor<B>) {
    let Ok(t) = (Box::new(t) as Box<dyn Any>).downcast::<FloatTensor<Flex>>() else {
        return;
    };
    let whole = t.is_contiguous() && t.layout().start_offset() == 0;
    if t.is_unique()
        && whole
        && t.dtype() == DType::F32
        && let Ok(buffer) = t.into_data().try_into_vec::<f32>()
    {
        give(buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::ops::FloatTensorOps;
    use burn::tensor::TensorData;

    /// A buffer given back is taken again by the next request of its length, not by another
    /// length (buffers are told apart by their contents); a tensor still shared elsewhere is
    /// not given back.
    #[test]
    fn a_buffer_given_back_is_reused() {
        // A length no other test of this crate uses (they run in parallel, sharing the pool).
        let len = 12_345;
        give(vec![7.0; len]);
        assert!(
            take(len + 1).iter().all(|&v| v == 0.0),
            "another length: a new buffer"
        );
        assert!(take(len).iter().all(|&v| v == 7.0), "the buffer given back");
        assert!(take(len).iter().all(|&v| v == 0.0), "taken once only");

        let data = TensorData::new(vec![8.0f32; len], [len]);
        let t = Flex::float_from_data(data, &Default::default());
        let other = t.clone();
        give_tensor::<Flex>(t);
        assert!(
            take(len).iter().all(|&v| v == 0.0),
            "not given back while shared"
        );
        give_tensor::<Flex>(other);
        assert!(
            take(len).iter().all(|&v| v == 8.0),
            "the tensor's own buffer"
        );
    }

    /// The pool drops its oldest buffers past its size.
    #[test]
    fn the_pool_is_bounded() {
        let len = SPARE_BYTES / size_of::<f32>() / 2 + 7;
        for marker in [1.0, 2.0, 3.0] {
            give(vec![marker; len]);
        }
        {
            let spare = SPARE.lock().unwrap();
            let held = held(&spare);
            assert!(held <= SPARE_BYTES, "{held} bytes held");
            assert!(
                !spare.iter().any(|v| v.first() == Some(&1.0)),
                "the oldest is dropped"
            );
        }
        assert!(take(len).iter().all(|&v| v == 3.0), "the newest is kept");
    }
}
