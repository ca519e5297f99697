//! Parsing does work bounded by the file's length: counts in a spec are
//! checked against the bytes present before any loop depends on them.

use std::time::{Duration, Instant};

use tinygen_runtime::{Aligned, Decoder, Detector, Error, Gmm, Network, Shape, format};

/// The 32-byte GMM file a fuzzer found: it claims a dimension near 2.8e9
/// and about 147,000 components, passes the header and CRC checks, and
/// once took a second to reject.
const SLOW_GMM: &str = "54474d00010001008f26e40b0c000000fffff3c20affff0800000000ceb83a20";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Copies a file to a 4-byte aligned buffer (as a device's flash holds it).
fn aligned(bytes: &[u8]) -> Box<Aligned<[u8; 4096]>> {
    assert!(bytes.len() <= 4096);
    let mut out = Box::new(Aligned([0u8; 4096]));
    out.0[..bytes.len()].copy_from_slice(bytes);
    out
}

/// A file of `kind` with the given postcard spec and `data_len` bytes of
/// zero weights, with a correct header length and CRC (`format::reseal`).
fn file(kind: u16, spec: &[u8], data_len: usize) -> Vec<u8> {
    let schema = match kind {
        1 | 2 => tinygen_runtime::gmm::SCHEMA_KEY,
        3 => tinygen_runtime::detector::SCHEMA_KEY,
        _ => tinygen_runtime::network::SCHEMA_KEY,
    };
    let mut body = spec.to_vec();
    body.push(0); // no padding
    let mut len = data_len;
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        body.push(if len == 0 { byte } else { byte | 0x80 });
        if len == 0 {
            break;
        }
    }
    body.resize(body.len() + data_len, 0);
    let mut out = Vec::new();
    out.extend_from_slice(&format::MAGIC);
    out.extend_from_slice(&format::VERSION.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&schema.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // body length, set by reseal
    out.extend_from_slice(&body);
    out.extend_from_slice(&[0; 4]); // CRC, set by reseal
    format::reseal(&mut out);
    out
}

/// Postcard varint of a u32.
fn varint(mut v: u32) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        out.push(if v == 0 { byte } else { byte | 0x80 });
        if v == 0 {
            return out;
        }
    }
}

/// A GMM spec: dim, components, covariance (0 full .. 3 spherical), standardized.
fn gmm_spec(dim: u32, components: u32, covariance: u8, standardized: bool) -> Vec<u8> {
    let mut spec = varint(dim);
    spec.extend(varint(components));
    spec.push(covariance);
    spec.push(u8::from(standardized));
    spec
}

/// Worst cases: the largest counts each field can claim, with little data.
fn worst_cases() -> Vec<(&'static str, Vec<u8>)> {
    let mut cases = vec![("fuzzer's 32-byte GMM", hex(SLOW_GMM))];
    for covariance in 0..4u8 {
        for (dim, k) in [
            (u32::MAX, u32::MAX),
            (u32::MAX, 1),
            (1, u32::MAX),
            (u32::MAX - 3, 7),
        ] {
            for standardized in [false, true] {
                let spec = gmm_spec(dim, k, covariance, standardized);
                cases.push(("gmm", file(1, &spec, 64)));
                cases.push(("kde", file(2, &spec, 64)));
                // A detector whose density (and, with a neural part, latent
                // mixture) claims the same counts.
                let mut det = vec![0u8]; // features: identity
                det.extend_from_slice(&1.0f32.to_le_bytes()); // threshold
                det.push(0); // density kind: gmm
                det.extend_from_slice(&spec);
                det.push(0); // no neural part
                cases.push(("detector", file(3, &det, 64)));
            }
        }
    }
    // Networks: the widest layers and largest mixture prior the u16 fields allow.
    let layer = |i: u16, o: u16| {
        let mut l = Vec::new();
        l.extend(varint(u32::from(i)));
        l.extend(varint(u32::from(o)));
        l.push(0);
        l
    };
    let mut net = Vec::new();
    net.extend(varint(u32::from(u16::MAX))); // latent
    net.extend(varint(u32::from(u16::MAX))); // data
    net.extend(varint(16));
    for _ in 0..16 {
        net.extend(layer(u16::MAX, u16::MAX));
    }
    net.push(5); // mixture prior
    net.extend(varint(u32::from(u16::MAX)));
    cases.push(("decoder", file(4, &net, 64)));
    cases.push(("encoder", file(5, &net, 64)));
    // A layer list that claims four billion layers.
    let mut many = varint(2);
    many.extend(varint(2));
    many.extend(varint(u32::MAX));
    many.extend(layer(2, 2));
    cases.push(("decoder with 2^32 layers", file(4, &many, 64)));
    cases
}

#[test]
fn worst_case_files_are_rejected_in_microseconds() {
    for (name, bytes) in worst_cases() {
        let buf = aligned(&bytes);
        let bytes = &buf.0[..bytes.len()];
        assert!(
            format::read_header(bytes).is_ok(),
            "{name}: header and CRC pass"
        );
        // The fastest of ten tries: one can be preempted for milliseconds
        // on a loaded machine, while an unbounded parse is slow every time.
        let elapsed = (0..10)
            .map(|_| {
                let start = Instant::now();
                let results = [
                    Gmm::from_bytes(bytes).err(),
                    Detector::from_bytes(bytes).err(),
                    Network::from_bytes(bytes).err(),
                    Decoder::<64>::from_bytes(bytes).err(),
                ];
                let elapsed = start.elapsed();
                assert!(results.iter().all(Option::is_some), "{name}: accepted");
                elapsed
            })
            .min()
            .expect("ten tries");
        // Each call is a few hundred instructions; a millisecond leaves room
        // for an unoptimised build.
        assert!(
            elapsed < Duration::from_millis(1),
            "{name}: rejecting took {elapsed:?}"
        );
    }
}

#[test]
fn the_fuzzers_file_is_an_invalid_shape() {
    let bytes = hex(SLOW_GMM);
    let buf = aligned(&bytes);
    assert_eq!(
        Gmm::from_bytes(&buf.0[..bytes.len()]).err(),
        Some(Error::InvalidShape(Shape::DataLength))
    );
}
