//! The dense kernel for Arm cores with a single-precision FPU (Cortex-M4F,
//! M7, M33), in assembly: one `VLDM` loads twelve inputs or twelve
//! weights, so a block of eight rows takes 107 instructions per twelve
//! inputs (1.11 per multiply-accumulate), where the compiled loop needs
//! about three. Like
//! `quant/dsp.rs`, one of the crate's exceptions to `unsafe_code`.
//!
//! The numerics are the portable loop's: `VFMA.F32` is IEEE's fused
//! multiply-add (one rounding, like `math::mul_add` everywhere), and each
//! row's sum runs from its bias in ascending input order. The rows outside
//! the blocks of eight, and the inputs after the last four, go through
//! [`dot`]. The QEMU suite compares every decoder output on the Cortex-M4F
//! and M33 with the host's, bit for bit.
//!
//! It is a naked function with the C calling convention rather than an
//! `asm!` block because stable Rust accepts `s` registers as `asm!`
//! operands only on cores with a double-precision FPU.
#![allow(unsafe_code)]

use core::arch::naked_asm;

/// `y[o] = b[o] + Σ_j w[o][j] x[j]` over the first `x.len() - x.len() % 4`
/// inputs, for the first `8 * blocks` rows of `w` (row-major, `x.len()`
/// weights a row). Does nothing when `blocks` is zero, `x` is shorter than
/// four, or a slice is too short for them.
pub(super) fn blocks_of_eight(w: &[f32], bias: &[f32], x: &[f32], y: &mut [f32], blocks: usize) {
    let n = x.len();
    let rows = blocks.saturating_mul(8);
    if n < 4
        || blocks == 0
        || bias.len() < rows
        || y.len() < rows
        || w.len() / n.max(1) < rows
        || n > usize::MAX / 32
    {
        return;
    }
    let mut layer = Layer {
        x: x.as_ptr(),
        w: w.as_ptr(),
        bias: bias.as_ptr(),
        y: y.as_mut_ptr(),
        twelves: n / 12,
        fours: n % 12 / 4,
        row_bytes: 4 * n,
        blocks,
    };
    // SAFETY: `blocks` is at least one, as is `twelves` or `fours`; `x`
    // holds the `12 * twelves + 4 * fours` floats read, `w` `8 * blocks`
    // rows of `n`, `bias` and `y` `8 * blocks` (checked above; `4 * n` does
    // not overflow), all 4-byte aligned as `VLDM` and `VSTM` need. Nothing
    // else is written.
    unsafe { blocks_of_eight_asm(&mut layer) }
}

/// `acc + Σ_j w[j] x[j]` over the shorter of the two, in ascending `j`,
/// one `VFMA` each: four a loop (two `VLDM`s), then one at a time.
pub(super) fn dot(w: &[f32], x: &[f32], acc: f32) -> f32 {
    let n = w.len().min(x.len());
    // SAFETY: both slices hold at least `n` floats, 4-byte aligned.
    unsafe { dot_asm(w.as_ptr(), x.as_ptr(), n, acc) }
}

/// [`dot`] without its checks, per the AAPCS-VFP: `w`, `x`, `n` in r0-r2,
/// `acc` in s0 and the result there; uses the caller-saved s4-s11.
#[unsafe(naked)]
unsafe extern "C" fn dot_asm(w: *const f32, x: *const f32, n: usize, acc: f32) -> f32 {
    naked_asm!(
        ".fpu fpv4-sp-d16",
        "lsrs r3, r2, #2",
        "beq 2f",
        "1:",
        "vldmia r0!, {{s4-s7}}",
        "vldmia r1!, {{s8-s11}}",
        "vfma.f32 s0, s4, s8",
        "vfma.f32 s0, s5, s9",
        "vfma.f32 s0, s6, s10",
        "vfma.f32 s0, s7, s11",
        "subs r3, r3, #1",
        "bne 1b",
        "2:",
        "ands r2, r2, #3",
        "beq 4f",
        "3:",
        "vldmia r0!, {{s4}}",
        "vldmia r1!, {{s8}}",
        "vfma.f32 s0, s4, s8",
        "subs r2, r2, #1",
        "bne 3b",
        "4:",
        "bx lr",
    )
}

/// The arguments of [`blocks_of_eight_asm`] (offsets in the assembly); it
/// advances `w`, `bias`, `y` and counts `blocks` down as it goes.
#[repr(C)]
struct Layer {
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    y: *mut f32,
    /// Chunks of twelve inputs.
    twelves: usize,
    /// Chunks of four inputs after those (0, 1 or 2).
    fours: usize,
    row_bytes: usize,
    blocks: usize,
}

/// [`blocks_of_eight`] without its checks, per the AAPCS: `layer` in r0.
/// Saves the callee-saved r4-r11 and s16-s31 it uses.
///
/// A block of eight rows (pointers r4-r11, sums s0-s7) takes the inputs
/// twelve at a time (in s20-s31, each row's weights in s8-s19: 107
/// instructions for 96 multiply-accumulates), then eight or four.
#[unsafe(naked)]
unsafe extern "C" fn blocks_of_eight_asm(layer: &mut Layer) {
    // One row's next weights (in `$wregs`) times the inputs, into `$acc`.
    macro_rules! row {
        ($w:literal, $acc:literal, $wregs:literal, $($ws:literal * $xs:literal),*) => {
            concat!(
                "vldmia ", $w, "!, {{", $wregs, "}}\n",
                $("vfma.f32 ", $acc, ", ", $ws, ", ", $xs, "\n",)*
            )
        };
    }
    macro_rules! row4 {
        ($w:literal, $acc:literal) => {
            row!(
                $w,
                $acc,
                "s8-s11",
                "s8" * "s20",
                "s9" * "s21",
                "s10" * "s22",
                "s11" * "s23"
            )
        };
    }
    macro_rules! row8 {
        ($w:literal, $acc:literal) => {
            row!(
                $w,
                $acc,
                "s8-s15",
                "s8" * "s20",
                "s9" * "s21",
                "s10" * "s22",
                "s11" * "s23",
                "s12" * "s24",
                "s13" * "s25",
                "s14" * "s26",
                "s15" * "s27"
            )
        };
    }
    macro_rules! row12 {
        ($w:literal, $acc:literal) => {
            row!(
                $w,
                $acc,
                "s8-s19",
                "s8" * "s20",
                "s9" * "s21",
                "s10" * "s22",
                "s11" * "s23",
                "s12" * "s24",
                "s13" * "s25",
                "s14" * "s26",
                "s15" * "s27",
                "s16" * "s28",
                "s17" * "s29",
                "s18" * "s30",
                "s19" * "s31"
            )
        };
    }
    // Every row of the block through `$row`.
    macro_rules! rows {
        ($row:ident) => {
            concat!(
                $row!("r4", "s0"),
                $row!("r5", "s1"),
                $row!("r6", "s2"),
                $row!("r7", "s3"),
                $row!("r8", "s4"),
                $row!("r9", "s5"),
                $row!("r10", "s6"),
                $row!("r11", "s7"),
            )
        };
    }
    naked_asm!(
        // Module-level assembly does not see the target's FPU features; the
        // M33's FPv5 has all of FPv4's instructions.
        ".fpu fpv4-sp-d16",
        "push {{r4-r11, lr}}",
        "vpush {{s16-s31}}",
        "mov lr, r0",
        "ldr r3, [lr, #24]",
        // A block: rows r4-r11, r12 the next block's first.
        "2:",
        "ldr r4, [lr, #4]",
        "add r5, r4, r3",
        "add r6, r5, r3",
        "add r7, r6, r3",
        "add r8, r7, r3",
        "add r9, r8, r3",
        "add r10, r9, r3",
        "add r11, r10, r3",
        "add r12, r11, r3",
        "str r12, [lr, #4]",
        "ldr r1, [lr, #8]",
        "vldmia r1!, {{s0-s7}}",
        "str r1, [lr, #8]",
        "ldr r0, [lr]",
        "ldr r2, [lr, #16]",
        "cmp r2, #0",
        "beq 3f",
        "1:",
        "vldmia r0!, {{s20-s31}}",
        rows!(row12),
        "subs r2, r2, #1",
        "bne 1b",
        "3:",
        "ldr r2, [lr, #20]",
        "cmp r2, #2",
        "blo 4f",
        "vldmia r0!, {{s20-s27}}",
        rows!(row8),
        "subs r2, r2, #2",
        "4:",
        "cmp r2, #0",
        "beq 5f",
        "vldmia r0!, {{s20-s23}}",
        rows!(row4),
        "5:",
        "ldr r1, [lr, #12]",
        "vstmia r1!, {{s0-s7}}",
        "str r1, [lr, #12]",
        "ldr r1, [lr, #28]",
        "subs r1, r1, #1",
        "str r1, [lr, #28]",
        "bne 2b",
        "vpop {{s16-s31}}",
        "pop {{r4-r11, pc}}",
    )
}
