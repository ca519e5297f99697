//! [`super::mul_add`] and [`super::sqrt`] on Arm cores with a
//! single-precision FPU: one `VFMA.F32` or `VSQRT.F32`, each in a naked
//! function with the C calling convention (stable
//! `asm!` accepts `s` registers only on cores with a double-precision FPU;
//! see `dense/vfp.rs`). One of the crate's exceptions to `unsafe_code`.
#![allow(unsafe_code)]

use core::arch::naked_asm;

/// `a * b + c`, rounded once.
#[inline(always)]
pub(super) fn mul_add(a: f32, b: f32, c: f32) -> f32 {
    // SAFETY: the function reads its arguments from s0-s2 and returns in
    // s0 (AAPCS-VFP), touching no other register and no memory.
    unsafe { vfma(a, b, c) }
}

/// `s0 = s2 + s0 * s1` with one rounding.
#[unsafe(naked)]
unsafe extern "C" fn vfma(a: f32, b: f32, c: f32) -> f32 {
    naked_asm!(
        ".fpu fpv4-sp-d16",
        "vfma.f32 s2, s0, s1",
        "vmov.f32 s0, s2",
        "bx lr",
    )
}

/// The square root, correctly rounded (as libm's `sqrtf`, so the same bits).
#[inline(always)]
pub(super) fn sqrt(x: f32) -> f32 {
    // SAFETY: the function reads its argument from s0 and returns in s0
    // (AAPCS-VFP), touching no other register and no memory.
    unsafe { vsqrt(x) }
}

/// `s0 = sqrt(s0)`.
#[unsafe(naked)]
unsafe extern "C" fn vsqrt(x: f32) -> f32 {
    naked_asm!(".fpu fpv4-sp-d16", "vsqrt.f32 s0, s0", "bx lr")
}
