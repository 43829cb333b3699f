//! Results that outlive the machine they were measured on.
//!
//! Run directories (`runs/...`) hold checkpoints and are not committed. The few small files
//! the tables are built from are copied, as soon as a run has finished, into a mirror under
//! `docs/results/` that is committed: a finished run is never run again on any machine, and
//! the tables of docs/RESULTS.md can always be rebuilt from the repository alone. Unfinished
//! runs travel between machines as parked copies (`crate::park`).

use std::path::{Path, PathBuf};

/// The record directory of the run root `out` (relative to the workspace `root`):
/// `runs/reproduce` -> `docs/results/reproduce`; a root outside `runs/` keeps its last name.
pub fn dir_for(root: &Path, out: &Path) -> PathBuf {
    let rel = match out.strip_prefix("runs") {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.to_path_buf(),
        _ => PathBuf::from(out.file_name().unwrap_or(out.as_os_str())),
    };
    root.join("docs/results").join(rel)
}

/// Copy `files` (`(path in the run, name in the record)`) of the finished run `run` into
/// `record`, when `run` has finished (its `summary` file exists) and `record` does not hold
/// it yet. A record is never overwritten: when the run differs from what is recorded, the
/// record is kept and a warning says so. Returns whether anything was copied.
pub fn keep(
    run: &Path,
    record: &Path,
    summary: &str,
    files: &[(&str, &str)],
) -> Result<bool, String> {
    if !run.join(summary).exists() {
        return Ok(false);
    }
    if record.join(summary).exists() {
        crate::park::drop_parked(record);
        let same = |a: &Path, b: &Path| std::fs::read(a).ok() == std::fs::read(b).ok();
        if !same(&run.join(summary), &record.join(summary)) {
            eprintln!(
                "warning: {} differs from the recorded {}; the record is kept (move it away to \
                 record this run instead)",
                run.join(summary).display(),
                record.join(summary).display()
            );
        }
        return Ok(false);
    }
    std::fs::create_dir_all(record).map_err(|e| format!("{}: {e}", record.display()))?;
    // The summary goes last: a record with a summary is complete.
    for (from, to) in files.iter().filter(|(from, _)| *from != summary) {
        let from = run.join(from);
        if from.exists() {
            std::fs::copy(&from, record.join(to))
                .map_err(|e| format!("{} -> {}: {e}", from.display(), record.display()))?;
        }
    }
    std::fs::copy(run.join(summary), record.join(summary))
        .map_err(|e| format!("{}: {e}", record.join(summary).display()))?;
    crate::park::drop_parked(record);
    eprintln!("recorded {} in {}", run.display(), record.display());
    Ok(true)
}

/// The provenance file of a run: one entry per process that wrote it (the commit it was built
/// from, whether the tree had uncommitted changes, the binary's SHA-256).
pub const PROVENANCE: &str = "provenance.json";

/// Append this launch of `exe` to `run`'s provenance file (created with the run directory).
pub fn stamp(run: &Path, exe: &Path) -> Result<(), String> {
    std::fs::create_dir_all(run).map_err(|e| format!("{}: {e}", run.display()))?;
    let bytes = std::fs::read(exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    let sha = sparse_data::sha256_hex(&bytes);
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let entry = serde_json::json!({
        "commit": git(&["rev-parse", "HEAD"]),
        "dirty": git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty()),
        "exe": exe.file_name().map(|n| n.to_string_lossy().into_owned()),
        "exe_sha256": sha,
        "unix_time": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    });
    let file = run.join(PROVENANCE);
    let mut all: Vec<serde_json::Value> = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    all.push(entry);
    let text = serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?;
    let tmp = file.with_extension("json.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &file))
        .map_err(|e| format!("{}: {e}", file.display()))
}

/// Whether the run has finished here or on an earlier machine (its record is complete).
pub fn finished(run: &Path, record: &Path, summary: &str) -> bool {
    record.join(summary).exists() || run.join(summary).exists()
}

/// Options of a run's `config.json` that do not change what it computes: where it is written
/// and read from, how it is launched, what it prints, and its seed (a row's runs differ in it).
const NOT_PROTOCOL: [&str; 13] = [
    "seed",
    "out",
    "force",
    "resume",
    "quiet",
    "from",
    "from_checkpoint",
    "data_dir",
    "download",
    "download_url",
    "generate",
    "prompt",
    "temperature",
];

/// Options added after runs were recorded, and the value a record without them ran with.
fn added_default(key: &str) -> Option<serde_json::Value> {
    match key {
        "test_fraction" => Some(0.0.into()),
        "masking" => Some("in-place".into()),
        "finetune_epochs" => Some(0.into()),
        _ => None,
    }
}

/// Refuse a table row whose runs (record or run directories) were made with different
/// protocols: their `config.json` files must agree on every option but those of
/// [`NOT_PROTOCOL`]. Runs without a `config.json` are not compared.
pub fn same_protocol(row: &str, runs: &[PathBuf]) -> Result<(), String> {
    let configs: Vec<(&PathBuf, serde_json::Map<String, serde_json::Value>)> = runs
        .iter()
        .filter_map(|run| {
            let text = std::fs::read_to_string(run.join("config.json")).ok()?;
            match serde_json::from_str(&text).ok()? {
                serde_json::Value::Object(map) => Some((run, map)),
                _ => None,
            }
        })
        .collect();
    let Some((first, reference)) = configs.first() else {
        return Ok(());
    };
    for (run, config) in &configs[1..] {
        let keys = reference.keys().chain(config.keys());
        for key in keys.filter(|k| !NOT_PROTOCOL.contains(&k.as_str())) {
            let value = |c: &serde_json::Map<String, serde_json::Value>| {
                c.get(key).cloned().or_else(|| added_default(key))
            };
            let (a, b) = (value(reference), value(config));
            if a != b {
                let show =
                    |v: Option<serde_json::Value>| v.map_or("absent".into(), |v| v.to_string());
                return Err(format!(
                    "{row}: {} and {} were run with different `{key}` ({} against {}): a row \
                     holds runs of one protocol only (move one of them to another run root)",
                    first.display(),
                    run.display(),
                    show(a),
                    show(b)
                ));
            }
        }
    }
    Ok(())
}

/// Where a table's runs come from: the commits their binaries were built from (from
/// [`PROVENANCE`]), with how many runs each, and how many runs carry no provenance.
pub fn provenance_line(runs: &[PathBuf]) -> String {
    let mut commits: Vec<(String, usize)> = Vec::new();
    let mut none = 0;
    for run in runs {
        let entries: Vec<serde_json::Value> = std::fs::read_to_string(run.join(PROVENANCE))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        if entries.is_empty() {
            none += 1;
            continue;
        }
        // Every process that wrote the run (a resumed run has several).
        let mut names: Vec<String> = entries
            .iter()
            .map(|e| {
                let commit = e["commit"].as_str().unwrap_or("unknown");
                let short = &commit[..commit.len().min(7)];
                match e["dirty"].as_bool() {
                    Some(false) => short.to_string(),
                    Some(true) => format!("{short} with uncommitted changes"),
                    None => format!("{short} (tree state unknown)"),
                }
            })
            .collect();
        names.dedup();
        let name = names.join(" then ");
        match commits.iter_mut().find(|(c, _)| *c == name) {
            Some((_, n)) => *n += 1,
            None => commits.push((name, 1)),
        }
    }
    let mut parts: Vec<String> = commits
        .iter()
        .map(|(c, n)| format!("{n} from commit {c}"))
        .collect();
    if none > 0 {
        parts.push(format!(
            "{none} without provenance (recorded before runs carried it)"
        ));
    }
    if parts.is_empty() {
        return String::new();
    }
    format!("Runs: {}.\n", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_mirror_the_run_roots() {
        let root = Path::new("/w");
        assert_eq!(
            dir_for(root, Path::new("runs/reproduce")),
            Path::new("/w/docs/results/reproduce")
        );
        assert_eq!(
            dir_for(root, Path::new("runs/reproduce/text-gated")),
            Path::new("/w/docs/results/reproduce/text-gated")
        );
        assert_eq!(
            dir_for(root, Path::new("/tmp/x")),
            Path::new("/w/docs/results/x")
        );
    }

    #[test]
    fn a_finished_run_is_recorded_once_and_a_record_is_never_overwritten() {
        let tmp = std::env::temp_dir().join(format!("xtask-records-{}", std::process::id()));
        let (run, record) = (tmp.join("run"), tmp.join("record"));
        std::fs::create_dir_all(run.join("checkpoint")).unwrap();
        std::fs::write(run.join("metrics.csv"), "a\n1\n").unwrap();
        std::fs::write(run.join("checkpoint/progress.json"), "{}").unwrap();
        let files = [
            ("metrics.csv", "metrics.csv"),
            ("checkpoint/progress.json", "progress.json"),
            ("summary.json", "summary.json"),
        ];
        // Unfinished: nothing recorded.
        assert_eq!(keep(&run, &record, "summary.json", &files), Ok(false));
        assert!(!finished(&run, &record, "summary.json"));
        std::fs::write(run.join("summary.json"), "{\"x\": 1}").unwrap();
        assert_eq!(keep(&run, &record, "summary.json", &files), Ok(true));
        assert_eq!(
            std::fs::read_to_string(record.join("progress.json")).unwrap(),
            "{}"
        );
        assert_eq!(
            std::fs::read_to_string(record.join("metrics.csv")).unwrap(),
            "a\n1\n"
        );
        // A rerun that differs does not replace what was recorded.
        std::fs::write(run.join("summary.json"), "{\"x\": 2}").unwrap();
        assert_eq!(keep(&run, &record, "summary.json", &files), Ok(false));
        assert_eq!(
            std::fs::read_to_string(record.join("summary.json")).unwrap(),
            "{\"x\": 1}"
        );
        // On another machine the run directory is gone; the record still counts.
        std::fs::remove_dir_all(&run).unwrap();
        assert!(finished(&run, &record, "summary.json"));
        std::fs::remove_dir_all(&tmp).ok();
    }

    #[test]
    fn a_row_mixing_protocols_is_refused_naming_the_option() {
        let tmp = std::env::temp_dir().join(format!("xtask-protocol-{}", std::process::id()));
        let run = |name: &str, config: &str| {
            let dir = tmp.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("config.json"), config).unwrap();
            dir
        };
        let a = run(
            "a",
            r#"{"seed": 1, "out": "x", "lr": 0.001, "masking": "in-place"}"#,
        );
        let b = run("b", r#"{"seed": 2, "out": "y", "lr": 0.001}"#);
        let c = run("c", r#"{"seed": 3, "out": "z", "lr": 0.01}"#);
        let d = run(
            "d",
            r#"{"seed": 4, "out": "w", "lr": 0.001, "test_fraction": 0.1}"#,
        );
        assert_eq!(same_protocol("row", &[a.clone(), b.clone()]), Ok(()));
        assert_eq!(
            same_protocol("lenet5 relevance", &[a.clone(), c.clone()]).unwrap_err(),
            format!(
                "lenet5 relevance: {} and {} were run with different `lr` (0.001 against 0.01): \
                 a row holds runs of one protocol only (move one of them to another run root)",
                a.display(),
                c.display()
            )
        );
        assert!(
            same_protocol("row", &[b, d])
                .unwrap_err()
                .contains("different `test_fraction` (0.0 against 0.1)")
        );
        std::fs::remove_dir_all(&tmp).ok();
    }

    #[test]
    fn the_provenance_line_counts_runs_per_commit() {
        let tmp = std::env::temp_dir().join(format!("xtask-provenance-{}", std::process::id()));
        let run = |name: &str, prov: Option<&str>| {
            let dir = tmp.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            if let Some(p) = prov {
                std::fs::write(dir.join(PROVENANCE), p).unwrap();
            }
            dir
        };
        let clean = r#"[{"commit": "4ebefeaeb4170780", "dirty": false}]"#;
        let resumed = r#"[{"commit": "4ebefeaeb4170780", "dirty": false},
                          {"commit": "906017b00000000", "dirty": true}]"#;
        let runs = [
            run("a", Some(clean)),
            run("b", Some(clean)),
            run("c", Some(resumed)),
            run("d", None),
        ];
        assert_eq!(
            provenance_line(&runs),
            "Runs: 2 from commit 4ebefea; 1 from commit 4ebefea then 906017b with uncommitted \
             changes; 1 without provenance (recorded before runs carried it).\n"
        );
        std::fs::remove_dir_all(&tmp).ok();
    }
}
