//! Any byte string as a text file: Ok (then the tokenizer round-trips it exactly) or Err.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(corpus) = sparse_data::TextCorpus::parse("fuzz.txt", data.to_vec()) {
        let tok = corpus.tokenizer();
        assert_eq!(tok.decode(&tok.encode(corpus.text())), corpus.text());
    }
});
