//! Every bad input to the IDX and image-set loaders gives an error naming the file and what
//! was expected; good files (raw and gzip) parse.

use std::path::{Path, PathBuf};

use sparse_data::{DataError, ImageSet, MAX_BYTES, Split, read_idx};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sparse-data-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn idx(dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        b.extend(d.to_be_bytes());
    }
    b.extend(body);
    b
}

/// A minimal gzip writer (stored deflate blocks), independent of the decoder under test.
fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    for (i, chunk) in bytes.chunks(65535).enumerate() {
        let last = (i + 1) * 65535 >= bytes.len();
        out.push(last as u8);
        out.extend((chunk.len() as u16).to_le_bytes());
        out.extend((!(chunk.len() as u16)).to_le_bytes());
        out.extend(chunk);
    }
    if bytes.is_empty() {
        out.extend([1, 0, 0, 255, 255]);
    }
    out.extend(crc32(bytes).to_le_bytes());
    out.extend((bytes.len() as u32).to_le_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= *b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn write(path: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

fn err(path: &Path) -> String {
    let e: DataError = read_idx(path).unwrap_err();
    assert_eq!(
        e.path,
        path.display().to_string(),
        "the error names the file"
    );
    e.message
}

#[test]
fn good_files_parse_raw_and_gzip() {
    let d = dir("good");
    let body: Vec<u8> = (0..2 * 3 * 2).map(|i| i as u8).collect();
    let raw = write(&d.join("a.idx"), &idx(&[2, 3, 2], &body));
    let zipped = write(&d.join("a.idx.gz"), &gz(&idx(&[2, 3, 2], &body)));
    for p in [raw, zipped] {
        let a = read_idx(&p).unwrap();
        assert_eq!(a.dims, vec![2, 3, 2]);
        assert_eq!(a.data, body);
    }
}

#[test]
fn each_malformed_file_is_a_clear_error() {
    let d = dir("bad");
    assert!(err(&d.join("missing.idx")).starts_with("cannot read the file:"));
    assert_eq!(
        err(&write(&d.join("magic"), b"PK\x03\x04rest")),
        "not an IDX file: expected the magic bytes 00 00 08 NN, found [50, 4b, 03, 04]"
    );
    assert_eq!(
        err(&write(
            &d.join("type"),
            &[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]
        )),
        "unsupported IDX element type 0x0d: expected 0x08 (unsigned byte)"
    );
    assert_eq!(
        err(&write(&d.join("header"), &[0, 0, 8, 3, 0, 0, 0, 1])),
        "truncated IDX header: 3 dimensions need 16 bytes, the file has 8"
    );
    assert_eq!(
        err(&write(&d.join("short"), &idx(&[4, 2], &[1, 2, 3]))),
        "truncated IDX data: dimensions [4, 2] need 8 bytes, found 3"
    );
    assert_eq!(
        err(&write(&d.join("long"), &idx(&[1], &[1, 2]))),
        "IDX data longer than its dimensions [1]: expected 1 bytes, found 2"
    );
    // A header claiming 10^12 images is an error, not an allocation.
    assert_eq!(
        err(&write(&d.join("huge"), &idx(&[1_000_000_000, 28, 28], &[]))),
        format!(
            "IDX dimensions [1000000000, 28, 28] claim more than {MAX_BYTES} bytes: not a data \
             set this loader accepts"
        )
    );
    let mut broken = gz(&idx(&[2], &[1, 2]));
    broken.truncate(broken.len() - 6);
    assert!(err(&write(&d.join("broken.gz"), &broken)).starts_with("not a valid gzip stream"));
}

#[test]
fn image_sets_check_shapes_counts_and_labels() {
    let d = dir("sets");
    let images = idx(&[2, 2, 2], &[0; 8]);
    write(&d.join("train-images-idx3-ubyte"), &images);
    write(
        &d.join("train-labels-idx1-ubyte.gz"),
        &gz(&idx(&[3], &[1, 2, 3])),
    );
    let e = ImageSet::load_dir(&d, Split::Train).unwrap_err();
    assert!(e.path.ends_with("train-labels-idx1-ubyte.gz"));
    assert!(
        e.message.starts_with("3 labels for 2 images in"),
        "{}",
        e.message
    );

    write(
        &d.join("train-labels-idx1-ubyte.gz"),
        &gz(&idx(&[2], &[1, 12])),
    );
    let e = ImageSet::load_dir(&d, Split::Train).unwrap_err();
    assert_eq!(
        e.message,
        "label 12 of image 1 is out of range: expected a class in 0..=9"
    );

    write(&d.join("train-images-idx3-ubyte"), &idx(&[2, 4], &[0; 8]));
    write(
        &d.join("train-labels-idx1-ubyte.gz"),
        &gz(&idx(&[2], &[1, 2])),
    );
    let e = ImageSet::load_dir(&d, Split::Train).unwrap_err();
    assert_eq!(
        e.message,
        "expected images with 3 dimensions [count, rows, cols], found [2, 4]"
    );

    write(&d.join("train-images-idx3-ubyte"), &images);
    let ok = ImageSet::load_dir(&d, Split::Train).unwrap();
    assert_eq!((ok.len(), ok.rows, ok.cols), (2, 2, 2));

    let e = ImageSet::load_dir(&d, Split::Test).unwrap_err();
    assert_eq!(e.path, d.display().to_string());
    assert!(
        e.message
            .starts_with("no t10k-images-idx3-ubyte.gz (or t10k-images-idx3-ubyte) here")
    );
    assert!(e.message.contains("apt install dataset-fashion-mnist"));
}

#[test]
fn embedded_subset_is_fashion_mnist_sized_and_balanced() {
    let train = ImageSet::embedded(Split::Train);
    let test = ImageSet::embedded(Split::Test);
    assert_eq!((train.len(), test.len()), (6000, 1000));
    assert_eq!(train.pixels.len(), 6000 * 784);
    let mut counts = [0usize; 10];
    for l in &train.labels {
        counts[*l as usize] += 1;
    }
    assert!(counts.iter().all(|c| (450..=750).contains(c)), "{counts:?}");
}

#[test]
fn validation_split_is_seeded_disjoint_and_complete() {
    let train = ImageSet::embedded(Split::Train);
    let (a_train, a_val) = train.clone().split_validation(500, 7).unwrap();
    let (b_train, b_val) = train.clone().split_validation(500, 7).unwrap();
    let (_, c_val) = train.clone().split_validation(500, 8).unwrap();
    assert_eq!((a_train.len(), a_val.len()), (5500, 500));
    assert_eq!(a_val, b_val);
    assert_eq!(a_train, b_train);
    assert_ne!(a_val, c_val);
    // Every training image ends up in exactly one part.
    let mut all: Vec<&[u8]> = a_train
        .pixels
        .chunks(784)
        .chain(a_val.pixels.chunks(784))
        .collect();
    let mut orig: Vec<&[u8]> = train.pixels.chunks(784).collect();
    all.sort();
    orig.sort();
    assert_eq!(all, orig);
    let e = train.split_validation(6000, 1).unwrap_err();
    assert_eq!(
        e.message,
        "6000 validation images requested from a set of 6000: expected fewer"
    );
}
