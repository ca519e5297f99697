//! [`Portable`]'s sums with AVX2 on x86-64 hosts: `VPMADDWD` is `SMLAD` on
//! eight words at once (each 32-bit result `lo·lo + hi·hi` of signed
//! halfwords, wrapping), so two groups of four inputs take one multiply for
//! `A` and one, after sign-extending the low bytes (`SXTB16`: a shift left
//! and an arithmetic shift right by 8 per halfword), for `S`. Integer sums
//! wrap the same in any order: the results are [`Portable`]'s, bit for bit.
//! One of the crate's exceptions to `unsafe_code`.
#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m256i, _mm_loadu_si128, _mm256_add_epi32, _mm256_castsi128_si256, _mm256_loadu_si256,
    _mm256_madd_epi16, _mm256_permutevar8x32_epi32, _mm256_setr_epi32, _mm256_setzero_si256,
    _mm256_slli_epi16, _mm256_srai_epi16, _mm256_storeu_si256,
};

use super::{CHUNK, ChunkDot, Portable};

/// The AVX2 loop where the CPU has AVX2 ([`crate::x86::has_avx2`]), else
/// [`Portable`]: the x86-64 host's kernel.
pub(in crate::quant) struct Avx2;

impl ChunkDot for Avx2 {
    #[inline(never)]
    fn dot(x: &[u32], w: &[u32]) -> [i32; 4] {
        if crate::x86::has_avx2() {
            // SAFETY: the CPU has AVX2.
            unsafe { dot(x, w) }
        } else {
            Portable::dot(x, w)
        }
    }
}

#[target_feature(enable = "avx2")]
fn dot(x: &[u32], w: &[u32]) -> [i32; 4] {
    let groups = (x.len() / 2).min(w.len() / 4).min(CHUNK / 4);
    let pairs = groups / 2;
    // Words `[x01, x23, x01', x23']` of two groups to `[x01, x23, x01,
    // x23 | x01', x23', x01', x23']`, beside the weights' `[w0 .. w3 |
    // w0' .. w3']`.
    let spread = _mm256_setr_epi32(0, 1, 0, 1, 2, 3, 2, 3);
    let (mut a, mut s) = (_mm256_setzero_si256(), _mm256_setzero_si256());
    let two_groups = x.as_chunks::<4>().0.iter().zip(w.as_chunks::<8>().0);
    for (xs, ws) in two_groups.take(pairs) {
        // SAFETY: `xs` holds 16 bytes and `ws` 32 (unaligned loads).
        let (xs, ws) = unsafe {
            (
                _mm_loadu_si128(xs.as_ptr().cast()),
                _mm256_loadu_si256(ws.as_ptr().cast()),
            )
        };
        let xs = _mm256_permutevar8x32_epi32(_mm256_castsi128_si256(xs), spread);
        let low_bytes = _mm256_srai_epi16::<8>(_mm256_slli_epi16::<8>(ws));
        a = _mm256_add_epi32(a, _mm256_madd_epi16(ws, xs));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(low_bytes, xs));
    }
    let (a, s) = (words(a), words(s));
    // Words 0, 1, 4, 5 are pair 0's, 2, 3, 6, 7 pair 1's.
    let sum = |v: [i32; 8], pair: usize| {
        let k = 2 * pair;
        v[k].wrapping_add(v[k + 1])
            .wrapping_add(v[k + 4])
            .wrapping_add(v[k + 5])
    };
    let mut sums = [sum(a, 0), sum(s, 0), sum(a, 1), sum(s, 1)];
    if groups % 2 == 1 {
        let done = 2 * pairs;
        let x = x.get(2 * done..2 * groups).unwrap_or(&[]);
        let w = w.get(4 * done..4 * groups).unwrap_or(&[]);
        for (sum, last) in sums.iter_mut().zip(Portable::dot(x, w)) {
            *sum = sum.wrapping_add(last);
        }
    }
    sums
}

#[target_feature(enable = "avx2")]
fn words(v: __m256i) -> [i32; 8] {
    let mut out = [0i32; 8];
    // SAFETY: `out` holds 32 bytes (unaligned store).
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 loop's sums are the portable loop's (halfwords of -32768
    /// included, where `VPMADDWD` wraps).
    #[test]
    fn the_avx2_loop_is_the_portable_loop() {
        if !crate::x86::has_avx2() {
            return; // no AVX2 on this CPU: `Avx2` is `Portable`
        }
        // SAFETY: the CPU has AVX2.
        super::super::tests::agrees_with_portable(|x, w| unsafe { dot(x, w) });
    }
}
