//! [`Portable`](super::Portable)'s sums with NEON on AArch64 (every such
//! core has it): a group's four weight words are eight signed halfwords,
//! pair 0's in the low half of a register and pair 1's in the high half, so
//! one widening multiply-accumulate (`SMLAL`, `SMLAL2`) by the group's four
//! inputs adds each pair's four products for `A` into four `i32` lanes; the
//! same after sign-extending the low bytes (a shift left and an arithmetic
//! shift right by 8 per halfword) adds them for `S`. The lanes are added at
//! the end. Integer sums wrap the same in any order: the results are
//! [`Portable`](super::Portable)'s, bit for bit. One of the crate's
//! exceptions to `unsafe_code`.
#![allow(unsafe_code)]

use core::arch::aarch64::{
    vaddvq_s32, vcombine_s16, vdupq_n_s32, vget_low_s16, vld1_s16, vld1q_s16, vmlal_high_s16,
    vmlal_s16, vshlq_n_s16, vshrq_n_s16,
};

use super::{CHUNK, ChunkDot};

/// The NEON loop: AArch64's kernel.
pub(in crate::quant) struct Neon;

impl ChunkDot for Neon {
    #[inline(never)]
    fn dot(x: &[u32], w: &[u32]) -> [i32; 4] {
        // SAFETY: this module is built only where the target has NEON.
        unsafe { dot(x, w) }
    }
}

#[target_feature(enable = "neon")]
fn dot(x: &[u32], w: &[u32]) -> [i32; 4] {
    let groups = (x.len() / 2).min(w.len() / 4).min(CHUNK / 4);
    let [mut a0, mut s0, mut a1, mut s1] = [vdupq_n_s32(0); 4];
    let (x, w) = (&x[..2 * groups], &w[..4 * groups]);
    for (xs, ws) in x.as_chunks::<2>().0.iter().zip(w.as_chunks::<4>().0) {
        // SAFETY: `xs` holds 8 bytes and `ws` 16 (unaligned loads).
        let (xs, ws) = unsafe { (vld1_s16(xs.as_ptr().cast()), vld1q_s16(ws.as_ptr().cast())) };
        let both = vcombine_s16(xs, xs);
        let low_bytes = vshrq_n_s16::<8>(vshlq_n_s16::<8>(ws));
        a0 = vmlal_s16(a0, vget_low_s16(ws), xs);
        a1 = vmlal_high_s16(a1, ws, both);
        s0 = vmlal_s16(s0, vget_low_s16(low_bytes), xs);
        s1 = vmlal_high_s16(s1, low_bytes, both);
    }
    [
        vaddvq_s32(a0),
        vaddvq_s32(s0),
        vaddvq_s32(a1),
        vaddvq_s32(s1),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The NEON loop's sums are the portable loop's.
    #[test]
    fn the_neon_loop_is_the_portable_loop() {
        super::super::tests::agrees_with_portable(Neon::dot);
    }
}
