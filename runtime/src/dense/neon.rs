//! [`super::dense`]'s loop on AArch64, four rows at a time in the lanes of
//! one register: four inputs of each of the four rows are loaded, turned
//! into four columns (a 4x4 transpose), and added by `FMLA` with each
//! input in turn. Each lane is one row's sum, still one fused multiply-add
//! a step in ascending input order from the bias, so the results are the
//! portable loop's bit for bit. One of the crate's exceptions to
//! `unsafe_code`.
#![allow(unsafe_code)]

use core::arch::aarch64::{
    float32x4_t, vdupq_n_f32, vfmaq_f32, vfmaq_laneq_f32, vld1q_f32, vreinterpretq_f32_f64,
    vreinterpretq_f64_f32, vst1q_f32, vtrn1q_f32, vtrn1q_f64, vtrn2q_f32, vtrn2q_f64,
};

use super::{Portable, rows};
use crate::activation::Activation;

/// [`super::dense`] on AArch64: blocks of four rows in NEON lanes, the
/// rows left through the portable loop.
pub(super) fn dense(w: &[f32], bias: &[f32], x: &[f32], y: &mut [f32], activation: Activation) {
    let n = x.len();
    let Some(four_rows) = n.checked_mul(4).filter(|&f| f > 0) else {
        return rows::<Portable>(w, bias, x, y, activation);
    };
    let mut blocks = w.chunks_exact(four_rows);
    let mut biases = bias.chunks_exact(4);
    let mut outs = y.chunks_exact_mut(4);
    for ((block, b), out) in (&mut blocks).zip(&mut biases).zip(&mut outs) {
        // SAFETY: NEON is in every target this module is built for.
        let sums = unsafe { four_rows_sums(block, b, x) };
        for (out, sum) in out.iter_mut().zip(sums) {
            *out = activation.apply(sum);
        }
    }
    let done = w.len() - blocks.remainder().len();
    let rows_done = bias.len() - biases.remainder().len();
    rows::<Portable>(
        &w[done..],
        &bias[rows_done..],
        x,
        outs.into_remainder(),
        activation,
    );
}

/// The sums of four rows (`block`: their `4 * x.len()` weights, row after
/// row) from their biases `b`.
#[target_feature(enable = "neon")]
fn four_rows_sums(block: &[f32], b: &[f32], x: &[f32]) -> [f32; 4] {
    let n = x.len();
    let (r0, rest) = block.split_at(n);
    let (r1, rest) = rest.split_at(n);
    let (r2, r3) = rest.split_at(n);
    let mut bias = [0.0; 4];
    bias.copy_from_slice(&b[..4]);
    // SAFETY (every load and store): 16 bytes, four `f32`s of an array or
    // a chunk of four.
    let load = |v: &[f32]| unsafe { vld1q_f32(v.as_ptr()) };
    let mut acc = load(&bias);
    let groups = x
        .as_chunks::<4>()
        .0
        .iter()
        .zip(r0.as_chunks::<4>().0)
        .zip(r1.as_chunks::<4>().0)
        .zip(r2.as_chunks::<4>().0)
        .zip(r3.as_chunks::<4>().0);
    for ((((xs, w0), w1), w2), w3) in groups {
        // Columns: lane r of column k is row r's weight for input 4 g + k.
        let (w0, w1, w2, w3) = (load(w0), load(w1), load(w2), load(w3));
        let (t0, t1) = (vtrn1q_f32(w0, w1), vtrn2q_f32(w0, w1));
        let (t2, t3) = (vtrn1q_f32(w2, w3), vtrn2q_f32(w2, w3));
        let pairs = |a: float32x4_t, b: float32x4_t| {
            let (a, b) = (vreinterpretq_f64_f32(a), vreinterpretq_f64_f32(b));
            (
                vreinterpretq_f32_f64(vtrn1q_f64(a, b)),
                vreinterpretq_f32_f64(vtrn2q_f64(a, b)),
            )
        };
        let ((c0, c2), (c1, c3)) = (pairs(t0, t2), pairs(t1, t3));
        let xs = load(xs);
        acc = vfmaq_laneq_f32::<0>(acc, c0, xs);
        acc = vfmaq_laneq_f32::<1>(acc, c1, xs);
        acc = vfmaq_laneq_f32::<2>(acc, c2, xs);
        acc = vfmaq_laneq_f32::<3>(acc, c3, xs);
    }
    for i in n / 4 * 4..n {
        let column = [r0[i], r1[i], r2[i], r3[i]];
        acc = vfmaq_f32(acc, load(&column), vdupq_n_f32(x[i]));
    }
    let mut sums = [0.0; 4];
    // SAFETY: as above.
    unsafe { vst1q_f32(sums.as_mut_ptr(), acc) };
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every block and leftover shape, with values of every magnitude
    /// (subnormals, overflow to infinity, cancellation): the NEON loop's
    /// outputs are the portable loop's, bit for bit.
    #[test]
    fn the_neon_loop_is_the_portable_loop() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut value = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bits = state as u32;
            match state >> 60 {
                0 => f32::from_bits(bits & 0x807f_ffff), // subnormal
                1 => f32::from_bits(bits & 0x80ff_ffff | 0x7e00_0000), // huge
                _ => (bits as i32 as f32) / (1u64 << 31) as f32,
            }
        };
        for inputs in 0..=13usize {
            for outputs in 0..=9usize {
                let w: [f32; 13 * 9] = core::array::from_fn(|_| value());
                let (w, bias): (&[f32], [f32; 9]) =
                    (&w[..inputs * outputs], core::array::from_fn(|_| value()));
                let x: [f32; 13] = core::array::from_fn(|_| value());
                for activation in [Activation::Identity, Activation::Sigmoid] {
                    let (mut got, mut want) = ([0.0f32; 9], [0.0f32; 9]);
                    let (bias, x) = (&bias[..outputs], &x[..inputs]);
                    dense(w, bias, x, &mut got[..outputs], activation);
                    rows::<Portable>(w, bias, x, &mut want[..outputs], activation);
                    for (g, e) in got.iter().zip(&want) {
                        assert!(
                            g.to_bits() == e.to_bits() || (g.is_nan() && e.is_nan()),
                            "{inputs} x {outputs}: {g:e} against {e:e}"
                        );
                    }
                }
            }
        }
    }
}
