//! Listing a module's float parameters with their paths, and matching them to a [`ParamGroup`].

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;

/// One float parameter of a module: its dotted path (`fc1.weight`), id and shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamInfo {
    /// Dotted path, as Burn's `ParamGroup` path matchers see it.
    pub path: String,
    /// The parameter's id (tied parameters share one).
    pub id: ParamId,
    /// The shape.
    pub shape: Vec<usize>,
}

impl ParamInfo {
    /// Number of entries.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Every float parameter of `module`, in traversal order, tied parameters once.
///
/// Reparameterization state (such as pruning masks, which are boolean) is not listed; a
/// reparameterized parameter is listed by the path of its stored base. Running statistics
/// (BatchNorm's `running_mean` and `running_var`, which Burn's visitors report like float
/// parameters) are buffers, not parameters: not listed (see [`is_running_statistic`]).
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::tensor::Device;
/// let layer = LinearConfig::new(3, 2).init(&Device::flex());
/// let params = sparse_reg::float_params(&layer);
/// assert_eq!(params[0].path, "weight");
/// assert_eq!(params[0].shape, vec![3, 2]);
/// assert_eq!(params[1].path, "bias");
/// ```
pub fn float_params<M: Module>(module: &M) -> Vec<ParamInfo> {
    let mut visitor = Collector::default();
    module.visit(&mut visitor);
    visitor.params
}

/// Whether a float tensor visited at `path` is a running statistic rather than a parameter.
///
/// Burn 0.22 visits a `RunningState` buffer through `visit_float`, with no way to tell it
/// from a parameter but its field name; BatchNorm's `running_mean` and `running_var` are the
/// only ones in burn-nn. They have no gradient, take no decay and are never pruned.
///
/// ```
/// assert!(sparse_reg::is_running_statistic("blocks.0.bn1.running_var"));
/// assert!(!sparse_reg::is_running_statistic("blocks.0.bn1.gamma"));
/// ```
pub fn is_running_statistic(path: &str) -> bool {
    matches!(
        path.rsplit('.').next(),
        Some("running_mean" | "running_var")
    )
}

#[derive(Default)]
struct Collector {
    path: Vec<String>,
    params: Vec<ParamInfo>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = self.path.join(".");
        if is_running_statistic(&path) || self.params.iter().any(|p| p.id == param.id) {
            return;
        }
        self.params.push(ParamInfo {
            path,
            id: param.id,
            shape: param.lazy_shape().as_slice().to_vec(),
        });
    }
}
