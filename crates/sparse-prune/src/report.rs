//! [`SparsityReport`]: parameters, non-zeros and sparsity per parameter and in total.

use std::fmt;

use burn::module::Module;
use serde::{Deserialize, Serialize};

use crate::snapshot::snapshot;

/// One parameter's row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    /// Dotted path (`fc1.weight`).
    pub path: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Entries.
    pub params: u64,
    /// Non-zero entries of the effective (masked) weight.
    pub nonzeros: u64,
    /// Whether the parameter has a pruning mask.
    pub masked: bool,
}

impl ReportRow {
    /// `1 - nonzeros / params`.
    pub fn sparsity(&self) -> f64 {
        1.0 - self.nonzeros as f64 / self.params.max(1) as f64
    }
}

/// Per-parameter and total sparsity of a model, tied parameters counted once.
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::tensor::Device;
/// use sparse_prune::SparsityReport;
/// let layer = LinearConfig::new(4, 3).init(&Device::flex());
/// let report = SparsityReport::of(&layer);
/// assert_eq!(report.rows.len(), 2);
/// assert_eq!(report.params(), 15);
/// println!("{report}");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SparsityReport {
    /// One row per float parameter, in module order.
    pub rows: Vec<ReportRow>,
}

impl SparsityReport {
    /// Read the model's weights and masks (one host transfer per parameter).
    pub fn of<M: Module>(model: &M) -> Self {
        let rows = snapshot(model, true, None)
            .into_iter()
            .map(|p| {
                let nonzeros = match &p.pruned {
                    Some(m) => p
                        .weight
                        .iter()
                        .zip(m)
                        .filter(|(w, m)| !**m && **w != 0.0)
                        .count(),
                    None => p.weight.iter().filter(|w| **w != 0.0).count(),
                };
                ReportRow {
                    params: p.numel() as u64,
                    nonzeros: nonzeros as u64,
                    masked: p.pruned.is_some(),
                    path: p.path,
                    shape: p.shape,
                }
            })
            .collect();
        Self { rows }
    }

    /// Total entries.
    pub fn params(&self) -> u64 {
        self.rows.iter().map(|r| r.params).sum()
    }

    /// Total non-zero entries.
    pub fn nonzeros(&self) -> u64 {
        self.rows.iter().map(|r| r.nonzeros).sum()
    }

    /// `1 - nonzeros / params` over the whole model.
    pub fn sparsity(&self) -> f64 {
        1.0 - self.nonzeros() as f64 / self.params().max(1) as f64
    }

    /// `params / nonzeros` over the whole model.
    pub fn compression(&self) -> f64 {
        self.params() as f64 / self.nonzeros().max(1) as f64
    }

    /// The report as JSON (rows plus totals).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "rows": self.rows.iter().map(|r| serde_json::json!({
                "path": r.path, "shape": r.shape, "params": r.params,
                "nonzeros": r.nonzeros, "sparsity": r.sparsity(), "masked": r.masked,
            })).collect::<Vec<_>>(),
            "params": self.params(),
            "nonzeros": self.nonzeros(),
            "sparsity": self.sparsity(),
            "compression": self.compression(),
        })
        .to_string()
    }
}

impl fmt::Display for SparsityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self
            .rows
            .iter()
            .map(|r| r.path.len())
            .max()
            .unwrap_or(5)
            .max(5);
        writeln!(
            f,
            "{:<w$}  {:>16}  {:>10}  {:>10}  {:>8}",
            "param", "shape", "params", "nonzeros", "sparsity"
        )?;
        for r in &self.rows {
            let shape = format!("{:?}", r.shape);
            writeln!(
                f,
                "{:<w$}  {:>16}  {:>10}  {:>10}  {:>7.2}%{}",
                r.path,
                shape,
                r.params,
                r.nonzeros,
                100.0 * r.sparsity(),
                if r.masked { "" } else { "  (not masked)" }
            )?;
        }
        write!(
            f,
            "{:<w$}  {:>16}  {:>10}  {:>10}  {:>7.2}%  ({:.1}x)",
            "total",
            "",
            self.params(),
            self.nonzeros(),
            100.0 * self.sparsity(),
            self.compression()
        )
    }
}
