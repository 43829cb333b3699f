//! [`Masking`]: where the masks act, in the forward pass or in the weights after each step.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Bool, DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::snapshot::MASK_SUFFIX;

/// Where the pruning masks act.
///
/// Both modes train exactly the same model: the alive entries see the same forward pass, the
/// same gradients and the same optimizer updates, bit for bit (a test checks it). They differ
/// in what the pruned entries of the stored base hold and in what a step costs.
///
/// ```
/// use burn::nn::{Linear, LinearConfig};
/// use burn::tensor::Device;
/// use sparse_prune::{Masking, PruneError, PruneSchedule, PrunerConfig};
///
/// let mut pruner = PrunerConfig::new(PruneSchedule::OneShot { at: 1, sparsity: 0.5 })
///     .with_masking(Masking::InPlace)
///     .init()
///     .unwrap();
/// let model: Linear = pruner.attach(LinearConfig::new(4, 4).init(&Device::flex())).unwrap();
/// // ... optimizer step ... then, before anything reads the model:
/// let model = pruner.enforce(model);
/// let (model, event) = pruner.step(model, 1, None).unwrap();
/// assert_eq!(event.unwrap().alive, 10); // half of 16 + 4
/// // Forgetting `enforce` after the next optimizer step is an error, not a revived weight.
/// assert!(matches!(pruner.step(model, 2, None), Err(PruneError::NotEnforced { step: 2 })));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Masking {
    /// The forward pass multiplies each base by its 0/1 keep-mask (and the backward pass its
    /// gradient): right whatever the loop does, two extra elementwise passes per masked
    /// parameter per step.
    #[default]
    Forward,
    /// The forward pass uses the base as stored; [`Pruner::enforce`](crate::Pruner::enforce),
    /// called after every optimizer step, sets the pruned entries of the base back to 0 in
    /// one in-place pass (on CPU backends; one `mask_fill` elsewhere). The loop must call it
    /// before anything reads the model (evaluation, checkpoints):
    /// [`Pruner::step`](crate::Pruner::step) refuses to run when it was not called since the
    /// previous step.
    /// [`PruningHook::after_step`](crate::PruningHook::after_step) calls it for you.
    InPlace,
}

/// The keep-masks of one model, on the host (CPU backends) or as bool tensors (others),
/// rebuilt only for the masks whose id changed (a mask's id names its content).
#[derive(Default)]
pub(crate) struct Enforcer {
    masks: HashMap<String, (ParamId, Keep)>,
    /// Tests: take the tensor path (the GPU backends') on a CPU backend too.
    #[cfg(test)]
    tensor_path: bool,
}

enum Keep {
    /// Nothing pruned: nothing to do (every mask until the first prune event).
    AllAlive,
    /// Some entries pruned.
    Pruned {
        /// `true` where pruned (for `mask_fill`: GPU backends, other float types).
        pruned: Box<Tensor<1, Bool>>,
        /// 1 where alive, 0 where pruned, for the in-place pass on CPU backends.
        host: Option<Vec<u8>>,
    },
}

impl Enforcer {
    /// Set the pruned entries of every masked base of `model` to 0.
    pub(crate) fn enforce<M: Module>(&mut self, model: M) -> M {
        let mut changed = MaskIds {
            path: vec![],
            cached: &self.masks,
            seen: vec![],
            changed: vec![],
        };
        model.visit(&mut changed);
        let (seen, changed) = (changed.seen, changed.changed);
        self.masks.retain(|owner, _| seen.contains(owner));
        for (owner, id, pruned) in changed {
            #[cfg(test)]
            let host = sparse_reg::is_host(&pruned.device()) && !self.tensor_path;
            #[cfg(not(test))]
            let host = sparse_reg::is_host(&pruned.device());
            let bools = crate::snapshot::host_bools(pruned.clone());
            let keep = if bools.iter().all(|p| !p) {
                Keep::AllAlive
            } else {
                Keep::Pruned {
                    pruned: Box::new(pruned),
                    host: host.then(|| bools.iter().map(|p| u8::from(!p)).collect()),
                }
            };
            self.masks.insert(owner, (id, keep));
        }
        model.map(&mut Zero {
            path: vec![],
            masks: &self.masks,
        })
    }
}

/// The paths of every masked base, and the masks whose id is not the cached one (a mask's
/// tensor is read only then).
struct MaskIds<'a> {
    path: Vec<String>,
    cached: &'a HashMap<String, (ParamId, Keep)>,
    seen: Vec<String>,
    changed: Vec<(String, ParamId, Tensor<1, Bool>)>,
}

impl ModuleVisitor for MaskIds<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<D, Bool>>) {
        let path = self.path.join(".");
        let Some(owner) = path.strip_suffix(MASK_SUFFIX) else {
            return;
        };
        let owner = owner.to_string();
        if self
            .cached
            .get(&owner)
            .is_none_or(|(id, _)| *id != param.id)
        {
            let n = param.lazy_shape().num_elements();
            self.changed
                .push((owner.clone(), param.id, param.val().reshape([n])));
        }
        self.seen.push(owner);
    }
}

struct Zero<'a> {
    path: Vec<String>,
    masks: &'a HashMap<String, (ParamId, Keep)>,
}

impl ModuleMapper for Zero<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some((_, Keep::Pruned { pruned, host })) = self.masks.get(&self.path.join(".")) else {
            return param; // not masked, or nothing pruned
        };
        param.map(|t| {
            let require_grad = t.is_require_grad();
            let device = t.device();
            let t = t.detach();
            let t = match host {
                Some(keep) if t.dtype() == DType::F32 => zero_on_host(t, keep, &device),
                _ => {
                    let shape = t.shape();
                    let pruned = pruned.as_ref().clone().to_device(&device);
                    t.mask_fill(pruned.reshape(shape), 0.0)
                }
            };
            t.detach().set_require_grad(require_grad)
        })
    }
}

/// The pruned entries of an f32 host tensor set to 0 in its own buffer (taken without a copy
/// when uniquely owned, as a base is after the optimizer step).
fn zero_on_host<const D: usize>(t: Tensor<D>, keep: &[u8], device: &Device) -> Tensor<D> {
    let mut data = t.into_data();
    let values = data
        .as_mut_slice::<f32>()
        .expect("the caller checked the dtype (f32)");
    assert_eq!(values.len(), keep.len(), "a mask of another shape");
    pulp::Arch::new().dispatch(ZeroPass { values, keep });
    Tensor::from_data(data, device)
}

/// `w = keep ? w : 0`, branch-free so that it vectorises (compiled per instruction set).
struct ZeroPass<'a> {
    values: &'a mut [f32],
    keep: &'a [u8],
}

impl pulp::WithSimd for ZeroPass<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        for (w, k) in self.values.iter_mut().zip(self.keep) {
            *w = if *k != 0 { *w } else { 0.0 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tensor_path_zeroes_what_the_host_path_zeroes() {
        use crate::{Amount, PruneSchedule, PrunerConfig};
        use burn::nn::{Linear, LinearConfig};
        let device = Device::flex().autodiff();
        let mut pruner = PrunerConfig::new(PruneSchedule::OneShot {
            at: 1,
            sparsity: 0.6,
        })
        .with_masking(Masking::InPlace)
        .init()
        .unwrap();
        let model: Linear = pruner
            .attach(LinearConfig::new(30, 20).init(&device))
            .unwrap();
        let (model, _) = pruner.prune(model, 1, Amount::Sparsity(0.6), None).unwrap();
        // What an optimizer step leaves: every base entry non-zero again.
        let model = model.map(&mut Shift);
        let values = |m: &Linear| {
            let mut v = m.weight.val().into_data().try_to_vec::<f32>().unwrap();
            v.extend(
                m.bias
                    .as_ref()
                    .unwrap()
                    .val()
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap(),
            );
            v
        };
        assert!(values(&model).iter().all(|w| *w != 0.0));
        let host = Enforcer::default().enforce(model.clone());
        let tensor = Enforcer {
            tensor_path: true,
            ..Enforcer::default()
        }
        .enforce(model);
        let (h, t) = (values(&host), values(&tensor));
        assert_eq!(h, t);
        let zeros = h.iter().filter(|w| **w == 0.0).count();
        assert_eq!(zeros, (0.6f64 * (30 * 20 + 20) as f64).round() as usize);
        assert!(host.weight.val().is_require_grad() && tensor.weight.val().is_require_grad());
    }

    /// Adds 1 to every float parameter, keeping it trainable.
    struct Shift;

    impl ModuleMapper for Shift {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|t| t.detach().add_scalar(1.0).detach().require_grad())
        }
    }

    #[test]
    fn the_pass_zeroes_exactly_the_pruned_entries() {
        let n = 100_003;
        let keep: Vec<u8> = (0..n).map(|i| u8::from(i % 3 != 0 && i % 7 != 2)).collect();
        let values: Vec<f32> = (0..n).map(|i| i as f32 - 1e5).collect();
        let mut v = values.clone();
        pulp::Arch::new().dispatch(ZeroPass {
            values: &mut v,
            keep: &keep,
        });
        for i in 0..n {
            let want = if keep[i] == 1 { values[i] } else { 0.0 };
            assert_eq!(v[i].to_bits(), want.to_bits(), "entry {i}");
        }
    }
}
