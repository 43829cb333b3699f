//! `cargo xtask reproduce text`: validation bits per character of the Transformer language
//! model at 50 / 70 / 80 / 90 % sparsity, the method against magnitude-only, over seeds; the
//! table goes into `docs/RESULTS.md`.
//!
//! Every run is a run directory of `examples/text_generation.rs`: the same seed gives the same
//! dense start (the dense phase is deterministic), then the pruning phase removes `--fraction`
//! of the alive weights every `--every` steps with the gate open (a large `--slack`, unless
//! `--slack` is given to this command), so that
//! each method is measured at the same sparsity levels after the same recovery steps. A
//! finished run (summary.json) is not run again; `--report-only` rebuilds the table.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::reproduce::{busy, launch, spread};

/// What to run.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Methods (`--method` of the example), comma separated.
    #[arg(long, value_delimiter = ',', default_value = METHODS)]
    pub methods: Vec<String>,
    /// Seeds, comma separated.
    #[arg(long, value_delimiter = ',', default_value = SEEDS)]
    pub seeds: Vec<u64>,
    /// gamma of the relevance method (the paper's Transformers: 1e-5).
    #[arg(long, default_value_t = 1e-5)]
    pub gamma: f64,
    /// Dense steps before pruning.
    #[arg(long, default_value_t = 2000)]
    pub dense_steps: u64,
    /// Steps of the pruning phase (12 checks of 50 steps reach 91 % at fraction 0.2).
    #[arg(long, default_value_t = 600)]
    pub steps: u64,
    /// Prune every this many steps of the pruning phase.
    #[arg(long, default_value_t = 50)]
    pub every: u64,
    /// Fraction of the alive weights removed at each prune.
    #[arg(long, default_value_t = 0.2)]
    pub fraction: f64,
    /// Gate the pruning as the paper does: prune only while validation bits per character
    /// stay below dense * (1 + SLACK). Without it the gate is open (every check prunes), so
    /// that methods are compared at the same sparsities. The table then also gives the
    /// sparsest checkpoint within that floor.
    #[arg(long)]
    pub slack: Option<f64>,
    /// Model and batch: `--d-model --layers --heads --context --batch` of the example.
    #[arg(long, default_value = "64,2,4,64,32", value_delimiter = ',')]
    pub shape: Vec<usize>,
    /// Fraction of the text held out as the test split (`--test-fraction` of the example):
    /// the tables then report test bits per character; 0 reproduces the runs recorded before
    /// the split existed (validation only).
    #[arg(long, default_value_t = 0.1)]
    pub test_fraction: f64,
    /// Root of the run directories.
    #[arg(long, default_value = "runs/reproduce/text")]
    pub out: PathBuf,
    /// Use this build of the example instead of building one.
    #[arg(long)]
    pub exe: Option<PathBuf>,
    /// Only rebuild the table from the runs already there.
    #[arg(long)]
    pub report_only: bool,
}

const LEVELS: [f64; 4] = [0.5, 0.7, 0.8, 0.9];

/// The whole grid: the defaults of `--methods` and `--seeds`.
const METHODS: &str = "relevance,magnitude";
const SEEDS: &str = "1,2,3";

impl Args {
    /// The scope of the table: the whole grid plus whatever this invocation names (a run of
    /// one seed rewrites the table at its end and must not drop the other seeds from it).
    pub fn whole_grid(&self) -> Args {
        Args {
            methods: crate::reproduce::union(METHODS, &self.methods),
            seeds: crate::reproduce::union(SEEDS, &self.seeds),
            ..self.clone()
        }
    }
}

pub fn run(args: &Args, root: &Path) -> Result<(), String> {
    if let Some(slack) = args.slack.filter(|s| !(s.is_finite() && *s >= 0.0)) {
        return Err(format!(
            "--slack: expected a non-negative number, got {slack}"
        ));
    }
    if args.shape.len() != 5 {
        return Err(format!(
            "--shape: expected d_model,layers,heads,context,batch (5 numbers), got {:?}",
            args.shape
        ));
    }
    let out = root.join(&args.out);
    let records = crate::records::dir_for(root, &args.out);
    if !args.report_only {
        let exe = match &args.exe {
            Some(exe) => exe.clone(),
            None => {
                let status = Command::new("cargo")
                    .current_dir(root)
                    .args(["build", "--release", "--example", "text_generation"])
                    .status()
                    .map_err(|e| format!("cannot run cargo: {e}"))?;
                if !status.success() {
                    return Err("cargo build --release --example text_generation failed".into());
                }
                root.join("target/release/examples/text_generation")
            }
        };
        for seed in &args.seeds {
            for method in &args.methods {
                let name = format!("{method}-s{seed}");
                let dir = out.join(&name);
                crate::records::keep(&dir, &records.join(&name), "summary.json", &RECORDED)?;
                if crate::records::finished(&dir, &records.join(&name), "summary.json") {
                    continue;
                }
                crate::park::unpark(&dir, &records.join(&name))?;
                if let Some(pid) = busy(&dir) {
                    eprintln!("skipping {}: being run by process {pid}", dir.display());
                    continue;
                }
                let s = &args.shape;
                let mut c = Command::new(&exe);
                crate::allocator::steady(&mut c);
                c.args(["--method", method, "--seed", &seed.to_string()])
                    .args(["--gamma", &args.gamma.to_string()])
                    .args([
                        "--d-model",
                        &s[0].to_string(),
                        "--layers",
                        &s[1].to_string(),
                    ])
                    .args(["--heads", &s[2].to_string(), "--context", &s[3].to_string()])
                    .args(["--batch", &s[4].to_string()])
                    .args(["--dense-steps", &args.dense_steps.to_string()])
                    .args(["--steps", &args.steps.to_string()])
                    .args(["--every", &args.every.to_string()])
                    .args(["--fraction", &args.fraction.to_string()])
                    .args(["--test-fraction", &args.test_fraction.to_string()])
                    .args(["--slack", &args.slack.unwrap_or(100.0).to_string()])
                    .args(["--generate", "200", "--quiet"])
                    .arg("--out")
                    .arg(&dir);
                // An interrupted run continues from its last check.
                let started = ["checkpoint", "checkpoint.old"]
                    .iter()
                    .any(|c| dir.join(c).join("progress.json").exists());
                c.arg(if started { "--resume" } else { "--force" });
                crate::records::stamp(&dir, &exe)?;
                launch(c, &dir)?;
                crate::records::keep(&dir, &records.join(&name), "summary.json", &RECORDED)?;
            }
        }
    }
    for seed in &args.seeds {
        for method in &args.methods {
            let name = format!("{method}-s{seed}");
            crate::records::keep(
                &out.join(&name),
                &records.join(&name),
                "summary.json",
                &RECORDED,
            )?;
        }
    }
    let (mut table, found) = report(&args.whole_grid(), &out, &records)?;
    if found == 0 {
        return Err(format!(
            "no runs under {} and no records under {}: docs/RESULTS.md is left as it is",
            out.display(),
            records.display()
        ));
    }
    table.push_str(&figure(&args.whole_grid(), &out, &records)?);
    crate::markers::write_results(
        root,
        "cargo xtask reproduce text",
        &args.out,
        "runs/reproduce/text",
        &table,
    )
}

/// The files of a finished run the table is built from: `(in the run, in the record)`.
const RECORDED: [(&str, &str); 4] = [
    ("config.json", "config.json"),
    (crate::records::PROVENANCE, crate::records::PROVENANCE),
    ("metrics.csv", "metrics.csv"),
    ("summary.json", "summary.json"),
];

/// What a finished run reached.
struct Outcome {
    dense: f64,
    /// bpc at the first check at >= each of `LEVELS`.
    at: Vec<Option<f64>>,
    /// `(sparsity, bpc)` of the sparsest checkpoint within the run's floor.
    best: Option<(f64, f64)>,
    /// The lowest bpc of the checks at >= 80 % sparsity.
    low80: Option<f64>,
    /// Every check: `(sparsity, bpc)`.
    rows: Vec<(f64, f64)>,
    /// The gate's floor (bits per character).
    floor: Option<f64>,
    /// The same on the test text, when the run has one (`--test-fraction`): dense, at each of
    /// `LEVELS`, at the sparsest checkpoint within the floor.
    test: Option<TestOutcome>,
}

/// Test bits per character of a run with a test split.
struct TestOutcome {
    dense: f64,
    /// Every check: `(sparsity, test bpc)`.
    rows: Vec<(f64, f64)>,
    at: Vec<Option<f64>>,
    best: Option<f64>,
}

fn outcome(run: &Path) -> Option<Outcome> {
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).ok()?).ok()?;
    let dense = summary["dense_val_bpc"].as_f64()?;
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).ok()?;
    let parsed: Vec<(f64, f64, Option<f64>)> = metrics
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let test = f.get(4).and_then(|t| t.parse().ok());
            Some((f.get(1)?.parse().ok()?, f.get(3)?.parse().ok()?, test))
        })
        .collect();
    let rows: Vec<(f64, f64)> = parsed.iter().map(|r| (r.0, r.1)).collect();
    let test = summary["dense_test_bpc"].as_f64().map(|dense| TestOutcome {
        dense,
        rows: parsed
            .iter()
            .filter_map(|(_, s, t)| t.map(|t| (*s, t)))
            .collect(),
        at: LEVELS
            .iter()
            .map(|level| {
                parsed
                    .iter()
                    .find(|(_, s, _)| *s >= level - 1e-9)
                    .and_then(|r| r.2)
            })
            .collect(),
        best: summary["best"]["test_bpc"].as_f64(),
    });
    let at = LEVELS
        .iter()
        .map(|level| rows.iter().find(|(_, s)| *s >= level - 1e-9).map(|r| r.0))
        .collect();
    let best = summary["best"]["sparsity"]
        .as_f64()
        .zip(summary["best"]["val_bpc"].as_f64());
    let low80 = rows
        .iter()
        .filter(|(_, s)| *s >= 0.8 - 1e-9)
        .map(|r| r.0)
        .min_by(f64::total_cmp);
    Some(Outcome {
        dense,
        at,
        best,
        low80,
        rows: rows.iter().map(|(bpc, s)| (*s, *bpc)).collect(),
        floor: summary["floor"].as_f64(),
        test,
    })
}

/// The figure of the table: every method's validation bits per character against sparsity
/// (median over the seeds, min-max shaded), the dense value and, when gated, the floor;
/// returns its link.
fn figure(args: &Args, out: &Path, records: &Path) -> Result<String, String> {
    use crate::figures::{Runs, Spec, median};
    // With a test split the figure shows test bits per character (the table's cells).
    let test = args.methods.iter().any(|method| {
        args.seeds.iter().any(|seed| {
            let name = format!("{method}-s{seed}");
            outcome(&records.join(&name))
                .or_else(|| outcome(&out.join(&name)))
                .is_some_and(|o| o.test.is_some())
        })
    });
    let mut all = vec![];
    let runs: Vec<Runs> = args
        .methods
        .iter()
        .map(|method| {
            let found: Vec<Outcome> = args
                .seeds
                .iter()
                .filter_map(|seed| {
                    let name = format!("{method}-s{seed}");
                    outcome(&records.join(&name)).or_else(|| outcome(&out.join(&name)))
                })
                .collect();
            let seeds = found
                .iter()
                .map(|o| {
                    let rows = match &o.test {
                        Some(t) if test => &t.rows,
                        _ => &o.rows,
                    };
                    rows.iter().map(|(s, b)| (100.0 * s, *b)).collect()
                })
                .collect();
            all.extend(found);
            Runs {
                label: method.clone(),
                seeds,
            }
        })
        .collect();
    let dense: Vec<f64> = all
        .iter()
        .map(|o| match &o.test {
            Some(t) if test => t.dense,
            _ => o.dense,
        })
        .collect();
    let dense = median(&dense);
    let mut levels = vec![(format!("dense, median ({dense:.3})"), dense, false)];
    let floors: Vec<f64> = all.iter().filter_map(|o| o.floor).collect();
    // The gate's floor is on validation bits per character: not drawn on a test axis.
    if let (Some(slack), false, false) = (args.slack, floors.is_empty(), test) {
        let floor = median(&floors);
        levels.push((
            format!("gate: dense + {} %, median ({floor:.3})", 100.0 * slack),
            floor,
            true,
        ));
    }
    let spec = Spec {
        name: crate::figures::name(records, None),
        title: format!(
            "Transformer, Shakespeare: bits/char against sparsity ({})",
            match args.slack {
                Some(_) => format!("gated, {} steps", args.steps),
                None => format!("gate open, {} steps", args.steps),
            }
        ),
        x_label: "sparsity (% of the weights pruned)",
        y_label: if test {
            "test bits per character"
        } else {
            "validation bits per character"
        },
        x_axis: sparse_examples::plot::XAxis::Linear,
        levels,
    };
    crate::figures::write(&crate::figures::dir(records), &spec, &runs)
}

/// The table, and how many runs it is built from. With a test split (every run of the table
/// has one) the cells are test bits per character; choices (the floor, the reported checkpoint)
/// are still made on validation.
fn report(args: &Args, out: &Path, records: &Path) -> Result<(String, usize), String> {
    let s = &args.shape;
    let gated = args.slack.is_some();
    // Each method's finished runs: a record, or else a run directory.
    let mut rows: Vec<(&String, Vec<(Outcome, PathBuf)>)> = Vec::new();
    for method in &args.methods {
        let found: Vec<(Outcome, PathBuf)> = args
            .seeds
            .iter()
            .filter_map(|seed| {
                let name = format!("{method}-s{seed}");
                [records.join(&name), out.join(&name)]
                    .into_iter()
                    .find_map(|dir| outcome(&dir).map(|o| (o, dir)))
            })
            .collect();
        let dirs: Vec<PathBuf> = found.iter().map(|(_, d)| d.clone()).collect();
        crate::records::same_protocol(&format!("text, {method}"), &dirs)?;
        if !found.is_empty() {
            rows.push((method, found));
        }
    }
    let all: Vec<&Outcome> = rows.iter().flat_map(|r| r.1.iter().map(|f| &f.0)).collect();
    let with_test = all.iter().filter(|o| o.test.is_some()).count();
    if with_test != 0 && with_test != all.len() {
        return Err(format!(
            "{}: {with_test} of the {} runs have a test split and the others not: one table \
             holds runs of one protocol only",
            args.out.display(),
            all.len()
        ));
    }
    let test = with_test != 0;
    let what = if test { "test" } else { "validation" };
    let mut text = format!(
        "Built by `cargo xtask reproduce text` with the options below (`--report-only` rebuilds it) from the runs recorded under \
         `{}`: character-level Transformer (d_model {}, {} layers, {} heads, context {}, batch {}) \
         on the embedded Shakespeare, {} dense steps, then {} steps removing {} % of the alive \
         weights every {} steps {}, relevance gamma {}.{} Cells: {what} bits \
         per character at the first check at >= that sparsity ({} steps after the prune that \
         reached it), median (min-max) over the seeds; {}.\n\n",
        crate::records::dir_for(Path::new(""), &args.out).display(),
        s[0],
        s[1],
        s[2],
        s[3],
        s[4],
        args.dense_steps,
        args.steps,
        100.0 * args.fraction,
        args.every,
        match args.slack {
            Some(slack) => format!(
                "while validation bits per character stay below dense + {} % (the gate)",
                100.0 * slack
            ),
            None => "with the gate open".into(),
        },
        args.gamma,
        if test {
            format!(
                " The test text is the corpus' last {} % (the same for every seed); nothing is \
                 tuned or chosen on it: the gate, gamma and the reported checkpoint use \
                 validation.",
                100.0 * args.test_fraction
            )
        } else {
            String::new()
        },
        args.every,
        match (gated, test) {
            (true, true) => {
                "the column 'at 80 % vs dense' is the 80 % value relative to the run's own dense \
                 value, the last one the sparsest checkpoint whose validation bits per \
                 character stayed within the gate's floor (its sparsity and its test bits per \
                 character)"
            }
            (true, false) => {
                "the column 'at 80 % vs dense' is the 80 % value relative to the run's own dense \
                 value, 'lowest at >= 80 % vs dense' the lowest of all checks at >= 80 % \
                 sparsity relative to dense (the gate lets the model recover between prunes), \
                 the last one the sparsest checkpoint within the gate's floor (its sparsity and \
                 bits per character)"
            }
            (false, _) => "the last column is the 80 % value relative to the run's own dense value",
        },
    );
    let extra: &[&str] = match (gated, test) {
        (true, true) => &[" sparsest within the floor (test) |"],
        (true, false) => &[
            " lowest at >= 80 % vs dense |",
            " sparsest within the floor |",
        ],
        (false, _) => &[],
    };
    text.push_str(&format!(
        "| method | seeds | dense |{} at 80 % vs dense |{}\n|---|---|---|{}---|{}\n",
        LEVELS
            .iter()
            .map(|l| format!(" {:.0} % |", 100.0 * l))
            .collect::<String>(),
        extra.concat(),
        LEVELS.iter().map(|_| "---|").collect::<String>(),
        "---|".repeat(extra.len()),
    ));
    let mut count = 0;
    for (method, found) in &rows {
        count += found.len();
        let bpc = |v: f64| format!("{v:.3}");
        // The numbers the cells show: test or validation.
        let (dense, at): (Vec<f64>, Vec<Vec<Option<f64>>>) = found
            .iter()
            .map(|(o, _)| match &o.test {
                Some(t) if test => (t.dense, t.at.clone()),
                _ => (o.dense, o.at.clone()),
            })
            .unzip();
        let cells: String = (0..LEVELS.len())
            .map(|i| {
                let v: Vec<f64> = at.iter().filter_map(|a| a[i]).collect();
                format!(" {} |", spread(&v, bpc))
            })
            .collect();
        let rel: Vec<f64> = at
            .iter()
            .zip(&dense)
            .filter_map(|(a, d)| a[2].map(|b| 100.0 * (b / d - 1.0)))
            .collect();
        let rel = spread(&rel, |v| format!("{v:+.1} %"));
        let sparsest = |value: &dyn Fn(&Outcome) -> Option<f64>| {
            let sp: Vec<f64> = found
                .iter()
                .filter_map(|(o, _)| o.best.map(|b| 100.0 * b.0))
                .collect();
            let at: Vec<f64> = found.iter().filter_map(|(o, _)| value(o)).collect();
            format!(
                " {} at {} bits/char |",
                spread(&sp, |v| format!("{v:.1} %")),
                spread(&at, bpc)
            )
        };
        let best = match (gated, test) {
            (true, true) => sparsest(&|o| o.test.as_ref().and_then(|t| t.best)),
            (true, false) => {
                let low: Vec<f64> = found
                    .iter()
                    .filter_map(|(o, _)| o.low80.map(|b| 100.0 * (b / o.dense - 1.0)))
                    .collect();
                format!(
                    " {} |{}",
                    spread(&low, |v| format!("{v:+.1} %")),
                    sparsest(&|o| o.best.map(|b| b.1))
                )
            }
            (false, _) => String::new(),
        };
        text.push_str(&format!(
            "| {method} | {} | {} |{cells} {rel} |{best}\n",
            found.len(),
            spread(&dense, bpc)
        ));
    }
    let dirs: Vec<PathBuf> = rows
        .iter()
        .flat_map(|r| r.1.iter().map(|f| f.1.clone()))
        .collect();
    text.push('\n');
    text.push_str(&crate::records::provenance_line(&dirs));
    Ok((text, count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    /// A finished run: dense 2.0 bits/char, 2.5 at 80 % then 2.4, best checkpoint 62 % at 2.05.
    fn fake_run(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("summary.json"),
            r#"{"dense_val_bpc": 2.0, "best": {"sparsity": 0.62, "val_bpc": 2.05}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("metrics.csv"),
            "step,val_bpc,alive,sparsity\n100,2.0,10,0.5\n200,2.3,5,0.7\n300,2.5,2,0.8\n\
             400,2.4,2,0.8\n",
        )
        .unwrap();
    }

    #[test]
    fn a_gated_report_adds_the_sparsest_checkpoint_within_the_floor() {
        let out = std::env::temp_dir().join(format!("xtask-text-{}", std::process::id()));
        fake_run(&out.join("relevance-s1"));
        let open = Cli::parse_from(["x", "--methods", "relevance", "--seeds", "1"]).args;
        let row = |table: &str| {
            let mut rows = table.lines().filter(|l| l.starts_with("| relevance"));
            rows.next_back().unwrap().to_string()
        };
        let none = out.join("no-records");
        assert_eq!(
            row(&report(&open, &out, &none).unwrap().0),
            "| relevance | 1 | 2.000 | 2.000 | 2.300 | 2.500 | - | +25.0 % |"
        );
        let gated = Cli::parse_from([
            "x",
            "--methods",
            "relevance",
            "--seeds",
            "1",
            "--slack",
            "0.03",
        ])
        .args;
        let (table, found) = report(&gated, &out, &none).unwrap();
        assert_eq!(found, 1);
        assert!(table.contains("below dense + 3 % (the gate)"), "{table}");
        assert_eq!(
            row(&table),
            "| relevance | 1 | 2.000 | 2.000 | 2.300 | 2.500 | - | +25.0 % | +20.0 % | 62.0 % at 2.050 \
             bits/char |"
        );
        std::fs::remove_dir_all(&out).ok();
    }

    #[test]
    fn with_a_test_split_the_cells_are_test_bits_per_character_and_protocols_do_not_mix() {
        let out = std::env::temp_dir().join(format!("xtask-text-test-{}", std::process::id()));
        let run = out.join("l2-s1");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(
            run.join("summary.json"),
            r#"{"dense_val_bpc": 2.0, "dense_test_bpc": 2.2, "floor": 2.06,
                "best": {"sparsity": 0.7, "val_bpc": 2.05, "test_bpc": 2.31}}"#,
        )
        .unwrap();
        std::fs::write(
            run.join("metrics.csv"),
            "step,val_bpc,alive,sparsity,test_bpc\n100,2.0,10,0.5,2.2\n200,2.05,5,0.7,2.31\n\
             300,2.5,2,0.8,2.75\n",
        )
        .unwrap();
        let args = Cli::parse_from(["x", "--methods", "l2", "--seeds", "1", "--slack", "0.03"]);
        let none = out.join("no-records");
        let (table, _) = report(&args.args, &out, &none).unwrap();
        assert!(table.contains("Cells: test bits per character"), "{table}");
        let row = table.lines().find(|l| l.starts_with("| l2")).unwrap();
        assert_eq!(
            row,
            "| l2 | 1 | 2.200 | 2.200 | 2.310 | 2.750 | - | +25.0 % | 70.0 % at 2.310 bits/char |"
        );
        // A second method recorded without a test split: refused, not mixed in.
        fake_run(&out.join("relevance-s1"));
        let both = Cli::parse_from(["x", "--methods", "l2,relevance", "--seeds", "1"]);
        let err = report(&both.args, &out, &none).unwrap_err();
        assert!(
            err.ends_with(
                "1 of the 2 runs have a test split and the others not: one table holds runs of \
                 one protocol only"
            ),
            "{err}"
        );
        std::fs::remove_dir_all(&out).ok();
    }

    #[test]
    fn a_negative_slack_is_refused_by_name() {
        let args = Cli::parse_from(["x", "--slack=-0.1", "--report-only"]).args;
        assert_eq!(
            run(&args, Path::new("/nonexistent")).unwrap_err(),
            "--slack: expected a non-negative number, got -0.1"
        );
    }
}
