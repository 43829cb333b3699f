//! `--masking`: where the examples' pruning masks act (see [`sparse_prune::Masking`]).

use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use sparse_prune::Masking;

/// Where the pruning masks act. Both train the same model, bit for bit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaskingArg {
    /// The pruned weights are set back to 0 after each optimizer step (one in-place pass).
    #[default]
    InPlace,
    /// The masks multiply the weights in every forward pass (and their gradients).
    Forward,
}

impl From<MaskingArg> for Masking {
    /// ```
    /// use sparse_examples::masking::MaskingArg;
    /// use sparse_prune::Masking;
    ///
    /// assert_eq!(Masking::from(MaskingArg::InPlace), Masking::InPlace);
    /// assert_eq!(Masking::from(MaskingArg::Forward), Masking::Forward);
    /// ```
    fn from(m: MaskingArg) -> Self {
        match m {
            MaskingArg::InPlace => Masking::InPlace,
            MaskingArg::Forward => Masking::Forward,
        }
    }
}
