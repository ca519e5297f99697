//! The int8 kernel's inner loop for the ARMv7E-M DSP extension, in
//! assembly: stable Rust has no intrinsics for `SMLAD` and `SXTB16`, and
//! LLVM neither forms them nor keeps this loop's eleven registers without
//! spilling. The crate's one exception to `unsafe_code`.
//!
//! It is [`super::kernel::Packed`] instruction for instruction (that loop
//! runs on the host with the instructions emulated, checked against an
//! `i64` reference on every shape); the int8 cases of the QEMU suite run
//! this one on the Cortex-M4F and M33 and compare every output with the
//! host's.
#![allow(unsafe_code)]

use core::arch::asm;

use super::kernel::{CHUNK, ChunkDot};

/// The assembly loop.
pub(super) struct Arm;

/// One group: four inputs (two words of lanes) times the block's four
/// words, 16 multiply-accumulates in 15 instructions.
macro_rules! group {
    () => {
        concat!(
            "ldrd {x01}, {x23}, [{xp}], #8\n",
            "ldrd {w0}, {w1}, [{wp}], #8\n",
            "smlad {a0}, {w0}, {x01}, {a0}\n",
            "sxtb16 {w0}, {w0}\n",
            "smlad {s0}, {w0}, {x01}, {s0}\n",
            "smlad {a0}, {w1}, {x23}, {a0}\n",
            "sxtb16 {w1}, {w1}\n",
            "smlad {s0}, {w1}, {x23}, {s0}\n",
            "ldrd {w0}, {w1}, [{wp}], #8\n",
            "smlad {a1}, {w0}, {x01}, {a1}\n",
            "sxtb16 {w0}, {w0}\n",
            "smlad {s1}, {w0}, {x01}, {s1}\n",
            "smlad {a1}, {w1}, {x23}, {a1}\n",
            "sxtb16 {w1}, {w1}\n",
            "smlad {s1}, {w1}, {x23}, {s1}\n",
        )
    };
}

impl ChunkDot for Arm {
    #[inline(never)]
    fn dot(x: &[u32], w: &[u32]) -> [i32; 4] {
        let groups = (x.len() / 2).min(w.len() / 4).min(CHUNK / 4);
        // Bytes of input to go; at most 8 * 64, so the signed tests below
        // see it as it is.
        let mut n = 8 * groups;
        let (mut xp, mut wp) = (x.as_ptr(), w.as_ptr());
        let [mut a0, mut s0, mut a1, mut s1] = [0i32; 4];
        // SAFETY: the loop reads `groups` pairs of words from `x` and
        // quadruples from `w`, both in bounds by the `min` above and 4-byte
        // aligned (`u32` slices, as `LDRD` needs); it writes only its
        // registers and the flags (SMLAD may set the sticky Q flag, which
        // nothing reads), and uses no stack.
        unsafe {
            asm!(
                // Four groups at a time, then one at a time.
                "subs {n}, {n}, #32",
                "bmi 2f",
                "1:",
                group!(),
                group!(),
                group!(),
                group!(),
                "subs {n}, {n}, #32",
                "bpl 1b",
                "2:",
                "adds {n}, {n}, #32",
                "beq 4f",
                "3:",
                group!(),
                "subs {n}, {n}, #8",
                "bne 3b",
                "4:",
                n = inout(reg) n,
                xp = inout(reg) xp,
                wp = inout(reg) wp,
                a0 = inout(reg) a0,
                s0 = inout(reg) s0,
                a1 = inout(reg) a1,
                s1 = inout(reg) s1,
                x01 = out(reg) _,
                x23 = out(reg) _,
                w0 = out(reg) _,
                w1 = out(reg) _,
                options(readonly, nostack),
            );
        }
        let _ = (n, xp, wp);
        [a0, s0, a1, s1]
    }
}
