//! Known values written from TFLite's and gemmlowp's definitions, and
//! properties against exact `i128` references of those definitions.

extern crate std;

use std::vec::Vec;

use proptest::prelude::*;

use super::*;

const MIN: i32 = i32::MIN;
const MAX: i32 = i32::MAX;

// ---- exact references, straight from the definitions ----

/// `n / d` rounded to nearest, ties toward +∞ (`d > 0`).
fn div_round_half_up(n: i128, d: i128) -> i128 {
    (2 * n + d).div_euclid(2 * d)
}

/// `n / d` rounded to nearest, ties away from zero (`d > 0`).
fn div_round_half_away(n: i128, d: i128) -> i128 {
    let magnitude = (2 * n.abs() + d) / (2 * d);
    if n < 0 { -magnitude } else { magnitude }
}

fn srdhm_ref(a: i32, b: i32) -> i32 {
    let exact = div_round_half_up(i128::from(a) * i128::from(b), 1 << 31);
    i32::try_from(exact).unwrap_or(MAX)
}

fn rdbpot_ref(x: i32, exponent: i32) -> i32 {
    i32::try_from(div_round_half_away(i128::from(x), 1 << exponent)).unwrap()
}

/// TFLite's double rounding: `round_half_up(x 2^l m / 2^31)`, then
/// `round_half_away(· / 2^r)`, for shifts where `x 2^l` fits `i32`.
fn mbqm_ref(x: i32, m: i32, shift: i32) -> i32 {
    let l = shift.max(0);
    let r = (-shift).max(0);
    let shifted = i128::from(x) << l;
    assert!(i32::try_from(shifted).is_ok());
    let high = div_round_half_up(shifted * i128::from(m), 1 << 31).min(i128::from(MAX));
    i32::try_from(div_round_half_away(high, 1 << r)).unwrap()
}

/// The single rounding: `x m / 2^(31 - shift)` rounded half up, saturated.
fn mbqm_single_ref(x: i32, m: i32, shift: i32) -> i32 {
    let exact = div_round_half_up(i128::from(x) * i128::from(m), 1 << (31 - shift));
    i32::try_from(exact.clamp(i128::from(MIN), i128::from(MAX))).unwrap()
}

/// `QuantizeMultiplier` from the bits of `real = mant 2^e`: `frexp` gives
/// `q = mant / 2^bits(mant)` and `shift = bits(mant) + e`.
fn quantize_multiplier_ref(real: f64) -> (i32, i32) {
    if real == 0.0 {
        return (0, 0);
    }
    let bits = real.abs().to_bits();
    let biased = i32::try_from(bits >> 52).unwrap();
    let fraction = i128::from(bits & ((1 << 52) - 1));
    let (mant, e) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | 1 << 52, biased - 1075)
    };
    let len = 128 - i32::try_from(mant.leading_zeros()).unwrap();
    let mut shift = len + e;
    // q 2^31 = mant 2^(31 - len), rounded half away from zero.
    let s = 31 - len;
    let magnitude = if s >= 0 {
        mant << s
    } else {
        div_round_half_away(mant, 1 << -s)
    };
    let mut q_fixed = if real < 0.0 { -magnitude } else { magnitude };
    // Only +2^31 is renormalized; -2^31 is a valid i32.
    if q_fixed == 1 << 31 {
        q_fixed = 1 << 30;
        shift += 1;
    }
    if shift < -31 {
        return (0, 0);
    }
    (i32::try_from(q_fixed).unwrap(), shift)
}

fn quantize_ref(x: f32, scale: f32, zero_point: i32) -> i8 {
    let v = f64::from(x / scale);
    let rounded = (v.abs() + 0.5).floor().copysign(v);
    let q = (rounded + f64::from(zero_point)).clamp(-128.0, 127.0);
    i8::try_from(q as i32).unwrap()
}

/// TFLite's reference fully connected layer, summed in `i64` (and checked
/// to fit TFLite's `i32`), requantized by [`mbqm_ref`].
#[allow(clippy::too_many_arguments)]
fn dense_ref(
    outputs: usize,
    input: &[i8],
    input_zero_point: i32,
    weights: &[i8],
    bias: Option<&[i32]>,
    multiplier: &[i32],
    shift: &[i32],
    output_zero_point: i32,
    (act_min, act_max): (i8, i8),
    rounding: Rounding,
) -> Vec<i8> {
    (0..outputs)
        .map(|o| {
            let mut acc = bias.map_or(0, |b| i64::from(b[o]));
            for (i, &x) in input.iter().enumerate() {
                let w = i64::from(weights[o * input.len() + i]);
                acc += w * (i64::from(x) - i64::from(input_zero_point));
            }
            let acc = i32::try_from(acc).unwrap();
            let c = if multiplier.len() == 1 { 0 } else { o };
            let scaled = i64::from(match rounding {
                Rounding::Double => mbqm_ref(acc, multiplier[c], shift[c]),
                Rounding::Single => mbqm_single_ref(acc, multiplier[c], shift[c]),
            });
            let q = (scaled + i64::from(output_zero_point))
                .clamp(i64::from(act_min), i64::from(act_max));
            i8::try_from(q).unwrap()
        })
        .collect()
}

// ---- known values ----

#[test]
fn srdhm_known_values() {
    // The only overflow: (-1) * (-1) = 1 is not in [-1, 1).
    assert_eq!(saturating_rounding_doubling_high_mul(MIN, MIN), MAX);
    // -2^31 (2^31 - 1) / 2^31 = -(2^31 - 1) exactly.
    assert_eq!(saturating_rounding_doubling_high_mul(MIN, MAX), -MAX);
    assert_eq!(saturating_rounding_doubling_high_mul(MAX, MIN), -MAX);
    // (2^31 - 1)^2 / 2^31 = 2^31 - 2 + 2^-31.
    assert_eq!(saturating_rounding_doubling_high_mul(MAX, MAX), MAX - 1);
    assert_eq!(
        saturating_rounding_doubling_high_mul(1 << 30, 1 << 30),
        1 << 29
    );
    assert_eq!(saturating_rounding_doubling_high_mul(0, MIN), 0);
    // Times one half: ties go toward +inf (the negative nudge).
    let half = 1 << 30;
    assert_eq!(saturating_rounding_doubling_high_mul(3, half), 2);
    assert_eq!(saturating_rounding_doubling_high_mul(-3, half), -1);
    assert_eq!(saturating_rounding_doubling_high_mul(1, half), 1);
    assert_eq!(saturating_rounding_doubling_high_mul(-1, half), 0);
    assert_eq!(saturating_rounding_doubling_high_mul(-5, half), -2);
    // Just off the tie: -(2^30 + 1) / 2^31 rounds to -1, -(2^30 - 1) to 0.
    assert_eq!(saturating_rounding_doubling_high_mul(-(half + 1), 1), -1);
    assert_eq!(saturating_rounding_doubling_high_mul(-(half - 1), 1), 0);
    assert_eq!(saturating_rounding_doubling_high_mul(half - 1, 1), 0);
    // Times -1: exact negation.
    assert_eq!(saturating_rounding_doubling_high_mul(12345, MIN), -12345);
}

#[test]
fn rdbpot_known_values() {
    let cases = [
        // (x, exponent, x / 2^exponent rounded half away from zero)
        (5, 1, 3),
        (-5, 1, -3),
        (3, 1, 2),
        (-3, 1, -2),
        (1, 1, 1),
        (-1, 1, -1),
        (2, 2, 1),
        (-2, 2, -1),
        (-6, 2, -2),
        (-7, 2, -2),
        (-5, 2, -1),
        (5, 2, 1),
        (6, 2, 2),
        (0, 31, 0),
        (77, 0, 77),
        (MIN, 0, MIN),
        (MAX, 0, MAX),
        (MIN, 31, -1),
        (MAX, 31, 1),
        (1 << 30, 31, 1),
        (-(1 << 30), 31, -1),
        ((1 << 30) - 1, 31, 0),
        (-(1 << 30) + 1, 31, 0),
        (MIN, 1, -(1 << 30)),
        (MAX, 1, 1 << 30),
        (MIN + 1, 30, -2),
    ];
    for (x, e, want) in cases {
        assert_eq!(rounding_divide_by_pot(x, e), want, "{x} / 2^{e}");
    }
    // Outside gemmlowp's 0..=31 the exponent is clamped.
    assert_eq!(rounding_divide_by_pot(7, -3), 7);
    assert_eq!(rounding_divide_by_pot(MIN, 40), -1);
}

#[test]
fn mbqm_known_values() {
    let half = 1 << 30;
    // 0.5, 0.25 (2^30 with shift -1), 2.0 (2^30 with shift 2).
    assert_eq!(multiply_by_quantized_multiplier(100, half, 0), 50);
    assert_eq!(multiply_by_quantized_multiplier(100, half, -1), 25);
    assert_eq!(multiply_by_quantized_multiplier(3, half, 2), 6);
    assert_eq!(multiply_by_quantized_multiplier(-3, half, 0), -1);
    assert_eq!(multiply_by_quantized_multiplier(-6, half, -1), -2);
    // Double rounding: 5 * 0.25 = 1.25, but 5 * 0.5 = 2.5 rounds to 3 first
    // and 3 / 2 = 1.5 then to 2.
    assert_eq!(multiply_by_quantized_multiplier(5, half, -1), 2);
    assert_eq!(multiply_by_quantized_multiplier(-5, half, -1), -1);
    // Multiplier 0 and the largest right shift.
    assert_eq!(multiply_by_quantized_multiplier(MAX, 0, 0), 0);
    assert_eq!(multiply_by_quantized_multiplier(MAX, MAX, -31), 1);
    assert_eq!(multiply_by_quantized_multiplier(MIN, MIN, 0), MAX);
    // 0.1 as TFLite stores it: 1717986918 * 2^-34.
    assert_eq!(
        multiply_by_quantized_multiplier(1000, 1_717_986_918, -3),
        100
    );
    assert_eq!(multiply_by_quantized_multiplier(-15, 1_717_986_918, -3), -2);
    assert_eq!(multiply_by_quantized_multiplier(15, 1_717_986_918, -3), 2);
}

#[test]
fn mbqm_single_rounding_known_values() {
    let half = 1 << 30;
    // 5 * 0.25 = 1.25 -> 1 (double rounding gives 2); -1.25 -> -1.
    assert_eq!(
        multiply_by_quantized_multiplier_single_rounding(5, half, -1),
        1
    );
    assert_eq!(
        multiply_by_quantized_multiplier_single_rounding(-5, half, -1),
        -1
    );
    // Ties go toward +inf: 1.5 -> 2, -1.5 -> -1 (double rounding: -2).
    assert_eq!(
        multiply_by_quantized_multiplier_single_rounding(6, half, -1),
        2
    );
    assert_eq!(
        multiply_by_quantized_multiplier_single_rounding(-6, half, -1),
        -1
    );
    assert_eq!(multiply_by_quantized_multiplier(-6, half, -1), -2);
    assert_eq!(
        multiply_by_quantized_multiplier_single_rounding(100, half, 0),
        50
    );
    assert_eq!(
        multiply_by_quantized_multiplier_single_rounding(3, half, 2),
        6
    );
    assert_eq!(
        multiply_by_quantized_multiplier_single_rounding(-3, half, 0),
        -1
    );
    // (2^31 - 1)^2 / 2^31 = 2^31 - 2 + 2^-31, and -2^31 (2^31 - 1) / 2^31.
    assert_eq!(
        multiply_by_quantized_multiplier_single_rounding(MAX, MAX, 0),
        MAX - 1
    );
    assert_eq!(
        multiply_by_quantized_multiplier_single_rounding(MIN, MAX, 0),
        -MAX
    );
    // (2^31 - 1)^2 / 2^62 = 0.99999... -> 1.
    assert_eq!(
        multiply_by_quantized_multiplier_single_rounding(MAX, MAX, -31),
        1
    );
    // Out of range: the shift is clamped to 30 and the result saturates.
    assert_eq!(
        multiply_by_quantized_multiplier_single_rounding(MAX, MAX, 40),
        MAX
    );
    assert_eq!(
        multiply_by_quantized_multiplier_single_rounding(MIN, MAX, 30),
        MIN
    );
    // A LiteRT case (dense_8_5_relu): 4735 * 1095659355 / 2^36 = 75.4946 -> 75,
    // where double rounding's 2415.83 -> 2416 and 2416 / 32 = 75.5 -> 76.
    assert_eq!(
        multiply_by_quantized_multiplier_single_rounding(4735, 1_095_659_355, -5),
        75
    );
    assert_eq!(
        multiply_by_quantized_multiplier(4735, 1_095_659_355, -5),
        76
    );
    assert_eq!(
        quantize_multiplier_single_rounding(2f64.powi(40)),
        (MAX, 30)
    );
    assert_eq!(
        quantize_multiplier_single_rounding(2f64.powi(29)),
        (1 << 30, 30)
    );
    assert_eq!(
        quantize_multiplier_single_rounding(0.1),
        (1_717_986_918, -3)
    );
}

#[test]
fn quantize_multiplier_known_values() {
    let cases = [
        (0.0, (0, 0)),
        (0.5, (1 << 30, 0)),
        (1.0, (1 << 30, 1)),
        (0.25, (1 << 30, -1)),
        (0.75, (1_610_612_736, 0)),
        (3.0, (1_610_612_736, 2)),
        (-0.5, (-(1 << 30), 0)),
        // Just above -1: q 2^31 rounds to -2^31, which TFLite keeps.
        (-(1.0 - f64::EPSILON), (MIN, 0)),
        // 0.1 = 0.8 * 2^-3; 0.8 * 2^31 = 1717986918.4.
        (0.1, (1_717_986_918, -3)),
        // Just under 1: q 2^31 rounds up to 2^31, which becomes 2^30, shift 1.
        (1.0 - f64::EPSILON / 2.0, (1 << 30, 1)),
        (1.0 - f64::EPSILON, (1 << 30, 1)),
        // 2^31 - 0.5 rounds half away, up to 2^31.
        (1.0 - 2f64.powi(-32), (1 << 30, 1)),
        // 2^31 - 1 and 2^31 - 0.75 stay below.
        (1.0 - 2f64.powi(-31), (MAX, 0)),
        (1.0 - 3.0 * 2f64.powi(-33), (MAX, 0)),
        // The smallest shifts kept, and the flush to zero below -31.
        (2f64.powi(-31), (1 << 30, -30)),
        (2f64.powi(-32), (1 << 30, -31)),
        (2f64.powi(-33), (0, 0)),
        (2f64.powi(-40), (0, 0)),
        (f64::MIN_POSITIVE / 2.0, (0, 0)),
        // Large multipliers keep their shift.
        (2f64.powi(40), (1 << 30, 41)),
        // Non-finite, where TFLite aborts.
        (f64::NAN, (0, 0)),
        (f64::INFINITY, (0, 0)),
    ];
    for (real, want) in cases {
        assert_eq!(quantize_multiplier(real), want, "{real:e}");
    }
}

#[test]
fn quantize_known_values() {
    let cases = [
        // (x, scale, zero point, round(x / scale) + zero point, clamped)
        (0.5, 1.0, 0, 1),
        (-0.5, 1.0, 0, -1),
        (2.5, 1.0, 0, 3),
        (-2.5, 1.0, 0, -3),
        (0.49, 1.0, 0, 0),
        (1.0, 0.1, 0, 10),
        (1000.0, 1.0, 0, 127),
        (-1000.0, 1.0, 0, -128),
        (0.0, 0.5, -128, -128),
        (1.0, 0.5, -10, -8),
        (-0.25, 0.5, 5, 4),
        (0.0, 1.0, 300, 127),
        (f32::INFINITY, 1.0, 0, 127),
        (f32::NEG_INFINITY, 1.0, 0, -128),
        (f32::NAN, 1.0, 7, 7),
        (1.0, 0.0, 0, 127),
    ];
    for (x, scale, zp, want) in cases {
        assert_eq!(quantize(x, scale, zp), want, "quantize({x}, {scale}, {zp})");
    }
}

#[test]
fn dequantize_known_values() {
    assert_eq!(dequantize(10, 0.5, 2), 4.0);
    assert_eq!(dequantize(-128, 0.1, -128), 0.0);
    assert_eq!(dequantize(-128, 0.25, 0), -32.0);
    assert_eq!(dequantize(127, 0.25, -128), 63.75);
    // 3 * f32(0.1) = 0.3000000044703484 in f64, rounded once to f32.
    assert_eq!(dequantize(3, 0.1, 0), 0.3_f32);
    assert_eq!(dequantize(0, 1.0, i32::MIN), 2_147_483_648.0);
}

#[test]
fn dense_known_values() {
    // x - zp = [15, -15]; sums 100 + 15 - 30 = 85 and -50 - 45 - 60 = -155.
    let input = [10, -20];
    let weights = kernel::pack(&[1, 2, -3, 4], 2).unwrap();
    let bias = [100, -50];
    let mut out = [0i8; 2];
    let half = Requant {
        multiplier: &[1 << 30],
        shift: &[0],
        output_zero_point: 3,
        act_min: -128,
        act_max: 127,
        rounding: Rounding::Double,
    };
    // 42.5 -> 43 and -77.5 -> -77 (ties toward +inf), plus 3.
    dense_i8(&input, -5, &weights, Some(&bias), &half, &mut out).unwrap();
    assert_eq!(out, [46, -74]);
    // Fused ReLU: clamp at the output zero point.
    let relu = Requant { act_min: 3, ..half };
    dense_i8(&input, -5, &weights, Some(&bias), &relu, &mut out).unwrap();
    assert_eq!(out, [46, 3]);
    // Per channel: 0.5 and 0.25; -77 / 2 = -38.5 -> -39 (away from zero).
    let per_channel = Requant {
        multiplier: &[1 << 30, 1 << 30],
        shift: &[0, -1],
        ..half
    };
    dense_i8(&input, -5, &weights, Some(&bias), &per_channel, &mut out).unwrap();
    assert_eq!(out, [46, -36]);
    // No bias: 15 - 30 = -15 -> -7.5 -> -7; -45 - 60 = -105 -> -52.5 -> -52.
    dense_i8(&input, -5, &weights, None, &half, &mut out).unwrap();
    assert_eq!(out, [-4, -49]);
    // Single rounding: -155 * 0.25 = -38.75 -> -39 as well.
    let single = Requant {
        rounding: Rounding::Single,
        ..per_channel
    };
    dense_i8(&input, -5, &weights, Some(&bias), &single, &mut out).unwrap();
    assert_eq!(out, [46, -36]);
    // 42.5 -> 43 and -77.5 -> -77 with either rounding at shift 0.
    let single_half = Requant {
        rounding: Rounding::Single,
        ..half
    };
    dense_i8(&input, -5, &weights, Some(&bias), &single_half, &mut out).unwrap();
    assert_eq!(out, [46, -74]);
    // No inputs: the bias alone.
    dense_i8(&[], 0, &[], Some(&bias), &half, &mut out).unwrap();
    assert_eq!(out, [53, -22]);
    // Saturation at both ends.
    let big = Requant {
        multiplier: &[1 << 30],
        shift: &[8],
        ..half
    };
    dense_i8(&input, -5, &weights, Some(&bias), &big, &mut out).unwrap();
    assert_eq!(out, [127, -128]);
}

#[test]
fn dense_extreme_operands() {
    // Every term (-128) (-128 - 127) = 32640, 64 of them, in rows 0 and 2
    // (low rows of their pairs); row 1 -127: 32385 a term.
    let input = [-128i8; 64];
    let rows: Vec<i8> = [-128i8, -127, -128].iter().flat_map(|&w| [w; 64]).collect();
    let weights = kernel::pack(&rows, 64).unwrap();
    let requant = Requant {
        multiplier: &[1 << 30],
        shift: &[-14],
        output_zero_point: -100,
        act_min: -128,
        act_max: 127,
        rounding: Rounding::Double,
    };
    let mut out = [0i8; 3];
    dense_i8(
        &input,
        127,
        &weights,
        Some(&[0, -2_072_640, 1]),
        &requant,
        &mut out,
    )
    .unwrap();
    // 2088960 / 2^15 = 63.75 -> 64; 0; 63.75003 -> 64.
    assert_eq!(out, [-36, -100, -36]);
}

#[test]
fn dense_rejects_bad_lengths() {
    // 2 outputs of 3 inputs: one block of 4 padded columns, 4 words.
    let input = [1i8, 2, 3];
    let weights = [0u32; 4];
    let mut out = [0i8; 2];
    let ok = Requant {
        multiplier: &[1 << 30],
        shift: &[0],
        output_zero_point: 0,
        act_min: -128,
        act_max: 127,
        rounding: Rounding::Double,
    };
    let mismatch = |expected, found| Err(Error::DimensionMismatch { expected, found });
    assert_eq!(dense_i8(&input, 0, &weights, None, &ok, &mut out), Ok(()));
    let written = out;
    assert_eq!(
        dense_i8(&input, 0, &weights[..3], None, &ok, &mut out),
        mismatch(4, 3)
    );
    assert_eq!(
        dense_i8(&[1, 2, 3, 4, 5], 0, &weights, None, &ok, &mut out),
        mismatch(8, 4)
    );
    assert_eq!(
        dense_i8(&input, 0, &weights, None, &ok, &mut [0; 5]),
        mismatch(8, 4)
    );
    assert_eq!(
        dense_i8(&input, 0, &weights, Some(&[1, 2, 3]), &ok, &mut out),
        mismatch(2, 3)
    );
    let three = Requant {
        multiplier: &[1, 2, 3],
        shift: &[0, 0, 0],
        ..ok
    };
    assert_eq!(
        dense_i8(&input, 0, &weights, None, &three, &mut out),
        mismatch(2, 3)
    );
    let none = Requant {
        multiplier: &[],
        shift: &[],
        ..ok
    };
    assert_eq!(
        dense_i8(&input, 0, &weights, None, &none, &mut out),
        mismatch(2, 0)
    );
    let shifts = Requant {
        shift: &[0, 0],
        ..ok
    };
    assert_eq!(
        dense_i8(&input, 0, &weights, None, &shifts, &mut out),
        mismatch(1, 2)
    );
    let inverted = Requant {
        act_min: 1,
        act_max: 0,
        ..ok
    };
    assert_eq!(
        dense_i8(&input, 0, &weights, None, &inverted, &mut out),
        Err(Error::InvalidParameters)
    );
    // x - zero point must fit the kernels' 16-bit lanes.
    for zero_point in [128, -129, i32::MIN] {
        assert_eq!(
            dense_i8(&input, zero_point, &weights, None, &ok, &mut out),
            Err(Error::InvalidParameters)
        );
    }
    // The failed calls wrote nothing.
    assert_eq!(out, written);
}

// ---- properties against the references ----

fn any_i32() -> impl Strategy<Value = i32> {
    prop_oneof![
        1 => Just(MIN),
        1 => Just(MAX),
        1 => Just(0),
        1 => -4i32..=4,
        1 => (0..=31u32).prop_map(|e| 1i32 << e),
        1 => (0..=30u32).prop_map(|e| -(1i32 << e)),
        8 => any::<i32>(),
    ]
}

/// A shift in `-31..=8` and an `x` for which TFLite's `x * (1 << left_shift)`
/// is defined, ends included.
fn shift_and_x() -> impl Strategy<Value = (i32, i32)> {
    (-31..=8i32).prop_flat_map(|shift| {
        let l = shift.max(0);
        let (lo, hi) = (MIN >> l, MAX >> l);
        (Just(shift), prop_oneof![1 => Just(lo), 1 => Just(hi), 6 => lo..=hi, 4 => any_i32().prop_map(move |x| x >> l)])
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn srdhm_matches_reference(a in any_i32(), b in any_i32()) {
        prop_assert_eq!(saturating_rounding_doubling_high_mul(a, b), srdhm_ref(a, b));
    }

    #[test]
    fn srdhm_ties(a in any_i32(), k in 0..=30u32) {
        // a * 2^k / 2^31 has a fraction of exactly one half when k == 30.
        let b = 1i32 << k;
        prop_assert_eq!(saturating_rounding_doubling_high_mul(a, b), srdhm_ref(a, b));
    }

    #[test]
    fn rdbpot_matches_reference(x in any_i32(), e in 0..=31i32) {
        prop_assert_eq!(rounding_divide_by_pot(x, e), rdbpot_ref(x, e));
    }

    #[test]
    fn rdbpot_ties(q in -(1i32 << 20)..(1i32 << 20), e in 1..=10i32) {
        // x = (q + 1/2) 2^e exactly: ties on both signs.
        let x = q * (1 << e) + (1 << (e - 1));
        prop_assert_eq!(rounding_divide_by_pot(x, e), rdbpot_ref(x, e));
        prop_assert_eq!(rounding_divide_by_pot(x, e), if x < 0 { q } else { q + 1 });
    }

    #[test]
    fn mbqm_matches_reference((shift, x) in shift_and_x(), m in any_i32()) {
        prop_assert_eq!(multiply_by_quantized_multiplier(x, m, shift), mbqm_ref(x, m, shift));
    }

    #[test]
    fn mbqm_single_matches_reference(x in any_i32(), m in any_i32(), shift in -31..=30i32) {
        prop_assert_eq!(
            multiply_by_quantized_multiplier_single_rounding(x, m, shift),
            mbqm_single_ref(x, m, shift)
        );
    }

    #[test]
    fn mbqm_single_ties(q in -(1i32 << 20)..(1i32 << 20), r in 1..=10i32) {
        // x 2^30 / 2^(31 + r) = x / 2^(r + 1): a tie for odd x, rounded up.
        let x = 2 * q + 1;
        let got = multiply_by_quantized_multiplier_single_rounding(x, 1 << 30, -r);
        prop_assert_eq!(got, (x + (1 << r)) >> (r + 1));
    }

    #[test]
    fn mbqm_roundings_differ_by_at_most_one(
        acc in -(1i32 << 24)..(1i32 << 24),
        real in 1e-6f64..0.99,
    ) {
        let (m, shift) = quantize_multiplier(real);
        let double = multiply_by_quantized_multiplier(acc, m, shift);
        let single = multiply_by_quantized_multiplier_single_rounding(acc, m, shift);
        prop_assert!((double - single).abs() <= 1);
    }

    #[test]
    fn mbqm_accumulators(acc in -(1i32 << 24)..(1i32 << 24), real in 1e-6f64..0.99) {
        let (m, shift) = quantize_multiplier(real);
        prop_assert_eq!(multiply_by_quantized_multiplier(acc, m, shift), mbqm_ref(acc, m, shift));
        // Within one of the real product (two roundings of at most 1/2).
        let exact = f64::from(acc) * real;
        let got = f64::from(multiply_by_quantized_multiplier(acc, m, shift));
        prop_assert!((got - exact).abs() <= 1.0 + 1e-6 * exact.abs(), "{} vs {}", got, exact);
    }

    #[test]
    fn quantize_multiplier_matches_reference(bits in any::<u64>()) {
        let real = f64::from_bits(bits);
        prop_assume!(real.is_finite());
        prop_assert_eq!(quantize_multiplier(real), quantize_multiplier_ref(real));
    }

    #[test]
    fn quantize_multiplier_usual_range(real in 1e-12f64..1e3) {
        let (m, shift) = quantize_multiplier(real);
        prop_assert_eq!((m, shift), quantize_multiplier_ref(real));
        if shift >= -31 && m != 0 {
            prop_assert!(m >= 1 << 30);
            let back = f64::from(m) * 2f64.powi(shift - 31);
            prop_assert!((back - real).abs() <= 2f64.powi(shift - 32));
        }
    }

    #[test]
    fn quantize_multiplier_near_powers_of_two(k in -40..40i32, t in 1u64..(1 << 24), neg in any::<bool>()) {
        // Just under 2^k: q 2^31 rounds to 2^31 for t <= 2^21 (the
        // renormalized case), and stays below it for larger t.
        let real = 2f64.powi(k) * (1.0 - t as f64 * f64::EPSILON / 2.0);
        let real = if neg { -real } else { real };
        prop_assert_eq!(quantize_multiplier(real), quantize_multiplier_ref(real));
    }

    #[test]
    fn quantize_matches_reference(
        x in prop_oneof![any::<f32>(), -300.0f32..300.0, (-600i32..600).prop_map(|h| h as f32 / 2.0)],
        scale in prop_oneof![Just(1.0f32), Just(0.5f32), 1e-3f32..10.0],
        zp in prop_oneof![-128i32..=127, any::<i32>()],
    ) {
        prop_assume!(!x.is_nan());
        prop_assert_eq!(quantize(x, scale, zp), quantize_ref(x, scale, zp));
    }

    #[test]
    fn dequantize_matches_reference(
        q in any::<i8>(),
        scale in prop_oneof![1e-6f32..100.0, any::<f32>().prop_filter("finite", |s| s.is_finite())],
        zp in prop_oneof![-128i32..=127, any::<i32>()],
    ) {
        // TFLite's product in f64, then rounded to f32: the runtime's f32
        // shortcut (for |q - zp| < 2^24) must give the same bits.
        let want = (f64::from(scale) * (i64::from(q) - i64::from(zp)) as f64) as f32;
        prop_assert_eq!(dequantize(q, scale, zp).to_bits(), want.to_bits());
    }

    #[test]
    fn dense_matches_reference(case in dense_case(), single in any::<bool>()) {
        let (n_out, input, izp, weights, bias, multiplier, shift, ozp, act) = case;
        let rounding = if single { Rounding::Single } else { Rounding::Double };
        let requant = Requant {
            multiplier: &multiplier,
            shift: &shift,
            output_zero_point: ozp,
            act_min: act.0,
            act_max: act.1,
            rounding,
        };
        let want = dense_ref(
            n_out, &input, izp, &weights, bias.as_deref(), &multiplier, &shift, ozp, act, rounding,
        );
        let mut out = std::vec![0x55i8; want.len()];
        let packed = if input.is_empty() {
            Vec::new()
        } else {
            kernel::pack(&weights, input.len()).unwrap()
        };
        prop_assert_eq!(dense_i8(&input, izp, &packed, bias.as_deref(), &requant, &mut out), Ok(()));
        prop_assert_eq!(out, want);
    }
}

type DenseCase = (
    usize,
    Vec<i8>,
    i32,
    Vec<i8>,
    Option<Vec<i32>>,
    Vec<i32>,
    Vec<i32>,
    i32,
    (i8, i8),
);

/// Random shapes (0..=40 inputs, 1..=20 outputs), zero points, biases,
/// per-tensor or per-channel multipliers of reals in `[2^-20, 4)` and
/// activation ranges.
fn dense_case() -> impl Strategy<Value = DenseCase> {
    (0..=40usize, 1..=20usize, any::<bool>()).prop_flat_map(|(n_in, n_out, per_channel)| {
        let channels = if per_channel { n_out } else { 1 };
        let reals = proptest::collection::vec(
            prop_oneof![(-20.0f64..2.0).prop_map(f64::exp2), Just(0.5), Just(1.0)],
            channels,
        );
        let extremes = prop_oneof![Just(-128i8), Just(127i8), any::<i8>()];
        (
            proptest::collection::vec(extremes.clone(), n_in),
            -128i32..=127,
            proptest::collection::vec(extremes, n_in * n_out),
            proptest::option::of(proptest::collection::vec(-(1i32 << 20)..(1 << 20), n_out)),
            reals,
            -128i32..=127,
            (any::<i8>(), any::<i8>(), any::<bool>()),
        )
            .prop_map(
                move |(input, izp, mut weights, bias, reals, ozp, (a, b, relu))| {
                    // -128 only where a lane holds it (not in an odd row
                    // below a negative weight).
                    for r in (1..n_out).step_by(2) {
                        for c in 0..n_in {
                            if weights[r * n_in + c] == -128 && weights[(r - 1) * n_in + c] < 0 {
                                weights[r * n_in + c] = -127;
                            }
                        }
                    }
                    let (multiplier, shift): (Vec<i32>, Vec<i32>) =
                        reals.iter().map(|&r| quantize_multiplier(r)).unzip();
                    let act = if relu {
                        (i8::try_from(ozp).unwrap(), 127)
                    } else {
                        (a.min(b), a.max(b))
                    };
                    (
                        n_out, input, izp, weights, bias, multiplier, shift, ozp, act,
                    )
                },
            )
    })
}
