//! The TFLite reader and writer (`tinygen import`, `--format tflite`): any
//! bytes give an error or a network; a network that encodes parses in the
//! runtime, and one written back reads back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinygen::host::AlignedBytes;
use tinygen::import::{tflite, tflite_writer};
use tinygen_runtime::AnyModel;
use tinygen_runtime::network::Role;

fuzz_target!(|data: &[u8]| {
    let Ok(net) = tflite::import(data) else {
        return;
    };
    if let Ok(file) = net.encode(Role::Encoder) {
        let bytes = AlignedBytes::new(&file);
        assert!(AnyModel::from_bytes(bytes.as_bytes()).is_ok());
    }
    if let Ok(flat) = tflite_writer::write(&net) {
        assert_eq!(tflite::import(&flat).ok().as_ref(), Some(&net));
    }
});
