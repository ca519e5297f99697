//! Selects the assembly kernels. `cfg(tinygen_dsp)`, the int8 kernel,
//! where the ARMv7E-M DSP instructions exist: every `thumbv7em` target,
//! and Armv8-M Mainline builds for cores that have the optional extension
//! (Cortex-M33/M35P/M55) when built with `-C target-feature=+dsp`.
//! `cfg(tinygen_vfp)`, the f32 kernels, on the microcontroller targets with
//! a hardware FPU (`thumbv7em-none-eabihf`, `thumbv8m.main-none-eabihf`:
//! Cortex-M4F, M7, M33), where the QEMU suite runs them.
//! `cfg(tinygen_compact)`, one copy of code that is otherwise inlined, on
//! Armv6-M (the Cortex-M0: 256 KiB of flash on the micro:bit, and the
//! largest soft-float code).
//! `cfg(tinygen_neon)`, the NEON kernels, on AArch64 targets with NEON
//! (every one but the soft-float ones).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(tinygen_dsp)");
    println!("cargo::rustc-check-cfg=cfg(tinygen_vfp)");
    println!("cargo::rustc-check-cfg=cfg(tinygen_compact)");
    println!("cargo::rustc-check-cfg=cfg(tinygen_neon)");
    println!("cargo::rerun-if-env-changed=TARGET");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv7em") || (target.starts_with("thumbv8m.main") && dsp_enabled()) {
        println!("cargo::rustc-cfg=tinygen_dsp");
    }
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "aarch64")
        && features.split(',').any(|f| f == "neon")
    {
        println!("cargo::rustc-cfg=tinygen_neon");
    }
    if target.starts_with("thumbv6m") {
        println!("cargo::rustc-cfg=tinygen_compact");
    }
    if (target.starts_with("thumbv7em") || target.starts_with("thumbv8m.main"))
        && target.ends_with("-none-eabihf")
    {
        println!("cargo::rustc-cfg=tinygen_vfp");
    }
}

/// Whether the build enables the `dsp` target feature. Cargo leaves
/// unstable features such as `dsp` out of `CARGO_CFG_TARGET_FEATURE` on
/// stable Rust, so the flags themselves are read.
fn dsp_enabled() -> bool {
    let cfg = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let mut flags = flags.split('\x1f');
    let mut features = Vec::new();
    while let Some(flag) = flags.next() {
        let value = match flag {
            "-C" => flags.next().unwrap_or_default(),
            f => f.strip_prefix("-C").unwrap_or_default(),
        };
        if let Some(list) = value.strip_prefix("target-feature=") {
            features.extend(list.split(',').map(str::to_owned));
        }
    }
    cfg.split(',').any(|f| f == "dsp")
        || features
            .iter()
            .rev()
            .find(|f| f.ends_with("dsp"))
            .is_some_and(|f| f == "+dsp")
}
