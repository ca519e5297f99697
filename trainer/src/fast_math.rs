//! Vector arithmetic for the host's fast paths, bit for bit the runtime's
//! scalar arithmetic: [`F32x8`], eight f32 lanes that the runtime's generic
//! kernels run on (each operation rounded once, no fused multiply-add), and
//! [`exp8`], libm's `expf` lane by lane. Both are plain inlined code, so they
//! take the instruction set of the multiversioned kernel that calls them.

use std::ops::{Add, AddAssign, Mul, Sub};

use tinygen_runtime::math::{self, Lanes};

/// f32 lanes per vector (one AVX register).
pub const LANES: usize = 8;

/// Eight f32 values.
pub type Block = [f32; LANES];

/// Eight f32 lanes: rows side by side, each lane computed as the runtime
/// computes one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct F32x8(pub Block);

impl Add for F32x8 {
    type Output = Self;
    #[inline(always)]
    fn add(self, rhs: Self) -> Self {
        Self(std::array::from_fn(|l| self.0[l] + rhs.0[l]))
    }
}

impl AddAssign for F32x8 {
    #[inline(always)]
    fn add_assign(&mut self, rhs: Self) {
        *self = *self + rhs;
    }
}

impl Sub for F32x8 {
    type Output = Self;
    #[inline(always)]
    fn sub(self, rhs: Self) -> Self {
        Self(std::array::from_fn(|l| self.0[l] - rhs.0[l]))
    }
}

impl Mul for F32x8 {
    type Output = Self;
    #[inline(always)]
    fn mul(self, rhs: Self) -> Self {
        Self(std::array::from_fn(|l| self.0[l] * rhs.0[l]))
    }
}

impl Sub<f32> for F32x8 {
    type Output = Self;
    #[inline(always)]
    fn sub(self, rhs: f32) -> Self {
        Self(self.0.map(|v| v - rhs))
    }
}

impl Mul<f32> for F32x8 {
    type Output = Self;
    #[inline(always)]
    fn mul(self, rhs: f32) -> Self {
        Self(self.0.map(|v| v * rhs))
    }
}

impl Lanes for F32x8 {
    const ZERO: Self = Self([0.0; LANES]);
    #[inline(always)]
    fn splat(v: f32) -> Self {
        Self([v; LANES])
    }
}

/// libm's `expf` (FreeBSD's: argument reduction by `k ln 2` in two parts, a
/// degree-2 rational correction, scaling by `2^k`) of eight values, in the
/// same operations lane by lane, so each lane's bits are the scalar
/// function's, down to the subnormal results of `x > -103.97` and the
/// zeros below. Lanes towards overflow (`x >= 87.34`) and NaN take the
/// scalar function. Callers check [`exp8_matches_the_runtime`]
/// once: the runtime's `exp` is micromath's when built with that feature.
#[inline(always)]
pub fn exp8(x: &Block) -> Block {
    // libm's constants, by their bits.
    const LN2_HI: f32 = f32::from_bits(0x3f31_7200);
    const LN2_LO: f32 = f32::from_bits(0x35bf_be8e);
    const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b);
    const P1: f32 = f32::from_bits(0x3e2a_aa8f);
    const P2: f32 = f32::from_bits(0xbb35_5215);
    let mut out = [0.0; LANES];
    for l in 0..LANES {
        let v = x[l];
        let negative = v.to_bits() >> 31 != 0;
        let hx = v.to_bits() & 0x7fff_ffff;
        // Rounded to the nearest integer as libm does; clamped first (lanes
        // that far out are zeros or take the scalar path) so that the
        // conversion is one vector instruction.
        #[allow(clippy::manual_clamp)] // `clamp` would keep a NaN
        let t = (INV_LN2 * v + if negative { -0.5 } else { 0.5 })
            .max(-256.0)
            .min(256.0);
        // SAFETY: `t` is within ±256 (`max` turned a NaN lane into -256).
        let big: i32 = unsafe { t.to_int_unchecked() };
        let k = if hx > 0x3f85_1592 {
            big
        } else if hx > 0x3eb1_7218 {
            if negative { -1 } else { 1 }
        } else {
            0
        };
        let kf = k as f32;
        let hi = v - kf * LN2_HI;
        let lo = kf * LN2_LO;
        let r = hi - lo;
        let rr = r * r;
        let c = r - rr * (P1 + rr * P2);
        let y = 1.0 + (r * c / (2.0 - c) - lo + hi);
        // y 2^k as libm's scalbnf takes it: below 2^-126 (k down to -150,
        // x down to -103.97), first times 2^-102 (exact), then 2^(k + 102);
        // lanes whose k is out of range take the scalar path below.
        let (pre, k) = if k < -126 {
            (f32::from_bits(0x0c80_0000), k + 102)
        } else {
            (1.0, k)
        };
        let e = y * pre * f32::from_bits((0x7f_i32.wrapping_add(k) as u32) << 23);
        // |x| <= 2^-14: libm returns 1 + x; x <= -103.97 (and -inf): 0.
        out[l] = if underflows(v) {
            0.0
        } else if hx > 0x3900_0000 {
            e
        } else {
            1.0 + v
        };
    }
    // NaN, and x >= 87.34 (towards overflow).
    let scalar: [bool; LANES] = std::array::from_fn(|l| {
        let bits = x[l].to_bits();
        bits & 0x7fff_ffff > 0x7f80_0000 || (bits >> 31 == 0 && bits >= 0x42ae_ac50)
    });
    if scalar.iter().any(|&s| s) {
        for l in 0..LANES {
            if scalar[l] {
                out[l] = math::exp(x[l]);
            }
        }
    }
    out
}

/// Whether libm's `expf(x)` returns 0 at once: `x <= -103.97` or `-inf`.
#[inline(always)]
fn underflows(x: f32) -> bool {
    let bits = x.to_bits();
    bits >> 31 != 0 && (0x42cf_f1b5..=0x7f80_0000).contains(&(bits & 0x7fff_ffff))
}

/// Whether [`exp8`] gives the runtime's `exp` (it does when the runtime
/// uses libm, not micromath), on probes from each of its branches; checked
/// once.
pub fn exp8_matches_the_runtime() -> bool {
    static MATCHES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *MATCHES.get_or_init(probe_exp8)
}

fn probe_exp8() -> bool {
    let probes: [Block; 4] = [
        [
            -87.5,
            -95.0,
            -103.9,
            -104.0,
            -200.0,
            88.0,
            88.8,
            f32::INFINITY,
        ],
        [-80.0, -3.7, -0.9, -0.2, 0.01, 0.3, 1.2, 42.0],
        [-1e-5, 1e-5, 0.5, -0.5, 5.5, -5.5, 90.0, -88.0],
        [
            0.0,
            -0.0,
            f32::NEG_INFINITY,
            f32::NAN,
            -87.0,
            87.0,
            -1.0,
            1.0,
        ],
    ];
    probes.iter().all(|p| {
        exp8(p)
            .iter()
            .zip(p)
            .all(|(a, &x)| a.to_bits() == math::exp(x).to_bits())
    })
}

#[cfg(test)]
mod tests {
    use rayon::prelude::*;

    use super::*;

    fn check(block: &Block) {
        for (got, &x) in exp8(block).iter().zip(block) {
            let want = math::exp(x);
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "exp({x:e})"
            );
        }
    }

    /// Every float of a stride through the bit patterns, both signs.
    #[test]
    fn the_vector_exp_is_the_runtimes() {
        assert!(exp8_matches_the_runtime());
        for bits in (0u32..0x7f80_0000).step_by(8 * 97) {
            check(&std::array::from_fn(|l| {
                let b = bits + l as u32 * 97;
                f32::from_bits(if l % 2 == 0 { b } else { b | 0x8000_0000 })
            }));
        }
    }

    /// All 2^32 bit patterns (`cargo test --release -p tinygen --lib
    /// exhaustive -- --ignored`, about a minute).
    #[test]
    #[ignore]
    fn the_vector_exp_is_the_runtimes_exhaustive() {
        (0u32..1 << 29).into_par_iter().for_each(|chunk| {
            check(&std::array::from_fn(|l| {
                f32::from_bits(chunk * 8 + l as u32)
            }));
        });
    }

    #[test]
    fn lanes_compute_what_scalars_compute() {
        let a = F32x8([1.5, -2.0, 3.25, 1e-30, -0.0, 7.0, 1e30, 0.1]);
        let b = F32x8([0.3, 0.7, -1.1, 1e-10, 0.0, -7.0, 1e10, 0.2]);
        let got = (a * b + a - b) * 0.5 - 0.25;
        for l in 0..LANES {
            let want = (a.0[l] * b.0[l] + a.0[l] - b.0[l]) * 0.5 - 0.25;
            assert_eq!(got.0[l].to_bits(), want.to_bits());
        }
    }
}
