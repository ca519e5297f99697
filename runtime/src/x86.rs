//! What this x86-64 CPU runs beyond the target's baseline, asked once
//! (`CPUID`, `XGETBV`, as `is_x86_feature_detected!` does, which `no_std`
//! lacks): the kernels compiled for FMA (`dense/x86.rs`) and AVX2
//! (`quant/kernel/avx2.rs`) run only where it says yes. One of the crate's
//! exceptions to `unsafe_code`.
#![allow(unsafe_code)]

use core::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};
use core::sync::atomic::{AtomicU8, Ordering};

/// Whether the CPU and the OS support FMA instructions.
#[cfg_attr(target_feature = "fma", allow(dead_code))]
pub(crate) fn has_fma() -> bool {
    features() & FMA != 0
}

/// Whether the CPU and the OS support AVX2 instructions.
pub(crate) fn has_avx2() -> bool {
    features() & AVX2 != 0
}

const ASKED: u8 = 1;
const FMA: u8 = 2;
const AVX2: u8 = 4;

/// The feature bits, asked on the first call; a build for a CPU that has
/// both (`-C target-cpu=x86-64-v3` or newer) need not ask.
fn features() -> u8 {
    if cfg!(all(target_feature = "fma", target_feature = "avx2")) {
        return ASKED | FMA | AVX2;
    }
    static ANSWER: AtomicU8 = AtomicU8::new(0);
    match ANSWER.load(Ordering::Relaxed) {
        0 => {
            let answer = ask_cpu();
            ANSWER.store(answer, Ordering::Relaxed);
            answer
        }
        answer => answer,
    }
}

fn ask_cpu() -> u8 {
    let ecx = __cpuid(1).ecx;
    let (fma, osxsave, avx) = (ecx >> 12 & 1, ecx >> 27 & 1, ecx >> 28 & 1);
    // Both are VEX-encoded: the OS must save the AVX registers.
    // SAFETY (xcr0): OSXSAVE says XSAVE and XGETBV exist.
    if osxsave & avx == 0 || unsafe { xcr0() } & 0b110 != 0b110 {
        return ASKED;
    }
    let avx2 = __cpuid(0).eax >= 7 && __cpuid_count(7, 0).ebx >> 5 & 1 == 1;
    ASKED | if fma == 1 { FMA } else { 0 } | if avx2 { AVX2 } else { 0 }
}

/// XCR0, the state the OS saves.
#[target_feature(enable = "xsave")]
fn xcr0() -> u64 {
    // SAFETY: XGETBV exists (this function's feature); register 0 is XCR0.
    unsafe { _xgetbv(0) }
}
