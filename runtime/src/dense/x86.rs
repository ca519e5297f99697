//! [`super::dense`]'s loop with the CPU's fused multiply-add on x86-64
//! hosts built without it (the default target): the CPU is asked once
//! (`CPUID`, `XGETBV`, as `is_x86_feature_detected!` does, which `no_std`
//! lacks), then each layer runs in a copy of the loop compiled for FMA.
//! One of the crate's exceptions to `unsafe_code`.
#![allow(unsafe_code)]

use core::arch::x86_64::{__cpuid, _mm_cvtss_f32, _mm_fmadd_ss, _mm_set_ss, _xgetbv};
use core::sync::atomic::{AtomicU8, Ordering};

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
    if !has_fma() {
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

/// Whether the CPU and the OS support FMA (its VEX encoding needs the OS
/// to save the AVX registers), asked once.
fn has_fma() -> bool {
    // 0: not asked yet, 1: no, 2: yes.
    static ANSWER: AtomicU8 = AtomicU8::new(0);
    match ANSWER.load(Ordering::Relaxed) {
        0 => {
            let yes = ask_cpu();
            ANSWER.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
        answer => answer == 2,
    }
}

fn ask_cpu() -> bool {
    let ecx = __cpuid(1).ecx;
    let (fma, osxsave, avx) = (ecx >> 12 & 1, ecx >> 27 & 1, ecx >> 28 & 1);
    if fma & osxsave & avx == 0 {
        return false;
    }
    // SAFETY: OSXSAVE says XSAVE and XGETBV exist.
    let xcr0 = unsafe { xcr0() };
    // The OS saves the SSE and AVX state.
    xcr0 & 0b110 == 0b110
}

/// XCR0, the state the OS saves.
#[target_feature(enable = "xsave")]
fn xcr0() -> u64 {
    // SAFETY: XGETBV exists (this function's feature); register 0 is XCR0.
    unsafe { _xgetbv(0) }
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
