//! `cargo xtask bench-arm`: exact instructions of the host's decodes on an
//! Arm (aarch64) host, emulated by QEMU's user mode with the dot-product
//! extension: `count-decodes` cross-built and run under the counting
//! plugin. No Arm machine is at hand, so these are counts, not times.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail, ensure};
use xtask::{build_icount_plugin, has_program, symbol_address, target_dir};

use crate::process::{cargo, describe, run};

const TARGET: &str = "aarch64-unknown-linux-gnu";
/// The cross C toolchain's linker and QEMU's aarch64 user mode, with the
/// Debian packages holding them.
const PROGRAMS: [(&str, &str); 2] = [
    (
        "aarch64-linux-gnu-gcc",
        "gcc-aarch64-linux-gnu libc6-dev-arm64-cross",
    ),
    ("qemu-aarch64", "qemu-user"),
];
/// Where Debian's cross toolchain keeps the aarch64 C library.
const SYSROOT: &str = "/usr/aarch64-linux-gnu";

pub fn bench_arm() -> anyhow::Result<()> {
    for (program, packages) in PROGRAMS {
        if !has_program(program) {
            bail!("{program} is missing: apt-get install --no-install-recommends {packages}");
        }
    }
    run(Command::new("rustup").args(["target", "add", TARGET]))?;
    let elf = build()?;
    let plugin = build_icount_plugin()?;
    let [start, end] =
        ["tinygen_bench_start", "tinygen_bench_end"].map(|s| symbol_address(&elf, s));
    let mut qemu = Command::new("qemu-aarch64");
    qemu.args(["-cpu", "max", "-L", SYSROOT, "-plugin"])
        .arg(format!(
            "{},start={:#x},end={:#x}",
            plugin.display(),
            start?,
            end?
        ))
        .args(["-d", "plugin"])
        .arg(&elf);
    eprintln!("$ {}", describe(&qemu));
    let out = qemu.output().with_context(|| describe(&qemu))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "count-decodes failed:\n{stderr}");
    print_table(&regions(&stderr)?);
    Ok(())
}

/// Cross-builds `count-decodes` without position independence, so that the
/// markers' addresses in the file are the ones QEMU runs.
fn build() -> anyhow::Result<PathBuf> {
    let env = |key: &str| {
        format!(
            "CARGO_TARGET_{}_{key}",
            TARGET.to_uppercase().replace('-', "_")
        )
    };
    run(cargo()
        .args([
            "build",
            "--release",
            "-p",
            "count-decodes",
            "--target",
            TARGET,
        ])
        .env(env("LINKER"), "aarch64-linux-gnu-gcc")
        .env(
            env("RUSTFLAGS"),
            "-C relocation-model=static -C link-arg=-no-pie",
        ))?;
    Ok(target_dir()
        .join(TARGET)
        .join("release")
        .join("count-decodes"))
}

/// Each region's instructions (the plugin's `icount` line after the
/// program's `region LABEL` line), less the empty region's.
fn regions(stderr: &str) -> anyhow::Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    let mut label = None;
    for line in stderr.lines() {
        if let Some(l) = line.strip_prefix("region ") {
            label = Some(l.to_string());
        } else if let Some(n) = line.strip_prefix("icount ") {
            let l = label.take().context("an icount line before any region")?;
            out.push((l, n.trim().parse::<u64>()?));
        }
    }
    let empty = match out.first() {
        Some((l, n)) if l == "empty" => *n,
        _ => bail!("no empty region first:\n{stderr}"),
    };
    Ok(out
        .into_iter()
        .skip(1)
        .map(|(l, n)| (l, n.saturating_sub(empty)))
        .collect())
}

/// One table a precision: a row per decoder and batch, a column per way
/// of decoding (instructions per decoded row), and the runtime's count
/// over the fastest one's.
fn print_table(regions: &[(String, u64)]) {
    for precision in ["int8", "f32"] {
        // (decoder, rows) -> [(way, instructions)], in the program's order.
        let mut rows: BTreeMap<(String, u64), Vec<(String, u64)>> = BTreeMap::new();
        let mut ways: Vec<String> = Vec::new();
        for (label, n) in regions {
            let mut parts = label.splitn(4, ' ');
            let (Some(p), Some(decoder), Some(batch), Some(way)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Ok(batch) = batch.parse::<u64>() else {
                continue;
            };
            if p != precision {
                continue;
            }
            if !ways.iter().any(|w| w == way) {
                ways.push(way.to_string());
            }
            rows.entry((decoder.to_string(), batch))
                .or_default()
                .push((way.to_string(), n / batch.max(1)));
        }
        println!(
            "\n{precision}, aarch64 instructions per decoded row (QEMU user mode, -cpu max):\n"
        );
        println!(
            "| decoder | rows a call | {} | runtime / fastest |",
            ways.join(" | ")
        );
        println!("|---|---|{}---|", "---|".repeat(ways.len()));
        for ((decoder, batch), counts) in &rows {
            let cell = |way: &str| counts.iter().find(|(w, _)| w == way).map(|c| c.1);
            let cells: Vec<String> = ways
                .iter()
                .map(|w| cell(w).map_or("-".into(), |n| n.to_string()))
                .collect();
            let fastest = counts.iter().map(|c| c.1).min().unwrap_or(0);
            let ratio = cell("runtime").map_or("-".into(), |r| {
                format!("{:.1}x", r as f64 / fastest.max(1) as f64)
            });
            println!("| {decoder} | {batch} | {} | {ratio} |", cells.join(" | "));
        }
    }
    println!("\nInstructions, not cycles: no Arm machine measured them.");
}
