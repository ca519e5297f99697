//! The trainer's IDX reader, raw and gzipped (`tinygen::data::idx::parse`
//! recognises gzip by its magic bytes).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tinygen::data::idx;

fuzz_target!(|data: &[u8]| {
    if let Ok(array) = idx::parse(Path::new("fuzz-idx3-ubyte"), data) {
        assert_eq!(array.data.len(), array.dims.iter().product::<usize>());
    }
});
