//! [`super::mul_add`] on AArch64: its base instruction set's `FMADD`,
//! inline (libm's `fmaf` is the same instruction behind a call, which
//! doubled the instructions of an f32 layer). One of the crate's
//! exceptions to `unsafe_code`.
#![allow(unsafe_code)]

use core::arch::asm;

/// `a * b + c`, rounded once.
#[inline(always)]
pub(super) fn mul_add(a: f32, b: f32, c: f32) -> f32 {
    let out: f32;
    // SAFETY: one instruction on registers; no memory, no flags.
    unsafe {
        asm!(
            "fmadd {out:s}, {a:s}, {b:s}, {c:s}",
            out = lateout(vreg) out,
            a = in(vreg) a,
            b = in(vreg) b,
            c = in(vreg) c,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    /// `FMADD` is the correctly rounded fused multiply-add that every other
    /// target computes (`soft_fma`'s, itself checked against exact
    /// arithmetic), on random bit patterns of every class.
    #[test]
    fn fmadd_is_the_soft_fused_multiply_add() {
        let mut bits = super::super::soft_fma::tests::xorshift(0x9e37_79b9_7f4a_7c15);
        let mut next = || f32::from_bits(bits() as u32);
        for _ in 0..1_000_000 {
            let (a, b, c) = (next(), next(), next());
            let (got, want) = (
                super::mul_add(a, b, c),
                super::super::soft_fma::fma(a, b, c),
            );
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "fmadd({a:e}, {b:e}, {c:e}) = {got:e}, want {want:e}"
            );
        }
    }
}
