//! Any byte string as a CIFAR-10 batch file: Ok (whole records, labels < 10) or Err.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = sparse_data::CifarSet::parse("fuzz.bin", data) {
        assert_eq!(set.pixels.len(), set.len() * sparse_data::CIFAR_IMAGE_BYTES);
        assert!(set.labels.iter().all(|l| *l < 10));
        assert_eq!(set.to_bytes(), data);
    }
});
