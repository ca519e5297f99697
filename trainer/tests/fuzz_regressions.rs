//! Inputs the fuzzers found (fuzz/, FUZZING.md), minimized with libFuzzer
//! where it could, read through the same in-memory entry points the fuzz
//! targets use. Each once panicked, tried to allocate gigabytes or broke a
//! round trip; each must now be an error.

use std::path::Path;

use tinygen::data::{self, DataError, LoadOptions};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn parse(name: &str, bytes: &[u8]) -> Result<data::Dataset, DataError> {
    data::parse(Path::new(name), bytes, &LoadOptions::default())
}

/// `npy`: a version 3 header whose u32 length field claims 4 GiB; npyz
/// allocated the claimed length before reading (12 bytes, minimized).
const NPY_HEADER_LENGTH: &str = "934e554d505903007600ffff";

#[test]
fn npy_header_length_beyond_the_file() {
    let err = parse("x.npy", &hex(NPY_HEADER_LENGTH)).unwrap_err();
    assert!(matches!(err, DataError::MalformedNpy { .. }), "{err:?}");
    assert!(
        err.to_string().contains("header claims 4294901878 bytes"),
        "{err}"
    );
}

/// `mat`: F2, a data element claiming 0xFFFFFFFF bytes, which the matfile
/// crate rounded up to a multiple of 8 in u32 (an overflow panic with
/// overflow checks on; 136 bytes, minimized).
const MAT_ELEMENT_SIZE: &str = concat!(
    "4d41ffffffffffffff3f00ff2e6e70790000ffffffffffffff3f00f03f0001494d01000000000000",
    "00ff3f0001494d0e000000ffffffffffffff3f00ff0e000000ffffffffffffff3f00ff2e6e707900",
    "00ffffff0000ffffffffff3f002e6e70790000ffffffffffffff3f00f03f0001494d0e000000ffff",
    "ffffff3f0001494d0e000000ffffffff",
);

/// `mat`: F3, a matrix whose i32 dimensions the matfile crate multiplied
/// with overflow (232 bytes, minimized as far as this crash goes).
const MAT_DIMENSIONS: &str = concat!(
    "4d41544c414220352e30204d41542d66696c6520506c6174666f726d3a20706f7369782c20437265",
    "61746564206f6e3a20547565204e6f762032342031373a35343a313220303232360000000000007a",
    "8000ffffffff00000000000000000000000000000000000000000000000000000005000000000000",
    "000000000001494d0e00000060000000060000000800000006000000000000000500000008000000",
    "0300000002000080010001005800000002000000300000000800000000000700001c4000000000c0",
    "00000000000048000000060000000800000000000000f03f0000000000000000",
);

/// `mat`: F4, a file on which the matfile crate overflowed in
/// `parse_data_element_tag` (243 bytes, not minimized). The reader is now
/// ours and checks every size against the bytes present.
const MAT_ELEMENT_TAG: &str = concat!(
    "4d41544c414220352e30204d4154e96669646520506c6174666e726d3a2070717369782c",
    "2043706561746564206f6e3a20547565294e6f7620323733310000000100020008000000",
    "05000000000000000c0000000e0000000000000000000000000000000001000800000003",
    "000000820000000800000000000000000001494d0e000000600000000600000008000000",
    "050000000000000005000000080000000500000000000000010001000800000005000100",
    "00000405000000feffffffffffff0f050000000c0000000e000001000000000000000000",
    "000000081600000003000000000000000001494d0001f800000000",
);

#[test]
fn mat_sizes_that_overflowed_the_matfile_crate() {
    for (name, input) in [
        ("element size", MAT_ELEMENT_SIZE),
        ("dimensions", MAT_DIMENSIONS),
        ("element tag", MAT_ELEMENT_TAG),
    ] {
        let err = parse("x.mat", &hex(input)).unwrap_err();
        assert!(
            matches!(err, DataError::MalformedMat { .. }),
            "{name}: {err:?}"
        );
    }
}

/// `npz`: a member whose sizes in the central directory (about 4 GiB,
/// compressed and not) were trusted before they were checked against the
/// archive's length, so the reader asked for 4 GiB (399 bytes, not minimized).
const NPZ_MEMBER_SIZE: &str = concat!(
    "504b03042d000000080000002100cbe21a25ffffffffffffffff05001400582e6e707901001000b0",
    "000000000000005b000000000000009bec17ea1b10c9c850c650ad9e925a9c5ca46ea5a06e9366a1",
    "aea3a09e965f54529498179f5f94920a12774bcc294e058a17672416a402f91ac63a0a469a3a0ab5",
    "0a64032e0630f8610fa1190e40a80b503e8703849681d28a0e00504b03042d000000080000002100",
    "8a4737a8ffffffffffffffff05001400792e6e70790100100098000000000000004a000000000000",
    "009bec17ea1b10c9c850c650ad9e925a9c5ca46ea5a06e9369a1aea3a09e965f54529498179f5f94",
    "920a12774bcc294e058a17672416a402f9ddc63a9a3a0a270a14002e06286064400500504b01022d",
    "032d000000080000002100cbe21a2580ffffffffffffff0500000000000000000000008001000000",
    "00582e6e7079504b01022d032d0000000800000021008a4737a84a00000098000000050000000000",
    "000000000000800192000000792e6e7079504b0506000000000200020066000000130100000000",
);

#[test]
fn npz_member_sizes_beyond_the_archive() {
    let err = parse("x.npz", &hex(NPZ_MEMBER_SIZE)).unwrap_err();
    assert!(matches!(err, DataError::MalformedNpz { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("compressed ones in a 399-byte archive"),
        "{err}"
    );
}

/// `npy`: a header with a few hundred nested brackets, which npyz's header
/// parser (py_literal) took over 2 seconds to reject (libFuzzer timeout;
/// 253 bytes, not minimized).
const NPY_NESTED_HEADER: &str = concat!(
    "934e554d5059010076007b276a65733272273a20273c6637272c2027666f727472616e5f6f722465",
    "72273a2046616c73652c20277368617065273a2028382c203231292c7b276a65736372273a205b5b",
    "5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b",
    "5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b",
    "5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b",
    "273c2737662c2027666f727372616e5f6f72646572273a2046616c732c7b276a65736372273a2027",
    "3c6637272c2027666f72747273",
);

#[test]
fn npy_nested_header_is_rejected_quickly() {
    let start = std::time::Instant::now();
    let err = parse("x.npy", &hex(NPY_NESTED_HEADER)).unwrap_err();
    assert!(matches!(err, DataError::MalformedNpy { .. }), "{err:?}");
    assert!(start.elapsed() < std::time::Duration::from_millis(100));
}

/// `tflite`: a graph with an int8 input and no FULLY_CONNECTED layer (the
/// fuzzer's mutation of a converted model, 3,352 bytes): it was imported as
/// an int8 network of no layers, which the writer could not write back.
#[test]
fn tflite_int8_input_without_a_layer() {
    let bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tflite_int8_input_no_layer.tflite"),
    )
    .unwrap();
    let err = tinygen::import::tflite::import(&bytes).unwrap_err();
    assert!(
        err.to_string().contains("no FULLY_CONNECTED layer"),
        "{err:#}"
    );
}
