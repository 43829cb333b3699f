//! `cargo xtask park RUNS`: unfinished runs kept in the repository from one machine to the next.
//!
//! Run directories (`runs/...`) are not committed, and the machines the long grids run on are
//! replaced between working sessions, so a run longer than a machine's life would never finish.
//! `park` copies each unfinished run directory under a run root (checkpoint, dense start, log,
//! provenance) into `parked/` inside its record directory (`docs/results/...`), to be
//! committed; `reproduce` brings a parked run back when its run directory is missing, and the
//! run resumes from its checkpoint. A record that becomes complete drops its parked copy.

use std::path::{Path, PathBuf};

use crate::reproduce::busy;

/// The folder of a record directory that holds its parked run.
pub const PARKED: &str = "parked";

/// What a parked copy leaves out: the previous checkpoint (the examples' fallback while they
/// write a new one), the lock of the process running the run, half-written files.
fn left_out(name: &str) -> bool {
    name == "checkpoint.old" || name == ".lock" || name.ends_with(".tmp")
}

/// Copy the tree `from` into `to` (created), leaving out [`left_out`] names; returns the bytes.
fn copy_tree(from: &Path, to: &Path) -> Result<u64, String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let mut bytes = 0;
    let entries = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", from.display()))?;
        let name = entry.file_name();
        if left_out(&name.to_string_lossy()) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if src.is_dir() {
            bytes += copy_tree(&src, &dst)?;
        } else {
            bytes += std::fs::copy(&src, &dst)
                .map_err(|e| format!("{} -> {}: {e}", src.display(), dst.display()))?;
        }
    }
    Ok(bytes)
}

/// The run directories under `out`: folders, one or two levels down, holding a provenance file
/// (`text-test/relevance-s1`, `cifar10/resnet20/dense-s1`).
fn run_dirs(out: &Path) -> Vec<PathBuf> {
    let children = |dir: &Path| -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        dirs
    };
    let is_run = |dir: &Path| dir.join(crate::records::PROVENANCE).is_file();
    let mut runs = Vec::new();
    for dir in children(out) {
        if is_run(&dir) {
            runs.push(dir);
        } else {
            runs.extend(children(&dir).into_iter().filter(|d| is_run(d)));
        }
    }
    runs
}

/// Park every unfinished run under `out` into `records` (the same relative paths): a run whose
/// record holds its `summary.json` is done and skipped, a run that a live process is writing is
/// skipped with a message (stop it first: it resumes from its checkpoint). Each parked copy
/// replaces the previous one. Returns the parked runs and their sizes in bytes.
pub fn park(out: &Path, records: &Path) -> Result<Vec<(PathBuf, u64)>, String> {
    if !out.is_dir() {
        return Err(format!("{}: no such run root", out.display()));
    }
    let mut parked = Vec::new();
    for run in run_dirs(out) {
        let rel = run.strip_prefix(out).map_err(|e| e.to_string())?;
        let record = records.join(rel);
        if record.join("summary.json").is_file() {
            continue;
        }
        if let Some(pid) = busy(&run) {
            eprintln!(
                "skipping {}: being run by process {pid}; stop it (it resumes from its last \
                 checkpoint) and park again",
                run.display()
            );
            continue;
        }
        let (tmp, dst) = (record.join("parked.tmp"), record.join(PARKED));
        std::fs::remove_dir_all(&tmp).ok();
        let bytes = copy_tree(&run, &tmp)?;
        std::fs::remove_dir_all(&dst).ok();
        std::fs::rename(&tmp, &dst).map_err(|e| format!("{}: {e}", dst.display()))?;
        eprintln!(
            "parked {} in {} ({bytes} bytes)",
            run.display(),
            dst.display()
        );
        parked.push((run, bytes));
    }
    Ok(parked)
}

/// Bring the parked copy of a run back into `run` when `run` does not exist; returns whether it
/// did. Called before a grid looks at a run's checkpoint.
pub fn unpark(run: &Path, record: &Path) -> Result<bool, String> {
    let parked = record.join(PARKED);
    if run.exists() || !parked.is_dir() {
        return Ok(false);
    }
    copy_tree(&parked, run)?;
    eprintln!("brought {} back from {}", run.display(), parked.display());
    Ok(true)
}

/// Drop the parked copy of a run whose record is complete.
pub fn drop_parked(record: &Path) {
    if record.join("summary.json").is_file() {
        std::fs::remove_dir_all(record.join(PARKED)).ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfinished_run_is_parked_brought_back_and_dropped_once_recorded() {
        let base = std::env::temp_dir().join(format!("park-{}", std::process::id()));
        std::fs::remove_dir_all(&base).ok();
        let (out, records) = (base.join("runs/grid"), base.join("docs/results/grid"));
        let run = out.join("model/relevance-s1");
        let done = out.join("model/magnitude-s1");
        for (dir, file) in [
            (&run, "checkpoint/model.bpk"),
            (&run, "checkpoint.old/model.bpk"),
            (&done, "checkpoint/model.bpk"),
        ] {
            std::fs::create_dir_all(dir.join(file).parent().unwrap()).unwrap();
            std::fs::write(dir.join(file), b"weights").unwrap();
            std::fs::write(dir.join("provenance.json"), "[]").unwrap();
        }
        // A lock left by a process that is gone is not a live run, and is not parked.
        std::fs::write(run.join(".lock"), "4000000000").unwrap();
        std::fs::create_dir_all(records.join("model/magnitude-s1")).unwrap();
        std::fs::write(records.join("model/magnitude-s1/summary.json"), "{}").unwrap();

        let parked = park(&out, &records).unwrap();
        assert_eq!(parked.len(), 1, "only the unfinished run: {parked:?}");
        let copy = records.join("model/relevance-s1").join(PARKED);
        assert_eq!(
            std::fs::read(copy.join("checkpoint/model.bpk")).unwrap(),
            b"weights"
        );
        assert!(copy.join("provenance.json").is_file());
        assert!(!copy.join("checkpoint.old").exists() && !copy.join(".lock").exists());
        assert!(!records.join("model/magnitude-s1").join(PARKED).exists());

        // A new machine: no run directory; the parked copy comes back, once.
        std::fs::remove_dir_all(&out).unwrap();
        let record = records.join("model/relevance-s1");
        assert!(unpark(&run, &record).unwrap());
        assert_eq!(
            std::fs::read(run.join("checkpoint/model.bpk")).unwrap(),
            b"weights"
        );
        assert!(
            !unpark(&run, &record).unwrap(),
            "an existing run is left as it is"
        );

        std::fs::write(record.join("summary.json"), "{}").unwrap();
        drop_parked(&record);
        assert!(!record.join(PARKED).exists());
        assert_eq!(
            park(&base.join("missing"), &records).unwrap_err(),
            format!("{}: no such run root", base.join("missing").display())
        );
        std::fs::remove_dir_all(&base).ok();
    }
}
