//! [`Selection`]: which parameters the decay (and sparse-prune's pruner) act on.

use burn::module::{Module, ParamGroup};
use serde::{Deserialize, Serialize};

use crate::{ConfigError, ParamInfo, float_params};

/// The parameters a decay or a pruner acts on.
///
/// The default, [`Selection::Weights`], is what users of other pruning tools expect: the
/// float parameters of rank >= 2 (linear and convolution weights, embeddings), not biases or
/// normalisation gains. [`Selection::All`] is the paper's choice: every float parameter.
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::tensor::Device;
/// use sparse_reg::Selection;
///
/// let layer = LinearConfig::new(3, 2).init(&Device::flex());
/// let paths = |s: Selection| -> Vec<String> {
///     s.params(&layer).into_iter().map(|p| p.path).collect()
/// };
/// assert_eq!(paths(Selection::Weights), ["weight"]);
/// assert_eq!(paths(Selection::All), ["weight", "bias"]);
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub enum Selection {
    /// Every float parameter of rank >= 2 (the default).
    #[default]
    Weights,
    /// Every float parameter, biases and normalisation parameters included (the paper).
    All,
    /// The parameters a Burn [`ParamGroup`] matches (by id or dotted path).
    Group(ParamGroup),
}

impl Selection {
    /// Whether the parameter `info` is selected.
    pub fn matches(&self, info: &ParamInfo) -> bool {
        match self {
            Selection::Weights => info.shape.len() >= 2,
            Selection::All => true,
            Selection::Group(g) => g.matches(&info.id, Some(&info.path)),
        }
    }

    /// The selected float parameters of `module`, in traversal order.
    pub fn params<M: Module>(&self, module: &M) -> Vec<ParamInfo> {
        float_params(module)
            .into_iter()
            .filter(|p| self.matches(p))
            .collect()
    }

    /// The selected parameters of `module` (at least one) as a Burn [`ParamGroup`] of their
    /// paths. Errors, naming `field` and listing the module's parameters, when the selection
    /// matches none.
    pub fn group<M: Module>(&self, module: &M, field: &str) -> Result<ParamGroup, ConfigError> {
        let selected = self.params(module);
        if selected.is_empty() {
            let all: Vec<String> = float_params(module).into_iter().map(|p| p.path).collect();
            return Err(ConfigError::new(
                field,
                format!(
                    "the selection matches no float parameter of the model (its parameters: {})",
                    all.join(", ")
                ),
            ));
        }
        Ok(match self {
            Selection::All => ParamGroup::all(),
            Selection::Group(g) => g.clone(),
            Selection::Weights => {
                ParamGroup::from_paths(selected.into_iter().map(|p| p.path).collect())
            }
        })
    }
}

impl From<Option<ParamGroup>> for Selection {
    /// `None` selects every parameter (`Selection::All`), `Some(group)` the group.
    fn from(group: Option<ParamGroup>) -> Self {
        group.map_or(Selection::All, Selection::Group)
    }
}
