//! `download` against a local HTTP server: good files, a bad checksum, a server error, a
//! redirect, an unsupported URL scheme, and HTTPS with a self-signed certificate.

use std::io::{Read, Write};
use std::path::PathBuf;

use sparse_data::{
    Checksum, Http, ImageSet, Source, Split, download, http_get, parse_idx, sha256_hex,
};

use crate::common::{Routes, serve, serve_tls};

fn data_file(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("data")
            .join(name),
    )
    .unwrap()
}

fn content_sha(name: &str, gz: &[u8]) -> &'static str {
    let a = parse_idx(name, gz).unwrap();
    let mut raw = vec![0, 0, 8, a.dims.len() as u8];
    for d in &a.dims {
        raw.extend((*d as u32).to_be_bytes());
    }
    raw.extend(&a.data);
    Box::leak(sha256_hex(&raw).into_boxed_str())
}

const NAMES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

fn source() -> Source {
    let files = NAMES.map(|n| (n, content_sha(n, &data_file(n))));
    Source {
        name: "test",
        base_url: "http://unused/",
        files,
        checksum: Checksum::Content,
    }
}

/// The same files, verified by the SHA-256 of the archives as served (MNIST's way).
fn archive_source() -> Source {
    let files = NAMES.map(|n| (n, &*Box::leak(sha256_hex(&data_file(n)).into_boxed_str())));
    Source {
        name: "test-archive",
        base_url: "http://unused/",
        files,
        checksum: Checksum::Archive,
    }
}

#[test]
fn archive_checksums_verify_the_file_as_served() {
    let base = serve(|_| {
        let mut routes = Routes::new();
        for n in NAMES {
            routes.insert(format!("/{n}"), (200, String::new(), data_file(n)));
        }
        routes
    });
    let dir = tmp("archive");
    assert_eq!(
        download(&archive_source(), Some(&base), &dir)
            .unwrap()
            .len(),
        4
    );
    assert_eq!(ImageSet::load_dir(&dir, Split::Train).unwrap().len(), 6000);
    // A re-compressed copy of the same content is a different archive: refused by name.
    let content = std::fs::read(dir.join(NAMES[1])).unwrap();
    let raw = {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&content[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    let mut again = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    again.write_all(&raw).unwrap();
    std::fs::write(dir.join(NAMES[1]), again.finish().unwrap()).unwrap();
    let err = download(&archive_source(), Some(&base), &dir).unwrap_err();
    assert!(err.message.contains("of the archive"), "{err}");
    assert!(err.to_string().contains(NAMES[1]), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sparse-dl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn good_files_download_verify_and_load() {
    let base = serve(|base| {
        let mut routes = Routes::new();
        for n in NAMES {
            if n.starts_with("t10k-labels") {
                // One file behind a redirect.
                routes.insert(
                    format!("/{n}"),
                    (302, format!("Location: {base}real/{n}\r\n"), vec![]),
                );
                routes.insert(format!("/real/{n}"), (200, String::new(), data_file(n)));
            } else {
                routes.insert(format!("/{n}"), (200, String::new(), data_file(n)));
            }
        }
        routes
    });
    let dir = tmp("good");
    let fetched = download(&source(), Some(&base), &dir).unwrap();
    assert_eq!(fetched.len(), 4);
    let test = ImageSet::load_dir(&dir, Split::Test).unwrap();
    assert_eq!(test.len(), 1000);
    // Everything present: nothing fetched again, everything verified.
    assert!(download(&source(), Some(&base), &dir).unwrap().is_empty());
    // A corrupted file on disk is caught by that verification.
    std::fs::write(
        dir.join("t10k-labels-idx1-ubyte.gz"),
        data_file("train-labels-idx1-ubyte.gz"),
    )
    .unwrap();
    let err = download(&source(), Some(&base), &dir).unwrap_err();
    assert!(err.message.starts_with("checksum mismatch"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_bad_checksum_is_refused_and_nothing_is_saved() {
    let base = serve(|_| {
        // Every route serves the test labels: valid IDX, the wrong content for the others.
        let labels = data_file("t10k-labels-idx1-ubyte.gz");
        NAMES
            .iter()
            .map(|n| (format!("/{n}"), (200, String::new(), labels.clone())))
            .collect()
    });
    let dir = tmp("bad");
    let err = download(&source(), Some(&base), &dir).unwrap_err();
    assert!(err.path.ends_with("train-images-idx3-ubyte.gz"), "{err}");
    assert!(
        err.message
            .starts_with("checksum mismatch: expected SHA-256"),
        "{err}"
    );
    assert!(
        !dir.join("train-images-idx3-ubyte.gz").exists(),
        "a file that fails is not saved"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn server_errors_and_unsupported_urls_are_clear() {
    let broken = (
        "/broken".to_string(),
        (500, String::new(), b"oops".to_vec()),
    );
    let base = serve(|_| Routes::from([broken]));
    let err = http_get(&format!("{base}broken")).unwrap_err();
    assert_eq!(err.message, "the server answered HTTP 500: expected 200");
    let err = http_get("ftp://example.invalid/x").unwrap_err();
    assert_eq!(
        err.message,
        "expected an http:// or https:// URL: fetch the files by other means and pass their \
         directory with --data-dir"
    );
    let err = http_get("http://127.0.0.1:1/x").unwrap_err();
    let refused = std::net::TcpStream::connect("127.0.0.1:1").unwrap_err();
    assert_eq!(
        err.message,
        format!("cannot connect to 127.0.0.1:1: {refused}")
    );
    let base = serve(|base| {
        Routes::from([
            ("/big".to_string(), (200, String::new(), vec![7; 100])),
            (
                "/loop".to_string(),
                (302, format!("Location: {base}loop\r\n"), vec![]),
            ),
        ])
    });
    let err = Http::new()
        .max_response(99)
        .get(&format!("{base}big"))
        .unwrap_err();
    assert_eq!(err.message, "response larger than 99 bytes");
    assert_eq!(
        Http::new().max_response(100).get(&format!("{base}big")),
        Ok(vec![7; 100])
    );
    let err = http_get(&format!("{base}loop")).unwrap_err();
    assert_eq!(err.message, "more than 5 redirects");
}

#[test]
fn https_downloads_verify_the_certificate() {
    let n = NAMES[3];
    let (base, cert) =
        serve_tls(|_| Routes::from([(format!("/{n}"), (200, String::new(), data_file(n)))]));
    let url = format!("{base}{n}");
    // Trusted as the root: the file arrives whole.
    assert_eq!(
        Http::with_root_certificate(&cert).get(&url),
        Ok(data_file(n))
    );
    // The default client trusts the public roots only: a self-signed server is refused.
    let err = http_get(&url).unwrap_err();
    assert_eq!(
        err.message,
        "cannot connect to 127.0.0.1:PORT: invalid peer certificate: UnknownIssuer".replace(
            "PORT",
            base.trim_end_matches('/').rsplit(':').next().unwrap()
        ),
        "{err}"
    );
}
