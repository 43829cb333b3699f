//! `--download`: fetch the official MNIST-format files over HTTP and verify them.
//!
//! The SHA-256 checked is that of the *decompressed* IDX content where we computed it (so a
//! re-compressed copy of the same data, such as Debian's, verifies too), or that of the
//! archive as published (MNIST: the checksums every mirror lists). Files are written only after they verify,
//! through a temporary file and a rename: an interrupted download never leaves a half file.
//! The files come over `http://` or `https://` through [`Http`] (ureq with rustls).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use crate::{DataError, parse_idx};

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
    base_url: "https://ossci-datasets.s3.amazonaws.com/mnist/",
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

/// The SHA-256 digest of `data` as lowercase hex (the form the published checksums take).
///
/// ```
/// assert_eq!(
///     sparse_data::sha256_hex(b"abc"),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// ```
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// GET an `http://` or `https://` URL with the default [`Http`] client.
///
/// ```no_run
/// let bytes = sparse_data::http_get("https://example.com/")?;
/// # Ok::<(), sparse_data::DataError>(())
/// ```
pub fn http_get(url: &str) -> Result<Vec<u8>, DataError> {
    Http::new().get(url)
}

/// The HTTP client of the downloads ([`ureq`]): `http://` and `https://` (rustls with the
/// Mozilla root certificates), up to 5 redirects, the proxy named by `HTTPS_PROXY`,
/// `HTTP_PROXY` or `ALL_PROXY` (and `NO_PROXY`), and a size limit on the response.
#[derive(Clone, Debug)]
pub struct Http {
    agent: ureq::Agent,
    max_response: u64,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    /// The client of [`download`] and [`http_get`]: responses up to 64 MB.
    pub fn new() -> Self {
        Self::with_tls(TlsConfig::default())
    }

    /// A client that trusts only the given root certificate (DER), for a private mirror or a
    /// test server with a self-signed certificate.
    pub fn with_root_certificate(der: &[u8]) -> Self {
        let root = Certificate::from_der(der).to_owned();
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(vec![root])))
            .build();
        Self::with_tls(tls)
    }

    fn with_tls(tls: TlsConfig) -> Self {
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .proxy(ureq::Proxy::try_from_env())
            .max_redirects(5)
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .user_agent("sparse-data")
            .build();
        Self {
            agent: config.into(),
            max_response: MAX_RESPONSE as u64,
        }
    }

    /// The same client, refusing responses over `bytes`.
    pub fn max_response(mut self, bytes: u64) -> Self {
        self.max_response = bytes;
        self
    }

    /// GET `url`: the body of a `200` answer, or an error naming the URL.
    pub fn get(&self, url: &str) -> Result<Vec<u8>, DataError> {
        let fail = |m: String| DataError::new(url, m);
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(fail(
                "expected an http:// or https:// URL: fetch the files by other means and pass \
                 their directory with --data-dir"
                    .into(),
            ));
        }
        let host = url
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
            .unwrap_or(url);
        let mut response = self.agent.get(url).call().map_err(|e| match e {
            ureq::Error::Io(e) => fail(format!("cannot connect to {host}: {e}")),
            ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
                fail(format!("cannot connect to {host}: {e}"))
            }
            ureq::Error::TooManyRedirects => fail("more than 5 redirects".into()),
            ureq::Error::RedirectFailed => fail("a redirect without a usable Location".into()),
            e => fail(format!("the request failed: {e}")),
        })?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(fail(format!(
                "the server answered HTTP {status}: expected 200"
            )));
        }
        let max = self.max_response;
        response
            .body_mut()
            .with_config()
            .limit(max)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => {
                    fail(format!("response larger than {max} bytes"))
                }
                e => fail(format!("cannot read the response: {e}")),
            })
    }
}
