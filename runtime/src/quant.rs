//! Integer arithmetic of TensorFlow Lite's int8 scheme, bit for bit.
//!
//! A real value `r` is stored as `q` with `r = scale * (q - zero_point)`.
//! A layer's real rescale factor `input_scale * weight_scale / output_scale`
//! is stored as a Q0.31 multiplier and a power-of-two shift
//! ([`quantize_multiplier`]) and applied to the `i32` accumulator as one of
//! TFLite's two builds does ([`Rounding`]): gemmlowp's two roundings
//! ([`multiply_by_quantized_multiplier`], `TFLITE_SINGLE_ROUNDING` unset),
//! or one rounding ([`multiply_by_quantized_multiplier_single_rounding`],
//! `TFLITE_SINGLE_ROUNDING=1`: the ai-edge-litert 2.3 wheel's int8 fully
//! connected kernels, reference and optimized, agree with it on every output
//! of `runtime/tests/fixtures/litert_fc_int8.json`). The two differ by one
//! on rare near-ties.
//!
//! Where TFLite's C++ is undefined (signed overflow, shifts out of range,
//! NaN casts) these functions still return a value and never panic; each
//! documents which.

use serde::{Deserialize, Serialize};

use crate::Error;

/// gemmlowp's `SaturatingRoundingDoublingHighMul` (ARM `VQRDMULH`):
/// `a * b / 2^31` rounded to nearest, ties toward +∞; the one overflow,
/// `i32::MIN * i32::MIN`, gives `i32::MAX`.
#[inline]
#[must_use]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = i64::from(a) * i64::from(b);
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // Truncating division, as C++ `/`; |ab + nudge| / 2^31 < 2^31, so the
    // quotient always fits.
    let high = (ab + nudge) / (1i64 << 31);
    i32::try_from(high).unwrap_or(i32::MAX)
}

/// gemmlowp's `RoundingDivideByPOT`: `x / 2^exponent` rounded to nearest,
/// ties away from zero (the mask, remainder and threshold, with the extra
/// one in the threshold for negative `x`).
///
/// gemmlowp takes `exponent` in `0..=31`; outside that range it is clamped.
#[inline]
#[must_use]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    let exponent = exponent.clamp(0, 31).unsigned_abs();
    let mask = i32::try_from((1i64 << exponent) - 1).unwrap_or(i32::MAX);
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// TFLite's `MultiplyByQuantizedMultiplier(int32_t x, int32_t multiplier,
/// int shift)` (double rounding): `x * 2^max(shift, 0)`, then
/// [`saturating_rounding_doubling_high_mul`] by `multiplier`, then
/// [`rounding_divide_by_pot`] by `max(-shift, 0)`.
///
/// Where the left shift overflows `i32` (undefined in C++, never the case
/// for multipliers from [`quantize_multiplier`] and accumulators in range)
/// it wraps, as two's-complement hardware does; left shifts above 31 are
/// clamped to 31.
#[inline]
#[must_use]
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left_shift = shift.clamp(0, 31).unsigned_abs();
    let right_shift = shift.saturating_neg().max(0);
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x.wrapping_shl(left_shift), multiplier),
        right_shift,
    )
}

/// TFLite's `MultiplyByQuantizedMultiplier` built with
/// `TFLITE_SINGLE_ROUNDING` (and ruy's): `x * multiplier / 2^(31 - shift)`
/// rounded once, to nearest with ties toward +∞, as
/// `(x * multiplier + 2^(30 - shift)) >> (31 - shift)` in `i64`.
///
/// TFLite takes `shift` in `-31..=30` (see
/// [`quantize_multiplier_single_rounding`]); it is clamped to that range, and
/// a result outside `i32` (never the case in range) saturates.
#[inline]
#[must_use]
pub fn multiply_by_quantized_multiplier_single_rounding(
    x: i32,
    multiplier: i32,
    shift: i32,
) -> i32 {
    let total_shift = (31 - shift.clamp(-31, 30)).unsigned_abs();
    let round = 1i64 << (total_shift - 1);
    // |x * multiplier| <= 2^62 and round <= 2^61: no overflow.
    let result = (i64::from(x) * i64::from(multiplier) + round) >> total_shift;
    i32::try_from(result).unwrap_or(if result < 0 { i32::MIN } else { i32::MAX })
}

/// TFLite's `QuantizeMultiplier`: `real ≈ multiplier * 2^(shift - 31)` with
/// `multiplier` a Q0.31 value in `[2^30, 2^31)` (negative for negative
/// `real`).
///
/// `frexp` splits `real` into `q * 2^shift`, `q` in `[0.5, 1)`;
/// `q * 2^31` is rounded half away from zero (`std::round`); a result of
/// `2^31` becomes `2^30` with `shift + 1`; a shift below -31 (`real`
/// below about `2^-32`) and `real == 0` give `(0, 0)`. Non-finite `real`,
/// where TFLite aborts, also gives `(0, 0)`.
#[must_use]
pub fn quantize_multiplier(real: f64) -> (i32, i32) {
    if real == 0.0 || !real.is_finite() {
        return (0, 0);
    }
    let (q, mut shift) = libm::frexp(real);
    // |q * 2^31| <= 2^31, an integer after rounding: the cast is exact.
    let mut q_fixed = libm::round(q * 2_147_483_648.0) as i64;
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        return (0, 0);
    }
    (i32::try_from(q_fixed).unwrap_or(i32::MAX), shift)
}

/// [`quantize_multiplier`] as TFLite builds it with `TFLITE_SINGLE_ROUNDING`:
/// a shift above 30 (`real >= 2^30`) saturates to `(i32::MAX, 30)`.
#[must_use]
pub fn quantize_multiplier_single_rounding(real: f64) -> (i32, i32) {
    match quantize_multiplier(real) {
        (_, shift) if shift > 30 => (i32::MAX, 30),
        quantized => quantized,
    }
}

/// TFLite's reference `AffineQuantize` to int8: `round(x / scale) +
/// zero_point` clamped to `[-128, 127]`, the division in `f32` and the
/// rounding half away from zero (`TfLiteRound`, `std::round`).
///
/// ±∞ (or a zero `scale`) saturates; NaN, undefined in TFLite, gives the
/// zero point (clamped).
#[must_use]
pub fn quantize(x: f32, scale: f32, zero_point: i32) -> i8 {
    let rounded = libm::roundf(x / scale);
    let rounded = if rounded.is_nan() { 0.0 } else { rounded };
    if let Ok(zero_point) = i8::try_from(zero_point) {
        // An int8 zero point (every model's): integer arithmetic, no f64
        // (a library call on cores without a double-precision FPU). Past
        // ±384 the sum saturates either way, so clamping first is exact.
        let centred = rounded.clamp(-384.0, 384.0) as i32;
        let q = (centred + i32::from(zero_point)).clamp(-128, 127);
        return i8::try_from(q).unwrap_or(0);
    }
    let clamped = (f64::from(rounded) + f64::from(zero_point)).clamp(-128.0, 127.0);
    // An integer in [-128, 127]: the cast is exact.
    clamped as i8
}

/// TFLite's reference `Dequantize` from int8: `scale * (q - zero_point)`,
/// the product in `f64` (TFLite's `double` scale) and rounded once to `f32`.
#[must_use]
pub fn dequantize(q: i8, scale: f32, zero_point: i32) -> f32 {
    let centred = i64::from(q) - i64::from(zero_point);
    if centred.unsigned_abs() < 1 << 24 {
        // `centred` is exact in f32, and the f64 product below is exact, so
        // one f32 multiply rounds it identically (without a library call on
        // cores that have no double-precision FPU; converted from `i32`,
        // not `i64`, whose conversion is a library call too).
        return scale * (centred as i32) as f32;
    }
    // |centred| < 2^33 is exact in f64, as TFLite's `int32` to `double`.
    (f64::from(scale) * centred as f64) as f32
}

/// TFLite's int8 `LOGISTIC` (`Sigmoid`) or `TANH` (`Tanh`) as the 256-entry
/// table its kernels look values up in: entry `q as u8` (TFLite's order,
/// `LUTLookup`) is the output for the int8 input `q`, read with `input`
/// params and written with `output` params (TFLite requires sigmoid's
/// `(1/256, -128)` and tanh's `(1/128, 0)`; any finite positive scale is
/// computed alike).
///
/// As TFLite's `LUTPopulate<int8_t>` (`kernels/internal/common.h`, what
/// `LOGISTIC` and `TANH` build in Prepare for their reference and generic
/// optimized int8 kernels), every step in `f32`: `x = input.scale *
/// (q - input.zero_point)`, `y = 1 / (1 + exp(-x))` or `tanh(x)`, then
/// `round(y * (1 / output.scale))` (half away from zero) `+
/// output.zero_point`, clamped to `[-128, 127]`. TFLite calls the C
/// library's `expf` and `tanhf`; here they are correctly rounded (`libm`'s
/// `exp` and `tanh` in `f64`, rounded once to `f32`), so every host writes
/// the same table. LiteRT agrees on every value of
/// `runtime/tests/fixtures/litert_activation_int8.json`.
///
/// `InvalidParameters` for another activation or a scale that is not
/// finite and positive.
#[cfg(feature = "alloc")]
pub fn activation_table(
    activation: crate::Activation,
    input: crate::qnetwork::QuantParams,
    output: crate::qnetwork::QuantParams,
) -> Result<[i8; 256], Error> {
    use crate::Activation;
    let sigmoid = match activation {
        Activation::Sigmoid => true,
        Activation::Tanh => false,
        _ => return Err(Error::InvalidParameters),
    };
    if input.check().is_err() || output.check().is_err() {
        return Err(Error::InvalidParameters);
    }
    let inverse_scale = 1.0 / output.scale;
    let mut table = [0i8; 256];
    for q in i8::MIN..=i8::MAX {
        // |q - zero point| <= 255: exact in f32, one rounding in the product.
        let x = input.scale * (i32::from(q) - i32::from(input.zero_point)) as f32;
        let y = if sigmoid {
            let e = libm::exp(-f64::from(x)) as f32;
            1.0 / (1.0 + e)
        } else {
            libm::tanh(f64::from(x)) as f32
        };
        let rescaled = libm::roundf(y * inverse_scale);
        // C++'s float-to-int32 cast (saturating here) and clamp.
        let quantized = (rescaled + f32::from(output.zero_point)) as i32;
        table[usize::from(q as u8)] = quantized.clamp(-128, 127) as i8;
    }
    Ok(table)
}

/// Which of TFLite's two `MultiplyByQuantizedMultiplier` a kernel applies.
///
/// Int8 model files store it (postcard variant index: 0 double, 1 single).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Rounding {
    /// gemmlowp's two roundings, [`multiply_by_quantized_multiplier`]
    /// (TFLite built without `TFLITE_SINGLE_ROUNDING`, as TensorFlow Lite
    /// Micro's sources are by default).
    Double,
    /// One rounding, [`multiply_by_quantized_multiplier_single_rounding`]
    /// (`TFLITE_SINGLE_ROUNDING=1`): the default, because it is what the
    /// LiteRT interpreter computes (checked bit for bit on the fixture), so
    /// a model moved to or from LiteRT gives the same integers.
    #[default]
    Single,
}

impl Rounding {
    /// `x` times the quantized multiplier `(multiplier, shift)`.
    #[inline]
    #[must_use]
    pub fn apply(self, x: i32, multiplier: i32, shift: i32) -> i32 {
        match self {
            Rounding::Double => multiply_by_quantized_multiplier(x, multiplier, shift),
            Rounding::Single => {
                multiply_by_quantized_multiplier_single_rounding(x, multiplier, shift)
            }
        }
    }
}

/// How a fully connected layer's `i32` accumulators become int8 outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requant<'a> {
    /// Q0.31 multipliers from [`quantize_multiplier`]: one (per-tensor) or
    /// one per output (per-channel).
    pub multiplier: &'a [i32],
    /// The shifts that go with `multiplier`, as many.
    pub shift: &'a [i32],
    /// The output zero point (TFLite's `output_offset`).
    pub output_zero_point: i32,
    /// The lowest output; a fused ReLU is `max(-128, output_zero_point)`.
    pub act_min: i8,
    /// The highest output (127 without activation).
    pub act_max: i8,
    /// Which `MultiplyByQuantizedMultiplier` requantizes.
    pub rounding: Rounding,
}

impl Requant<'_> {
    /// Output `o` of accumulator `acc` (the sum with the bias added):
    /// `clamp(MBQM(acc, multiplier, shift) + output_zero_point, act_min,
    /// act_max)` with output `o`'s [`Self::scale`].
    #[inline(always)]
    #[must_use]
    pub fn output(&self, o: usize, acc: i32) -> i8 {
        let (multiplier, shift) = self.scale(o);
        self.requantize(acc, multiplier, shift)
    }

    /// [`Self::output`] with the output's multiplier and shift given.
    #[inline(always)]
    #[must_use]
    pub fn requantize(&self, acc: i32, multiplier: i32, shift: i32) -> i8 {
        let scaled = self
            .rounding
            .apply(acc, multiplier, shift)
            .saturating_add(self.output_zero_point)
            // Not `clamp`, whose `min <= max` assertion would be a panic
            // where the caller's check is out of sight.
            .max(i32::from(self.act_min))
            .min(i32::from(self.act_max));
        i8::try_from(scaled).unwrap_or(self.act_max)
    }

    /// Output `o`'s multiplier and shift: entry `o`, or entry 0 of a
    /// per-tensor layer (a missing entry counts as 0).
    #[inline(always)]
    #[must_use]
    pub fn scale(&self, o: usize) -> (i32, i32) {
        let c = if self.multiplier.len() == 1 { 0 } else { o };
        let entry = |v: &[i32]| v.get(c).copied().unwrap_or(0);
        (entry(self.multiplier), entry(self.shift))
    }
}

/// An int8 fully connected layer, as TFLite's reference
/// `reference_integer_ops::FullyConnected` (one multiplier) and
/// `FullyConnectedPerChannel` (one per output), for one input vector.
///
/// `out[o] = clamp(MBQM(bias[o] + Σ_i w[o][i] (input[i] - input_zero_point),
/// multiplier[o], shift[o]) + output_zero_point, act_min, act_max)`, with
/// `w` the `[out.len() x input.len()]` int8 weights (symmetric, zero point
/// 0), `bias` (if any) one `i32` per output, and MBQM the
/// `MultiplyByQuantizedMultiplier` of [`Requant::rounding`]. The sums are
/// TFLite's `Σ w (x + input_offset)` in wrapping `i32` (where TFLite
/// overflows).
///
/// `weights` holds `w` packed two rows to a 16-bit lane in blocks of four
/// rows ([`kernel`]'s layout, [`kernel::packed_words`] words; `kernel::pack`
/// converts row-major weights, TFLite's), so that one pass over the input
/// serves four outputs.
///
/// # Errors
///
/// [`Error::DimensionMismatch`] if `weights`, `bias`, `multiplier` or
/// `shift` (1 or `out.len()` values, as many shifts as multipliers) have the
/// wrong length; [`Error::InvalidParameters`] if `act_min > act_max` or
/// `input_zero_point` is outside the int8 range.
pub fn dense_i8(
    input: &[i8],
    input_zero_point: i32,
    weights: &[u32],
    bias: Option<&[i32]>,
    requant: &Requant<'_>,
    out: &mut [i8],
) -> Result<(), Error> {
    let inputs = input.len();
    let outputs = out.len();
    let expected = kernel::packed_words(inputs, outputs).ok_or(Error::DimensionMismatch {
        expected: usize::MAX,
        found: weights.len(),
    })?;
    check_len(expected, weights.len())?;
    if let Some(bias) = bias {
        check_len(outputs, bias.len())?;
    }
    let per_channel = requant.multiplier.len() != 1;
    if per_channel {
        check_len(outputs, requant.multiplier.len())?;
    }
    check_len(requant.multiplier.len(), requant.shift.len())?;
    if requant.act_min > requant.act_max || i8::try_from(input_zero_point).is_err() {
        return Err(Error::InvalidParameters);
    }
    // `Requant::output`, output `o`'s multiplier and shift (entry `o`,
    // per-channel, or 0) found with a stride set once.
    let (multipliers, shifts, biases) = (requant.multiplier, requant.shift, bias.unwrap_or(&[]));
    let stride = usize::from(per_channel);
    let write = |slot: &mut i8, o: usize, dot: i32| {
        let acc = dot.wrapping_add(biases.get(o).copied().unwrap_or(0));
        let c = o * stride;
        let multiplier = multipliers.get(c).copied().unwrap_or(0);
        let shift = shifts.get(c).copied().unwrap_or(0);
        *slot = requant.requantize(acc, multiplier, shift);
    };
    if inputs == 0 {
        // No weights: every sum is zero.
        for (o, slot) in out.iter_mut().enumerate() {
            write(slot, o, 0);
        }
        return Ok(());
    }
    let mut rest = &mut *out;
    let mut first = 0;
    let dots = kernel::dots::<kernel::Native, { kernel::NATIVE_WIDE }>;
    dots(
        input,
        input_zero_point,
        weights,
        outputs,
        |dots: &[i32]| {
            let n = dots.len().min(rest.len());
            let (slots, tail) = core::mem::take(&mut rest).split_at_mut(n);
            for (o, (slot, &dot)) in slots.iter_mut().zip(dots).enumerate() {
                write(slot, first + o, dot);
            }
            first += slots.len();
            rest = tail;
        },
    );
    Ok(())
}

fn check_len(expected: usize, found: usize) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::DimensionMismatch { expected, found })
    }
}

#[cfg(tinygen_dsp)]
mod dsp;
pub mod kernel;

#[cfg(test)]
mod tests;
