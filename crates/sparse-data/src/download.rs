//! `--download`: fetch the official MNIST-format files over HTTP and verify them.
//!
//! The SHA-256 checked is that of the *decompressed* IDX content where we computed it (so a
//! re-compressed copy of the same data, such as Debian's, verifies too), or that of the
//! archive as published (MNIST: the checksums every mirror lists). Files are written only after they verify,
//! through a temporary file and a rename: an interrupted download never leaves a half file.
//! Plain `http://` only (the official Fashion-MNIST host serves it); this build has no TLS.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use crate::{DataError, parse_idx, sha256_hex};

/// What a [`Source`]'s SHA-256 sums are taken of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksum {
    /// The decompressed IDX bytes (header + data).
    Content,
    /// The file as downloaded (the `.gz` archive).
    Archive,
}

/// A downloadable MNIST-format data set: where it lives and what its files must hash to.
#[derive(Clone, Copy, Debug)]
pub struct Source {
    /// Name for messages.
    pub name: &'static str,
    /// Base URL, ending in `/`.
    pub base_url: &'static str,
    /// `(file name, SHA-256)`.
    pub files: [(&'static str, &'static str); 4],
    /// What the sums are of.
    pub checksum: Checksum,
}

/// Fashion-MNIST from its official host (checksums of the IDX content, computed from the
/// Debian package's copy of the same data).
pub const FASHION_MNIST: Source = Source {
    name: "Fashion-MNIST",
    base_url: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    files: [
        (
            "train-images-idx3-ubyte.gz",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        (
            "train-labels-idx1-ubyte.gz",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        (
            "t10k-images-idx3-ubyte.gz",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        (
            "t10k-labels-idx1-ubyte.gz",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    ],
    checksum: Checksum::Content,
};

/// MNIST from PyTorch's S3 mirror (the original host refuses most clients now), with the
/// SHA-256 sums of the published archives.
pub const MNIST: Source = Source {
    name: "MNIST",
    base_url: "http://ossci-datasets.s3.amazonaws.com/mnist/",
    files: [
        (
            "train-images-idx3-ubyte.gz",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        ),
        (
            "train-labels-idx1-ubyte.gz",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        ),
        (
            "t10k-images-idx3-ubyte.gz",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        ),
        (
            "t10k-labels-idx1-ubyte.gz",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ),
    ],
    checksum: Checksum::Archive,
};

/// Largest response accepted.
const MAX_RESPONSE: usize = 64 << 20;

/// Download every file of `source` missing from `dir` (from `base_url`, or the official one)
/// and verify it; files already there are verified too. Returns the files fetched.
pub fn download(
    source: &Source,
    base_url: Option<&str>,
    dir: &Path,
) -> Result<Vec<String>, DataError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| DataError::new(dir, format!("cannot create the directory: {e}")))?;
    let base = base_url.unwrap_or(source.base_url);
    let mut fetched = vec![];
    for (name, sha) in source.files {
        let path = dir.join(name);
        if path.is_file() {
            let bytes = std::fs::read(&path)
                .map_err(|e| DataError::new(&path, format!("cannot read: {e}")))?;
            verify(&path, &bytes, sha, source.checksum)?;
            continue;
        }
        let url = format!("{base}{name}");
        let bytes = http_get(&url)?;
        verify(&url, &bytes, sha, source.checksum)?;
        let tmp = dir.join(format!(".{name}.part"));
        std::fs::write(&tmp, &bytes)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| DataError::new(&path, format!("cannot write the downloaded file: {e}")))?;
        fetched.push(name.to_string());
    }
    Ok(fetched)
}

fn verify(what: impl AsRef<Path>, gz: &[u8], sha: &str, of: Checksum) -> Result<(), DataError> {
    let what = what.as_ref();
    // Always parsed: a file that verifies also loads.
    let content = parse_idx(what, gz)?;
    let (got, of_what) = match of {
        Checksum::Archive => (sha256_hex(gz), "the archive"),
        Checksum::Content => {
            // The IDX bytes as they were decompressed: header + data.
            let mut raw = vec![0, 0, 8, content.dims.len() as u8];
            for d in &content.dims {
                raw.extend((*d as u32).to_be_bytes());
            }
            raw.extend(&content.data);
            (sha256_hex(&raw), "the IDX content")
        }
    };
    if got != sha {
        return Err(DataError::new(
            what,
            format!("checksum mismatch: expected SHA-256 {sha} of {of_what}, got {got}; not saved"),
        ));
    }
    Ok(())
}

/// GET an `http://host[:port]/path` URL; follows up to 5 redirects.
pub fn http_get(url: &str) -> Result<Vec<u8>, DataError> {
    http_get_limited(url, MAX_RESPONSE)
}

/// [`http_get`] refusing responses over `max_response` bytes.
pub(crate) fn http_get_limited(url: &str, max_response: usize) -> Result<Vec<u8>, DataError> {
    let mut url = url.to_string();
    for _ in 0..5 {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            DataError::new(
                &url,
                "only http:// URLs can be downloaded by this build: fetch the files by other means \
                 and pass their directory with --data-dir",
            )
        })?;
        let (host, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
        let addr = if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        let fail = |m: String| DataError::new(&url, m);
        let mut stream = TcpStream::connect(&addr)
            .map_err(|e| fail(format!("cannot connect to {addr}: {e}")))?;
        stream.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: sparse-data\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| fail(format!("cannot send the request: {e}")))?;
        let mut response = Vec::new();
        stream
            .take(max_response as u64 + 1)
            .read_to_end(&mut response)
            .map_err(|e| fail(format!("cannot read the response: {e}")))?;
        if response.len() > max_response {
            return Err(fail(format!("response larger than {max_response} bytes")));
        }
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| fail("malformed HTTP response: no end of headers".into()))?;
        let head = String::from_utf8_lossy(&response[..split]).to_string();
        let body = &response[split + 4..];
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                fail(format!(
                    "malformed HTTP status line: {:?}",
                    head.lines().next()
                ))
            })?;
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        match status {
            200 => {
                if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
                    return dechunk(body).ok_or_else(|| fail("malformed chunked HTTP body".into()));
                }
                if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok())
                    && body.len() != len
                {
                    return Err(fail(format!(
                        "truncated download: expected {len} bytes, got {}",
                        body.len()
                    )));
                }
                return Ok(body.to_vec());
            }
            301 | 302 | 303 | 307 | 308 => {
                url = header("location")
                    .ok_or_else(|| fail(format!("HTTP {status} without a Location")))?;
            }
            _ => {
                return Err(fail(format!(
                    "the server answered HTTP {status}: expected 200"
                )));
            }
        }
    }
    Err(DataError::new(url, "more than 5 redirects"))
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(
            std::str::from_utf8(&body[..line_end])
                .ok()?
                .split(';')
                .next()?
                .trim(),
            16,
        )
        .ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}
