//! The trainer's sktime `.ts` reader (`tinygen::data::ts::parse_ts`).
//!
//! An input that starts with the gzip magic bytes is read as a `.ts.gz` as
//! it is. Any other input is read as a `.ts`; when its first byte is odd it
//! is also gzipped and read as a `.ts.gz`, which must give the same result.
#![no_main]

use std::io::Write;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tinygen::data::{idx, ts};

fuzz_target!(|data: &[u8]| {
    if idx::is_gzip(data) {
        let _ = ts::parse_ts(Path::new("fuzz.ts.gz"), data);
        return;
    }
    let plain = ts::parse_ts(Path::new("fuzz.ts"), data);
    if let Ok(set) = &plain {
        assert_eq!(set.values.len(), set.len() * set.channels * set.length);
        for i in 0..set.len() {
            let _ = set.series(i);
        }
    }
    if data.first().is_some_and(|b| b % 2 == 1) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).unwrap();
        let gz = gz.finish().unwrap();
        let gzipped = ts::parse_ts(Path::new("fuzz.ts.gz"), &gz);
        match (&plain, &gzipped) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (a, b) => assert_eq!(a.is_ok(), b.is_ok(), "{a:?} vs {b:?}"),
        }
    }
});
