//! A bounded, deterministic fuzz pass that runs with the tests on stable Rust: every seed file
//! of the cargo-fuzz targets (`fuzz/data/corpus`), mutated thousands of times (bytes flipped,
//! inserted, deleted, the file cut short), goes through its parser. Each input must give Ok or
//! an error, never a panic; what parses must be consistent.

use std::path::Path;

use sparse_data::{CIFAR_IMAGE_BYTES, CifarSet, TextCorpus, parse_idx};

fn seeds(kind: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/data/corpus")
        .join(kind);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no seed", dir.display());
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// `rounds` mutants of each seed.
fn mutants(seeds: &[Vec<u8>], rounds: usize, mut check: impl FnMut(&[u8])) {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for seed in seeds {
        check(seed);
        for _ in 0..rounds {
            let mut m = seed.clone();
            for _ in 0..1 + next() % 4 {
                let at = if m.is_empty() {
                    0
                } else {
                    (next() as usize) % m.len()
                };
                match next() % 5 {
                    0 if !m.is_empty() => m[at] ^= 1 << (next() % 8),
                    1 if !m.is_empty() => m[at] = next() as u8,
                    2 => m.insert(at, next() as u8),
                    3 if !m.is_empty() => {
                        m.remove(at);
                    }
                    _ => m.truncate(at),
                }
            }
            check(&m);
        }
    }
}

#[test]
fn idx_mutants_parse_or_fail_cleanly() {
    mutants(&seeds("idx"), 3000, |b| {
        if let Ok(a) = parse_idx("m.idx", b) {
            assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
        }
    });
}

#[test]
fn cifar_mutants_parse_or_fail_cleanly() {
    mutants(&seeds("cifar"), 2000, |b| {
        if let Ok(set) = CifarSet::parse("m.bin", b) {
            assert_eq!(set.pixels.len(), set.len() * CIFAR_IMAGE_BYTES);
            assert_eq!(set.to_bytes(), b);
        }
    });
}

#[test]
fn text_mutants_parse_or_fail_cleanly_and_round_trip() {
    mutants(&seeds("text"), 3000, |b| {
        if let Ok(corpus) = TextCorpus::parse("m.txt", b.to_vec()) {
            let tok = corpus.tokenizer();
            assert_eq!(tok.decode(&tok.encode(corpus.text())), corpus.text());
        }
    });
}
