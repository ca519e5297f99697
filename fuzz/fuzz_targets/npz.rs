//! The trainer's NPZ reader (`tinygen::data::parse` of a `.npz`), with no
//! options and with `y` as the label (the ADBench convention).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tinygen::data::{self, LoadOptions};

fuzz_target!(|data: &[u8]| {
    let opts = LoadOptions {
        label_column: (data.len() % 2 == 1).then(|| "y".to_string()),
        drop_columns: vec![],
    };
    if let Ok(set) = data::parse(Path::new("fuzz.npz"), data, &opts) {
        assert_eq!(set.values.len(), set.rows * set.cols);
        assert_eq!(set.columns.len(), set.cols);
    }
});
