//! The run directory of an example: the overwrite guard, atomic checkpoints (model + masks,
//! optimizer, pruner and decay clock, progress), `metrics.csv` kept consistent on resume.

use std::fs::File;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::{ModuleOptimizer, Optimizer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sparse_prune::Pruner;
use sparse_reg::SelectiveDecay;

/// The error type of the examples.
pub type Error = Box<dyn std::error::Error>;

/// Check option values before any work starts: each `(name, ok, expected)` that is not ok is
/// an error `"{name}: expected {expected}"` (the first one found).
///
/// ```
/// let lr = -1.0;
/// let err = sparse_examples::run::check_fields(&[("--lr", lr > 0.0, "a positive number")]);
/// assert_eq!(err.unwrap_err(), "--lr: expected a positive number");
/// ```
pub fn check_fields(checks: &[(&str, bool, &str)]) -> Result<(), String> {
    match checks.iter().find(|(_, ok, _)| !ok) {
        Some((name, _, expected)) => Err(format!("{name}: expected {expected}")),
        None => Ok(()),
    }
}

/// Check the training set's split against `--val-size` and `--batch` before any work: `total`
/// examples in the training set, `val` of them held out for validation (given, or the
/// example's default share of `total`), batches of `batch`. Refused, naming the option and the
/// sizes: an empty validation split (its accuracy would read 0.00 %), one that leaves no
/// example to train on, and a batch larger than the examples left (an epoch of no step: an
/// untrained model, then a division by zero).
///
/// ```
/// use sparse_examples::run::check_split;
/// assert_eq!(check_split(6000, 500, 100), Ok(()));
/// assert_eq!(
///     check_split(600, 50, 1000).unwrap_err(),
///     "--batch: 1000 is more than the 550 training examples left after the validation \
///      split (--val-size 50 of 600): an epoch would have no step; expected at most 550"
/// );
/// ```
pub fn check_split(total: usize, val: usize, batch: usize) -> Result<(), String> {
    if val == 0 {
        return Err(format!(
            "--val-size: the validation split of the {total} training examples is empty: \
             expected at least 1 (the default holds out a share of them, rounded down)"
        ));
    }
    if val >= total {
        return Err(format!(
            "--val-size: {val} validation examples leave none of the {total} training \
             examples to train on: expected fewer than {total}"
        ));
    }
    let left = total - val;
    if batch > left {
        return Err(format!(
            "--batch: {batch} is more than the {left} training examples left after the \
             validation split (--val-size {val} of {total}): an epoch would have no step; \
             expected at most {left}"
        ));
    }
    Ok(())
}

/// The warning for a validation floor the dense model does not reach: the gate stays closed
/// until training lifts the metric above it, and may never open (a silent no-op otherwise).
///
/// ```
/// let w = sparse_examples::run::floor_warning(0.95, 0.91).unwrap();
/// assert!(w.contains("above the dense validation accuracy"));
/// assert!(sparse_examples::run::floor_warning(0.90, 0.91).is_none());
/// ```
pub fn floor_warning(floor: f64, dense_val: f64) -> Option<String> {
    (floor >= dense_val).then(|| {
        format!(
            "warning: the floor {:.2} % is above the dense validation accuracy {:.2} %: nothing \
             is pruned until training lifts validation above it (lower --floor to prune now)",
            100.0 * floor,
            100.0 * dense_val
        )
    })
}

/// What a run directory holds once a run has started: any of them makes it a run's directory.
const RUN_STATE: [&str; 6] = [
    "checkpoint",
    "checkpoint.old",
    "dense",
    "dense-checkpoint",
    "metrics.csv",
    "config.json",
];

/// Refuse to start in a directory that holds a run, finished or not, unless `force` or `resume`, or
/// that another live process is writing; then lock it for this process (see [`RunLock`]).
///
/// ```
/// let dir = std::env::temp_dir().join("sparse-examples-guard-doc");
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("summary.json"), "{}").unwrap();
/// let err = sparse_examples::run::guard_out(&dir, false, false).unwrap_err();
/// assert!(err.to_string().contains("pass --force"));
/// let lock = sparse_examples::run::guard_out(&dir, true, false).unwrap();
/// // A second writer of the same directory is refused while the first holds it.
/// let busy = sparse_examples::run::guard_out(&dir, false, true).unwrap_err();
/// assert!(busy.to_string().contains("is being written by process"));
/// drop(lock);
/// assert!(sparse_examples::run::guard_out(&dir, false, true).is_ok());
/// ```
pub fn guard_out(out: &Path, force: bool, resume: bool) -> Result<RunLock, Error> {
    if !force && !resume {
        if out.join("summary.json").exists() {
            return Err(format!(
                "{} already holds the results of a run (summary.json): choose another --out or \
                 pass --force",
                out.display()
            )
            .into());
        }
        if let Some(state) = RUN_STATE.iter().find(|f| out.join(f).exists()) {
            return Err(format!(
                "{} holds an unfinished run ({state}): pass --resume to continue it, or --force \
                 to start it over (its files are replaced){}",
                out.display(),
                dense_start_note(out)
            )
            .into());
        }
    }
    let created = !out.exists();
    std::fs::create_dir_all(out)
        .map_err(|e| format!("{}: cannot create the run directory: {e}", out.display()))?;
    let mut lock = RunLock::take(out)?;
    // A run refused by a later check (a data file of the wrong size, say) leaves no trace.
    lock.created = created.then(|| out.to_path_buf());
    Ok(lock)
}

/// For a run directory holding a dense start (`out/dense/dense.json`, saved when the dense
/// phase ended): the sentence that says `--from` reuses it; empty otherwise.
fn dense_start_note(out: &Path) -> String {
    let record = out.join("dense").join("dense.json");
    if !record.is_file() {
        return String::new();
    }
    format!(
        "; its dense model is saved ({}): --from {} reuses it instead of training one again \
         (with --force here, or with another --out)",
        record.display(),
        out.display()
    )
}

/// The option a field of an example's `Args` is typed as: `dense_epochs` is `--dense-epochs`.
pub fn option_name(field: &str) -> String {
    format!("--{}", field.replace('_', "-"))
}

/// The options among `fields` that the help of `command`'s `--resume` does not name (as
/// [`option_name`] types them; `resume` itself aside): an example's test that every option
/// allowed to change on resume is documented there.
///
/// ```
/// let command = clap::Command::new("demo").arg(
///     clap::Arg::new("resume")
///         .long("resume")
///         .help("Continue the run; only --epochs may change"),
/// );
/// let missing = sparse_examples::run::missing_from_resume_help(&command, &["epochs", "quiet"]);
/// assert_eq!(missing, ["--quiet"]);
/// ```
pub fn missing_from_resume_help(command: &clap::Command, fields: &[&str]) -> Vec<String> {
    let help = command
        .get_arguments()
        .find(|a| a.get_id() == "resume")
        .and_then(|a| a.get_long_help().or(a.get_help()))
        .map(|h| h.to_string().replace('\n', " "))
        .unwrap_or_default();
    fields
        .iter()
        .filter(|f| **f != "resume")
        .map(|f| option_name(f))
        .filter(|name| !help.contains(name))
        .collect()
}

/// A stored or given option value as a user types it (`null`: not given).
fn option_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "none".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Refuse a `--resume` that is not the same run: compare the options that define it, `given`
/// (the example's `Args` serialized, as `config.json` stores them), with the run's stored
/// `out/config.json`, before anything is written. Every difference is named as the user types
/// the option, with its stored and its given value. Options in `may_change` (budgets, output,
/// `--resume` itself, ...) may differ; options in `derived` are derived by the run when not
/// given (`--floor` from the dense model, say): leaving one out on resume keeps the stored
/// value, giving one must match it. A field that only one side has (an option added or removed
/// since the run started, or extra entries the example records) is not compared. No
/// `config.json` (a run stopped before writing one): nothing to compare.
///
/// ```
/// let out = std::env::temp_dir().join(format!("resume-options-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&out).unwrap();
/// std::fs::write(out.join("config.json"), r#"{"lr": 0.001, "epochs": 30}"#).unwrap();
/// let given = serde_json::json!({"lr": 0.001, "epochs": 60});
/// assert!(sparse_examples::run::check_resumed_options(&out, &given, &["epochs"], &[]).is_ok());
/// let given = serde_json::json!({"lr": 0.01, "epochs": 30});
/// let err = sparse_examples::run::check_resumed_options(&out, &given, &["epochs"], &[]);
/// assert!(err.unwrap_err().contains("--lr: stored 0.001, given 0.01"));
/// # std::fs::remove_dir_all(out).unwrap();
/// ```
pub fn check_resumed_options(
    out: &Path,
    given: &serde_json::Value,
    may_change: &[&str],
    derived: &[&str],
) -> Result<(), String> {
    let file = out.join("config.json");
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{}: cannot read: {e}", file.display())),
    };
    let stored: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: not JSON ({e}): cannot check that --resume continues the same run; start it \
             over with --force",
            file.display()
        )
    })?;
    let (Some(stored), Some(given)) = (stored.as_object(), given.as_object()) else {
        return Err(format!(
            "{}: not a record of the run's options: cannot check that --resume continues the \
             same run; start it over with --force",
            file.display()
        ));
    };
    let differences: Vec<String> = given
        .iter()
        .filter(|(key, _)| !may_change.contains(&key.as_str()))
        .filter_map(|(key, value)| {
            let old = stored.get(key)?;
            let kept = value.is_null() && derived.contains(&key.as_str());
            (old != value && !kept).then(|| {
                format!(
                    "{}: stored {}, given {}",
                    option_name(key),
                    option_value(old),
                    option_value(value)
                )
            })
        })
        .collect();
    if differences.is_empty() {
        return Ok(());
    }
    let mut exempt: Vec<String> = may_change.iter().map(|k| option_name(k)).collect();
    exempt.sort();
    Err(format!(
        "{}: --resume continues the run started with other options ({}): give the stored \
         values, or start a new run with another --out (--force replaces this one); only {} may \
         change on resume",
        out.display(),
        differences.join("; "),
        exempt.join(", ")
    ))
}

/// A run directory's lock: the file `.lock` in it holds the writing process's id and is removed
/// when this is dropped. Two processes never write one run directory (a second `--resume` of a
/// run still going would interleave its checkpoints and metrics); a lock left by a process that
/// is gone (killed) is taken over, which `--resume` after a crash relies on.
#[must_use = "the run directory is locked only while this is held"]
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    /// The run directory, when [`guard_out`] created it: removed with the lock if the run
    /// wrote nothing into it.
    created: Option<PathBuf>,
}

impl RunLock {
    /// Lock the run directory `out` (which exists) for this process.
    pub fn take(out: &Path) -> Result<Self, Error> {
        let path = out.join(".lock");
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    use std::io::Write;
                    write!(file, "{}", std::process::id())
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    return Ok(Self {
                        path,
                        created: None,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    match text.trim().parse::<u32>() {
                        Ok(pid) if process_alive(pid) => {
                            return Err(format!(
                                "{} is being written by process {pid} (its lock: {}): wait for \
                                 that run to finish or stop it first; if no such process is \
                                 running, delete the lock",
                                out.display(),
                                path.display()
                            )
                            .into());
                        }
                        // A lock whose process is gone, or one half written: take it over.
                        _ => {
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => {
                    return Err(format!("{}: cannot lock the run: {e}", path.display()).into());
                }
            }
        }
        Err(format!("{}: another process keeps taking this lock", path.display()).into())
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = &self.created {
            let _ = std::fs::remove_dir(dir); // only if empty
        }
    }
}

/// Whether process `pid` is running (this process included; a killed process not yet reaped,
/// a zombie, is not). Where that cannot be told (not Linux), every process counts as running,
/// and a stale lock has to be deleted by hand.
fn process_alive(pid: u32) -> bool {
    if !cfg!(target_os = "linux") || pid == std::process::id() {
        return true;
    }
    // `/proc/PID/stat` is `PID (NAME) STATE ...`; NAME may hold spaces and parentheses.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// Write model (weights + masks), optimizer, pruner/clock and `progress` atomically: into
/// `checkpoint.tmp`, then swapped with `checkpoint`; a kill at any point leaves one complete
/// (a checkpoint is complete iff its `progress.json`, written last, exists).
pub fn save_checkpoint<M: Module, P: Serialize>(
    out: &Path,
    model: &M,
    optim: &ModuleOptimizer,
    pruner: &Pruner,
    progress: &P,
) -> Result<(), Error> {
    write_dir_atomically(out, "checkpoint", |tmp| {
        write_checkpoint_files(out, tmp, model, optim, pruner, progress)
    })
}

/// Write the directory `out/name` atomically: `write` fills `out/name.tmp`, which is then
/// sealed (the SHA-256 of every file in it and the step of its `progress.json`, if it has one,
/// are recorded in [`CHECKSUMS`]) and swapped with `out/name` (the old one renamed to
/// `out/name.old` and removed); a kill at any point leaves one complete directory, the new or
/// the old. [`verify_dir`] checks a directory against its checksums.
pub fn write_dir_atomically(
    out: &Path,
    name: &str,
    write: impl FnOnce(&Path) -> Result<(), Error>,
) -> Result<(), Error> {
    let (tmp, dir, old) = (
        out.join(format!("{name}.tmp")),
        out.join(name),
        out.join(format!("{name}.old")),
    );
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: cannot create: {e}", tmp.display()))?;
    write(&tmp)?;
    seal_dir(&tmp)?;
    let _ = std::fs::remove_dir_all(&old);
    if dir.exists() {
        std::fs::rename(&dir, &old).map_err(|e| {
            format!(
                "{}: cannot rename it to {}: {e}",
                dir.display(),
                old.display()
            )
        })?;
    }
    std::fs::rename(&tmp, &dir).map_err(|e| {
        format!(
            "{}: cannot rename it to {}: {e}",
            tmp.display(),
            dir.display()
        )
    })?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// The file in a checkpoint directory that holds the SHA-256 of each of its other files and
/// the step the checkpoint belongs to (`{"step": 50, "sha256": {"model.bpk": "...", ...}}`).
pub const CHECKSUMS: &str = "checksums.json";

/// The files under `dir` (relative paths with `/`, sorted), [`CHECKSUMS`] left out.
fn files_under(dir: &Path) -> Result<Vec<String>, String> {
    let mut files = vec![];
    let mut todo = vec![(dir.to_path_buf(), String::new())];
    while let Some((at, prefix)) = todo.pop() {
        let entries =
            std::fs::read_dir(&at).map_err(|e| format!("{}: cannot list: {e}", at.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: cannot list: {e}", at.display()))?;
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.path().is_dir() {
                todo.push((entry.path(), format!("{name}/")));
            } else if name != CHECKSUMS {
                files.push(name);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn sha256_of(file: &Path) -> Result<String, std::io::Error> {
    Ok(sparse_data::sha256_hex(&std::fs::read(file)?))
}

/// Record the SHA-256 of every file of `dir` and the step of its `progress.json` in
/// `dir/checksums.json`.
fn seal_dir(dir: &Path) -> Result<(), Error> {
    let mut sums = serde_json::Map::new();
    for name in files_under(dir)? {
        let file = dir.join(&name);
        let sum = sha256_of(&file).map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
        sums.insert(name, sum.into());
    }
    let step = std::fs::read_to_string(dir.join("progress.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|p| p["step"].as_u64());
    let file = dir.join(CHECKSUMS);
    std::fs::write(
        &file,
        serde_json::to_string_pretty(&serde_json::json!({ "step": step, "sha256": sums }))?,
    )
    .map_err(|e| format!("{}: cannot write: {e}", file.display()))?;
    Ok(())
}

/// Check every file of a directory written by [`write_dir_atomically`] against its
/// [`CHECKSUMS`]: a file changed, cut or swapped for another checkpoint's after it was written
/// is refused, naming the file and the step. A directory written before checksums existed (no
/// `checksums.json`) passes, with a warning (once per process).
pub fn verify_dir(dir: &Path) -> Result<(), Error> {
    verify_sealed(
        dir,
        "the checkpoint",
        "restore the file, or start the run over with --force",
    )
}

/// [`verify_dir`] for a directory that holds `what` (`"the checkpoint"`, `"the dense start"`):
/// a mismatch is refused as `FILE: checksum mismatch (...): {what} is corrupt; {remedy}`.
pub fn verify_sealed(dir: &Path, what: &str, remedy: &str) -> Result<(), Error> {
    let list = dir.join(CHECKSUMS);
    let text = match std::fs::read_to_string(&list) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            static WARNED: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                eprintln!(
                    "warning: {} has no {CHECKSUMS} (written by an older build): its files are \
                     not verified",
                    dir.display()
                );
            }
            return Ok(());
        }
        Err(e) => return Err(format!("{}: cannot read: {e}", list.display()).into()),
    };
    let corrupt = |why: String| -> Error {
        format!(
            "{}: {why}: {what} is corrupt; {}",
            list.display(),
            remedy.replace("the file", "it")
        )
        .into()
    };
    let record: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| corrupt(format!("not JSON ({e})")))?;
    let sums = record["sha256"]
        .as_object()
        .ok_or_else(|| corrupt("no \"sha256\" table".into()))?;
    let which = match record["step"].as_u64() {
        Some(step) => format!("{what} at step {step}"),
        None => what.to_string(),
    };
    for (name, sum) in sums {
        let file = dir.join(name);
        let problem = match sha256_of(&file) {
            Ok(actual) if Some(actual.as_str()) == sum.as_str() => continue,
            Ok(_) => format!("checksum mismatch (the file changed after {which} was written)"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                format!("missing ({which} was written with it)")
            }
            Err(e) => format!("cannot read ({e})"),
        };
        return Err(format!("{}: {problem}: {what} is corrupt; {remedy}", file.display()).into());
    }
    Ok(())
}

fn write_checkpoint_files<M: Module, P: Serialize>(
    out: &Path,
    tmp: &Path,
    model: &M,
    optim: &ModuleOptimizer,
    pruner: &Pruner,
    progress: &P,
) -> Result<(), Error> {
    save_model_and_optim(tmp, model, optim)?;
    pruner.save_state(tmp.join("pruner.json"))?;
    // The format version and the run's options, beside the state they produced.
    let config = std::fs::read_to_string(out.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    let meta = tmp.join("meta.json");
    std::fs::write(
        &meta,
        serde_json::to_string_pretty(&serde_json::json!({
            "format": CHECKPOINT_FORMAT,
            "written_by": concat!("sparse-examples ", env!("CARGO_PKG_VERSION")),
            "config": config,
        }))?,
    )
    .map_err(|e| format!("{}: cannot write: {e}", meta.display()))?;
    let file = tmp.join("progress.json");
    std::fs::write(&file, serde_json::to_string_pretty(progress)?)
        .map_err(|e| format!("{}: cannot write: {e}", file.display()))?;
    Ok(())
}

/// The model with its masks and the method's optimizer, ready to train: fresh (masks attached
/// to `model`, a new optimizer) or, given the `checkpoint` directory [`save_checkpoint`]
/// wrote, as saved there (weights and masks, optimizer state, the pruner's and the decay
/// clock's state). `decay` is cloned, so the optimizer shares its clock. The optimizer comes
/// from [`Pruner::optimizer`]: with in-place masks its step zeroes the pruned entries itself.
pub fn start_or_resume<M: Module, O: Optimizer + Clone>(
    model: M,
    decay: &SelectiveDecay<O>,
    pruner: &mut Pruner,
    checkpoint: Option<&Path>,
) -> Result<(M, ModuleOptimizer), Error> {
    match checkpoint {
        None => {
            let model = pruner.attach(model)?;
            let optim = pruner.optimizer(decay.clone(), &model)?;
            Ok((model, optim))
        }
        Some(dir) => {
            let params = pruner.config().params.clone();
            let model = sparse_prune::load_masked(model, &params, dir.join("model.bpk"))?;
            let model = pruner.attach(model)?; // the pruner takes the loaded masks over
            let optim = pruner.optimizer(decay.clone(), &model)?;
            let file = dir.join("optim.bpk");
            let optim = optim.load(&file).map_err(|e| {
                format!(
                    "{}: cannot load the optimizer state (the file is corrupt or cut short): {e}",
                    file.display()
                )
            })?;
            pruner.load_state(dir.join("pruner.json"))?;
            Ok((model, optim))
        }
    }
}

/// Version of the checkpoint layout (`meta.json`; a checkpoint without it is version 1).
pub const CHECKPOINT_FORMAT: u64 = 1;

/// The newest complete checkpoint of a run directory and its progress record; its files are
/// verified against their checksums first ([`verify_dir`]).
pub fn find_checkpoint<P: DeserializeOwned>(out: &Path) -> Result<(PathBuf, P), Error> {
    for dir in [out.join("checkpoint"), out.join("checkpoint.old")] {
        let file = dir.join("progress.json");
        if let Ok(text) = std::fs::read_to_string(&file) {
            let meta = dir.join("meta.json");
            let format = std::fs::read_to_string(&meta)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .map_or(Some(1), |m| m["format"].as_u64());
            if format != Some(CHECKPOINT_FORMAT) {
                return Err(format!(
                    "{}: checkpoint format {}, this build reads format {CHECKPOINT_FORMAT}",
                    meta.display(),
                    format.map_or("unreadable".to_string(), |f| f.to_string())
                )
                .into());
            }
            verify_dir(&dir)?;
            let p: P = serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{}: not a progress record of this example: {e}",
                    file.display()
                )
            })?;
            return Ok((dir, p));
        }
    }
    Err(format!(
        "{}: no checkpoint to resume (checkpoints are written at every prune check of the \
         pruning phase){}",
        out.display(),
        dense_start_note(out)
    )
    .into())
}

/// The message of a run stopped by a non-finite loss at `step`: it names the checkpoint that
/// is kept (`last_good`: its step and directory, if one was written before `step`).
///
/// ```
/// let m = sparse_examples::run::diverged(40, f64::NAN, None);
/// assert!(m.starts_with("step 40: the training loss is NaN"));
/// ```
pub fn diverged(step: u64, loss: f64, last_good: Option<(u64, &Path)>) -> String {
    stopped(step, &format!("the training loss is {loss}"), last_good)
}

/// `step N: {what}: the run stopped; ...` naming the checkpoint kept.
fn stopped(step: u64, what: &str, last_good: Option<(u64, &Path)>) -> String {
    let kept = match last_good {
        Some((at, dir)) if at < step => format!(
            "the last good checkpoint (step {at}, {}) is kept: lower --lr or --gamma and --resume",
            dir.display()
        ),
        _ => "no checkpoint of this run was written yet: lower --lr or --gamma".to_string(),
    };
    format!("step {step}: {what}: the run stopped; {kept}")
}

/// What a non-finite training loss does.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum OnNonFinite {
    /// Stop the run, keeping the last good checkpoint (the default).
    Stop,
    /// Skip the step (no update); stop after 10 in a row.
    Skip,
}

/// Checks the loss of every step before its update is applied, so a NaN or Inf never reaches
/// the weights, a checkpoint or "best".
///
/// ```
/// use sparse_examples::run::{LossGuard, OnNonFinite};
/// let out = std::path::Path::new("runs/none");
/// let mut guard = LossGuard::new(OnNonFinite::Skip);
/// assert_eq!(guard.check(1, 0.7, out), Ok(true));
/// assert_eq!(guard.check(2, f64::NAN, out), Ok(false)); // skipped
/// assert_eq!(guard.skipped(), 1);
/// let mut guard = LossGuard::new(OnNonFinite::Stop);
/// assert!(guard.check(3, f64::INFINITY, out).unwrap_err().contains("the training loss is inf"));
/// ```
#[derive(Debug)]
pub struct LossGuard {
    policy: OnNonFinite,
    skipped: u64,
    in_a_row: u64,
}

impl LossGuard {
    /// Most non-finite losses in a row that `Skip` tolerates.
    pub const MAX_IN_A_ROW: u64 = 10;

    /// A guard with `policy`.
    pub fn new(policy: OnNonFinite) -> Self {
        Self {
            policy,
            skipped: 0,
            in_a_row: 0,
        }
    }

    /// `Ok(true)`: apply the step; `Ok(false)`: skip it; `Err`: stop, with the message naming
    /// the last good checkpoint of the run in `out`.
    pub fn check(&mut self, step: u64, loss: f64, out: &Path) -> Result<bool, String> {
        self.admit(
            step,
            loss.is_finite(),
            &format!("the training loss is {loss}"),
            out,
        )
    }

    /// As [`check`](Self::check), for the gradients of a step whose loss was finite.
    pub fn check_grads(&mut self, step: u64, finite: bool, out: &Path) -> Result<bool, String> {
        self.admit(step, finite, "a gradient is not finite", out)
    }

    fn admit(&mut self, step: u64, finite: bool, what: &str, out: &Path) -> Result<bool, String> {
        if finite {
            self.in_a_row = 0;
            return Ok(true);
        }
        self.in_a_row += 1;
        if self.policy == OnNonFinite::Skip && self.in_a_row <= Self::MAX_IN_A_ROW {
            self.skipped += 1;
            return Ok(false);
        }
        let last = find_checkpoint::<serde_json::Value>(out).ok();
        let last = last
            .as_ref()
            .map(|(dir, p)| (p["step"].as_u64().unwrap_or(0), dir.as_path()));
        let mut msg = stopped(step, what, last);
        if self.policy == OnNonFinite::Skip {
            msg.push_str(&format!(" ({} non-finite losses in a row)", self.in_a_row));
        }
        Err(msg)
    }

    /// Steps skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// Whether every gradient in `grads` of `model`'s parameters is finite: one sum per tensor on
/// the device and one read of the total (a NaN or Inf anywhere makes the total non-finite).
///
/// ```
/// use burn::module::{Module, Param};
/// use burn::nn::LinearConfig;
/// use burn::optim::GradientsParams;
/// use burn::tensor::{Device, Tensor};
/// let device = Device::flex().autodiff();
/// let layer = LinearConfig::new(2, 1).init(&device);
/// let x = Tensor::<2>::from_floats([[1.0, 0.0]], &device);
/// // sqrt(|y|) has an infinite slope at 0: a finite loss with non-finite gradients.
/// let y = layer.forward(x.clone()) * 0.0;
/// let grads = GradientsParams::from_grads(y.abs().sqrt().sum().backward(), &layer);
/// assert!(!sparse_examples::run::grads_finite(&layer, &grads));
/// let grads = GradientsParams::from_grads(layer.forward(x).sum().backward(), &layer);
/// assert!(sparse_examples::run::grads_finite(&layer, &grads));
/// ```
pub fn grads_finite<M: Module>(model: &M, grads: &burn::optim::GradientsParams) -> bool {
    struct Sum<'a> {
        grads: &'a burn::optim::GradientsParams,
        total: Option<burn::tensor::Tensor<1>>,
    }
    impl burn::module::ModuleVisitor for Sum<'_> {
        fn visit_float<const D: usize>(
            &mut self,
            param: &burn::module::Param<burn::tensor::Tensor<D>>,
        ) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s = g.sum();
                self.total = Some(match self.total.take() {
                    Some(t) => t + s,
                    None => s,
                });
            }
        }
    }
    let mut sum = Sum { grads, total: None };
    model.visit(&mut sum);
    sum.total.is_none_or(|t| t.into_scalar::<f64>().is_finite())
}

/// Write `model.bpk` and `optim.bpk` into the checkpoint directory `dir` (write errors name the
/// file): the part every checkpoint of the examples shares.
pub fn save_model_and_optim<M: Module>(
    dir: &Path,
    model: &M,
    optim: &ModuleOptimizer,
) -> Result<(), Error> {
    let (model_file, optim_file) = (dir.join("model.bpk"), dir.join("optim.bpk"));
    model
        .clone()
        .save_file(&model_file)
        .map_err(|e| format!("{}: cannot write: {e}", model_file.display()))?;
    optim
        .save(&optim_file)
        .map_err(|e| format!("{}: cannot write: {e}", optim_file.display()))?;
    Ok(())
}

/// Replace the file `path` with `bytes` through a temporary file (`path` + `.tmp`) and a
/// rename: a kill or a full disk at any point leaves the previous file or the new one, never a
/// half-written one. Every file a run rewrites (`config.json`, `summary.json`, `metrics.csv`
/// on resume) goes through this; errors name the file.
///
/// ```
/// let file = std::env::temp_dir().join(format!("write-atomically-doc-{}", std::process::id()));
/// sparse_examples::run::write_file_atomically(&file, "{}").unwrap();
/// assert_eq!(std::fs::read_to_string(&file).unwrap(), "{}");
/// # std::fs::remove_file(file).unwrap();
/// ```
pub fn write_file_atomically(path: &Path, bytes: impl AsRef<[u8]>) -> Result<(), Error> {
    use std::io::Write;
    replace_file(path, |file| file.write_all(bytes.as_ref()))?;
    Ok(())
}

/// The temporary file [`write_file_atomically`] fills before renaming it to `path`.
pub fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// `write` fills the temporary file of `path` (created afresh), which is then flushed to the
/// disk and renamed to `path`; returns it, open, positioned at its end. If `write` or anything
/// before the rename fails, `path` is left as it was.
fn replace_file(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<File, String> {
    let tmp = temporary_path(path);
    let failed = |e: std::io::Error| format!("{}: cannot write: {e}", tmp.display());
    let mut file = File::create(&tmp).map_err(failed)?;
    write(&mut file).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        format!(
            "{}: cannot replace it with {}: {e}",
            path.display(),
            tmp.display()
        )
    })?;
    Ok(file)
}

/// A run's CSV file open for appending rows; its write errors name the file (a full disk says
/// which file it could not write).
#[derive(Debug)]
pub struct MetricsFile {
    file: File,
    path: PathBuf,
}

impl MetricsFile {
    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn name(&self, e: std::io::Error) -> std::io::Error {
        std::io::Error::new(
            e.kind(),
            format!("{}: cannot write: {e}", self.path.display()),
        )
    }
}

impl std::io::Write for MetricsFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf).map_err(|e| self.name(e))
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.file.write_all(buf).map_err(|e| self.name(e))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush().map_err(|e| self.name(e))
    }
}

/// Open `metrics.csv` for appending with `header`; on resume keep the rows up to `step` (the
/// later ones are measured again), otherwise start it afresh. The kept rows are written to a
/// temporary file that then replaces the old one (see [`write_file_atomically`]): a kill or
/// an error at any moment leaves every row of the old file, or the new file complete.
pub fn open_metrics(
    path: &Path,
    header: &str,
    resume_at: Option<u64>,
) -> Result<MetricsFile, Error> {
    let mut rows = format!("{header}\n");
    if let Some(step) = resume_at {
        let old = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("{}: cannot read: {e}", path.display()).into()),
        };
        for line in old.lines().skip(1) {
            if line
                .split(',')
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|s| s <= step)
            {
                rows.push_str(line);
                rows.push('\n');
            }
        }
    }
    use std::io::Write;
    let file = replace_file(path, |file| file.write_all(rows.as_bytes()))?;
    Ok(MetricsFile {
        file,
        path: path.to_path_buf(),
    })
}

/// `(column x, column y)` of every parsable row of a CSV file with a header line.
pub fn csv_columns(path: &Path, x: usize, y: usize) -> Result<Vec<(f64, f64)>, Error> {
    Ok(std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((f.get(x)?.parse().ok()?, f.get(y)?.parse().ok()?))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfinished_run_is_neither_overwritten_nor_continued_without_being_asked() {
        let dir = std::env::temp_dir().join(format!("sparse-run-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("checkpoint")).unwrap();
        std::fs::write(dir.join("checkpoint/progress.json"), "{}").unwrap();
        let err = guard_out(&dir, false, false).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{} holds an unfinished run (checkpoint): pass --resume to continue it, or \
                 --force to start it over (its files are replaced)",
                dir.display()
            )
        );
        // Nothing was touched: the checkpoint is still there.
        assert!(dir.join("checkpoint/progress.json").exists());
        // A killed run's dense start alone is run state too.
        std::fs::remove_dir_all(dir.join("checkpoint")).unwrap();
        std::fs::create_dir_all(dir.join("dense")).unwrap();
        let err = guard_out(&dir, false, false).unwrap_err().to_string();
        assert!(err.contains("holds an unfinished run (dense)"), "{err}");
        drop(guard_out(&dir, false, true).unwrap());
        drop(guard_out(&dir, true, false).unwrap());
        // A directory with none of a run's files (a log, say) is free to use.
        std::fs::remove_dir_all(dir.join("dense")).unwrap();
        std::fs::write(dir.join("log.txt"), "").unwrap();
        drop(guard_out(&dir, false, false).unwrap());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_lock_left_by_a_process_that_is_gone_is_taken_over() {
        let dir = std::env::temp_dir().join(format!("sparse-run-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Above Linux's largest pid (2^22): no such process.
        std::fs::write(dir.join(".lock"), "4294967295").unwrap();
        let lock = RunLock::take(&dir).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join(".lock")).unwrap(),
            std::process::id().to_string()
        );
        let busy = RunLock::take(&dir).unwrap_err().to_string();
        assert_eq!(
            busy,
            format!(
                "{} is being written by process {} (its lock: {}): wait for that run to finish \
                 or stop it first; if no such process is running, delete the lock",
                dir.display(),
                std::process::id(),
                dir.join(".lock").display()
            )
        );
        drop(lock);
        assert!(!dir.join(".lock").exists(), "the lock goes with its holder");
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A fresh scratch directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sparse-run-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_split_that_leaves_no_validation_or_no_step_is_refused_naming_the_option() {
        // A tiny data set: the default share of 11 images rounds down to none.
        assert_eq!(
            check_split(11, 0, 100).unwrap_err(),
            "--val-size: the validation split of the 11 training examples is empty: expected \
             at least 1 (the default holds out a share of them, rounded down)"
        );
        assert_eq!(
            check_split(200, 200, 10).unwrap_err(),
            "--val-size: 200 validation examples leave none of the 200 training examples to \
             train on: expected fewer than 200"
        );
        assert_eq!(
            check_split(200, 16, 500).unwrap_err(),
            "--batch: 500 is more than the 184 training examples left after the validation \
             split (--val-size 16 of 200): an epoch would have no step; expected at most 184"
        );
        assert_eq!(check_split(200, 16, 184), Ok(()));
    }

    #[test]
    fn a_run_killed_after_its_dense_phase_is_pointed_to_from() {
        // The state a kill leaves between the end of the dense phase and the first
        // checkpoint: the dense start saved, the options and the metrics' header written.
        let out = scratch("dense-only");
        std::fs::create_dir_all(out.join("dense")).unwrap();
        std::fs::write(out.join("dense/dense.json"), "{}").unwrap();
        std::fs::write(out.join("dense/model.bpk"), b"weights").unwrap();
        std::fs::write(out.join("config.json"), "{}").unwrap();
        std::fs::write(out.join("metrics.csv"), "step\n").unwrap();
        let listing = |dir: &Path| files_under(dir).unwrap();
        let before = listing(&out);
        let note = format!(
            "its dense model is saved ({}): --from {} reuses it instead of training one again \
             (with --force here, or with another --out)",
            out.join("dense/dense.json").display(),
            out.display()
        );
        // A new run in it is refused, naming what --resume, --force and --from do.
        let err = guard_out(&out, false, false).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{} holds an unfinished run (dense): pass --resume to continue it, or --force to \
                 start it over (its files are replaced); {note}",
                out.display()
            )
        );
        // --resume finds no checkpoint, and says the same of the dense model.
        let err = find_checkpoint::<serde_json::Value>(&out)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "{}: no checkpoint to resume (checkpoints are written at every prune check of \
                 the pruning phase); {note}",
                out.display()
            )
        );
        assert_eq!(listing(&out), before, "nothing written or removed");
        // Killed before the dense model was saved: no sentence about it.
        std::fs::remove_dir_all(out.join("dense")).unwrap();
        let err = guard_out(&out, false, false).unwrap_err().to_string();
        assert!(err.ends_with("(its files are replaced)"), "{err}");
        std::fs::remove_dir_all(&out).ok();
    }

    #[test]
    fn a_run_refused_after_the_guard_leaves_no_directory() {
        let parent = scratch("refused");
        let out = parent.join("run");
        // The fault: a check after `guard_out` refuses the run (nothing written).
        let lock = guard_out(&out, false, false).unwrap();
        assert!(out.join(".lock").is_file());
        drop(lock);
        assert!(!out.exists(), "the directory the guard created is gone");
        // A run that wrote something keeps its directory; one that existed is kept too.
        let lock = guard_out(&out, false, false).unwrap();
        std::fs::write(out.join("config.json"), "{}").unwrap();
        drop(lock);
        assert!(out.join("config.json").is_file());
        std::fs::remove_file(out.join("config.json")).unwrap();
        drop(guard_out(&out, false, false).unwrap());
        assert!(out.is_dir(), "a directory the user made is not removed");
        std::fs::remove_dir_all(&parent).ok();
    }

    #[test]
    fn a_failure_before_the_rename_leaves_the_old_metrics_intact() {
        let dir = scratch("metrics-kill");
        let path = dir.join("metrics.csv");
        let rows = "step,v\n10,1\n20,2\n30,3\n";
        std::fs::write(&path, rows).unwrap();
        // The fault: the process dies (here: the write fails) after the kept rows went into
        // the temporary file, before the rename.
        let err = replace_file(&path, |f| {
            use std::io::Write;
            f.write_all(b"step,v\n10,1\n")?;
            Err(std::io::Error::other("killed"))
        })
        .unwrap_err();
        assert_eq!(
            err,
            format!("{}: cannot write: killed", temporary_path(&path).display())
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), rows, "no row lost");
        // The resume after it truncates through a fresh temporary file: the leftover one
        // is replaced, and the result is the old rows up to the checkpoint.
        let mut csv = open_metrics(&path, "step,v", Some(20)).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "step,v\n10,1\n20,2\n"
        );
        assert!(!temporary_path(&path).exists());
        use std::io::Write;
        writeln!(csv, "30,3.5").unwrap();
        drop(csv);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "step,v\n10,1\n20,2\n30,3.5\n",
            "rows are appended to the renamed file"
        );
        // A temporary file that cannot be created (here a directory is in the way, as a full
        // disk or a read-only directory would refuse it): an error naming it, nothing lost.
        std::fs::create_dir_all(temporary_path(&path)).unwrap();
        let before = std::fs::read(&path).unwrap();
        let err = open_metrics(&path, "step,v", Some(10))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "{}: cannot write: ",
                temporary_path(&path).display()
            )),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // Whole files (config.json, summary.json) go the same way.
        let config = dir.join("config.json");
        std::fs::write(&config, "{\"lr\": 0.001}").unwrap();
        std::fs::create_dir_all(temporary_path(&config)).unwrap();
        assert!(write_file_atomically(&config, "{}").is_err());
        assert_eq!(std::fs::read_to_string(&config).unwrap(), "{\"lr\": 0.001}");
        std::fs::remove_dir_all(temporary_path(&config)).unwrap();
        write_file_atomically(&config, "{}").unwrap();
        assert_eq!(std::fs::read_to_string(&config).unwrap(), "{}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn metrics_write_errors_name_the_file() {
        let dir = scratch("metrics-full");
        let path = dir.join("metrics.csv");
        let mut csv = open_metrics(&path, "step,v", None).unwrap();
        // A write that fails (as on a full disk): the file of the open handle is replaced by
        // a read-only one, so the message is the OS's, prefixed with the path.
        csv.file = File::open(&path).unwrap();
        use std::io::Write;
        let err = writeln!(csv, "10,1").unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: cannot write: ", path.display())),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A checkpoint at `step` written through `write_dir_atomically` with a model file `model`.
    fn checkpoint_at(out: &Path, step: u64, model: &[u8]) {
        write_dir_atomically(out, "checkpoint", |tmp| {
            std::fs::write(tmp.join("model.bpk"), model)?;
            std::fs::write(tmp.join("optim.bpk"), b"optimizer state")?;
            std::fs::write(tmp.join("progress.json"), format!("{{\"step\": {step}}}"))?;
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_checkpoint_file_changed_after_it_was_written_is_refused_by_name() {
        let out = scratch("checksum");
        checkpoint_at(&out, 50, b"weights at step 50");
        let sums: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join("checkpoint").join(CHECKSUMS)).unwrap(),
        )
        .unwrap();
        assert_eq!(sums["step"], 50);
        assert_eq!(
            sums["sha256"]["model.bpk"],
            sparse_data::sha256_hex(b"weights at step 50")
        );
        let (dir, p): (PathBuf, serde_json::Value) = find_checkpoint(&out).unwrap();
        assert_eq!(
            (dir, p["step"].as_u64()),
            (out.join("checkpoint"), Some(50))
        );
        let model = out.join("checkpoint/model.bpk");
        let mismatch = |file: &Path, step: u64| {
            format!(
                "{}: checksum mismatch (the file changed after the checkpoint at step {step} \
                 was written): the checkpoint is corrupt; restore the file, or start the run \
                 over with --force",
                file.display()
            )
        };

        // The fault: one byte flipped in the model file.
        let mut bytes = std::fs::read(&model).unwrap();
        bytes[3] ^= 0x01;
        std::fs::write(&model, &bytes).unwrap();
        let err = find_checkpoint::<serde_json::Value>(&out).unwrap_err();
        assert_eq!(err.to_string(), mismatch(&model, 50));
        assert_eq!(std::fs::read(&model).unwrap(), bytes, "nothing rewritten");

        // The fault: the model file of another step under this step's progress record.
        checkpoint_at(&out, 50, b"weights at step 50");
        let step_50 = std::fs::read(&model).unwrap();
        checkpoint_at(&out, 100, b"weights at step 100");
        std::fs::write(&model, &step_50).unwrap();
        let err = find_checkpoint::<serde_json::Value>(&out).unwrap_err();
        assert_eq!(err.to_string(), mismatch(&model, 100));

        // The optimizer state cut short after it was written: corrupt, not a NaN loss later.
        checkpoint_at(&out, 100, b"weights at step 100");
        let optim = out.join("checkpoint/optim.bpk");
        std::fs::write(&optim, b"optim").unwrap();
        let err = find_checkpoint::<serde_json::Value>(&out).unwrap_err();
        assert_eq!(err.to_string(), mismatch(&optim, 100));

        // A file of the checkpoint deleted.
        std::fs::remove_file(&optim).unwrap();
        let err = find_checkpoint::<serde_json::Value>(&out).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: missing (the checkpoint at step 100 was written with it): the checkpoint \
                 is corrupt; restore the file, or start the run over with --force",
                optim.display()
            )
        );

        // A checkpoint written before checksums existed still resumes.
        checkpoint_at(&out, 100, b"weights at step 100");
        std::fs::remove_file(out.join("checkpoint").join(CHECKSUMS)).unwrap();
        let (_, p): (PathBuf, serde_json::Value) = find_checkpoint(&out).unwrap();
        assert_eq!(p["step"], 100);
        std::fs::remove_dir_all(&out).ok();
    }

    #[test]
    fn a_truncated_optimizer_state_is_refused_naming_the_file() {
        use burn::nn::LinearConfig;
        use burn::optim::GradientsParams;
        use burn::tensor::{Device, Tensor};
        use sparse_prune::{Floor, PruneSchedule, PrunerConfig, Selection};
        let out = scratch("optim-cut");
        let device = Device::flex().autodiff();
        let setup = || {
            let decay = sparse_reg::SelectiveDecayConfig::new()
                .build(burn::optim::AdamConfig::new().build())
                .unwrap();
            let pruner = PrunerConfig::new(PruneSchedule::Gated {
                every: 10,
                fraction: 0.2,
                floor: Floor::Above(0.0),
            })
            .with_params(Selection::All)
            .init()
            .unwrap();
            (decay, pruner)
        };
        let (decay, mut pruner) = setup();
        let model = LinearConfig::new(4, 2).init(&device);
        let Ok((model, mut optim)) = start_or_resume(model, &decay, &mut pruner, None) else {
            panic!("a fresh start")
        };
        let x = Tensor::<2>::from_floats([[1.0, 2.0, 3.0, 4.0]], &device);
        let grads = GradientsParams::from_grads(model.forward(x).sum().backward(), &model);
        let model = optim.step(1e-2, model, grads);
        save_checkpoint(
            &out,
            &model,
            &optim,
            &pruner,
            &serde_json::json!({"step": 1}),
        )
        .unwrap();
        // The fault: the optimizer state cut to half, in a checkpoint without checksums (one
        // written before they existed; with them, the checksum refuses it first).
        let dir = out.join("checkpoint");
        std::fs::remove_file(dir.join(CHECKSUMS)).unwrap();
        let file = dir.join("optim.bpk");
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
        let (found, _) = find_checkpoint::<serde_json::Value>(&out).unwrap();
        let (decay, mut pruner) = setup();
        let fresh = LinearConfig::new(4, 2).init(&device);
        let Err(err) = start_or_resume(fresh, &decay, &mut pruner, Some(&found)) else {
            panic!("a truncated optimizer state was loaded")
        };
        let expected = format!(
            "{}: cannot load the optimizer state (the file is corrupt or cut short): ",
            file.display()
        );
        assert!(err.to_string().starts_with(&expected), "{err}");
        std::fs::remove_dir_all(&out).ok();
    }

    #[test]
    fn a_resume_with_other_options_is_refused_naming_each() {
        let out = scratch("resume-options");
        let stored = serde_json::json!({
            "data_dir": "data/fashion-mnist", "lr": 0.001, "dense_epochs": 4, "epochs": 30,
            "floor": 0.81, "keep_bn": false, "quiet": false, "vocab": 65,
        });
        let config = out.join("config.json");
        std::fs::write(&config, serde_json::to_string_pretty(&stored).unwrap()).unwrap();
        let before = std::fs::read(&config).unwrap();
        let (may_change, derived) = (&["epochs", "quiet"][..], &["floor"][..]);
        let given = |changes: serde_json::Value| {
            let mut g = stored.clone();
            g.as_object_mut().unwrap().remove("vocab"); // recorded by the run, not an option
            for (k, v) in changes.as_object().unwrap() {
                g[k] = v.clone();
            }
            g
        };
        // The same run, a longer budget, the progress line off, the floor left to the run.
        let same = given(serde_json::json!({"epochs": 60, "quiet": true, "floor": null}));
        assert_eq!(
            check_resumed_options(&out, &same, may_change, derived),
            Ok(())
        );
        // The fault: another learning rate and data directory on resume.
        let other = given(serde_json::json!({"lr": 0.01, "data_dir": null}));
        let err = check_resumed_options(&out, &other, may_change, derived).unwrap_err();
        assert_eq!(
            err,
            format!(
                "{}: --resume continues the run started with other options (--data-dir: \
                 stored data/fashion-mnist, given none; --lr: stored 0.001, given 0.01): give \
                 the stored values, or start a new run with another --out (--force replaces \
                 this one); only --epochs, --quiet may change on resume",
                out.display()
            )
        );
        // A derived option given with another value, a flag turned on.
        let other = given(serde_json::json!({"floor": 0.9, "keep_bn": true}));
        let err = check_resumed_options(&out, &other, may_change, derived).unwrap_err();
        assert!(
            err.contains("(--floor: stored 0.81, given 0.9; --keep-bn: stored false, given true)"),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&config).unwrap(),
            before,
            "config.json untouched"
        );
        // A run stopped before it wrote config.json: nothing to compare.
        std::fs::remove_file(&config).unwrap();
        assert_eq!(
            check_resumed_options(&out, &other, may_change, derived),
            Ok(())
        );
        // A damaged config.json: refused, not guessed.
        std::fs::write(&config, "{\"lr\": 0.0").unwrap();
        let err = check_resumed_options(&out, &same, may_change, derived).unwrap_err();
        assert!(
            err.starts_with(&format!("{}: not JSON (", config.display())),
            "{err}"
        );
        std::fs::remove_dir_all(&out).ok();
    }

    #[test]
    fn resumed_metrics_keep_the_rows_up_to_the_checkpoint() {
        let dir = std::env::temp_dir().join(format!("sparse-run-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.csv");
        std::fs::write(&path, "step,v\n10,1\n20,2\n30,3\n").unwrap();
        drop(open_metrics(&path, "step,v", Some(20)).unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "step,v\n10,1\n20,2\n"
        );
        drop(open_metrics(&path, "step,v", None).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "step,v\n");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_crash_during_a_checkpoint_write_leaves_the_previous_one() {
        let out = std::env::temp_dir().join(format!("sparse-run-crash-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        // The state a kill leaves between the two renames of `save_checkpoint`: the new
        // checkpoint half written in checkpoint.tmp, the previous one moved to checkpoint.old.
        std::fs::create_dir_all(out.join("checkpoint.tmp")).unwrap();
        std::fs::write(out.join("checkpoint.tmp/model.bpk"), b"partial").unwrap();
        std::fs::create_dir_all(out.join("checkpoint.old")).unwrap();
        std::fs::write(out.join("checkpoint.old/progress.json"), "{\"step\": 50}").unwrap();
        let (dir, p): (PathBuf, serde_json::Value) = find_checkpoint(&out).unwrap();
        assert_eq!(dir, out.join("checkpoint.old"));
        assert_eq!(p["step"], 50);
        // A checkpoint of another format version is refused by name.
        std::fs::write(out.join("checkpoint.old/meta.json"), "{\"format\": 2}").unwrap();
        let err = find_checkpoint::<serde_json::Value>(&out)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "{}: checkpoint format 2, this build reads format 1",
                out.join("checkpoint.old/meta.json").display()
            )
        );
        // No complete checkpoint at all: a clear error.
        std::fs::remove_dir_all(out.join("checkpoint.old")).unwrap();
        let err = find_checkpoint::<serde_json::Value>(&out)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no checkpoint to resume"), "{err}");
        std::fs::remove_dir_all(&out).ok();
    }

    #[test]
    fn a_diverged_run_names_the_checkpoint_it_keeps() {
        let dir = Path::new("runs/x/checkpoint");
        assert_eq!(
            diverged(60, f64::INFINITY, Some((50, dir))),
            "step 60: the training loss is inf: the run stopped; the last good checkpoint (step \
             50, runs/x/checkpoint) is kept: lower --lr or --gamma and --resume"
        );
    }
}
