//! [`Masking`]: where the masks act, in the forward pass or in the weights after each step.

use std::collections::HashMap;
use std::sync::Arc;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Bool, DType, Tensor};
use serde::{Deserialize, Serialize};
use sparse_reg::KeepSlot;

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
/// assert_eq!(event.unwrap().alive, 8); // half of the 16 weights (biases: not by default)
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
    /// [`Sparsity::step`](crate::Sparsity::step) calls it for you.
    InPlace,
}

/// The keep-masks of one model, on the host (CPU backends) or as bool tensors (others),
/// rebuilt only for the masks whose id changed (a mask's id names its content), and the
/// [`KeepSlot`]s through which optimizer steps zero parameters themselves.
#[derive(Default)]
pub(crate) struct Enforcer {
    masks: HashMap<String, (ParamId, Keep)>,
    /// The slots handed to optimizers ([`Pruner::optimizer`](crate::Pruner::optimizer)), by
    /// the path of the masked base.
    slots: HashMap<String, KeepSlot>,
    /// How many bases the last `enforce` zeroed itself (the others were skipped).
    pub(crate) zeroed: usize,
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
        host: Option<Arc<[u8]>>,
    },
}

impl Enforcer {
    /// The slot of the masked base at `owner`, created on first use and filled with its
    /// current keep-mask when the enforcer has one.
    pub(crate) fn slot(&mut self, owner: &str) -> KeepSlot {
        let slot = self.slots.entry(owner.to_string()).or_default().clone();
        if let Some((id, keep)) = self.masks.get(owner) {
            publish(&slot, *id, keep);
        }
        slot
    }

    /// Set the pruned entries of every masked base of `model` to 0, except those an
    /// optimizer step has just zeroed with the current mask (see [`KeepSlot`]).
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
            if let Some(slot) = self.slots.get(&owner) {
                publish(slot, id, &keep);
            }
            self.masks.insert(owner, (id, keep));
        }
        // What is left to zero: the pruned bases no step zeroed with their current mask (a
        // mask's id is its version in the slots).
        let todo: Vec<&str> = self
            .masks
            .iter()
            .filter(|(owner, (id, keep))| match keep {
                Keep::AllAlive => false,
                Keep::Pruned { .. } => self
                    .slots
                    .get(owner.as_str())
                    .and_then(KeepSlot::take_zeroed)
                    .is_none_or(|zeroed| zeroed != id.val()),
            })
            .map(|(owner, _)| owner.as_str())
            .collect();
        self.zeroed = todo.len();
        if todo.is_empty() {
            return model;
        }
        model.map(&mut Zero {
            path: vec![],
            masks: &self.masks,
            todo,
        })
    }
}

/// Hand `keep`, the content of the mask `id`, to an optimizer's slot: the host keep-mask where
/// there is one (else nothing, and the enforcer keeps the work), under the mask's id as version.
fn publish(slot: &KeepSlot, id: ParamId, keep: &Keep) {
    match keep {
        Keep::Pruned {
            host: Some(host), ..
        } => slot.set(id.val(), Some(host.clone())),
        _ => slot.set(id.val(), None),
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
    /// The bases to zero.
    todo: Vec<&'a str>,
}

impl ModuleMapper for Zero<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.path.join(".");
        if !self.todo.contains(&path.as_str()) {
            return param; // not masked, nothing pruned, or zeroed by the optimizer step
        }
        let Some((_, Keep::Pruned { pruned, host, .. })) = self.masks.get(&path) else {
            return param;
        };
        param.map(|t| {
            let require_grad = t.is_require_grad();
            let device = t.device();
            let t = t.detach();
            let t = match host {
                Some(keep) if t.dtype() == DType::F32 => sparse_reg::zero_pruned(t, keep),
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Device;

    /// A 30 -> 20 linear layer with in-place masks, 60 % of its entries pruned, and its pruner.
    fn pruned_linear() -> (Linear, crate::Pruner) {
        use crate::{Amount, PruneSchedule, PrunerConfig};
        let device = Device::flex().autodiff();
        let mut pruner = PrunerConfig::new(PruneSchedule::OneShot {
            at: 1,
            sparsity: 0.6,
        })
        .with_masking(Masking::InPlace)
        .with_params(sparse_reg::Selection::All)
        .init()
        .unwrap();
        let model: Linear = pruner
            .attach(LinearConfig::new(30, 20).init(&device))
            .unwrap();
        let (model, _) = pruner.prune(model, 1, Amount::Sparsity(0.6), None).unwrap();
        (model, pruner)
    }

    /// The weight then the bias, flat.
    fn values(m: &Linear) -> Vec<f32> {
        let mut v = m.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let bias = m.bias.as_ref().unwrap().val().into_data();
        v.extend(bias.try_to_vec::<f32>().unwrap());
        v
    }

    #[test]
    fn the_tensor_path_zeroes_what_the_host_path_zeroes() {
        let (model, _) = pruned_linear();
        // What an optimizer step leaves: every base entry non-zero again.
        let model = model.map(&mut Shift);
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

    #[test]
    fn enforce_skips_exactly_what_the_optimizer_step_zeroed_with_the_current_mask() {
        use crate::Amount;
        use burn::optim::GradientsParams;
        use burn::tensor::Distribution;
        use sparse_reg::{FusedAdamConfig, SelectiveDecayConfig};
        let (model, mut pruner) = pruned_linear();
        let device = model.weight.val().device();
        let mut enforcer = Enforcer::default();
        let model = enforcer.enforce(model);
        assert_eq!(enforcer.zeroed, 2, "weight and bias");
        // Only the weight's step zeroes (the bias has no slot).
        let slots = vec![("weight".to_string(), enforcer.slot("weight"))];
        let adam = FusedAdamConfig::new().build().unwrap();
        let decay = SelectiveDecayConfig::new().build(adam).unwrap();
        let mut optim = decay.init_with_keep(&model, slots).unwrap();
        let x = Tensor::<2>::random([8, 30], Distribution::Default, &device);
        let mut step = |model: Linear| {
            let loss = model.forward(x.clone()).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            optim.step(1e-2, model, grads)
        };
        let model = enforcer.enforce(step(model));
        assert_eq!(enforcer.zeroed, 1, "the bias only");
        // Nothing recorded for a change that did not go through the step: both again.
        let model = enforcer.enforce(model.map(&mut Shift));
        assert_eq!(enforcer.zeroed, 2);
        // A step zeroes with the mask it knows; after a prune event that mask is stale.
        let model = step(model);
        let (model, _) = pruner.prune(model, 2, Amount::Sparsity(0.8), None).unwrap();
        let model = enforcer.enforce(model);
        assert_eq!(enforcer.zeroed, 2, "the step zeroed with the previous mask");
        let model = enforcer.enforce(step(model));
        assert_eq!(enforcer.zeroed, 1, "the slot has the new mask");
        let mut w = model.weight.val().into_data().try_to_vec::<f32>().unwrap();
        w.extend(
            model
                .bias
                .unwrap()
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
        );
        assert_eq!(w.iter().filter(|w| **w == 0.0).count(), 496, "80 % of 620");
    }

    /// Adds 1 to every float parameter, keeping it trainable.
    struct Shift;

    impl ModuleMapper for Shift {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|t| t.detach().add_scalar(1.0).detach().require_grad())
        }
    }
}
