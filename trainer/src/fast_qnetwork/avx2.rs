//! The 256-bit kernels: `VPDPBUSD` on each half of a block (AVX-VNNI), or
//! `VPMADDWD` on the weights widened to 16 bits (AVX2); and single-rounding
//! requantization four outputs a register with AVX2.

use std::arch::x86_64::{
    __m256i, _mm_loadu_si128, _mm_packs_epi16, _mm_packs_epi32, _mm_set1_epi32, _mm_storel_epi64,
    _mm256_add_epi32, _mm256_add_epi64, _mm256_blendv_epi8, _mm256_castsi256_si128,
    _mm256_cmpgt_epi64, _mm256_cvtepi8_epi16, _mm256_cvtepi32_epi64, _mm256_cvtepu8_epi16,
    _mm256_dpbusd_avx_epi32, _mm256_hadd_epi32, _mm256_loadu_si256, _mm256_madd_epi16,
    _mm256_mul_epi32, _mm256_permute4x64_epi64, _mm256_permutevar8x32_epi32, _mm256_set1_epi32,
    _mm256_set1_epi64x, _mm256_setr_epi32, _mm256_setzero_si256, _mm256_srlv_epi64,
    _mm256_storeu_si256, _mm256_xor_si256,
};

use super::{At, FastQLayer, Tile, requantize_eights};

/// Eight `i32` lanes from `v` (unaligned load).
#[target_feature(enable = "avx2")]
fn load(v: &[i32]) -> __m256i {
    let v: &[i32; 8] = v.try_into().expect("eight lanes");
    // SAFETY: 32 bytes.
    unsafe { _mm256_loadu_si256(v.as_ptr().cast()) }
}

/// Stores eight `i32` lanes into `out` (unaligned store).
#[target_feature(enable = "avx2")]
fn store(out: &mut [i32], v: __m256i) {
    let out: &mut [i32; 8] = out.try_into().expect("eight lanes");
    // SAFETY: 32 bytes.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) }
}

/// `VPDPBUSD` on the two halves of each block (outputs 0-7 and 8-15):
/// `2 R B` sums in flight.
pub(super) struct Vnni;

impl Tile for Vnni {
    #[target_feature(enable = "avx2,avxvnni")]
    unsafe fn tile<const R: usize, const B: usize>(at: At<'_>, sums: &mut [i32]) {
        let (x, w) = at.operands::<R, B>();
        let start: [[__m256i; 2]; B] = std::array::from_fn(|k| {
            let start = at.start(k);
            [load(&start[..8]), load(&start[8..])]
        });
        let mut acc: [[[__m256i; 2]; B]; R] = [start; R];
        for g in 0..at.layer.groups {
            let w: [[__m256i; 2]; B] = std::array::from_fn(|k| {
                let w = &w[k][g];
                // SAFETY: 32 bytes each (unaligned loads).
                unsafe {
                    [
                        _mm256_loadu_si256(w.as_ptr().cast()),
                        _mm256_loadu_si256(w[32..].as_ptr().cast()),
                    ]
                }
            });
            for (acc, x) in acc.iter_mut().zip(&x) {
                let x = _mm256_set1_epi32(i32::from_le_bytes(x[g]));
                for (acc, w) in acc.iter_mut().zip(&w) {
                    for (acc, &w) in acc.iter_mut().zip(w) {
                        *acc = _mm256_dpbusd_avx_epi32(*acc, x, w);
                    }
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (k, [low, high]) in acc.iter().enumerate() {
                let out = at.sums(sums, r, k);
                store(&mut out[..8], *low);
                store(&mut out[8..], *high);
            }
        }
    }
}

/// `VPMADDWD` on each quarter of a block widened to 16 bits (four
/// outputs' weights for four inputs) and the row's four inputs as 16 bits:
/// two sums an output (inputs 0-1 and 2-3), added pairwise at the end;
/// `4 R B` sums in flight.
pub(super) struct Madd;

impl Tile for Madd {
    #[target_feature(enable = "avx2")]
    unsafe fn tile<const R: usize, const B: usize>(at: At<'_>, sums: &mut [i32]) {
        let (x, w) = at.operands::<R, B>();
        let mut acc = [[[_mm256_setzero_si256(); 4]; B]; R];
        for g in 0..at.layer.groups {
            let x: [__m256i; R] = std::array::from_fn(|r| {
                _mm256_cvtepu8_epi16(_mm_set1_epi32(i32::from_le_bytes(x[r][g])))
            });
            for (k, w) in w.iter().enumerate() {
                for (q, w) in w[g].chunks_exact(16).enumerate() {
                    // SAFETY: 16 bytes (unaligned load).
                    let w = _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(w.as_ptr().cast()) });
                    for (acc, &x) in acc.iter_mut().zip(&x) {
                        acc[k][q] = _mm256_add_epi32(acc[k][q], _mm256_madd_epi16(w, x));
                    }
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (k, [a, b, c, d]) in acc.iter().enumerate() {
                let (start, out) = (at.start(k), at.sums(sums, r, k));
                // hadd leaves outputs 0, 1, 4, 5 | 2, 3, 6, 7; the permute
                // puts them in order.
                let low = _mm256_permute4x64_epi64(_mm256_hadd_epi32(*a, *b), 0b11_01_10_00);
                let high = _mm256_permute4x64_epi64(_mm256_hadd_epi32(*c, *d), 0b11_01_10_00);
                store(&mut out[..8], _mm256_add_epi32(low, load(&start[..8])));
                store(&mut out[8..], _mm256_add_epi32(high, load(&start[8..])));
            }
        }
    }
}

/// Single-rounding requantization of one row's sums (`acc`, every block)
/// into `out`, as `avx512::requantize` computes it (`Requant::output` per
/// lane, in `i64`) with four lanes a register: AVX2 has no arithmetic
/// 64-bit shift, so `v >> s` is `!(!v >>> s)` for negative `v`, and the
/// clamp is two compares.
#[target_feature(enable = "avx2")]
pub(super) fn requantize(layer: &FastQLayer<'_>, acc: &[i32], out: &mut [i8]) {
    let requant = &layer.data.requant;
    let zero_point = _mm256_set1_epi64x(i64::from(requant.output_zero_point));
    let low = _mm256_set1_epi64x(i64::from(requant.act_min));
    let high = _mm256_set1_epi64x(i64::from(requant.act_max));
    let zero = _mm256_setzero_si256();
    // The low halves of the four i64 lanes.
    let evens = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    requantize_eights(layer, acc, out, |acc, [multiplier, round, shift], out| {
        let [a, b] = [0, 4].map(|h| {
            // SAFETY: 16 and 32 bytes (unaligned loads).
            let (acc, [multiplier, round, shift]) = unsafe {
                (
                    _mm256_cvtepi32_epi64(_mm_loadu_si128(acc[h..].as_ptr().cast())),
                    [multiplier, round, shift].map(|v| _mm256_loadu_si256(v[h..].as_ptr().cast())),
                )
            };
            let product = _mm256_add_epi64(_mm256_mul_epi32(acc, multiplier), round);
            let negative = _mm256_cmpgt_epi64(zero, product);
            let shifted = _mm256_xor_si256(
                _mm256_srlv_epi64(_mm256_xor_si256(product, negative), shift),
                negative,
            );
            let v = _mm256_add_epi64(shifted, zero_point);
            let v = _mm256_blendv_epi8(v, low, _mm256_cmpgt_epi64(low, v));
            let v = _mm256_blendv_epi8(v, high, _mm256_cmpgt_epi64(v, high));
            _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(v, evens))
        });
        let bytes = _mm_packs_epi16(_mm_packs_epi32(a, b), _mm256_castsi256_si128(zero));
        // SAFETY: 8 bytes (unaligned store).
        unsafe { _mm_storel_epi64(out.as_mut_ptr().cast(), bytes) };
    });
}
