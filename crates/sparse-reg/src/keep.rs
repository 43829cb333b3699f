//! [`KeepSlot`]: a parameter's keep-mask, shared by the pruner that writes it and the
//! optimizer step that zeroes the pruned entries inside its own pass.

use std::sync::{Arc, Mutex};

use burn::tensor::{DType, Tensor};

/// One parameter's keep-mask (1 alive, 0 pruned), written by a pruner and read by the
/// [`SelectiveDecay`](crate::SelectiveDecay) that steps that parameter.
///
/// With in-place masking the pruned entries of a weight must be 0 again after every optimizer
/// step. A [`SelectiveDecay`](crate::SelectiveDecay) given a slot
/// ([`SelectiveDecay::init_with_keep`](crate::SelectiveDecay::init_with_keep)) does it inside
/// its own step: in the same pass as the update for [`FusedAdam`](crate::FusedAdam) and
/// [`FusedSgd`](crate::FusedSgd), right after the inner optimizer otherwise (host backends; on
/// other devices it leaves the work to the pruner). It then records, under the mask's
/// version, that it did, and the pruner (sparse-prune's `Pruner::enforce`) skips the parameter:
/// the pruner stays the one that guarantees the zeros, the slot only saves it a pass.
///
/// Clones share the slot.
///
/// ```
/// use sparse_reg::KeepSlot;
///
/// let slot = KeepSlot::default();
/// assert_eq!(slot.take_zeroed(), None); // nothing to zero yet
/// slot.set(7, Some(vec![1, 0, 1].into()));
/// assert_eq!(slot.keep().unwrap().1.as_ref(), &[1, 0, 1]);
/// assert_eq!(slot.take_zeroed(), None); // no step zeroed it under version 7 yet
/// ```
#[derive(Clone, Debug, Default)]
pub struct KeepSlot(Arc<Mutex<Slot>>);

#[derive(Debug, Default)]
struct Slot {
    /// The mask's version (chosen by the writer) and its keep-mask; `None`: nothing pruned.
    keep: Option<(u64, Arc<[u8]>)>,
    /// The version the last step zeroed the parameter under, until taken.
    zeroed: Option<u64>,
}

impl KeepSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        // A panic elsewhere cannot leave the two plain fields half-written.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Set the keep-mask (`None`: nothing pruned, nothing to zero) under `version`, a number
    /// the writer changes whenever the mask's content changes. Clears any recorded zeroing.
    pub fn set(&self, version: u64, keep: Option<Arc<[u8]>>) {
        let mut slot = self.lock();
        slot.keep = keep.map(|k| (version, k));
        slot.zeroed = None;
    }

    /// The current keep-mask with its version, if anything is pruned.
    pub fn keep(&self) -> Option<(u64, Arc<[u8]>)> {
        self.lock().keep.clone()
    }

    /// The version the parameter was zeroed under by an optimizer step since the last call,
    /// and forget it (so that each step must zero again).
    pub fn take_zeroed(&self) -> Option<u64> {
        self.lock().zeroed.take()
    }

    /// Record that a step zeroed the parameter with the mask of `version`.
    pub(crate) fn mark_zeroed(&self, version: u64) {
        self.lock().zeroed = Some(version);
    }
}

/// The pruned entries (`keep[i] == 0`) of an f32 tensor in host memory set to 0 in its own
/// buffer: taken without a copy when uniquely owned (as a weight is right after the optimizer
/// step), copied once otherwise.
///
/// Panics when the tensor is not f32 or `keep` has another number of entries.
///
/// ```
/// use burn::tensor::{Device, Tensor};
///
/// let t = Tensor::<1>::from_floats([1.0, 2.0, 3.0], &Device::flex());
/// let t = sparse_reg::zero_pruned(t, &[1, 0, 1]);
/// assert_eq!(t.into_data().try_to_vec::<f32>().unwrap(), vec![1.0, 0.0, 3.0]);
/// ```
pub fn zero_pruned<const D: usize>(t: Tensor<D>, keep: &[u8]) -> Tensor<D> {
    assert_eq!(t.dtype(), DType::F32, "zero_pruned: an f32 tensor");
    let device = t.device();
    let mut data = t.into_data();
    let values = data.as_mut_slice::<f32>().expect("checked f32");
    zero_pass(values, keep);
    Tensor::from_data(data, &device)
}

/// `w = keep ? w : 0` over a slice, compiled for the widest instruction set the CPU has. On
/// the calling thread: it follows an optimizer step that is not fused, whose own ops read the
/// weight there, and a split over the pool measured slower (docs/BENCHMARKS.md).
pub(crate) fn zero_pass(values: &mut [f32], keep: &[u8]) {
    assert_eq!(values.len(), keep.len(), "a keep-mask of another size");
    pulp::Arch::new().dispatch(ZeroPass { values, keep });
}

/// What a fused optimizer's loop stores for an entry's updated weight: the weight, or 0 where
/// a keep-mask says pruned. The loops zip their buffers with a slice of these: the keep-mask
/// (`u8`) or, without one, the gradient itself (`f32`, always alive), which they read anyway, so
/// that both loops are the same branch-free code and the one without a mask has no extra work.
pub(crate) trait Alive: Copy {
    /// `w`, or 0 where pruned.
    fn keep(self, w: f32) -> f32;
}

impl Alive for &f32 {
    #[inline(always)]
    fn keep(self, w: f32) -> f32 {
        w
    }
}

impl Alive for &u8 {
    #[inline(always)]
    fn keep(self, w: f32) -> f32 {
        if *self != 0 { w } else { 0.0 }
    }
}

/// `w = keep ? w : 0` ([`Alive`]), branch-free so that it vectorises.
struct ZeroPass<'a> {
    values: &'a mut [f32],
    keep: &'a [u8],
}

impl pulp::WithSimd for ZeroPass<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        for (w, k) in self.values.iter_mut().zip(self.keep) {
            *w = k.keep(*w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pass_zeroes_exactly_the_pruned_entries() {
        let n = 100_003;
        let keep: Vec<u8> = (0..n).map(|i| u8::from(i % 3 != 0 && i % 7 != 2)).collect();
        let values: Vec<f32> = (0..n).map(|i| i as f32 - 1e5).collect();
        let mut v = values.clone();
        zero_pass(&mut v, &keep);
        for i in 0..n {
            let want = if keep[i] == 1 { values[i] } else { 0.0 };
            assert_eq!(v[i].to_bits(), want.to_bits(), "entry {i}");
        }
    }

    /// A step given the keep-mask leaves exactly what the step without it followed by the
    /// zeroing pass leaves (weights and optimizer state), for each of the loops.
    #[test]
    fn the_fused_optimizers_zero_in_their_pass_what_a_pass_after_them_zeroes() {
        use crate::kernel::DecayTerm;
        use crate::{FusedAdamConfig, FusedSgdConfig, Penalty, Relevance};
        use burn::optim::momentum::MomentumConfig;
        use burn::tensor::{Device, TensorData};
        let device = Device::flex();
        let n = 8315; // not a multiple of any vector width: the loops' tails too
        let keep: Vec<u8> = (0..n).map(|i| u8::from(i % 5 != 1)).collect();
        let tensor = |k: usize| {
            let v: Vec<f32> = (0..n)
                .map(|i| ((i * 31 + k * 7) % 101) as f32 / 50.0 - 1.0)
                .collect();
            Tensor::<1>::from_data(TensorData::new(v, [n]), &device)
        };
        let bits = |t: &Tensor<1>| -> Vec<u32> {
            let v = t.clone().into_data().try_to_vec::<f32>().unwrap();
            v.iter().map(|x| x.to_bits()).collect()
        };
        let term = Some(DecayTerm {
            rel: Relevance::Exp { alpha: 1.0 },
            penalty: Penalty::L2,
            scale: 0.01,
        });
        let adam = FusedAdamConfig::new().build().unwrap();
        let (mut a, mut b) = (tensor(0), tensor(0));
        let (mut sa, mut sb) = (None, None);
        for k in 1..4 {
            (a, sa) = adam.step_with(1e-2, a, tensor(k), sa, term, Some(&keep));
            let (stepped, state) = adam.step_with(1e-2, b, tensor(k), sb, term, None);
            (b, sb) = (zero_pruned(stepped, &keep), state);
            assert_eq!(bits(&a), bits(&b), "Adam, step {k}");
        }
        let (ma, mb) = (sa.unwrap().momentum, sb.unwrap().momentum);
        assert_eq!(bits(&ma.moment_2), bits(&mb.moment_2));
        for momentum in [
            None,
            Some(MomentumConfig::new()),
            Some(MomentumConfig::new().with_nesterov(true)),
        ] {
            let sgd = FusedSgdConfig::new()
                .with_momentum(momentum)
                .build()
                .unwrap();
            let (mut a, mut b) = (tensor(0), tensor(0));
            let (mut sa, mut sb) = (None, None);
            for k in 1..4 {
                (a, sa) = sgd.step_with(1e-2, a, tensor(k), sa, term, Some(&keep));
                let (stepped, state) = sgd.step_with(1e-2, b, tensor(k), sb, term, None);
                (b, sb) = (zero_pruned(stepped, &keep), state);
                assert_eq!(bits(&a), bits(&b), "SGD, step {k}");
            }
            let velocity = |s: Option<crate::FusedSgdState<1>>| s.and_then(|s| s.velocity);
            assert_eq!(
                velocity(sa).map(|v| bits(&v)),
                velocity(sb).map(|v| bits(&v))
            );
        }
        let zeros = bits(&a).iter().filter(|b| **b == 0).count();
        assert_eq!(zeros, keep.iter().filter(|k| **k == 0).count());
    }

    #[test]
    fn init_with_keep_names_a_path_that_is_not_a_parameter() {
        use burn::nn::LinearConfig;
        use burn::optim::SgdConfig;
        use burn::tensor::Device;
        let model = LinearConfig::new(2, 1).init(&Device::flex().autodiff());
        let decay = crate::SelectiveDecayConfig::new()
            .build(SgdConfig::new().build())
            .unwrap();
        let keeps = vec![("wieght".to_string(), KeepSlot::default())];
        let err = decay.init_with_keep(&model, keeps).err().expect("an error");
        assert_eq!(
            err.to_string(),
            "invalid SelectiveDecay::init_with_keep keeps: no float parameter of the model is at \
             `wieght` (its parameters: weight, bias)"
        );
    }

    #[test]
    #[should_panic(expected = "KeepSlot: a keep-mask of 3 entries for a parameter of 2")]
    fn a_keep_mask_of_another_size_is_a_clear_panic() {
        use burn::nn::LinearConfig;
        use burn::optim::{GradientsParams, SgdConfig};
        use burn::tensor::Device;
        let device = Device::flex().autodiff();
        let model = LinearConfig::new(2, 1).init(&device);
        let slot = KeepSlot::default();
        slot.set(1, Some(vec![1, 0, 1].into()));
        let decay = crate::SelectiveDecayConfig::new()
            .build(SgdConfig::new().build())
            .unwrap();
        let mut optim = decay
            .init_with_keep(&model, vec![("weight".into(), slot)])
            .unwrap();
        let loss = model.forward(Tensor::<2>::ones([4, 2], &device)).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let _ = optim.step(0.1, model, grads);
    }

    #[test]
    fn a_slot_records_one_zeroing_per_step_under_the_current_version() {
        let slot = KeepSlot::default();
        let shared = slot.clone();
        slot.set(3, Some(vec![1, 0].into()));
        shared.mark_zeroed(3);
        assert_eq!(slot.take_zeroed(), Some(3));
        assert_eq!(slot.take_zeroed(), None, "taken once");
        shared.mark_zeroed(3);
        slot.set(4, None); // a new mask clears what was recorded
        assert_eq!(slot.take_zeroed(), None);
        assert!(slot.keep().is_none());
    }
}
