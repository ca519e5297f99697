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
    exp_lanes(x)
}

/// Whether every value is finite, checked without stopping at the first
/// that is not: a loop the compiler vectorises (`Iterator::all` stops
/// early, so it tests one value at a time; it was about a tenth of a
/// batch's scoring on one thread).
pub fn all_finite(values: &[f32]) -> bool {
    values.iter().fold(true, |ok, v| ok & v.is_finite())
}

/// [`exp8`] over `N` lanes (sixteen fill an AVX-512 register).
#[inline(always)]
pub fn exp_lanes<const N: usize>(x: &[f32; N]) -> [f32; N] {
    // libm's constants, by their bits.
    const LN2_HI: f32 = f32::from_bits(0x3f31_7200);
    const LN2_LO: f32 = f32::from_bits(0x35bf_be8e);
    const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b);
    const P1: f32 = f32::from_bits(0x3e2a_aa8f);
    const P2: f32 = f32::from_bits(0xbb35_5215);
    let mut out = [0.0; N];
    for l in 0..N {
        // Lanes that return zero (or take the scalar path) compute on 0 in
        // the meantime, away from slow subnormal arithmetic.
        let v = if underflows(x[l]) || x[l].is_nan() {
            0.0
        } else {
            x[l]
        };
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
        out[l] = if underflows(x[l]) {
            0.0
        } else if hx > 0x3900_0000 {
            e
        } else {
            1.0 + v
        };
    }
    // NaN, and x >= 87.34 (towards overflow).
    scalar_lanes(x, &mut out, math::exp, |bits| {
        bits & 0x7fff_ffff > 0x7f80_0000 || (bits >> 31 == 0 && bits >= 0x42ae_ac50)
    });
    out
}

/// Replaces `out[l]` by `f(x[l])` in the lanes whose bits satisfy
/// `scalar`, checked first for all lanes at once (as vector compares).
#[inline(always)]
fn scalar_lanes<const N: usize>(
    x: &[f32; N],
    out: &mut [f32; N],
    f: fn(f32) -> f32,
    scalar: impl Fn(u32) -> bool,
) {
    let mut any = 0u32;
    for v in x {
        any |= u32::from(scalar(v.to_bits()));
    }
    if any != 0 {
        for (o, &v) in out.iter_mut().zip(x) {
            if scalar(v.to_bits()) {
                *o = f(v);
            }
        }
    }
}

/// libm's `logf` (FreeBSD's: `x = 2^k (1 + f)` with `1 + f` in [√2/2, √2],
/// then `s = f / (2 + f)` and a degree-4 polynomial in `s²`) of eight values,
/// in the same operations lane by lane, so each lane's bits are the scalar
/// function's. Lanes outside its main path (zero, negative, subnormal,
/// infinite, NaN) take the scalar function. Callers check
/// [`exp8_matches_the_runtime`] (it probes both).
#[inline(always)]
pub fn ln8(x: &Block) -> Block {
    const LN2_HI: f32 = f32::from_bits(0x3f31_7180);
    const LN2_LO: f32 = f32::from_bits(0x3717_f7d1);
    const LG1: f32 = f32::from_bits(0x3f2a_aaaa);
    const LG2: f32 = f32::from_bits(0x3ecc_ce13);
    const LG3: f32 = f32::from_bits(0x3e91_e9ee);
    const LG4: f32 = f32::from_bits(0x3e78_9e26);
    let mut out = [0.0; LANES];
    for l in 0..LANES {
        let ix = x[l].to_bits().wrapping_add(0x3f80_0000 - 0x3f35_04f3);
        let k = (ix >> 23) as i32 - 0x7f;
        let f = f32::from_bits((ix & 0x007f_ffff) + 0x3f35_04f3) - 1.0;
        let s = f / (2.0 + f);
        let z = s * s;
        let w = z * z;
        let t1 = w * (LG2 + w * LG4);
        let t2 = z * (LG1 + w * LG3);
        let r = t2 + t1;
        let hfsq = 0.5 * f * f;
        let dk = k as f32;
        let y = s * (hfsq + r) + dk * LN2_LO - hfsq + f + dk * LN2_HI;
        // ln 1 = 0 exactly.
        out[l] = if x[l] == 1.0 { 0.0 } else { y };
    }
    scalar_lanes(x, &mut out, math::ln, |bits| {
        !(0x0080_0000..0x7f80_0000).contains(&bits)
    });
    out
}

/// Whether libm's `expf(x)` returns 0 at once: `x <= -103.97` or `-inf`.
#[inline(always)]
fn underflows(x: f32) -> bool {
    let bits = x.to_bits();
    bits >> 31 != 0 && (0x42cf_f1b5..=0x7f80_0000).contains(&(bits & 0x7fff_ffff))
}

/// Whether [`exp8`] and [`ln8`] give the runtime's `exp` and `ln` (they do
/// when the runtime uses libm, not micromath), on probes from each of their
/// branches; checked once.
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
    let same = |got: Block, p: &Block, want: fn(f32) -> f32| {
        got.iter()
            .zip(p)
            .all(|(a, &x)| a.to_bits() == want(x).to_bits())
    };
    probes.iter().all(|p| {
        let positive = p.map(f32::abs);
        same(exp8(p), p, math::exp) && same(ln8(&positive), &positive, math::ln)
    })
}

#[cfg(test)]
mod tests {
    use rayon::prelude::*;

    use super::*;

    /// A vector function against the runtime's scalar one, lane by lane
    /// (bits equal, or both NaN).
    struct Pair {
        name: &'static str,
        vector: fn(&Block) -> Block,
        scalar: fn(f32) -> f32,
    }

    const EXP: Pair = Pair {
        name: "exp",
        vector: exp8,
        scalar: math::exp,
    };
    const LN: Pair = Pair {
        name: "ln",
        vector: ln8,
        scalar: math::ln,
    };

    impl Pair {
        fn check(&self, block: &Block) {
            for (got, &x) in (self.vector)(block).iter().zip(block) {
                let want = (self.scalar)(x);
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "{}({x:e})",
                    self.name
                );
            }
        }

        /// Every float of a stride through the bit patterns, the lanes
        /// `negative` picks with the sign bit set.
        fn check_stride(&self, negative: fn(usize) -> bool) {
            for bits in (0u32..0x7f80_0000).step_by(8 * 97) {
                self.check(&std::array::from_fn(|l| {
                    let b = bits + l as u32 * 97;
                    f32::from_bits(if negative(l) { b | 0x8000_0000 } else { b })
                }));
            }
        }

        /// All 2^32 bit patterns.
        fn check_all(&self) {
            (0u32..1 << 29).into_par_iter().for_each(|chunk| {
                self.check(&std::array::from_fn(|l| {
                    f32::from_bits(chunk * 8 + l as u32)
                }));
            });
        }
    }

    #[test]
    fn the_vector_exp_is_the_runtimes() {
        assert!(exp8_matches_the_runtime());
        EXP.check_stride(|l| l % 2 == 1);
    }

    /// `cargo test --release -p tinygen --lib exhaustive -- --ignored`
    /// (about a minute each).
    #[test]
    #[ignore]
    fn the_vector_exp_is_the_runtimes_exhaustive() {
        EXP.check_all();
    }

    #[test]
    fn the_vector_ln_is_the_runtimes() {
        LN.check_stride(|l| l % 4 == 3);
        LN.check(&[1.0, 0.0, -0.0, f32::INFINITY, f32::NAN, 1e-45, 2.0, 0.5]);
    }

    #[test]
    #[ignore]
    fn the_vector_ln_is_the_runtimes_exhaustive() {
        LN.check_all();
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
