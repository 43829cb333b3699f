//! `--download` of CIFAR-10: the official `cifar-10-binary.tar.gz`, verified against its
//! SHA-256, unpacked (flate2 + tar), each batch file checked before it is written.

use std::io::Read;
use std::path::Path;

use crate::cifar::{CIFAR10_FILES, CIFAR10_SUBDIR, cifar_dir};
use crate::tar::tar_files;
use crate::{CifarSet, DataError, Http, sha256_hex};

/// Where a CIFAR-format archive lives and what it must hash to.
#[derive(Clone, Copy, Debug)]
pub struct CifarSource {
    /// Base URL, ending in `/`.
    pub base_url: &'static str,
    /// The archive's file name.
    pub archive: &'static str,
    /// SHA-256 of the archive as published.
    pub sha256: &'static str,
}

/// CIFAR-10's binary version from its authors' site (170,052,171 bytes; the SHA-256 that
/// TensorFlow Datasets and others list for it); a mirror can be given with `--download-url`.
pub const CIFAR10: CifarSource = CifarSource {
    base_url: "https://www.cs.toronto.edu/~kriz/",
    archive: "cifar-10-binary.tar.gz",
    sha256: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
};

/// Largest archive accepted.
const MAX_ARCHIVE: usize = 256 << 20;

/// Download `source` (from `base_url`, or its own) unless `dir` already holds every file,
/// verify it, and unpack the six batch files into `dir/cifar-10-batches-bin/` (each through a
/// temporary file and a rename). Returns whether anything was downloaded.
///
/// ```no_run
/// let fetched = sparse_data::download_cifar(&sparse_data::CIFAR10, None, "data/cifar10".as_ref())?;
/// # Ok::<(), sparse_data::DataError>(())
/// ```
pub fn download_cifar(
    source: &CifarSource,
    base_url: Option<&str>,
    dir: &Path,
) -> Result<bool, DataError> {
    let have = cifar_dir(dir);
    if CIFAR10_FILES.iter().all(|f| have.join(f).is_file()) {
        return Ok(false);
    }
    let url = format!("{}{}", base_url.unwrap_or(source.base_url), source.archive);
    let archive = Http::new().max_response(MAX_ARCHIVE as u64).get(&url)?;
    let got = sha256_hex(&archive);
    if got != source.sha256 {
        return Err(DataError::new(
            &url,
            format!(
                "checksum mismatch: expected SHA-256 {} of the archive, got {got}; not saved",
                source.sha256
            ),
        ));
    }
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&archive[..])
        .take(MAX_ARCHIVE as u64 * 2)
        .read_to_end(&mut tar)
        .map_err(|e| DataError::new(&url, format!("not a gzip archive: {e}")))?;
    let members = tar_files(&url, &tar)?;
    // Every file found and checked before any is written.
    let mut files = Vec::with_capacity(CIFAR10_FILES.len());
    for name in CIFAR10_FILES {
        let (_, bytes) = members
            .iter()
            .find(|(path, _)| path.rsplit('/').next() == Some(name))
            .ok_or_else(|| {
                DataError::new(&url, format!("the archive holds no {name}: not CIFAR-10"))
            })?;
        CifarSet::parse(format!("{url}:{name}"), bytes)?;
        files.push((name, bytes));
    }
    let out = dir.join(CIFAR10_SUBDIR);
    std::fs::create_dir_all(&out)
        .map_err(|e| DataError::new(&out, format!("cannot create the directory: {e}")))?;
    for (name, bytes) in files {
        let (tmp, path) = (out.join(format!(".{name}.part")), out.join(name));
        std::fs::write(&tmp, bytes)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| DataError::new(&path, format!("cannot write: {e}")))?;
    }
    Ok(true)
}
