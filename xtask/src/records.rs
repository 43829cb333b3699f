//! Results that outlive the machine they were measured on.
//!
//! Run directories (`runs/...`) hold checkpoints and are not committed. The few small files
//! the tables are built from are copied, as soon as a run has finished, into a mirror under
//! `docs/results/` that is committed: a finished run is never run again on any machine, and
//! the tables of docs/RESULTS.md can always be rebuilt from the repository alone.

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
}
