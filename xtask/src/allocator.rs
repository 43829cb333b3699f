//! A steady glibc allocator for the benchmarks, the same for Burn and for the PyTorch runs.
//!
//! With glibc's defaults a process that has just run one model can keep returning its freed
//! multi-megabyte buffers to the system and page-faulting them back at every step of the next
//! one: in `bench overhead`, the first LeNet-5 row after the LeNet-300-100 rows took 34 ms per
//! step (all three contestants alike) against 19-20 ms for the rows after it, and 19.8 ms with
//! the settings below. The benchmarks re-run themselves once with those settings in the
//! environment, so every row sees the same allocator, and the PyTorch processes they start
//! inherit them. `reproduce` runs its training processes with them too (a ResNet-20 training
//! step on flex, batch 128, one thread: about 920 ms with glibc's defaults, 765 ms with these;
//! the results do not depend on the allocator).

/// glibc's tunables: no `mmap` for buffers under 256 MiB, no trimming under 1 GiB.
const STEADY: [(&str, &str); 3] = [
    ("MALLOC_MMAP_THRESHOLD_", "268435456"),
    ("MALLOC_TRIM_THRESHOLD_", "1073741824"),
    ("MALLOC_TOP_PAD_", "268435456"),
];

/// The settings as `NAME=value` pairs (for the benchmarks' machine line).
pub fn settings() -> String {
    STEADY
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// On glibc, when the settings are not in the environment yet: run this same command again
/// with them and return its exit code. `None`: go on in this process.
pub fn rerun_steady() -> Option<i32> {
    if !cfg!(all(target_os = "linux", target_env = "gnu"))
        || std::env::var_os(STEADY[0].0).is_some()
    {
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    let status = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .envs(STEADY)
        .status()
        .ok()?;
    Some(status.code().unwrap_or(1))
}

/// Give `command` the settings (on glibc), unless the environment sets them already.
pub fn steady(command: &mut std::process::Command) {
    if cfg!(all(target_os = "linux", target_env = "gnu")) && std::env::var_os(STEADY[0].0).is_none()
    {
        command.envs(STEADY);
    }
}
