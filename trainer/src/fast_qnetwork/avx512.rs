//! The AVX-512 VNNI kernel: one `VPDPBUSD` a block and group of inputs,
//! and single-rounding requantization eight outputs at a time.

use std::arch::x86_64::{
    __m512i, _mm256_loadu_si256, _mm512_add_epi64, _mm512_cvtepi32_epi64, _mm512_cvtepi64_epi8,
    _mm512_dpbusd_epi32, _mm512_loadu_si512, _mm512_max_epi64, _mm512_min_epi64, _mm512_mul_epi32,
    _mm512_set1_epi32, _mm512_set1_epi64, _mm512_sllv_epi64, _mm512_srav_epi64,
    _mm512_storeu_si512, _mm512_sub_epi64,
};

use super::{At, FastQLayer, Tile, WIDTH, requantize_eights};

/// `VPDPBUSD` on whole blocks: `R * B` sums in flight.
pub(super) struct Vnni;

impl Tile for Vnni {
    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn tile<const R: usize, const B: usize>(at: At<'_>, sums: &mut [i32]) {
        let load = |v: &[i32; WIDTH]| {
            // SAFETY: 64 bytes (unaligned load).
            unsafe { _mm512_loadu_si512(v.as_ptr().cast()) }
        };
        let (x, w) = at.operands::<R, B>();
        let start: [__m512i; B] = std::array::from_fn(|k| load(at.start(k)));
        let mut acc: [[__m512i; B]; R] = [start; R];
        for g in 0..at.layer.groups {
            let w: [__m512i; B] = std::array::from_fn(|k| {
                // SAFETY: 64 bytes (unaligned load).
                unsafe { _mm512_loadu_si512(w[k][g].as_ptr().cast()) }
            });
            for (acc, x) in acc.iter_mut().zip(&x) {
                let x = _mm512_set1_epi32(i32::from_le_bytes(x[g]));
                for (acc, &w) in acc.iter_mut().zip(&w) {
                    *acc = _mm512_dpbusd_epi32(*acc, x, w);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (k, &acc) in acc.iter().enumerate() {
                let out = at.sums(sums, r, k);
                // SAFETY: 64 bytes (unaligned store).
                unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), acc) };
            }
        }
    }
}

/// Single-rounding requantization of one row's sums (`acc`, every block),
/// into `out`: per lane, as `Requant::output` computes it, `clamp((acc ·
/// multiplier + 2^(s - 1)) >> s + zero point, act_min, act_max)` with `s =
/// 31 - shift`, in `i64` (where the runtime saturates to `i32` first, the
/// clamp to an int8 range gives the same).
#[target_feature(enable = "avx512f")]
pub(super) fn requantize(layer: &FastQLayer<'_>, acc: &[i32], out: &mut [i8]) {
    let requant = &layer.data.requant;
    let zero_point = _mm512_set1_epi64(i64::from(requant.output_zero_point));
    let low = _mm512_set1_epi64(i64::from(requant.act_min));
    let high = _mm512_set1_epi64(i64::from(requant.act_max));
    let one = _mm512_set1_epi64(1);
    let eight = |v: &[i32; 8]| {
        // SAFETY: 32 bytes (unaligned load).
        _mm512_cvtepi32_epi64(unsafe { _mm256_loadu_si256(v.as_ptr().cast()) })
    };
    requantize_eights(layer, acc, out, |acc, multiplier, shift| {
        let (acc, multiplier, shift) = (eight(acc), eight(multiplier), eight(shift));
        let round = _mm512_sllv_epi64(one, _mm512_sub_epi64(shift, one));
        let product = _mm512_add_epi64(_mm512_mul_epi32(acc, multiplier), round);
        let scaled = _mm512_add_epi64(_mm512_srav_epi64(product, shift), zero_point);
        let clamped = _mm512_min_epi64(_mm512_max_epi64(scaled, low), high);
        let bytes: [i8; 16] = bytemuck::cast(_mm512_cvtepi64_epi8(clamped));
        std::array::from_fn(|l| bytes[l])
    });
}
