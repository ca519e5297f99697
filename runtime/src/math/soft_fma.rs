//! `a * b + c` rounded once, in integer arithmetic, for cores without an
//! FPU (Cortex-M0, M3, RISC-V rv32imac). libm's `fmaf` works in `f64`,
//! which such a core emulates in software at more than twice the cost of
//! the two single-precision operations it replaces; this takes the 48-bit
//! product of the significands and one 64-bit addition, then rounds once.
//! The tests compare it with the host CPU's fused multiply-add.

/// The significand bits of an `f32`.
const FRACTION: u32 = 0x007f_ffff;
/// The implicit leading bit of a normal `f32`'s significand.
const HIDDEN: u32 = 0x0080_0000;
const SIGN: u32 = 0x8000_0000;
const INFINITY: u32 = 0x7f80_0000;

/// `a * b + c` with one rounding to nearest, ties to even.
#[inline(never)]
pub fn fma(a: f32, b: f32, c: f32) -> f32 {
    let (ua, ub, uc) = (a.to_bits(), b.to_bits(), c.to_bits());
    let normal = |u: u32| (u & !SIGN).wrapping_sub(HIDDEN) < INFINITY - HIDDEN;
    if normal(ua) && normal(ub) && normal(uc) {
        let split = |u: u32| (u & FRACTION | HIDDEN, (u >> 23 & 0xff) as i32);
        fused(
            split(ua),
            split(ub),
            Some(split(uc)),
            (ua ^ ub) & SIGN,
            uc & SIGN,
        )
    } else {
        unusual(a, b, c)
    }
}

/// [`fma`] when an operand is zero, subnormal, infinite or NaN.
#[cold]
#[inline(never)]
fn unusual(a: f32, b: f32, c: f32) -> f32 {
    let (ua, ub, uc) = (a.to_bits(), b.to_bits(), c.to_bits());
    let finite = |u: u32| u & !SIGN < INFINITY;
    if !finite(ua) || !finite(ub) {
        // An infinite or NaN product is exact, and so is adding c to it.
        return a * b + c;
    }
    if !finite(uc) {
        // A finite product leaves c (the product itself may not fit).
        return c;
    }
    let sign_p = (ua ^ ub) & SIGN;
    let zero = |u: u32| u & !SIGN == 0;
    if zero(ua) || zero(ub) {
        // A zero product: c, or a zero negative only when c's is too.
        return if zero(uc) {
            f32::from_bits(uc & sign_p)
        } else {
            c
        };
    }
    // Subnormal significands normalised (so that the product lies in
    // [2^46, 2^48)), their exponents below the normal range.
    let split = |u: u32| {
        let (fraction, exponent) = (u & FRACTION, (u >> 23 & 0xff) as i32);
        if exponent == 0 {
            let shift = fraction.leading_zeros() as i32 - 8;
            (fraction << shift, 1 - shift)
        } else {
            (fraction | HIDDEN, exponent)
        }
    };
    let c_part = if zero(uc) { None } else { Some(split(uc)) };
    fused(split(ua), split(ub), c_part, sign_p, uc & SIGN)
}

/// `a b + c` from significands in [2^23, 2^24) and biased exponents (below
/// 1 for normalised subnormals), `c` absent when it is zero. Inlined into
/// both callers (11 % fewer instructions per decode on the Cortex-M3), but
/// one copy where flash is tight (`tinygen_compact`).
#[cfg_attr(tinygen_compact, inline(never))]
#[cfg_attr(not(tinygen_compact), inline(always))]
fn fused(a: (u32, i32), b: (u32, i32), c: Option<(u32, i32)>, sign_p: u32, sign_c: u32) -> f32 {
    // The product's significand (in [2^46, 2^48)) shifted to bits 61-62,
    // `e` the exponent of its lowest bit.
    let p = u64::from(a.0) * u64::from(b.0);
    let (mut m, mut e, mut sign) = (p << 15, a.1 + b.1 - 254 - 46 - 15, sign_p);
    if let Some((mc, ec)) = c {
        // c's significand at bits 39-62.
        let (mc, e_c) = (u64::from(mc) << 39, ec - 127 - 23 - 39);
        // The operand with the larger lowest-bit exponent stays; the other
        // is shifted right onto it, its lost bits kept as one sticky bit
        // (bits are lost only when the sum keeps at least 60).
        let (big, small, big_sign) = if e >= e_c {
            (m, shift_sticky::<39>(mc, e - e_c), sign_p)
        } else {
            let shifted = shift_sticky::<15>(m, e_c - e);
            e = e_c;
            (mc, shifted, sign_c)
        };
        // Both are below 2^63, so the sum does not overflow.
        (m, sign) = if sign_p == sign_c {
            (big + small, big_sign)
        } else if big >= small {
            (big - small, big_sign)
        } else {
            (small - big, big_sign ^ SIGN)
        };
        if m == 0 {
            // An exact zero sum of opposite signs is +0.
            return 0.0;
        }
    }
    // Normalised to bit 63, the result is m 2^(e - shift): `exponent` is
    // its biased exponent, bits 40-63 its significand, 39 the rounding bit.
    let shift = leading_zeros(m);
    m <<= shift;
    let exponent = e - shift as i32 + 63 + 127;
    if exponent > 254 {
        return f32::from_bits(sign | INFINITY);
    }
    let (significand, up) = if exponent >= 1 {
        let rest = m & ((1 << 40) - 1);
        let significand = (m >> 40) as u32;
        let half = 1 << 39;
        (
            significand,
            rest > half || (rest == half && significand & 1 == 1),
        )
    } else {
        // Subnormal: the significand's lowest bit is 2^-149; two more bits
        // kept, the rounding bit and a sticky bit.
        let kept = shift_sticky::<0>(m, 39 - exponent);
        let significand = (kept >> 2) as u32;
        (
            significand,
            kept & 2 != 0 && (kept & 1 != 0 || significand & 1 == 1),
        )
    };
    // A normal significand's leading bit adds one to the exponent field,
    // and a rounding carry out of the significand adds one more (to the
    // smallest normal from a subnormal, to infinity past the largest
    // finite value), as IEEE rounding does.
    let biased = (exponent.max(1) - 1) as u32;
    f32::from_bits(sign | ((biased << 23) + significand + u32::from(up)))
}

/// `m.leading_zeros()`: on cores without a count-leading-zeros instruction
/// (Cortex-M0, rv32imac) through [`few_leading_zeros`].
#[inline(always)]
fn leading_zeros(m: u64) -> u32 {
    #[cfg(any(
        tinygen_compact,
        all(target_arch = "riscv32", not(target_feature = "zbb"))
    ))]
    return few_leading_zeros(m);
    #[cfg(not(any(
        tinygen_compact,
        all(target_arch = "riscv32", not(target_feature = "zbb"))
    )))]
    m.leading_zeros()
}

/// `m.leading_zeros()`, by comparisons when there are at most three (a sum
/// without cancellation), which is cheaper than a software count.
#[cfg_attr(
    not(any(
        test,
        tinygen_compact,
        all(target_arch = "riscv32", not(target_feature = "zbb"))
    )),
    allow(dead_code)
)]
#[inline(always)]
fn few_leading_zeros(m: u64) -> u32 {
    let high = (m >> 32) as u32;
    if high >= 1 << 28 {
        u32::from(high < 1 << 31) + u32::from(high < 1 << 30) + u32::from(high < 1 << 29)
    } else {
        m.leading_zeros()
    }
}

/// `x >> by`, with a lowest bit of one if any bit set was shifted out;
/// `x`'s lowest `ZEROS` bits are zero.
#[inline(always)]
fn shift_sticky<const ZEROS: i32>(x: u64, by: i32) -> u64 {
    if by <= ZEROS {
        x >> by
    } else if by >= 64 {
        u64::from(x != 0)
    } else {
        (x >> by) | u64::from(x & ((1 << by) - 1) != 0)
    }
}

#[cfg(test)]
pub(super) mod tests {
    extern crate std;

    use super::fma;
    use proptest::prelude::*;

    /// The host CPU's (or its C library's) fused multiply-add.
    fn want(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }

    /// Marsaglia's xorshift64 from `state`.
    pub(in crate::math) fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    fn check(a: f32, b: f32, c: f32) {
        let (got, want) = (fma(a, b, c), want(a, b, c));
        assert!(
            got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
            "fma({a:e}, {b:e}, {c:e}) = {got:e} ({:#x}), want {want:e} ({:#x})",
            got.to_bits(),
            want.to_bits()
        );
    }

    /// Values worth trying for each operand: zeros, the ends of the normal
    /// and subnormal ranges, infinities, NaN, ones and neighbours.
    const EDGES: [u32; 16] = [
        0x0000_0000,
        0x0000_0001,
        0x007f_ffff,
        0x0080_0000,
        0x0080_0001,
        0x3f7f_ffff,
        0x3f80_0000,
        0x3f80_0001,
        0x3fc0_0000,
        0x4000_0000,
        0x1f80_0000,
        0x5f80_0000,
        0x7f7f_ffff,
        0x7f00_0000,
        0x7f80_0000,
        0x7fc0_0000,
    ];

    #[test]
    fn every_pair_of_edges_and_signs() {
        for &a in &EDGES {
            for &b in &EDGES {
                for &c in &EDGES {
                    for s in 0..8u32 {
                        let with = |bits: u32, k: u32| f32::from_bits(bits | (s >> k & 1) << 31);
                        check(with(a, 0), with(b, 1), with(c, 2));
                    }
                }
            }
        }
    }

    /// c close to -a b: massive cancellation, where one rounding and two
    /// differ most.
    #[test]
    fn cancellation() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        for _ in 0..1_000_000 {
            let r = next();
            let a = f32::from_bits(0x3000_0000 + (r as u32 & 0x1fff_ffff));
            let b = f32::from_bits(0x3000_0000 + ((r >> 32) as u32 & 0x1fff_ffff));
            let p = a * b;
            let nudge = (next() % 9) as i32 - 4;
            let c = -f32::from_bits(p.to_bits().wrapping_add_signed(nudge));
            check(a, b, c);
            check(a, b, -c);
            check(-a, b, c);
        }
    }

    /// Exact ties between two floats, broken only by bits that fall below
    /// the 64-bit sum (the sticky bit).
    #[test]
    fn ties_broken_far_below() {
        for odd in (1..0x2a_aaaa).step_by(2 * 997) {
            for k in 26..=100 {
                // (1 + odd 2^-23) 1.5 has 25 significant bits: a tie,
                // broken by c = ±2^-k.
                let a = f32::from_bits(0x3f80_0000 + odd);
                for sign in [0, 1u32 << 31] {
                    let c = f32::from_bits(((127 - k) as u32) << 23 | sign);
                    check(a, 1.5, c);
                    check(-a, 1.5, c);
                }
            }
        }
        for odd in (1..0x7f_ffff).step_by(2 * 4099) {
            for j in -60..60 {
                // c + 2^(j-24) (1 + 2^-23)(1 - 2^-23) = c + half its ulp
                // - 2^(j-70): just below a tie.
                let c = f32::from_bits(((127 + j) as u32) << 23 | odd);
                let a = f32::from_bits(((127 + j - 24) as u32) << 23 | 1);
                let b = f32::from_bits(0x3f7f_fffe);
                check(a, b, c);
                check(-a, b, -c);
                check(-a, b, c);
            }
        }
    }

    /// Products and sums of every scale, including those that leave the
    /// normal range (the `unusual` path, subnormal and infinite results).
    #[test]
    fn exponent_ranges() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2_000_000 {
            let r = next();
            let s = next();
            check(
                f32::from_bits(r as u32),
                f32::from_bits((r >> 32) as u32),
                f32::from_bits(s as u32),
            );
            // Operands near one another's scale: long overlaps of the sum.
            let (a, b) = (
                r as u32 & 0x807f_ffff | 0x3f00_0000,
                (r >> 32) as u32 & 0x80ff_ffff | 0x3f00_0000,
            );
            let c = s as u32 & 0x83ff_ffff | 0x3c00_0000;
            check(f32::from_bits(a), f32::from_bits(b), f32::from_bits(c));
            // Results around the subnormal range: factors near 2^-63 and
            // 2^-75..2^-52, c from subnormal to 2^-115.
            let t = next();
            let a = (r as u32 & 0x807f_ffff) | (0x20 + (t & 7) as u32) << 23;
            let b = ((r >> 32) as u32 & 0x807f_ffff) | (0x34 + (t >> 3 & 15) as u32) << 23;
            let c = s as u32 & 0x87ff_ffff;
            check(f32::from_bits(a), f32::from_bits(b), f32::from_bits(c));
        }
    }

    #[test]
    fn leading_zeros_by_comparisons() {
        for k in 0..64 {
            for low in [0, 1, 0x5555_5555_5555_5555, u64::MAX] {
                let m = 1u64 << k | (low & ((1u64 << k) - 1));
                assert_eq!(super::few_leading_zeros(m), m.leading_zeros(), "{m:#x}");
            }
        }
    }

    proptest! {
        #[test]
        fn any_bits(a: u32, b: u32, c: u32) {
            check(f32::from_bits(a), f32::from_bits(b), f32::from_bits(c));
        }

        #[test]
        fn any_finite(a in -1e3f32..1e3, b in -1e3f32..1e3, c in -1e6f32..1e6) {
            check(a, b, c);
        }
    }
}
