//! Scalar math for the kernels: exp, ln and tanh from libm (exact to about
//! 1 ulp) or, with the `micromath` feature, micromath's fast approximations;
//! a numerically stable logistic sigmoid built on [`exp`]; the fused
//! multiply-add the network layers use.

#[cfg(tinygen_neon)]
mod a64;
#[cfg(any(test, all(not(tinygen_vfp), target_os = "none")))]
mod soft_fma;
#[cfg(tinygen_vfp)]
mod vfp;

/// e^x.
#[inline]
pub fn exp(x: f32) -> f32 {
    #[cfg(feature = "micromath")]
    {
        micromath::F32(x).exp().0
    }
    #[cfg(not(feature = "micromath"))]
    {
        libm::expf(x)
    }
}

/// e^x for `x <= 0` (either zero) or NaN: [`exp`] without the branches
/// positive arguments need. With libm, the same operations as its `expf`
/// (FreeBSD's: `x = k ln 2 + r` with `ln 2` in two parts, a rational
/// correction in `r`, scaling by `2^k`), so the same bits, checked on every
/// such input by an ignored test and on a stride of them in every run; the
/// log-sum-exp and the sigmoid need only these arguments. Like libm, it
/// skips the reduction where `k` is 0 and takes `k = -1` as a constant:
/// without an FPU each float operation is a library call (the int8 decoder
/// with sigmoid outputs in f32: 19 % fewer instructions on the Cortex-M0).
#[inline]
pub fn exp_nonpositive(x: f32) -> f32 {
    #[cfg(feature = "micromath")]
    {
        exp(x)
    }
    #[cfg(not(feature = "micromath"))]
    {
        let hx = x.to_bits() & 0x7fff_ffff;
        // 2^-14 < |x| < 87.34: the common case, where k >= -126.
        if hx.wrapping_sub(0x3900_0001) < 0x42ae_ac50 - 0x3900_0001 {
            if hx > 0x3f85_1592 {
                let (hi, lo, k) = exp_reduction(x);
                exp_correction(hi, lo) * f32::from_bits(((0x7f + k) as u32) << 23)
            } else if hx > 0x3eb1_7218 {
                // k = -1 up to 3 ln 2 / 2: x + ln2_hi is libm's x - k ln2_hi.
                exp_correction(x + expf::LN2_HI, -expf::LN2_LO) * 0.5
            } else {
                // k = 0 up to ln 2 / 2: no reduction.
                exp_correction(x, 0.0)
            }
        } else if hx >= 0x42cf_f1b5 {
            // x <= -103.97 (and -inf) underflows to 0; NaN is returned.
            if hx > 0x7f80_0000 { x } else { 0.0 }
        } else {
            exp_nonpositive_edges(x)
        }
    }
}

/// `a * b + c` rounded once (IEEE 754's fused multiply-add, exact on every
/// target, so every core gets the same bits): the network layers' one
/// operation. `VFMA.F32` on Arm cores with an FPU, `FMADD` on AArch64,
/// the CPU's instruction on other hosts (through libm), integer arithmetic
/// on cores without an FPU (`math/soft_fma.rs`).
#[inline(always)]
pub fn mul_add(a: f32, b: f32, c: f32) -> f32 {
    #[cfg(tinygen_vfp)]
    {
        vfp::mul_add(a, b, c)
    }
    #[cfg(tinygen_neon)]
    {
        a64::mul_add(a, b, c)
    }
    // Cores without an FPU.
    #[cfg(all(not(tinygen_vfp), not(tinygen_neon), target_os = "none"))]
    {
        soft_fma::fma(a, b, c)
    }
    // Hosts: libm uses the CPU's instruction where it has one.
    #[cfg(all(not(tinygen_vfp), not(tinygen_neon), not(target_os = "none")))]
    {
        libm::fmaf(a, b, c)
    }
}

/// The square root, correctly rounded as IEEE 754 requires (so the same
/// bits everywhere): `VSQRT.F32` on Arm cores with an FPU, libm's `sqrtf`
/// elsewhere (about 50 instructions on a Cortex-M4F).
#[inline(always)]
pub fn sqrt(x: f32) -> f32 {
    #[cfg(tinygen_vfp)]
    {
        vfp::sqrt(x)
    }
    #[cfg(not(tinygen_vfp))]
    {
        libm::sqrtf(x)
    }
}

/// libm's constants (FreeBSD's `e_expf.c`), by their bits.
#[cfg(not(feature = "micromath"))]
mod expf {
    pub const LN2_HI: f32 = f32::from_bits(0x3f31_7200);
    pub const LN2_LO: f32 = f32::from_bits(0x35bf_be8e);
    pub const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b);
    pub const P1: f32 = f32::from_bits(0x3e2a_aa8f);
    pub const P2: f32 = f32::from_bits(0xbb35_5215);
}

/// `(hi, lo, k)` with `x = k ln 2 + (hi - lo)` for `x < -3 ln 2 / 2`.
#[cfg(not(feature = "micromath"))]
#[inline(always)]
fn exp_reduction(x: f32) -> (f32, f32, i32) {
    use expf::*;
    let k = (INV_LN2 * x - 0.5) as i32;
    let kf = k as f32;
    (x - kf * LN2_HI, kf * LN2_LO, k)
}

/// e^r for the reduced argument `r = hi - lo`.
#[cfg(not(feature = "micromath"))]
#[inline(always)]
fn exp_correction(hi: f32, lo: f32) -> f32 {
    use expf::*;
    let r = hi - lo;
    let rr = r * r;
    let c = r - rr * (P1 + rr * P2);
    1.0 + (r * c / (2.0 - c) - lo + hi)
}

/// [`exp_nonpositive`] for `|x| <= 2^-14` and for results below 2^-126
/// (scaled as libm's `scalbnf` does).
#[cfg(not(feature = "micromath"))]
#[cold]
#[inline(never)]
fn exp_nonpositive_edges(x: f32) -> f32 {
    let hx = x.to_bits() & 0x7fff_ffff;
    if hx <= 0x3900_0000 {
        return 1.0 + x;
    }
    let (hi, lo, mut k) = exp_reduction(x);
    let mut y = exp_correction(hi, lo);
    if k < -126 {
        // First times 2^-102, as libm's scalbnf does.
        y *= f32::from_bits(0x0c80_0000);
        k += 102;
    }
    y * f32::from_bits(((0x7f + k) as u32) << 23)
}

/// Natural logarithm.
#[inline]
pub fn ln(x: f32) -> f32 {
    #[cfg(feature = "micromath")]
    {
        micromath::F32(x).ln().0
    }
    #[cfg(not(feature = "micromath"))]
    {
        libm::logf(x)
    }
}

/// Hyperbolic tangent (libm's `tanhf`; with `micromath`, `(1 - e) / (1 + e)`
/// with `e = exp(-2|x|)` and the sign of `x`).
#[inline]
pub fn tanh(x: f32) -> f32 {
    #[cfg(feature = "micromath")]
    {
        let e = exp(-2.0 * libm::fabsf(x));
        let t = (1.0 - e) / (1.0 + e);
        if x < 0.0 { -t } else { t }
    }
    #[cfg(not(feature = "micromath"))]
    {
        libm::tanhf(x)
    }
}

/// Logistic sigmoid `1 / (1 + e^-x)`, computed without overflow: for
/// `x >= 0` as `1 / (1 + exp(-x))`, for `x < 0` as `exp(x) / (1 + exp(x))`.
///
/// ```
/// use tinygen_runtime::math::sigmoid;
/// assert_eq!(sigmoid(0.0), 0.5);
/// assert_eq!(sigmoid(-200.0), 0.0);
/// assert_eq!(sigmoid(200.0), 1.0);
/// ```
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + exp_nonpositive(-x))
    } else {
        let e = exp_nonpositive(x);
        e / (1.0 + e)
    }
}

/// A numerically stable running log-sum-exp: `ln(sum_i exp(v_i))` without
/// overflow, in one pass and without storing the terms.
///
/// ```
/// use tinygen_runtime::math::LogSumExp;
/// let mut acc = LogSumExp::new();
/// for v in [1000.0f32, 1000.0] {
///     acc.push(v);
/// }
/// assert!((acc.finish() - (1000.0 + core::f32::consts::LN_2)).abs() < 1e-3);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LogSumExp {
    max: f32,
    sum: f32,
}

impl Default for LogSumExp {
    fn default() -> Self {
        Self::new()
    }
}

impl LogSumExp {
    /// An empty sum (its value is -inf).
    pub const fn new() -> Self {
        Self {
            max: f32::NEG_INFINITY,
            sum: 0.0,
        }
    }

    /// Adds the term `exp(v)`.
    #[inline]
    pub fn push(&mut self, v: f32) {
        if v == f32::NEG_INFINITY {
            return;
        }
        if v <= self.max {
            self.sum += exp_nonpositive(v - self.max);
        } else if v > self.max {
            // Rescale what we have to the new maximum (exp(-inf) = 0 when empty).
            self.sum = self.sum * exp_nonpositive(self.max - v) + 1.0;
            self.max = v;
        }
        // A NaN term compares false both ways and is ignored; callers check inputs.
    }

    /// `ln(sum)`; -inf when empty or when every term was -inf.
    #[inline]
    pub fn finish(self) -> f32 {
        if self.max == f32::NEG_INFINITY {
            f32::NEG_INFINITY
        } else {
            self.max + ln(self.sum)
        }
    }

    /// The log-sum-exp of a slice.
    pub fn of(values: &[f32]) -> f32 {
        let mut acc = Self::new();
        for &v in values {
            acc.push(v);
        }
        acc.finish()
    }
}

/// What the mixture kernels compute with: one `f32` on the device, or
/// several rows' values side by side on a host's SIMD unit. Each lane sees
/// the kernel's operations in the kernel's order, each rounded once (no
/// fused multiply-add), so every lane's bits are the scalar kernel's.
pub trait Lanes:
    Copy
    + core::ops::Add<Output = Self>
    + core::ops::AddAssign
    + core::ops::Sub<Output = Self>
    + core::ops::Mul<Output = Self>
    + core::ops::Sub<f32, Output = Self>
    + core::ops::Mul<f32, Output = Self>
{
    /// Every lane `0.0`.
    const ZERO: Self;
    /// Every lane `v`.
    fn splat(v: f32) -> Self;
}

impl Lanes for f32 {
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn splat(v: f32) -> Self {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `exp_nonpositive` is libm's `expf` (and the sigmoid its
    /// textbook form on it) on the floats `bits` reaches with the sign bit
    /// set, and on those without it for the sigmoid.
    #[cfg(not(feature = "micromath"))]
    fn check_exp_nonpositive(bits: impl Iterator<Item = u32>) {
        let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        for b in bits {
            let x = f32::from_bits(b | 0x8000_0000);
            assert!(same(exp_nonpositive(x), libm::expf(x)), "exp({x:e})");
            for x in [x, -x] {
                let e = libm::expf(-libm::fabsf(x));
                let textbook = if x >= 0.0 {
                    1.0 / (1.0 + e)
                } else {
                    e / (1.0 + e)
                };
                assert!(same(sigmoid(x), textbook), "sigmoid({x:e})");
            }
        }
    }

    #[test]
    #[cfg(not(feature = "micromath"))]
    fn exp_nonpositive_is_libms_expf() {
        check_exp_nonpositive((0..0x7fff_ffff).step_by(97));
        // Every branch's ends: 2^-14, the k = -1 range (ln 2 / 2, 3 ln 2 /
        // 2], the results below 2^-126 from -87.34, zero from -103.97.
        let ends = [
            0x3900_0000u32,
            0x3eb1_7218,
            0x3f85_1592,
            0x42ae_ac50,
            0x42cf_f1b5,
        ];
        check_exp_nonpositive(ends.iter().flat_map(|&e| e - 2..=e + 2));
        check_exp_nonpositive([0, 0x7f80_0000, 0x7fc0_0000].into_iter());
        assert_eq!(exp_nonpositive(0.0), 1.0);
    }

    /// `cargo test --release -p tinygen-runtime --lib exhaustive -- --ignored`
    /// (about a minute).
    #[test]
    #[ignore]
    #[cfg(not(feature = "micromath"))]
    fn exp_nonpositive_is_libms_expf_exhaustive() {
        check_exp_nonpositive(0..=0x7fff_ffff);
    }

    #[test]
    fn logsumexp_matches_naive_sum_for_moderate_values() {
        let values = [-1.5f32, 0.25, 2.0, -3.0];
        let naive = libm::logf(values.iter().map(|&v| libm::expf(v)).sum::<f32>());
        // micromath's exp and ln are approximations (a few 1e-5 relative
        // here); libm's are exact to about an ulp.
        let tolerance = if cfg!(feature = "micromath") {
            2e-4
        } else {
            1e-5
        };
        let error = (LogSumExp::of(&values) - naive).abs();
        assert!(error < tolerance, "{error} vs naive {naive}");
    }

    #[test]
    fn logsumexp_is_stable_for_large_and_tiny_values() {
        assert!(
            (LogSumExp::of(&[-1000.0, -1000.0]) - (-1000.0 + core::f32::consts::LN_2)).abs() < 1e-3
        );
        assert_eq!(LogSumExp::of(&[88.0, -1e30]), 88.0);
        assert_eq!(LogSumExp::of(&[]), f32::NEG_INFINITY);
        assert_eq!(LogSumExp::of(&[f32::NEG_INFINITY; 3]), f32::NEG_INFINITY);
    }
}
