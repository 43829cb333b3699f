//! Any byte string as an IDX file (raw or gzip): Ok or Err, never a panic or an allocation the
//! header alone asks for.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = sparse_data::parse_idx("fuzz.idx", data) {
        let n: usize = a.dims.iter().product();
        assert_eq!(a.data.len(), n);
    }
});
