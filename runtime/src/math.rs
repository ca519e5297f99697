//! Scalar math for the kernels: exp, ln and tanh from libm (exact to about
//! 1 ulp) or, with the `micromath` feature, micromath's fast approximations;
//! a numerically stable logistic sigmoid built on [`exp`].

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
        1.0 / (1.0 + exp(-x))
    } else {
        let e = exp(x);
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
            self.sum += exp(v - self.max);
        } else if v > self.max {
            // Rescale what we have to the new maximum (exp(-inf) = 0 when empty).
            self.sum = self.sum * exp(self.max - v) + 1.0;
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
