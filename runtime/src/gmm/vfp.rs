//! The mixture distances for Arm cores with a single-precision FPU
//! (Cortex-M4F, M7, M33), in assembly: the full-covariance `|xᵀU - b|²`
//! over the whole column blocks of `U` (see the module docs of `gmm`:
//! `VLDM` loads four inputs, a group of sixteen factor values or a
//! triangle of ten, and each product is one `VMLA`), and the tied one
//! (and the KDE's), `|z - b|²` of a projected point. Like `dense/vfp.rs`,
//! one of the crate's exceptions to `unsafe_code`.
//!
//! The numerics are `project`'s, `triangular_distance`'s and
//! `squared_distance`'s: `VMLA.F32` rounds the product, then the sum, and
//! every sum runs in their order (each column's from zero over ascending
//! rows, then the squares in ascending column order). The QEMU suite
//! compares every full, tied and KDE score on the Cortex-M4F and M33 with
//! the host's, bit for bit.
#![allow(unsafe_code)]

use core::arch::naked_asm;

/// `(Σ_j (z_j - b_j)², rest)` over the `x.len() / 4` whole column blocks,
/// with `z = xᵀU` and `rest` the part of `blocks` after them (the partial
/// block, if any). `None` when `x` has fewer than four values or a slice is
/// shorter than those blocks need.
pub(super) fn whole_blocks<'u>(
    x: &[f32],
    blocks: &'u [f32],
    b: &[f32],
) -> Option<(f32, &'u [f32])> {
    let whole = x.len() / 4;
    // Σ_c (16c + 10) values for c < whole.
    let stored = (whole.checked_mul(whole.checked_sub(1)?)?.checked_mul(8)?)
        .checked_add(whole.checked_mul(10)?)?;
    let rest = blocks.get(stored..)?;
    if whole == 0 || b.len() < 4 * whole {
        return None;
    }
    let mut args = Args {
        x: x.as_ptr(),
        u: blocks.as_ptr(),
        b: b.as_ptr(),
        blocks: whole,
        sum: 0.0,
    };
    // SAFETY: `whole` is at least one; the loop reads `4 * whole` floats
    // of `x` and of `b`, and the `stored` first floats of `blocks`, all
    // present (checked above) and 4-byte aligned as `VLDM` needs; it
    // writes only `args`.
    unsafe { whole_blocks_asm(&mut args) };
    Some((args.sum, rest))
}

/// The arguments of [`whole_blocks_asm`] (offsets in the assembly), and
/// its result, `sum`.
#[repr(C)]
struct Args {
    x: *const f32,
    u: *const f32,
    b: *const f32,
    blocks: usize,
    sum: f32,
}

/// [`whole_blocks`] without its checks, per the AAPCS: `args` in r0.
/// Saves the callee-saved r4-r6 and s16-s31 it uses.
///
/// Block c (r4): the sums z (s0-s3) start at zero; c groups of four rows
/// (inputs in s4-s7, the group's sixteen values in s8-s23, row by row),
/// then the block's four inputs and its triangle (s8-s17); then
/// `sum += (z_j - b_j)²` (b in s24-s27, sum in s28).
#[unsafe(naked)]
unsafe extern "C" fn whole_blocks_asm(args: &mut Args) {
    naked_asm!(
        // Module-level assembly does not see the target's FPU features; the
        // M33's FPv5 has all of FPv4's instructions.
        ".fpu fpv4-sp-d16",
        "push {{r4-r6, lr}}",
        "vpush {{s16-s31}}",
        "ldm r0, {{r1, r2, r3, r12}}",
        "movs r4, #0",
        "vmov s28, r4",
        // Block r4.
        "2:",
        "movs r5, #0",
        "vmov s0, s1, r5, r5",
        "vmov s2, s3, r5, r5",
        "mov r6, r1",
        "movs r5, r4",
        "beq 3f",
        // A group of four rows.
        "1:",
        "vldmia r6!, {{s4-s7}}",
        "vldmia r2!, {{s8-s23}}",
        "vmla.f32 s0, s4, s8",
        "vmla.f32 s1, s4, s9",
        "vmla.f32 s2, s4, s10",
        "vmla.f32 s3, s4, s11",
        "vmla.f32 s0, s5, s12",
        "vmla.f32 s1, s5, s13",
        "vmla.f32 s2, s5, s14",
        "vmla.f32 s3, s5, s15",
        "vmla.f32 s0, s6, s16",
        "vmla.f32 s1, s6, s17",
        "vmla.f32 s2, s6, s18",
        "vmla.f32 s3, s6, s19",
        "vmla.f32 s0, s7, s20",
        "vmla.f32 s1, s7, s21",
        "vmla.f32 s2, s7, s22",
        "vmla.f32 s3, s7, s23",
        "subs r5, r5, #1",
        "bne 1b",
        // The diagonal triangle.
        "3:",
        "vldmia r6!, {{s4-s7}}",
        "vldmia r2!, {{s8-s17}}",
        "vmla.f32 s0, s4, s8",
        "vmla.f32 s1, s4, s9",
        "vmla.f32 s2, s4, s10",
        "vmla.f32 s3, s4, s11",
        "vmla.f32 s1, s5, s12",
        "vmla.f32 s2, s5, s13",
        "vmla.f32 s3, s5, s14",
        "vmla.f32 s2, s6, s15",
        "vmla.f32 s3, s6, s16",
        "vmla.f32 s3, s7, s17",
        // The block's squared differences.
        "vldmia r3!, {{s24-s27}}",
        "vsub.f32 s0, s0, s24",
        "vsub.f32 s1, s1, s25",
        "vsub.f32 s2, s2, s26",
        "vsub.f32 s3, s3, s27",
        "vmla.f32 s28, s0, s0",
        "vmla.f32 s28, s1, s1",
        "vmla.f32 s28, s2, s2",
        "vmla.f32 s28, s3, s3",
        "adds r4, r4, #1",
        "cmp r4, r12",
        "bne 2b",
        "vstr s28, [r0, #16]",
        "vpop {{s16-s31}}",
        "pop {{r4-r6, pc}}",
    )
}

/// `Σ_j (z_j - b_j)²` in ascending `j`, as `gmm::squared_distance`: four
/// values at a time in assembly, the last `z.len() % 4` in Rust.
pub(super) fn squared_distance(z: &[f32], b: &[f32]) -> f32 {
    let len = z.len().min(b.len());
    let chunks = len / 4;
    let mut sq = if chunks == 0 {
        0.0
    } else {
        // SAFETY: `chunks` is at least one and both slices hold `4 *
        // chunks` floats, 4-byte aligned as `VLDM` needs; nothing is
        // written but registers the AAPCS lets a call clobber.
        unsafe { squared_distance_asm(z.as_ptr(), b.as_ptr(), chunks) }
    };
    for (&zj, &bj) in z[4 * chunks..len].iter().zip(&b[4 * chunks..len]) {
        let y = zj - bj;
        sq += y * y;
    }
    sq
}

/// [`squared_distance`]'s chunks of four, per the AAPCS: `z` in r0, `b`
/// in r1, `chunks` (at least one) in r2, the sum returned in s0. Uses only
/// registers a call may clobber.
#[unsafe(naked)]
unsafe extern "C" fn squared_distance_asm(z: *const f32, b: *const f32, chunks: usize) -> f32 {
    naked_asm!(
        ".fpu fpv4-sp-d16",
        "movs r3, #0",
        "vmov s12, r3",
        "1:",
        "vldmia r0!, {{s0-s3}}",
        "vldmia r1!, {{s4-s7}}",
        "vsub.f32 s0, s0, s4",
        "vsub.f32 s1, s1, s5",
        "vsub.f32 s2, s2, s6",
        "vsub.f32 s3, s3, s7",
        "vmla.f32 s12, s0, s0",
        "vmla.f32 s12, s1, s1",
        "vmla.f32 s12, s2, s2",
        "vmla.f32 s12, s3, s3",
        "subs r2, r2, #1",
        "bne 1b",
        "vmov.f32 s0, s12",
        "bx lr",
    )
}
