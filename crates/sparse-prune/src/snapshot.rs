//! Host copies of a model's parameters, masks and gradients (read at prune events and for
//! reports; never on the training hot path).

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Bool, Tensor};

/// One float parameter, with what the caller asked for.
#[derive(Clone, Debug)]
pub(crate) struct ParamSnapshot {
    pub path: String,
    pub id: ParamId,
    pub shape: Vec<usize>,
    /// The stored base values (empty when weights were not requested).
    pub weight: Vec<f32>,
    /// The mask (`true` = pruned), when the parameter has one (always read).
    pub pruned: Option<Vec<bool>>,
    /// The gradient, when gradients were given and hold one for this parameter.
    pub grad: Option<Vec<f32>>,
}

impl ParamSnapshot {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The values of a float tensor as `f32` on the host.
pub(crate) fn host_f32<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("an f32 tensor converts to a Vec<f32>")
}

/// The values of a bool tensor on the host. Backends store booleans differently (native, u8,
/// u32 on wgpu): they are read as ints.
pub(crate) fn host_bools<const D: usize>(tensor: Tensor<D, Bool>) -> Vec<bool> {
    tensor
        .int()
        .into_data()
        .convert::<i32>()
        .try_to_vec::<i32>()
        .expect("an int tensor converts to a Vec<i32>")
        .into_iter()
        .map(|v| v != 0)
        .collect()
}

/// Snapshot every float parameter of `model` (tied ones once), in traversal order.
pub(crate) fn snapshot<M: Module>(
    model: &M,
    weights: bool,
    grads: Option<&GradientsParams>,
) -> Vec<ParamSnapshot> {
    let mut v = Snapshotter {
        path: vec![],
        weights,
        grads,
        out: vec![],
    };
    model.visit(&mut v);
    v.out
}

struct Snapshotter<'a> {
    path: Vec<String>,
    weights: bool,
    grads: Option<&'a GradientsParams>,
    out: Vec<ParamSnapshot>,
}

pub(crate) const MASK_SUFFIX: &str = ".prune_mask.pruned";

impl ModuleVisitor for Snapshotter<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = self.path.join(".");
        if sparse_reg::is_running_statistic(&path) || self.out.iter().any(|p| p.id == param.id) {
            return;
        }
        let grad = self.grads.and_then(|g| g.get::<D>(param.id)).map(host_f32);
        self.out.push(ParamSnapshot {
            path,
            id: param.id,
            shape: param.lazy_shape().as_slice().to_vec(),
            weight: if self.weights {
                host_f32(param.val())
            } else {
                vec![]
            },
            pruned: None,
            grad,
        });
    }

    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<D, Bool>>) {
        let path = self.path.join(".");
        let Some(owner) = path.strip_suffix(MASK_SUFFIX) else {
            return;
        };
        // The base was visited just before its reparameterization state.
        if let Some(last) = self.out.iter_mut().rev().find(|p| p.path == owner) {
            last.pruned = Some(host_bools(param.val()));
        }
    }
}
