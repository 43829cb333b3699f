//! Any byte string: `decode` returns Ok or Err, never panics, never reads out of bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tensors) = sparse_export::decode("fuzz", data) {
        for t in &tensors {
            // Decoded tensors are consistent: densifying them cannot go out of bounds.
            assert_eq!(t.indices.len(), t.values.len());
            let _ = t.to_dense();
        }
    }
});
