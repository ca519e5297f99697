//! [`super::dense`]'s loop with the CPU's fused multiply-add on x86-64
//! hosts built without it (the default target): when the CPU has it
//! ([`crate::x86::has_fma`]), each layer runs in a copy of the loop
//! compiled for FMA.
//! One of the crate's exceptions to `unsafe_code`.
#![allow(unsafe_code)]

use core::arch::x86_64::{_mm_cvtss_f32, _mm_fmadd_ss, _mm_set_ss};

use super::{MulAdd, rows};
use crate::activation::Activation;

/// `VFMADD` on one lane.
struct Instruction;

impl MulAdd for Instruction {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        // SAFETY: only reached through `rows_fma`, which runs when the CPU
        // has FMA (checked by `has_fma`).
        unsafe { fma(a, b, c) }
    }
}

#[inline]
#[target_feature(enable = "fma")]
fn fma(a: f32, b: f32, c: f32) -> f32 {
    _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)))
}

/// Runs [`rows`] with FMA instructions and returns true, or returns false
/// (nothing written) when the CPU has none.
pub(super) fn rows_with_fma(
    w: &[f32],
    bias: &[f32],
    x: &[f32],
    y: &mut [f32],
    activation: Activation,
) -> bool {
    if !crate::x86::has_fma() {
        return false;
    }
    // SAFETY: the CPU has FMA.
    unsafe { rows_fma(w, bias, x, y, activation) };
    true
}

#[target_feature(enable = "fma")]
fn rows_fma(w: &[f32], bias: &[f32], x: &[f32], y: &mut [f32], activation: Activation) {
    rows::<Instruction>(w, bias, x, y, activation);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dense::Portable;

    /// The FMA copy gives libm's `fmaf` bits (the portable loop's here).
    #[test]
    fn the_fma_copy_is_the_portable_loop() {
        let mut state = 0x853c_49e6_748f_ea9bu64;
        let mut value = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        };
        for (inputs, outputs) in [(1, 1), (3, 5), (17, 23), (128, 9)] {
            let w: [f32; 128 * 23] = core::array::from_fn(|_| value());
            let b: [f32; 23] = core::array::from_fn(|_| value());
            let x: [f32; 128] = core::array::from_fn(|_| 3.0 * value());
            let (w, b, x) = (&w[..inputs * outputs], &b[..outputs], &x[..inputs]);
            let (mut fast, mut slow) = ([0.0; 23], [0.0; 23]);
            for activation in [Activation::Identity, Activation::Sigmoid] {
                if !rows_with_fma(w, b, x, &mut fast[..outputs], activation) {
                    return; // no FMA on this CPU: nothing to compare
                }
                rows::<Portable>(w, b, x, &mut slow[..outputs], activation);
                for (f, s) in fast.iter().zip(&slow) {
                    assert_eq!(f.to_bits(), s.to_bits(), "{inputs} x {outputs}");
                }
            }
        }
    }
}
