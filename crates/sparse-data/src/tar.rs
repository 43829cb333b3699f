//! The regular files of a tar archive held in memory, read with the [`tar`] crate: what
//! `download_cifar` unpacks from `cifar-10-binary.tar.gz` (tested through it in
//! `tests/main/cifar.rs`).

use std::io::Read;

use crate::DataError;

/// `(path inside the archive, contents)` of every regular file in `tar`. A member that runs
/// past the end of the bytes, or a header that does not parse, is an error naming `archive`.
pub fn tar_files(archive: &str, tar: &[u8]) -> Result<Vec<(String, Vec<u8>)>, DataError> {
    let fail = |m: String| DataError::new(archive, m);
    let mut out = Vec::new();
    let mut members = ::tar::Archive::new(tar);
    let entries = members
        .entries()
        .map_err(|e| fail(format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| fail(format!("not a tar archive: {e}")))?;
        let (start, size) = (entry.raw_file_position(), entry.size());
        if start.saturating_add(size) > tar.len() as u64 {
            return Err(fail(format!(
                "truncated: a member of {size} bytes at byte {start}, the archive has {}",
                tar.len()
            )));
        }
        if !entry.header().entry_type().is_file() {
            continue; // directories, links, pax headers: not needed
        }
        let path = entry
            .path()
            .map_err(|e| fail(format!("a member's path does not parse: {e}")))?
            .to_string_lossy()
            .into_owned();
        let mut data = Vec::with_capacity(size as usize);
        entry
            .read_to_end(&mut data)
            .map_err(|e| fail(format!("cannot read the member {path}: {e}")))?;
        out.push((path, data));
    }
    Ok(out)
}
