//! The ARMv7E-M DSP instructions of [`super::kernel::Dual`], one `asm!`
//! each: stable Rust has no intrinsics for them and LLVM does not form
//! `SXTB16` from plain code. The crate's one exception to
//! `unsafe_code`: every block is pure register arithmetic (no memory, no
//! stack). Host tests check that the kernel written with their
//! specification ([`super::kernel::Emulated`]) gives the portable kernel's
//! sums; the int8 cases of the QEMU suite then run this module on the
//! Cortex-M4F and M33 and compare every output with the host's.
#![allow(unsafe_code)]

use core::arch::asm;

use super::kernel::DualMac;

/// The DSP extension's instructions.
pub(super) struct Arm;

impl DualMac for Arm {
    #[inline(always)]
    fn sxtb16(w: u32) -> u32 {
        let out;
        // SAFETY: register-only arithmetic.
        unsafe {
            asm!("sxtb16 {0}, {1}", lateout(reg) out, in(reg) w, options(pure, nomem, nostack))
        };
        out
    }
    #[inline(always)]
    fn sxtb16_ror8(w: u32) -> u32 {
        let out;
        // SAFETY: register-only arithmetic.
        unsafe {
            asm!("sxtb16 {0}, {1}, ror #8", lateout(reg) out, in(reg) w, options(pure, nomem, nostack))
        };
        out
    }
    #[inline(always)]
    fn sxtab16(a: u32, w: u32) -> u32 {
        let out;
        // SAFETY: register-only arithmetic.
        unsafe {
            asm!("sxtab16 {0}, {1}, {2}", lateout(reg) out, in(reg) a, in(reg) w, options(pure, nomem, nostack))
        };
        out
    }
    #[inline(always)]
    fn sxtab16_ror8(a: u32, w: u32) -> u32 {
        let out;
        // SAFETY: register-only arithmetic.
        unsafe {
            asm!("sxtab16 {0}, {1}, {2}, ror #8", lateout(reg) out, in(reg) a, in(reg) w, options(pure, nomem, nostack))
        };
        out
    }
    #[inline(always)]
    fn smlad(a: u32, b: u32, acc: i32) -> i32 {
        let out;
        // SAFETY: register-only arithmetic (it may set the sticky Q flag,
        // which nothing here reads).
        unsafe {
            asm!("smlad {0}, {1}, {2}, {3}", lateout(reg) out, in(reg) a, in(reg) b, in(reg) acc, options(pure, nomem, nostack))
        };
        out
    }
}
