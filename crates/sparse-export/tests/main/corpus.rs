//! The fuzz target's seed corpus (`fuzz/corpus/decode`, written by `fuzz/make_corpus.py` from
//! the format's description, independently of the Rust encoder) decodes, and re-encodes to the
//! same bytes: the documented format and the implementation agree.

use sparse_export::{ValueType, decode, encode};

#[test]
fn the_seed_corpus_decodes_and_re_encodes_identically() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/decode");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.display().to_string();
        let tensors = decode(&name, &bytes).unwrap_or_else(|e| panic!("{e}"));
        // The corpus picks each tensor's smallest encoding, as the encoder does.
        assert_eq!(encode(&tensors, ValueType::F32), bytes, "{name}");
        seen += 1;
    }
    assert_eq!(seen, 5);
    let three = decode("three", &std::fs::read(dir.join("three.sparse")).unwrap()).unwrap();
    assert_eq!(three[1].indices, vec![1, 4, 8, 11]);
    assert_eq!(three[1].values, vec![1.5, -2.0, 0.25, 3.0]);
    assert_eq!(three[2].indices, vec![3, 37]);
    assert_eq!(three[2].values, vec![0.5, -4.0]);
}
