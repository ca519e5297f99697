//! The trainer's NPY reader (`tinygen::data::parse` of a `.npy`), with no
//! options and with the first column as the label.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tinygen::data::{self, LoadOptions};

fuzz_target!(|data: &[u8]| {
    let opts = LoadOptions {
        label_column: (data.len() % 2 == 1).then(|| "x0".to_string()),
        drop_columns: vec![],
    };
    if let Ok(set) = data::parse(Path::new("fuzz.npy"), data, &opts) {
        assert_eq!(set.values.len(), set.rows * set.cols);
        assert_eq!(set.columns.len(), set.cols);
    }
});
