//! The trainer's CSV reader, plain and gzipped (`tinygen::data::parse`).
//!
//! An input that starts with the gzip magic bytes is read as a `.csv.gz`
//! stream as it is. Any other input is read as a `.csv`; when its first byte
//! is odd it is also gzipped and read as a `.csv.gz`, which must give the
//! same result. The last byte picks the label and dropped columns.
#![no_main]

use std::io::Write;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tinygen::data::{self, LoadOptions, idx};

fuzz_target!(|data: &[u8]| {
    let opts = options(data.last().copied().unwrap_or(0));
    if idx::is_gzip(data) {
        let _ = data::parse(Path::new("fuzz.csv.gz"), data, &opts);
        return;
    }
    let plain = data::parse(Path::new("fuzz.csv"), data, &opts);
    if data.first().is_some_and(|b| b % 2 == 1) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).unwrap();
        let gz = gz.finish().unwrap();
        let gzipped = data::parse(Path::new("fuzz.csv.gz"), &gz, &opts);
        match (&plain, &gzipped) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (a, b) => assert_eq!(a.is_ok(), b.is_ok(), "{a:?} vs {b:?}"),
        }
    }
});

/// Label and dropped columns, by header name or by index.
fn options(selector: u8) -> LoadOptions {
    let label_column = match selector % 4 {
        0 => None,
        1 => Some("label".to_string()),
        2 => Some("0".to_string()),
        _ => Some("y".to_string()),
    };
    let drop_columns = match (selector / 4) % 4 {
        0 => vec![],
        1 => vec!["1".to_string()],
        2 => vec!["x1".to_string(), "a".to_string()],
        _ => vec!["label".to_string()],
    };
    LoadOptions {
        label_column,
        drop_columns,
    }
}
