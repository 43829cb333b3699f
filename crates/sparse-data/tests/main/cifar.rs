//! CIFAR-10 binary files: loading, each malformed file as a clear error, and `download_cifar`
//! (flate2 + tar, SHA-256 verified) against a local HTTP server.

use std::io::Write;
use std::path::{Path, PathBuf};

use sparse_data::{
    CIFAR10_FILES, CIFAR10_SUBDIR, CifarSet, CifarSource, Split, download_cifar, sha256_hex,
};

use crate::common::{Routes, serve};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sparse-cifar-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn err(path: &Path) -> String {
    let e = CifarSet::read(path).unwrap_err();
    assert_eq!(
        e.path,
        path.display().to_string(),
        "the error names the file"
    );
    e.message
}

#[test]
fn a_generated_set_loads_by_split() {
    let d = tmp("good");
    CifarSet::write_synthetic(&d, 20, 7, 1).unwrap();
    let train = CifarSet::load_dir(&d, Split::Train).unwrap();
    let test = CifarSet::load_dir(&d, Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (100, 7));
    assert_eq!(train.pixels.len(), 100 * 3072);
}

#[test]
fn each_malformed_file_is_a_clear_error() {
    let d = tmp("bad");
    let missing = err(&d.join("data_batch_1.bin"));
    assert!(
        missing.starts_with("missing: expected CIFAR-10's binary version: pass --download"),
        "{missing}"
    );
    let write = |name: &str, bytes: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    assert_eq!(
        err(&write("empty.bin", b"")),
        "empty file: expected records of 3073 bytes"
    );
    let good = CifarSet::synthetic(3, 2).to_bytes();
    assert_eq!(
        err(&write("short.bin", &good[..good.len() - 10])),
        "9209 bytes is not a whole number of 3073-byte records (1 label + 3072 pixels): \
         truncated, or not CIFAR-10's binary version"
    );
    let mut label = good.clone();
    label[3073] = 17;
    assert_eq!(
        err(&write("label.bin", &label)),
        "record 1: label 17, expected 0-9 (CIFAR-100's files have two label bytes and are not \
         supported)"
    );
    // A directory missing one training batch names that file.
    CifarSet::write_synthetic(&d, 2, 2, 1).unwrap();
    std::fs::remove_file(d.join("data_batch_4.bin")).unwrap();
    let e = CifarSet::load_dir(&d, Split::Train).unwrap_err();
    assert_eq!(e.path, d.join("data_batch_4.bin").display().to_string());
}

/// `files` as a ustar archive, gzip-compressed.
fn tar_gz(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    gz(&tar(files))
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn tar(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, &data[..]).unwrap();
    }
    tar.into_inner().unwrap()
}

fn source(archive: &[u8]) -> CifarSource {
    CifarSource {
        base_url: "http://unused.invalid/",
        archive: "cifar-10-binary.tar.gz",
        sha256: Box::leak(sha256_hex(archive).into_boxed_str()),
    }
}

fn batches() -> Vec<(&'static str, Vec<u8>)> {
    CIFAR10_FILES
        .iter()
        .enumerate()
        .map(|(i, f)| (*f, CifarSet::synthetic(4, i as u64).to_bytes()))
        .collect()
}

#[test]
fn download_verifies_unpacks_and_loads() {
    let members: Vec<(String, Vec<u8>)> = batches()
        .into_iter()
        .map(|(f, b)| (format!("{CIFAR10_SUBDIR}/{f}"), b))
        .collect();
    let named: Vec<(&str, Vec<u8>)> = members
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    let archive = tar_gz(&named);
    let body = archive.clone();
    let base = serve(move |_| {
        Routes::from([(
            "/cifar-10-binary.tar.gz".to_string(),
            (200, String::new(), body),
        )])
    });
    let d = tmp("download");
    assert!(download_cifar(&source(&archive), Some(&base), &d).unwrap());
    let test = CifarSet::load_dir(&d, Split::Test).unwrap();
    assert_eq!(test, CifarSet::synthetic(4, 5));
    // Everything is there: nothing is fetched again.
    assert!(!download_cifar(&source(&archive), Some("http://127.0.0.1:9/"), &d).unwrap());
}

#[test]
fn a_bad_archive_is_refused_and_nothing_is_saved() {
    let good = tar_gz(&batches());
    let mut one_short = batches();
    one_short.pop();
    let incomplete = tar_gz(&one_short);
    let mut truncated_tar = batches();
    truncated_tar[0].1.truncate(100); // a member that is not whole records
    let bad_member = tar_gz(&truncated_tar);
    let cut = gz(&tar(&batches())[..700]);
    let (g, i, b, c) = (
        good.clone(),
        incomplete.clone(),
        bad_member.clone(),
        cut.clone(),
    );
    let base = serve(move |_| {
        Routes::from([
            (
                "/good/cifar-10-binary.tar.gz".to_string(),
                (200, String::new(), g),
            ),
            (
                "/incomplete/cifar-10-binary.tar.gz".to_string(),
                (200, String::new(), i),
            ),
            (
                "/member/cifar-10-binary.tar.gz".to_string(),
                (200, String::new(), b),
            ),
            (
                "/cut/cifar-10-binary.tar.gz".to_string(),
                (200, String::new(), c),
            ),
        ])
    });
    let d = tmp("refused");
    // The published checksum differs from what the server sends.
    let mut wrong = source(&good);
    wrong.sha256 = "00";
    let e = download_cifar(&wrong, Some(&format!("{base}good/")), &d).unwrap_err();
    assert_eq!(
        e.message,
        format!(
            "checksum mismatch: expected SHA-256 00 of the archive, got {}; not saved",
            sha256_hex(&good)
        )
    );
    let e = download_cifar(
        &source(&incomplete),
        Some(&format!("{base}incomplete/")),
        &d,
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "the archive holds no test_batch.bin: not CIFAR-10"
    );
    let e = download_cifar(&source(&bad_member), Some(&format!("{base}member/")), &d).unwrap_err();
    assert!(
        e.message
            .contains("not a whole number of 3073-byte records"),
        "{e}"
    );
    assert!(e.path.ends_with("data_batch_1.bin"), "{}", e.path);
    let e = download_cifar(&source(&cut), Some(&format!("{base}cut/")), &d).unwrap_err();
    assert_eq!(
        e.message,
        "truncated: a member of 12292 bytes at byte 512, the archive has 700"
    );
    assert!(
        !d.join(CIFAR10_SUBDIR).join("data_batch_1.bin").exists(),
        "nothing is written from a bad archive"
    );
}
