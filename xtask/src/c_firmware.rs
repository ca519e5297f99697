//! `cargo xtask c-cases` and `cargo xtask c-firmware`: the C firmware
//! (capi/examples/cmake) with a directory of cases, under QEMU, and its
//! flash beside the Rust firmware's for the same cases.

use std::path::Path;

use anyhow::{Context, ensure};
use xtask::{Core, build_firmware, c_core, elf_size, run_c_suite, run_qemu};

/// `cargo xtask c-cases DIR --out FILE`.
pub(crate) fn c_cases(cases: &Path, out: &Path) -> anyhow::Result<()> {
    xtask::write_c_cases(cases, out)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// Flash of the C firmware's parts, from its linker map: the tinygen
/// library (libtinygen_capi.a), the C library and compiler support
/// (newlib-nano, librdimon, libgcc), and the rest (the firmware's own code,
/// the vector table and the cases: models and test vectors).
struct Parts {
    tinygen: u64,
    libc: u64,
    rest: u64,
}

/// Sums the flash input sections of a GNU ld map by the file they come from.
fn map_parts(map: &Path) -> anyhow::Result<Parts> {
    let text =
        std::fs::read_to_string(map).with_context(|| format!("cannot read {}", map.display()))?;
    let mut parts = Parts {
        tinygen: 0,
        libc: 0,
        rest: 0,
    };
    let mut in_flash = false;
    let mut started = false;
    for line in text.lines() {
        if line.starts_with("Linker script and memory map") {
            started = true;
            continue;
        }
        if !started {
            continue;
        }
        // An output section: `.text 0x... 0x...` at the start of a line.
        if let Some(name) = line
            .split_whitespace()
            .next()
            .filter(|_| line.starts_with('.'))
        {
            in_flash = matches!(
                name,
                ".vectors" | ".text" | ".rodata" | ".ARM.exidx" | ".data"
            );
            continue;
        }
        if !in_flash {
            continue;
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let Some(file_at) = tokens
            .iter()
            .rposition(|t| t.contains(".o") || t.contains(".a("))
        else {
            continue;
        };
        let Some(size) = file_at
            .checked_sub(1)
            .and_then(|i| tokens[i].strip_prefix("0x"))
            .and_then(|h| u64::from_str_radix(h, 16).ok())
        else {
            continue;
        };
        let file = tokens[file_at];
        if file.contains("libtinygen_capi.a(") {
            parts.tinygen += size;
        } else if file.contains("/arm-none-eabi/") || file.contains("libgcc.a(") {
            parts.libc += size;
        } else {
            parts.rest += size;
        }
    }
    Ok(parts)
}

/// Flash of an ELF as (code, data): executable sections (the vector table
/// and `.text`) and the rest that flash holds (`.rodata`, `.data`'s
/// initial values, unwind tables), via llvm-size.
fn code_and_data(elf: &Path) -> anyhow::Result<(u64, u64)> {
    let out = std::process::Command::new(xtask::llvm_tool("llvm-size")?)
        .arg("-A")
        .arg(elf)
        .output()?;
    let (mut code, mut data) = (0, 0);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(size)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(size) = size.parse::<u64>() else {
            continue;
        };
        match name {
            ".vectors" | ".vector_table" | ".text" => code += size,
            ".rodata" | ".data" | ".ARM.exidx" => data += size,
            _ => {}
        }
    }
    Ok((code, data))
}

/// `cargo xtask c-firmware [CASES] [--core m4f,m0]`: builds and runs the C
/// firmware on each core, builds the Rust firmware with the same case
/// images, and prints both flash sizes.
pub(crate) fn c_firmware(cases: &Path, cores: &[Core]) -> anyhow::Result<()> {
    xtask::install_prerequisites()?;
    if let Some(missing) = xtask::c_firmware_missing() {
        anyhow::bail!("the C firmware needs {missing}");
    }
    println!(
        "| core | image | Rust firmware flash (code + data) | C firmware flash (code + data) | \
         C - Rust | C: tinygen library | C: newlib, libgcc | C: firmware and cases |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for &core in cores {
        ensure!(
            c_core(core).is_some(),
            "no C firmware for the {}",
            core.name()
        );
        let runs = run_c_suite(cases, core)?;
        let images = xtask::c_case_images(cases, core)?;
        for (i, ((elf, run), image)) in runs.iter().zip(&images).enumerate() {
            print!("{}", run.stdout);
            ensure!(
                run.success,
                "the C firmware failed on the {}:\n{}",
                core.name(),
                run.stderr
            );
            let rust_elf = build_firmware(image, core, &[])?;
            let rust = run_qemu(&rust_elf, core, None)?;
            ensure!(
                rust.success,
                "the Rust firmware failed on the {}",
                core.name()
            );
            let (rust_flash, _) = elf_size(&rust_elf)?;
            let (c_flash, _) = elf_size(elf)?;
            let (rust_code, rust_data) = code_and_data(&rust_elf)?;
            let (c_code, c_data) = code_and_data(elf)?;
            let parts = map_parts(&elf.with_file_name("tinygen_cases.map"))?;
            println!(
                "| {} | {i} | {rust_flash} ({rust_code} + {rust_data}) | {c_flash} ({c_code} + {c_data}) \
                 | {:+} | {} | {} | {} |",
                core.name(),
                c_flash as i64 - rust_flash as i64,
                parts.tinygen,
                parts.libc,
                parts.rest
            );
        }
    }
    Ok(())
}
