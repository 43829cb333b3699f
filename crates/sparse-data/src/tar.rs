//! The members of a (ustar / GNU) tar archive, read from memory: enough to unpack
//! `cifar-10-binary.tar.gz` in pure Rust (tested through `download_cifar` in
//! `tests/cifar.rs`).

use crate::DataError;

/// `(path inside the archive, contents)` of every regular file in `tar`. Sizes are checked
/// against the bytes left, so a truncated or corrupted archive is an error, never a panic.
pub fn tar_files<'a>(archive: &str, tar: &'a [u8]) -> Result<Vec<(String, &'a [u8])>, DataError> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut long_name: Option<String> = None;
    while at + 512 <= tar.len() {
        let header = &tar[at..at + 512];
        if header.iter().all(|b| *b == 0) {
            return Ok(out); // end-of-archive marker
        }
        let field = |r: std::ops::Range<usize>| {
            let f = &header[r];
            let end = f.iter().position(|b| *b == 0).unwrap_or(f.len());
            String::from_utf8_lossy(&f[..end]).trim().to_string()
        };
        let size = u64::from_str_radix(&field(124..136), 8).map_err(|_| {
            DataError::new(
                archive,
                format!("tar header at byte {at}: size field is not octal"),
            )
        })? as usize;
        let start = at + 512;
        let data = tar.get(start..start.saturating_add(size)).ok_or_else(|| {
            DataError::new(
                archive,
                format!(
                    "truncated: a member of {size} bytes at byte {start}, the archive has {}",
                    tar.len()
                ),
            )
        })?;
        let mut name = field(0..100);
        let prefix = field(345..500);
        if &header[257..262] == b"ustar" && !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
        if let Some(long) = long_name.take() {
            name = long;
        }
        match header[156] {
            b'0' | 0 => out.push((name, data)),
            b'L' => {
                let end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
                long_name = Some(String::from_utf8_lossy(&data[..end]).to_string());
            }
            _ => {} // directories, links, pax headers: not needed
        }
        at = start + size.div_ceil(512) * 512;
    }
    Err(DataError::new(
        archive,
        "truncated: the tar archive ends without its end-of-archive marker",
    ))
}
