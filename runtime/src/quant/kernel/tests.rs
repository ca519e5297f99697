use alloc::vec;
use alloc::vec::Vec;

use super::*;

/// `Σ_j w[r][j] (x[j] - z)` per row in `i64`, from row-major weights.
fn reference(x: &[i8], z: i32, rows: &[i16]) -> Vec<i64> {
    rows.chunks(x.len())
        .map(|row| {
            row.iter()
                .zip(x)
                .map(|(&w, &x)| i64::from(w) * (i64::from(x) - i64::from(z)))
                .sum()
        })
        .collect()
}

/// The reference's sums as the kernels give them: wrapped to `i32`.
fn wrapped(sums: &[i64]) -> Vec<i32> {
    sums.iter().map(|&v| v as i32).collect()
}

/// The sums of kernel `K` over chunks of `2 WIDE` inputs.
fn run_in<K: ChunkDot, const WIDE: usize>(
    x: &[i8],
    z: i32,
    words: &[u32],
    outputs: usize,
) -> Vec<i32> {
    let mut sums = Vec::with_capacity(outputs);
    dots::<K, WIDE>(x, z, words, outputs, |dots| sums.extend_from_slice(dots));
    sums
}

fn run<K: ChunkDot>(x: &[i8], z: i32, words: &[u32], outputs: usize) -> Vec<i32> {
    run_in::<K, NATIVE_WIDE>(x, z, words, outputs)
}

/// Every kernel's sums, in chunks of 256 inputs (every target's) and of 64
/// (asserted equal).
fn every_kernel(x: &[i8], z: i32, words: &[u32], outputs: usize) -> Vec<i32> {
    let dsp = run_in::<Packed<Emulated>, { CHUNK / 2 }>(x, z, words, outputs);
    for other in [
        run_in::<Portable, 32>(x, z, words, outputs),
        run_in::<Portable, { CHUNK / 2 }>(x, z, words, outputs),
        run_in::<PortableLanes, { CHUNK / 2 }>(x, z, words, outputs),
        run_in::<Packed<Emulated>, 32>(x, z, words, outputs),
        #[cfg(target_arch = "x86_64")]
        run_in::<avx2::Avx2, { CHUNK / 2 }>(x, z, words, outputs),
        #[cfg(target_arch = "x86_64")]
        run_in::<avx2::Avx2, 32>(x, z, words, outputs),
        #[cfg(tinygen_neon)]
        run_in::<neon::Neon, { CHUNK / 2 }>(x, z, words, outputs),
        #[cfg(tinygen_neon)]
        run_in::<neon::Neon, 32>(x, z, words, outputs),
    ] {
        assert_eq!(other, dsp, "{} x {}, z {z}", x.len(), outputs);
    }
    dsp
}

/// Any words, any lengths (halfwords of -32768 included, and sums that
/// wrap): `dot`, a vector kernel's chunk loop, gives the portable loop's
/// sums.
pub(super) fn agrees_with_portable(dot: impl Fn(&[u32], &[u32]) -> [i32; 4]) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut word = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        match state % 8 {
            0 => 0x8000_8000,
            1 => 0x7fff_8000,
            _ => (state >> 16) as u32,
        }
    };
    let x: [u32; 2 * 70] = core::array::from_fn(|_| word());
    let w: [u32; 4 * 70] = core::array::from_fn(|_| word());
    for x_groups in 0..=70usize {
        for w_groups in [0, 1, x_groups.saturating_sub(1), x_groups, 70] {
            let (x, w) = (&x[..2 * x_groups], &w[..4 * w_groups]);
            assert_eq!(dot(x, w), Portable::dot(x, w), "{x_groups} x {w_groups}");
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift).
fn values(seed: u64, n: usize) -> Vec<i8> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8 as i8
        })
        .collect()
}

/// Random weights in TFLite's `[-127, 127]`.
fn weights(seed: u64, n: usize) -> Vec<i8> {
    values(seed, n).into_iter().map(|w| w.max(-127)).collect()
}

fn widen_i16(w: &[i8]) -> Vec<i16> {
    w.iter().map(|&v| i16::from(v)).collect()
}

#[test]
fn the_emulated_dsp_instructions_follow_the_arm_arm() {
    // Bytes 0x80 (-128) and 0x7f (127) in bytes 0 and 2, 0x01, 0xff in 1, 3.
    let w = 0xff_7f_01_80_u32;
    assert_eq!(Emulated::sxtb16(w), 0x007f_ff80);
    assert_eq!(Emulated::sxtb16(0x0000_ff00), 0);
    assert_eq!(Emulated::smlad(0x0002_fffd, 0xfffe_0003, 10), 10 - 9 - 4);
    // -32768 * -32768 twice: 2^31, wrapped.
    assert_eq!(Emulated::smlad(0x8000_8000, 0x8000_8000, 0), i32::MIN);
    assert_eq!(Emulated::smlad(0x8000_8000, 0x8000_8000, 5), i32::MIN + 5);
}

#[test]
fn every_lane_decodes_and_every_storable_pair_round_trips() {
    for v in 0..=u16::MAX {
        let (lo, hi) = unlane(v);
        assert_eq!(256 * i32::from(hi) + i32::from(lo), i32::from(v as i16));
        assert!((-128..=128).contains(&hi));
    }
    for lo in i8::MIN..=i8::MAX {
        for hi in i8::MIN..=i8::MAX {
            let fits = hi != -128 || lo >= 0;
            assert_eq!(lane(lo, hi).is_some(), fits, "{lo} {hi}");
            if let Some(v) = lane(lo, hi) {
                assert_eq!(unlane(v), (lo, i16::from(hi)));
            }
        }
    }
    // The one lane past int8: 0x7fff is lo -1, hi 128.
    assert_eq!(unlane(0x7fff), (-1, 128));
    assert_eq!(unlane(0x8000), (0, -128));
}

#[test]
fn the_layout_pairs_rows_in_lanes_word_by_word() {
    // 5 rows of 6 inputs, w[r][c] = 10 r + c: padded to 8 rows of 8
    // columns, two blocks of 8 words.
    let w: Vec<i8> = (0..5)
        .flat_map(|r| (0..6).map(move |c| 10 * r + c))
        .collect();
    let packed = pack(&w, 6).unwrap();
    assert_eq!(packed.len(), packed_words(6, 5).unwrap());
    assert_eq!(packed.len(), 16);
    let lane_of = |lo: i32, hi: i32| (256 * hi + lo) as u16 as u32;
    let word = |a: u32, b: u32| a | b << 16;
    // Block 0, columns 0-3: pair (0, 1) at columns 0-1, 2-3; pair (2, 3).
    assert_eq!(packed[0], word(lane_of(0, 10), lane_of(1, 11)));
    assert_eq!(packed[1], word(lane_of(2, 12), lane_of(3, 13)));
    assert_eq!(packed[2], word(lane_of(20, 30), lane_of(21, 31)));
    assert_eq!(packed[3], word(lane_of(22, 32), lane_of(23, 33)));
    // Columns 4-7: 6 and 7 are padding.
    assert_eq!(packed[4], word(lane_of(4, 14), lane_of(5, 15)));
    assert_eq!(packed[5], 0);
    assert_eq!(packed[7], 0);
    // Block 1: row 4, its partner and pair 1 are padding.
    assert_eq!(packed[8], word(lane_of(40, 0), lane_of(41, 0)));
    assert_eq!(packed[12], word(lane_of(44, 0), lane_of(45, 0)));
    assert_eq!(
        &packed[9..12],
        &[word(lane_of(42, 0), lane_of(43, 0)), 0, 0]
    );
    // The bytes as a file stores them: lanes little-endian, low byte w_lo.
    let bytes: Vec<u8> = packed.iter().flat_map(|w| w.to_le_bytes()).collect();
    assert_eq!(&bytes[..4], &[0, 10, 1, 11]);
    assert_eq!(unpack(&packed, 6, 5).unwrap(), widen_i16(&w));
}

#[test]
fn pack_refuses_what_no_lane_holds_and_keeps_the_rest() {
    // -128 below a negative weight (row 1 is row 0's partner): no lane.
    assert_eq!(pack(&[-1, -128], 1), Err(Error::ParameterOutOfRange));
    assert_eq!(
        pack(&[5, -3, 0, -128, -1, 0, 0, 0], 2),
        Err(Error::ParameterOutOfRange)
    );
    // -128 in a low row, or beside a non-negative weight, or as row 3 beside
    // padding: stored, and read back.
    for (w, inputs) in [
        (vec![-128, -127], 1),
        (vec![0, -128], 1),
        (vec![127, 0, -128, -128, -128, 3], 2),
    ] {
        let packed = pack(&w, inputs).unwrap();
        assert_eq!(
            unpack(&packed, inputs, w.len() / inputs).unwrap(),
            widen_i16(&w)
        );
    }
    assert!(matches!(
        pack(&[1, 2, 3], 2),
        Err(Error::DimensionMismatch { .. })
    ));
    assert!(matches!(pack(&[], 0), Err(Error::DimensionMismatch { .. })));
    assert!(matches!(
        unpack(&[0; 3], 4, 4),
        Err(Error::DimensionMismatch { .. })
    ));
}

/// Random layers of `inputs x outputs` against the reference, every kernel,
/// at several zero points.
fn check_shape(inputs: usize, outputs: usize) {
    for z in [-128, -1, 0, 37, 127] {
        let seed = (inputs * 1000 + outputs) as u64 ^ (z as u64).wrapping_mul(7919);
        let x = values(seed, inputs);
        let w = weights(seed + 1, inputs * outputs);
        let packed = pack(&w, inputs).unwrap();
        assert_eq!(unpack(&packed, inputs, outputs).unwrap(), widen_i16(&w));
        let want = wrapped(&reference(&x, z, &widen_i16(&w)));
        assert_eq!(
            every_kernel(&x, z, &packed, outputs),
            want,
            "{inputs} x {outputs}, z {z}"
        );
    }
}

#[test]
fn every_kernel_gives_the_exact_sums_on_every_block_shape() {
    for inputs in 1..=13 {
        for outputs in 1..=9 {
            check_shape(inputs, outputs);
        }
    }
}

#[test]
fn every_kernel_is_exact_across_chunk_and_row_group_boundaries() {
    // Chunks of 256 (and 64) inputs; row groups of 32 rows.
    for inputs in (63..=66).chain(255..=260).chain(511..=513) {
        for outputs in [1, 3, 4, 6] {
            check_shape(inputs, outputs);
        }
    }
    for outputs in [31, 32, 33, 64, 65, 70] {
        check_shape(100, outputs);
        check_shape(520, outputs);
    }
}

#[test]
fn extreme_values_are_exact() {
    // x - z = +-255 against weights +-127 (and -128 where a lane holds it),
    // every term of a row the same sign: the largest sums a chunk can hold.
    for inputs in [4, 255, 256, 257, 259, 260, 512, 513, 1024] {
        for (x, z) in [(127i8, -128), (-128, 127)] {
            let x = vec![x; inputs];
            for row in [
                [127i8, 127, 127, 127],
                [-127, -127, -127, -127],
                [-128, 0, -128, 127],
                [127, -127, -128, -127],
            ] {
                let w: Vec<i8> = row.iter().flat_map(|&v| vec![v; inputs]).collect();
                let packed = pack(&w, inputs).unwrap();
                let want = wrapped(&reference(&x, z, &widen_i16(&w)));
                assert_eq!(every_kernel(&x, z, &packed, 4), want, "{inputs}, {row:?}");
            }
        }
    }
}

#[test]
fn any_words_give_the_sums_of_the_weights_they_decode_to() {
    // Words no writer produces (w_hi = 128, -128 beside negatives, padding
    // that is not zero): the kernels still compute what the lanes say, the
    // padded columns and rows adding nothing.
    for (inputs, outputs) in [(1, 1), (3, 5), (8, 4), (257, 6), (513, 3)] {
        let n = packed_words(inputs, outputs).unwrap();
        let raw = values((inputs * 31 + outputs) as u64, 4 * n);
        let mut words: Vec<u32> = raw
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8]))
            .collect();
        // The extreme lanes too: 0x7fff (-1, 128) and 0x8000 (0, -128).
        words[0] = 0x8000_7fff;
        for z in [-128, 0, 127] {
            let x = values(z as u64 + 5, inputs);
            let w = unpack(&words, inputs, outputs).unwrap();
            let want = wrapped(&reference(&x, z, &w));
            assert_eq!(
                every_kernel(&x, z, &words, outputs),
                want,
                "{inputs} x {outputs}"
            );
        }
    }
    // All 0x7fff lanes (hi 128, lo -1) against x - z = -255 over 513 inputs.
    let (inputs, outputs) = (513, 4);
    let words = vec![0x7fff_7fff; packed_words(inputs, outputs).unwrap()];
    let x = vec![-128i8; inputs];
    let want = wrapped(&reference(
        &x,
        127,
        &unpack(&words, inputs, outputs).unwrap(),
    ));
    assert_eq!(want[1], 128 * -255 * 513);
    assert_eq!(every_kernel(&x, 127, &words, outputs), want);
}

#[test]
fn short_weights_emit_only_the_rows_they_hold() {
    // dense_i8 checks the length first; the kernel itself never reads past
    // the slice and emits nothing for rows it does not have.
    let w = pack(&[1; 8 * 40], 8).unwrap();
    assert_eq!(run::<Portable>(&[1; 8], 0, &w[..8], 40).len(), 0);
    assert_eq!(run::<Portable>(&[1; 8], 0, &w, 40).len(), 40);
    assert_eq!(run::<Portable>(&[], 0, &w, 40).len(), 0);
}

#[test]
fn the_worked_example_of_format_md() {
    // runtime/FORMAT.md, "Packed weights": 3 rows of 5 inputs.
    let w = [1, -1, 2, 3, -128, 2, 5, -3, 127, 4, -7, 0, 10, -1, 1];
    let bytes: Vec<u8> = pack(&w, 5)
        .unwrap()
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    assert_eq!(
        bytes,
        [
            0x01, 0x02, 0xff, 0x04, 0x02, 0xfd, 0x03, 0x7f, 0xf9, 0xff, 0x00, 0x00, 0x0a, 0x00,
            0xff, 0xff, 0x80, 0x03, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 0,
        ]
    );
}
