//! The trainer's MATLAB v5 reader (`tinygen::data::parse` of a `.mat`),
//! with no options and with `y` as the label (the ODDS convention).
#![no_main]

use std::path::Path;
use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use tinygen::data::{self, LoadOptions};

static QUIET_PANICS: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    // The reader contains panics of the matfile crate (catch_unwind, F4 in
    // FUZZING.md); libfuzzer-sys's hook would abort before that unwinding.
    // Any panic that escapes the reader still aborts: libfuzzer-sys treats
    // an unwinding fuzz target as a crash.
    QUIET_PANICS.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let opts = LoadOptions {
        label_column: (data.len() % 2 == 1).then(|| "y".to_string()),
        drop_columns: vec![],
    };
    if let Ok(set) = data::parse(Path::new("fuzz.mat"), data, &opts) {
        assert_eq!(set.values.len(), set.rows * set.cols);
        assert_eq!(set.columns.len(), set.cols);
    }
});
