//! The AVX-512 VNNI kernel: one `VPDPBUSD` a block and group of inputs,
//! single-rounding requantization eight outputs at a time; and with VBMI,
//! the layers' lookups 64 bytes at a time.

use std::arch::x86_64::{
    __m512i, _mm_storel_epi64, _mm256_loadu_si256, _mm512_add_epi64, _mm512_cvtepi32_epi64,
    _mm512_cvtsepi64_epi8, _mm512_dpbusd_epi32, _mm512_loadu_si512, _mm512_mask_blend_epi8,
    _mm512_mask_storeu_epi8, _mm512_mask_storeu_epi32, _mm512_movepi8_mask, _mm512_mul_epi32,
    _mm512_permutex2var_epi8, _mm512_permutexvar_epi8, _mm512_set1_epi32, _mm512_set1_epi64,
    _mm512_srav_epi64, _mm512_storeu_si512, _mm512_unpackhi_epi8, _mm512_unpackhi_epi16,
    _mm512_unpacklo_epi8, _mm512_unpacklo_epi16,
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
/// into `out`: per lane, as `Requant::output` computes it, `(acc ·
/// multiplier + 2^(s - 1)) >> s + zero point` with `s = 31 - shift`, in
/// `i64`, saturated to a byte; the clamp to the activation's range is the
/// layer's [`Lookup`](super::Lookup)'s (where the runtime saturates to
/// `i32` and then clamps, saturating to `i8` first gives the same).
#[target_feature(enable = "avx512f")]
pub(super) fn requantize(layer: &FastQLayer<'_>, acc: &[i32], out: &mut [i8]) {
    let zero_point = _mm512_set1_epi64(i64::from(layer.data.requant.output_zero_point));
    requantize_eights(layer, acc, out, |acc, [multiplier, round, shift], out| {
        // SAFETY: 32 and 64 bytes (unaligned loads), 8 bytes (unaligned
        // store).
        unsafe {
            let acc = _mm512_cvtepi32_epi64(_mm256_loadu_si256(acc.as_ptr().cast()));
            let [multiplier, round, shift] =
                [multiplier, round, shift].map(|v| _mm512_loadu_si512(v.as_ptr().cast()));
            let product = _mm512_add_epi64(_mm512_mul_epi32(acc, multiplier), round);
            let scaled = _mm512_add_epi64(_mm512_srav_epi64(product, shift), zero_point);
            _mm_storel_epi64(out.as_mut_ptr().cast(), _mm512_cvtsepi64_epi8(scaled));
        }
    });
}

/// Each byte of `idx` (as `u8`) through the 256-byte `table` held in four
/// registers: `VPERMI2B` on the halves, chosen by the index's top bit.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
fn look_up_64(table: &[__m512i; 4], idx: __m512i) -> __m512i {
    let low = _mm512_permutex2var_epi8(table[0], idx, table[1]);
    let high = _mm512_permutex2var_epi8(table[2], idx, table[3]);
    _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), low, high)
}

/// A 256-byte table as four registers.
#[target_feature(enable = "avx512f")]
fn registers(table: &[u8; 256]) -> [__m512i; 4] {
    // SAFETY: 64 bytes each (unaligned loads).
    std::array::from_fn(|k| unsafe { _mm512_loadu_si512(table[64 * k..].as_ptr().cast()) })
}

/// The 64-byte registers of `q` (whole registers: its length a multiple
/// of 64), each with the mask of its lanes below `n`.
fn registers_of(q: &[i8], n: usize) -> impl Iterator<Item = (usize, &[i8; 64], u64)> {
    q.as_chunks::<64>()
        .0
        .iter()
        .enumerate()
        .take(n.div_ceil(64))
        .map(move |(c, q)| {
            let lanes = (n - 64 * c).min(64);
            (c, q, u64::MAX >> (64 - lanes))
        })
}

/// The first `out.len()` bytes of `q` through `table` into `out`, 64 at a
/// time (`q` whole registers).
///
/// # Safety
/// The CPU has AVX-512 VBMI and BW.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub(super) unsafe fn look_up_bytes(table: &[u8; 256], q: &[i8], out: &mut [u8]) {
    assert!(q.len() >= out.len().next_multiple_of(64), "whole registers");
    let table = registers(table);
    for (c, q, mask) in registers_of(q, out.len()) {
        // SAFETY: a 64-byte load; the store writes only the lanes the
        // mask keeps, those below `out.len()`.
        unsafe {
            let y = look_up_64(&table, _mm512_loadu_si512(q.as_ptr().cast()));
            _mm512_mask_storeu_epi8(out.as_mut_ptr().add(64 * c).cast(), mask, y);
        }
    }
}

/// Where the lookups' four-byte interleaving puts each value: index
/// position `16 l + 4 k + j` holds value `16 k + 4 l + j` (a 4 by 4
/// transpose of 4-byte groups), which puts the values in order after
/// `VPUNPCK`, which interleave within 128-bit lanes.
const INTERLEAVED: [u8; 64] = {
    let mut order = [0u8; 64];
    let mut p = 0;
    while p < 64 {
        let (l, k, j) = (p / 16, p / 4 % 4, p % 4);
        order[p] = (16 * k + 4 * l + j) as u8;
        p += 1;
    }
    order
};

/// The first `out.len()` bytes of `q` through the four byte tables of a
/// table of `f32` values (`bytes[k]` holding each value's byte `k`) into
/// `out`, 64 at a time: four byte lookups, interleaved into values (`q`
/// whole registers).
///
/// # Safety
/// As [`look_up_bytes`].
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub(super) unsafe fn look_up_values(bytes: &[[u8; 256]; 4], q: &[i8], out: &mut [f32]) {
    assert!(q.len() >= out.len().next_multiple_of(64), "whole registers");
    let tables = bytes.each_ref().map(|table| registers(table));
    // SAFETY: 64 bytes (unaligned load).
    let order = unsafe { _mm512_loadu_si512(INTERLEAVED.as_ptr().cast()) };
    for (c, q, mask) in registers_of(q, out.len()) {
        // SAFETY: a 64-byte load.
        let idx = unsafe { _mm512_loadu_si512(q.as_ptr().cast()) };
        let idx = _mm512_permutexvar_epi8(order, idx);
        let [b0, b1, b2, b3] = tables.each_ref().map(|table| look_up_64(table, idx));
        let (low, high) = (_mm512_unpacklo_epi8(b0, b1), _mm512_unpackhi_epi8(b0, b1));
        let (low2, high2) = (_mm512_unpacklo_epi8(b2, b3), _mm512_unpackhi_epi8(b2, b3));
        let values = [
            _mm512_unpacklo_epi16(low, low2),
            _mm512_unpackhi_epi16(low, low2),
            _mm512_unpacklo_epi16(high, high2),
            _mm512_unpackhi_epi16(high, high2),
        ];
        for (k, v) in values.into_iter().enumerate() {
            // Sixteen of the register's lanes a store, none past the end
            // (nor a pointer there).
            let lanes = (mask >> (16 * k)) as u16;
            if lanes == 0 {
                break;
            }
            // SAFETY: the store starts inside `out` and writes only the
            // lanes the mask keeps, those below `out.len()`.
            unsafe {
                _mm512_mask_storeu_epi32(out.as_mut_ptr().add(64 * c + 16 * k).cast(), lanes, v)
            };
        }
    }
}
