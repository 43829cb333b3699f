//! What the image-classification examples (LeNet, CIFAR) share: accuracy, the best checkpoint
//! above the floor, the progress record of a checkpoint, the summary lines and the plot.

use std::path::{Path, PathBuf};

use burn::module::Module;

use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};
use sparse_models::ImageClassifier;
use sparse_prune::SparsityReport;

use crate::run::{self, Error};

/// The sparsest checkpoint whose validation accuracy passed the floor.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Best {
    /// Fraction of the prunable weights left.
    pub remaining: f64,
    /// Parameters / non-zero parameters.
    pub compression: f64,
    /// Validation accuracy.
    pub val_acc: f64,
    /// Test accuracy.
    pub test_acc: f64,
    /// Optimizer step.
    pub step: u64,
}

impl Best {
    /// Keep `best` the sparsest checkpoint above `floor`: replaced by this one if it passes
    /// and has fewer weights left.
    ///
    /// ```
    /// use sparse_examples::classify::Best;
    /// let mut best = None;
    /// Best::update(&mut best, 0.5, 2.0, 0.91, 0.90, 100, 0.9);
    /// Best::update(&mut best, 0.3, 3.3, 0.89, 0.88, 200, 0.9); // below the floor
    /// assert_eq!(best.unwrap().step, 100);
    /// ```
    pub fn update(
        best: &mut Option<Best>,
        remaining: f64,
        compression: f64,
        val_acc: f64,
        test_acc: f64,
        step: u64,
        floor: f64,
    ) {
        if val_acc > floor && best.as_ref().is_none_or(|b| remaining < b.remaining) {
            *best = Some(Best {
                remaining,
                compression,
                val_acc,
                test_acc,
                step,
            });
        }
    }
}

/// Where a run stands: written last in each checkpoint.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Progress {
    /// Optimizer steps done.
    pub step: u64,
    /// The best checkpoint so far.
    pub best: Option<Best>,
    /// Validation accuracy of the dense start.
    pub dense_val: f64,
    /// Test accuracy of the dense start.
    pub dense_test: f64,
    /// The validation floor of the run.
    pub floor: f64,
}

/// The dense model a run started from: `dense/model.bpk` and this record (`dense.json`) in
/// the run directory; `--from` starts other runs from it, so they share their dense start.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct DenseRecord {
    /// The model, as `--model` names it.
    pub model: String,
    /// Seed of the dense run.
    pub seed: u64,
    /// Epochs of dense training.
    pub epochs: usize,
    /// The epoch whose model was kept (the best on validation), when it was chosen; records
    /// written before this field existed kept the last epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_epoch: Option<usize>,
    /// Validation accuracy reached.
    pub val_acc: f64,
    /// Test accuracy reached.
    pub test_acc: f64,
}

impl DenseRecord {
    /// What a corrupt dense start's message says to do.
    const REMEDY: &str = "restore the file, or train a new dense start (a run without --from)";

    /// Save `model` (`model.bpk`) and this record (`dense.json`) as the directory `dir`,
    /// atomically and with the SHA-256 of each file ([`run::write_dir_atomically`]): a kill
    /// leaves the previous `dir` or the new one, and [`load`](Self::load) refuses a file
    /// changed after it was written. Errors name the file.
    pub fn save<M: Module>(&self, dir: &Path, model: &M) -> Result<(), Error> {
        let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
            return Err(format!(
                "{}: not a directory to save a dense start in",
                dir.display()
            )
            .into());
        };
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("{}: cannot create: {e}", parent.display()))?;
        let json = serde_json::to_string_pretty(self)?;
        run::write_dir_atomically(parent, &name.to_string_lossy(), |tmp| {
            let file = tmp.join("model.bpk");
            model
                .clone()
                .save_file(&file)
                .map_err(|e| format!("{}: cannot write: {e}", file.display()))?;
            let file = tmp.join("dense.json");
            std::fs::write(&file, &json)
                .map_err(|e| format!("{}: cannot write: {e}", file.display()))?;
            Ok(())
        })
    }

    /// The dense start saved under `dir` (a `dense/` directory or a run directory holding
    /// one) for a `model`; returns the record and the model file. Its files are verified
    /// against their checksums first ([`run::verify_sealed`]); a dense start written before
    /// checksums existed loads, with a warning.
    pub fn load(dir: &Path, model: &str) -> Result<(Self, PathBuf), Error> {
        let dir = if dir.join("dense").is_dir() {
            dir.join("dense")
        } else {
            dir.to_path_buf()
        };
        if dir.join("dense.json").exists() || dir.join(run::CHECKSUMS).exists() {
            run::verify_sealed(&dir, "the dense start", Self::REMEDY)?;
        }
        let file = dir.join("dense.json");
        let text = std::fs::read_to_string(&file).map_err(|e| {
            format!(
                "{}: cannot read the dense start record: {e}",
                file.display()
            )
        })?;
        let record: Self = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: not a dense start record of this example: {e}",
                file.display()
            )
        })?;
        if record.model != model {
            return Err(format!(
                "{}: the dense start is a {}, this run trains a {model} (--model)",
                file.display(),
                record.model
            )
            .into());
        }
        Ok((record, dir.join("model.bpk")))
    }
}

/// Accuracy of `model` (in inference mode) on `n` examples, `batch` turning indices into
/// images and labels on a device.
pub fn accuracy<M: ImageClassifier>(
    model: &M,
    n: usize,
    device: &Device,
    batch: impl Fn(&[usize], &Device) -> (Tensor<4>, Tensor<1, Int>),
) -> f64 {
    let model = model.valid();
    let device = device.clone().inner();
    let mut correct = 0i64;
    let idx: Vec<usize> = (0..n).collect();
    for chunk in idx.chunks(500) {
        let (x, y) = batch(chunk, &device);
        let pred = model.logits(x).argmax(1).flatten::<1>(0, 1);
        correct += pred.equal(y).int().sum().into_scalar::<i64>();
    }
    correct as f64 / n.max(1) as f64
}

/// The run's figure, `png`: test and validation accuracy against compression (one point per
/// check of `metrics.csv`, whose columns are [`METRICS_HEADER`]) on a log axis, the dense test
/// accuracy, the validation floor and the reported checkpoint, titled with the model, the data
/// and the method. The rest is read beside `metrics.csv`: `summary.json` (dense accuracies,
/// best checkpoint, model, method, and `floor` where the example writes it), `config.json` (the
/// data set) and, for a floor not in the summary, the last checkpoint's `progress.json` (or a
/// record's).
pub fn plot_accuracy(metrics: &Path, total_params: u64, png: &Path) -> Result<(), Error> {
    use crate::plot::{Curve, Figure, Level, Mark, PALETTE, XAxis};
    let dir = metrics.parent().unwrap_or(Path::new("."));
    let json = |name: &str| -> serde_json::Value {
        std::fs::read_to_string(dir.join(name))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    };
    let (summary, config) = (json("summary.json"), json("config.json"));
    let compression = |alive: f64| total_params as f64 / alive.max(1.0);
    let curve = |label: &str, column: usize, color: [u8; 3]| -> Result<Curve, Error> {
        let points = crate::run::csv_columns(metrics, 4, column)?
            .into_iter()
            .map(|(alive, acc)| (compression(alive), 100.0 * acc))
            .collect();
        Ok(Curve {
            label: label.into(),
            color,
            points,
            band: vec![],
        })
    };
    let mut levels = vec![];
    if let Some(dense) = summary["dense_test_acc"].as_f64() {
        levels.push(Level {
            label: format!("dense test ({:.2} %)", 100.0 * dense),
            y: 100.0 * dense,
            color: [90, 90, 90],
            dashed: false,
        });
    }
    let floor = summary["floor"].as_f64().or_else(|| {
        ["checkpoint/progress.json", "progress.json"]
            .iter()
            .find_map(|f| json(f)["floor"].as_f64())
    });
    if let Some(floor) = floor {
        levels.push(Level {
            label: format!("validation floor ({:.1} %)", 100.0 * floor),
            y: 100.0 * floor,
            color: [200, 30, 30],
            dashed: true,
        });
    }
    let best = &summary["best"];
    let marks = match (best["compression"].as_f64(), best["test_acc"].as_f64()) {
        (Some(c), Some(t)) => vec![Mark {
            label: format!("reported checkpoint ({c:.0}x, test {:.2} %)", 100.0 * t),
            at: (c, 100.0 * t),
            color: [0, 0, 0],
        }],
        _ => vec![],
    };
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_string();
    let figure = Figure {
        title: format!(
            "{} on {}, {}",
            text(&summary["model"]),
            text(&config["dataset"]),
            text(&summary["method"])
        ),
        x_label: "compression (all weights / weights left)".into(),
        y_label: "accuracy (%)".into(),
        x_axis: XAxis::Compression,
        curves: vec![
            curve("validation", 2, PALETTE[1])?,
            curve("test", 3, PALETTE[0])?,
        ],
        levels,
        marks,
    };
    figure.save_png(png)?;
    Ok(())
}

/// The closing line: the best checkpoint, or why there is none.
pub fn best_line(best: Option<&Best>, floor: f64, dense_val: f64, dense_test: f64) -> String {
    match best {
        Some(b) => format!(
            "sparsest checkpoint above the {:.1} % floor: step {}, {:.3} % of the weights left \
             ({:.0}x), validation {:.2} %, test {:.2} % (dense test {:.2} %)",
            100.0 * floor,
            b.step,
            100.0 * b.remaining,
            b.compression,
            100.0 * b.val_acc,
            100.0 * b.test_acc,
            100.0 * dense_test
        ),
        None => format!(
            "no checkpoint passed the {:.1} % validation floor (dense validation {:.2} %): lower \
             --floor or train longer",
            100.0 * floor,
            100.0 * dense_val
        ),
    }
}

/// The columns of `metrics.csv`: one row per prune check.
pub const METRICS_HEADER: &str = "step,epoch,val_acc,test_acc,alive,sparsity,gamma";

/// What one prune check of an image classifier measured, before the pruner decides.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Check {
    /// Optimizer steps done.
    pub step: u64,
    /// `step` in epochs of the training set.
    pub epoch: f64,
    /// Validation accuracy.
    pub val_acc: f64,
    /// Test accuracy.
    pub test_acc: f64,
}

impl Check {
    /// Write this check's row of `metrics.csv` ([`METRICS_HEADER`]) and fold it into `best`
    /// (the sparsest checkpoint above `floor`); returns the model's sparsity report.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use sparse_examples::classify::{Best, Check};
    /// use sparse_models::LeNet300;
    ///
    /// let model = LeNet300::new(&Device::flex());
    /// let check = Check { step: 250, epoch: 0.5, val_acc: 0.92, test_acc: 0.91 };
    /// let (mut csv, mut best) = (Vec::new(), None::<Best>);
    /// let report = check.record(&model, 1e-3, 0.9, &mut csv, &mut best).unwrap();
    /// // A fresh model: (almost) no weight is exactly 0 (a random init can draw a 0).
    /// assert!(report.sparsity() < 1e-4);
    /// let row = String::from_utf8(csv).unwrap();
    /// assert!(row.starts_with("250,0.500,0.92000,0.91000,2666"), "{row}");
    /// assert!(row.ends_with(",1.000e-3\n"), "{row}");
    /// assert_eq!(best.unwrap().step, 250);
    /// ```
    pub fn record<M: Module>(
        &self,
        model: &M,
        gamma: f64,
        floor: f64,
        csv: &mut impl std::io::Write,
        best: &mut Option<Best>,
    ) -> Result<SparsityReport, Error> {
        let report = SparsityReport::of(model);
        writeln!(
            csv,
            "{},{:.3},{:.5},{:.5},{},{:.6},{gamma:.3e}",
            self.step,
            self.epoch,
            self.val_acc,
            self.test_acc,
            report.nonzeros(),
            report.sparsity(),
        )?;
        Best::update(
            best,
            1.0 - report.sparsity(),
            report.compression(),
            self.val_acc,
            self.test_acc,
            self.step,
            floor,
        );
        Ok(report)
    }

    /// The check's line of the log, with the prune it led to, if any.
    pub fn line(&self, report: &SparsityReport, pruned_to: Option<f64>) -> String {
        format!(
            "step {:6} (epoch {:5.2}): validation {:.2} %, test {:.2} %, {:.3} % left{}",
            self.step,
            self.epoch,
            100.0 * self.val_acc,
            100.0 * self.test_acc,
            100.0 * (1.0 - report.sparsity()),
            pruned_to.map_or(String::new(), |s| format!(
                " -> pruned to {:.3} %",
                100.0 * (1.0 - s)
            ))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::Device;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("classify-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn record() -> DenseRecord {
        DenseRecord {
            model: "lenet5".into(),
            seed: 7,
            epochs: 2,
            kept_epoch: Some(2),
            val_acc: 0.9,
            test_acc: 0.89,
        }
    }

    #[test]
    fn a_dense_start_changed_after_it_was_written_is_refused_by_name() {
        let out = scratch("dense-checksum");
        let model = LinearConfig::new(4, 2).init(&Device::flex());
        let dense = out.join("dense");
        record().save(&dense, &model).unwrap();
        // Written as a sealed directory: no temporary one left, checksums beside the files.
        let names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["dense"]);
        assert!(dense.join(run::CHECKSUMS).is_file());
        let (r, file) = DenseRecord::load(&out, "lenet5").unwrap();
        assert_eq!((r.seed, file.clone()), (7, dense.join("model.bpk")));

        // The fault: one byte flipped in the model file of the dense start `--from` loads.
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        std::fs::write(&file, &bytes).unwrap();
        let err = DenseRecord::load(&out, "lenet5").unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: checksum mismatch (the file changed after the dense start was written): \
                 the dense start is corrupt; restore the file, or train a new dense start (a \
                 run without --from)",
                file.display()
            )
        );
        assert_eq!(std::fs::read(&file).unwrap(), bytes, "nothing rewritten");
        // The record deleted: named as missing (also when `--from` names `dense/` itself).
        record().save(&dense, &model).unwrap();
        std::fs::remove_file(dense.join("dense.json")).unwrap();
        let err = DenseRecord::load(&dense, "lenet5").unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}: missing (the dense start was written with it)",
                dense.join("dense.json").display()
            )),
            "{err}"
        );

        // A dense start written before checksums existed still loads.
        record().save(&dense, &model).unwrap();
        std::fs::remove_file(dense.join(run::CHECKSUMS)).unwrap();
        assert!(DenseRecord::load(&out, "lenet5").is_ok());
        std::fs::remove_dir_all(&out).ok();
    }

    #[test]
    fn a_dense_start_that_cannot_be_written_is_named() {
        let out = scratch("dense-unwritable");
        let model = LinearConfig::new(4, 2).init(&Device::flex());
        // The fault: a file where the run directory should be (as a read-only or full disk
        // would refuse the directory): the error names it, nothing is written.
        let blocked = out.join("run");
        std::fs::write(&blocked, b"not a directory").unwrap();
        let err = record()
            .save(&blocked.join("dense"), &model)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("{}: cannot create: ", blocked.display())),
            "{err}"
        );
        assert_eq!(std::fs::read(&blocked).unwrap(), b"not a directory");
        // A `dense.tmp` that cannot be created (a file in its way).
        let run_dir = out.join("run2");
        std::fs::create_dir_all(&run_dir).unwrap();
        let tmp = run_dir.join("dense.tmp");
        std::fs::write(&tmp, b"x").unwrap();
        let err = record()
            .save(&run_dir.join("dense"), &model)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("{}: cannot create: ", tmp.display())),
            "{err}"
        );
        assert!(!run_dir.join("dense").exists());
        std::fs::remove_dir_all(&out).ok();
    }
}
