//! The Arm kernel: `SDOT` (the dot-product extension of Armv8.2, which
//! every Apple M core, Graviton 2 and later, and Cortex-A55/A76 and later
//! have). One `SDOT` adds four outputs' products with four inputs, each
//! output's four weights one 4-byte group of a [`Block`], so a block and
//! group of inputs is four of them; its indexed form takes the inputs from
//! one of four groups in a register, so one load holds sixteen inputs.
//! `SDOT` multiplies signed bytes by signed bytes, so the kernel takes the
//! inputs back to `x = u - 128` (its layers start from `bias - z Σ w`, see
//! [`Kernel::signed_inputs`](super::Kernel::signed_inputs)).
//! Single-rounding requantization runs two outputs a register, as the x86
//! kernels' does, and the layers' lookups sixteen bytes a register (`TBL`
//! and `TBX` on a 256-byte table in sixteen registers), with any kernel.

use std::arch::aarch64::{
    int8x16_t, int32x4_t, int64x2_t, uint8x16_t, uint8x16x4_t, vaddq_s64, vcombine_s16,
    vcombine_s32, vdupq_n_s64, vdupq_n_u8, vdupq_n_u32, veorq_u8, vget_high_s32, vget_low_s32,
    vld1q_s8, vld1q_s32, vld1q_s64, vld1q_u8, vld1q_u8_x4, vmovn_s64, vmull_s32, vnegq_s64,
    vqmovn_s16, vqmovn_s32, vqmovn_s64, vqtbl4q_u8, vqtbx4q_u8, vreinterpretq_s8_u8,
    vreinterpretq_s8_u32, vrshlq_s64, vst1_s8, vst1q_s32, vst1q_u8, vst4q_u8, vsubq_u8,
};
use std::arch::asm;

use super::{At, Block, FastQLayer, Tile, WIDTH, requantize_eights};

/// Four outputs (of a block's sixteen) a register.
const QUARTERS: usize = WIDTH / 4;

/// `SDOT` on the four quarters of each block.
pub(super) struct Dot;

/// `acc + ` each 4-byte group of `w` dotted with group `L` of `x`.
#[inline(always)]
fn sdot<const L: i32>(acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: `Dot::tile` runs only where the CPU has the dot-product
    // extension; the instruction reads and writes these registers alone.
    unsafe {
        asm!(
            ".arch_extension dotprod",
            "sdot {acc:v}.4s, {w:v}.16b, {x:v}.4b[{lane}]",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            x = in(vreg) x,
            lane = const L,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// A tile's sums: `R` rows by `B` blocks of four registers.
type Sums<const R: usize, const B: usize> = [[[int32x4_t; QUARTERS]; B]; R];

/// Adds the products of group `g` of the blocks `w`, whose inputs are
/// group `L` of each row's `x`.
#[inline(always)]
fn add_group<const R: usize, const B: usize, const L: i32>(
    acc: &mut Sums<R, B>,
    w: &[&[Block]; B],
    g: usize,
    x: &[int8x16_t; R],
) {
    let w: [[int8x16_t; QUARTERS]; B] = std::array::from_fn(|k| {
        // SAFETY: 16 bytes of a 64-byte block.
        std::array::from_fn(|j| unsafe { vld1q_s8(w[k][g][16 * j..].as_ptr()) })
    });
    for (acc, &x) in acc.iter_mut().zip(x) {
        for (acc, w) in acc.iter_mut().zip(&w) {
            for (acc, &w) in acc.iter_mut().zip(w) {
                *acc = sdot::<L>(*acc, w, x);
            }
        }
    }
}

impl Tile for Dot {
    #[target_feature(enable = "neon,dotprod")]
    unsafe fn tile<const R: usize, const B: usize>(at: At<'_>, sums: &mut [i32]) {
        let (x, w) = at.operands::<R, B>();
        let start: [[int32x4_t; QUARTERS]; B] = std::array::from_fn(|k| {
            let start = at.start(k);
            // SAFETY: 16 bytes of a 64-byte block.
            std::array::from_fn(|j| unsafe { vld1q_s32(start[4 * j..].as_ptr()) })
        });
        let mut acc: Sums<R, B> = [start; R];
        let groups = at.layer.groups;
        // Four groups of inputs a register, each row's `u` as signed bytes
        // `u - 128`; then the groups left one at a time, in every lane.
        let flip = vdupq_n_u8(0x80);
        let mut g = 0;
        while g + 4 <= groups {
            let x: [int8x16_t; R] = std::array::from_fn(|r| {
                // SAFETY: 16 bytes, groups `g` to `g + 3` of the row.
                let u = unsafe { vld1q_u8(x[r][g..g + 4].as_flattened().as_ptr()) };
                vreinterpretq_s8_u8(veorq_u8(u, flip))
            });
            add_group::<R, B, 0>(&mut acc, &w, g, &x);
            add_group::<R, B, 1>(&mut acc, &w, g + 1, &x);
            add_group::<R, B, 2>(&mut acc, &w, g + 2, &x);
            add_group::<R, B, 3>(&mut acc, &w, g + 3, &x);
            g += 4;
        }
        for g in g..groups {
            let x: [int8x16_t; R] = std::array::from_fn(|r| {
                let x = u32::from_le_bytes(x[r][g]) ^ 0x8080_8080;
                vreinterpretq_s8_u32(vdupq_n_u32(x))
            });
            add_group::<R, B, 0>(&mut acc, &w, g, &x);
        }
        for (r, acc) in acc.iter().enumerate() {
            for (k, acc) in acc.iter().enumerate() {
                let out = at.sums(sums, r, k);
                for (j, &acc) in acc.iter().enumerate() {
                    // SAFETY: 16 bytes of a 64-byte block.
                    unsafe { vst1q_s32(out[4 * j..].as_mut_ptr(), acc) };
                }
            }
        }
    }
}

/// Single-rounding requantization of one row's sums (`acc`, every block)
/// into `out`, as `Requant::output` computes it and the AVX-512 kernel's
/// twin does: `(acc · multiplier + 2^(s - 1)) >> s + zero point` in `i64`,
/// where `SRSHL` by `-s` is the rounding shift; then saturated to a byte,
/// leaving the activation's clamp to the layer's [`Lookup`](super::Lookup).
#[target_feature(enable = "neon")]
pub(super) fn requantize(layer: &FastQLayer<'_>, acc: &[i32], out: &mut [i8]) {
    let zero_point = vdupq_n_s64(i64::from(layer.data.requant.output_zero_point));
    requantize_eights(layer, acc, out, |acc, [multiplier, _, shift], out| {
        // SAFETY: 16 bytes of the eight sums and of each eight `i64`s
        // (unaligned loads), 8 bytes (unaligned store).
        unsafe {
            let pair = |acc: int32x4_t, high: bool, at: usize| -> int64x2_t {
                let acc = if high {
                    vget_high_s32(acc)
                } else {
                    vget_low_s32(acc)
                };
                let multiplier = vmovn_s64(vld1q_s64(multiplier[at..].as_ptr()));
                let shift = vnegq_s64(vld1q_s64(shift[at..].as_ptr()));
                vaddq_s64(vrshlq_s64(vmull_s32(acc, multiplier), shift), zero_point)
            };
            let [low, high] = [0, 4].map(|at| vld1q_s32(acc[at..].as_ptr()));
            let words = [(low, 0), (high, 4)].map(|(acc, at)| {
                vcombine_s32(
                    vqmovn_s64(pair(acc, false, at)),
                    vqmovn_s64(pair(acc, true, at + 2)),
                )
            });
            let halves = vcombine_s16(vqmovn_s32(words[0]), vqmovn_s32(words[1]));
            vst1_s8(out.as_mut_ptr(), vqmovn_s16(halves));
        }
    });
}

/// A 256-byte table in four groups of four registers.
#[inline(always)]
fn registers(table: &[u8; 256]) -> [uint8x16x4_t; 4] {
    let quarters = table.as_chunks::<64>().0;
    // SAFETY: 64 bytes each (unaligned loads).
    std::array::from_fn(|k| unsafe { vld1q_u8_x4(quarters[k].as_ptr()) })
}

/// Each byte of `idx` through the 256-byte table `t`: `TBL` on its first 64
/// entries, then `TBX` on each next 64 with the index 64 less, where the
/// lanes whose index is out of the 64 (wrapped past 255 or still above
/// 63) keep their byte.
#[inline(always)]
fn look_up_16(t: &[uint8x16x4_t; 4], idx: uint8x16_t) -> uint8x16_t {
    // SAFETY: register operations alone.
    unsafe {
        let step = vdupq_n_u8(64);
        let mut idx = idx;
        let mut y = vqtbl4q_u8(t[0], idx);
        for t in &t[1..] {
            idx = vsubq_u8(idx, step);
            y = vqtbx4q_u8(y, *t, idx);
        }
        y
    }
}

/// The first `out.len()` bytes of `q` through `table` into `out`, 16 at a
/// time (`q` whole registers).
///
/// # Safety
/// None beyond NEON, which every AArch64 core has.
#[target_feature(enable = "neon")]
pub(super) unsafe fn look_up_bytes(table: &[u8; 256], q: &[i8], out: &mut [u8]) {
    assert!(q.len() >= out.len().next_multiple_of(16), "whole registers");
    let table = registers(table);
    for (q, out) in q.as_chunks::<16>().0.iter().zip(out.chunks_mut(16)) {
        // SAFETY: a 16-byte load, and a 16-byte store into `out` or `whole`.
        unsafe {
            let y = look_up_16(&table, vld1q_u8(q.as_ptr().cast()));
            if out.len() == 16 {
                vst1q_u8(out.as_mut_ptr(), y);
            } else {
                let mut whole = [0u8; 16];
                vst1q_u8(whole.as_mut_ptr(), y);
                out.copy_from_slice(&whole[..out.len()]);
            }
        }
    }
}

/// The first `out.len()` bytes of `q` through the four byte tables of a
/// table of `f32` values (`bytes[k]` holding each value's byte `k`) into
/// `out`, 16 at a time: four byte lookups, which `ST4` interleaves into
/// the values' little-endian bytes (`q` whole registers).
///
/// # Safety
/// As [`look_up_bytes`].
#[target_feature(enable = "neon")]
pub(super) unsafe fn look_up_values(bytes: &[[u8; 256]; 4], q: &[i8], out: &mut [f32]) {
    assert!(q.len() >= out.len().next_multiple_of(16), "whole registers");
    for (q, out) in q.as_chunks::<16>().0.iter().zip(out.chunks_mut(16)) {
        // SAFETY: 16-byte and 64-byte loads; a 64-byte store into `out` or
        // `values`.
        unsafe {
            let idx = vld1q_u8(q.as_ptr().cast());
            // Each table's sixteen registers are loaded for each register
            // of indices (four tables do not fit the 32 registers; loading
            // them once for four registers of indices counted more instructions).
            let [b0, b1, b2, b3] = bytes.each_ref().map(|t| look_up_16(&registers(t), idx));
            let interleaved = uint8x16x4_t(b0, b1, b2, b3);
            if out.len() == 16 {
                vst4q_u8(out.as_mut_ptr().cast(), interleaved);
            } else {
                let mut values = [0f32; 16];
                vst4q_u8(values.as_mut_ptr().cast(), interleaved);
                out.copy_from_slice(&values[..out.len()]);
            }
        }
    }
}
