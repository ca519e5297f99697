//! Embeds the test cases: every directory under `$TINYGEN_FW_CASES` (default
//! `../models`) that holds `model.tgm`, `inputs.csv` (one row per point or
//! window, no header) and `expected.csv` (a header line, then one value per
//! row: the log-density of a density model, as `tinygen score` writes it, or
//! the anomaly score of a detector; for a decoder, one output row per
//! latent row) becomes a case the firmware checks. An optional `labels.csv`
//! (0 or 1 per row) lets the firmware report a detector's hit and
//! false-alarm rates; an optional `samples.csv` (a header, then rows) holds
//! a decoder's first samples from its prior with the device generator
//! seeded with 0 (`tinygen sample --seed 0`), which the firmware reproduces.
//! Input rows that overlap (consecutive windows sharing samples) are stored
//! once (the BasicMotions stream: 96 KB instead of 173 KB).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn floats(path: &Path, skip_header: bool) -> Vec<Vec<String>> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(usize::from(skip_header))
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split(',')
                .map(|v| {
                    let v = v.trim();
                    let parsed: f32 = v
                        .parse()
                        .unwrap_or_else(|e| panic!("{}: {v:?}: {e}", path.display()));
                    // Debug formatting of f32 round-trips exactly and always has a '.' or 'e'.
                    format!("{parsed:?}")
                })
                .collect()
        })
        .collect()
}

include!("overlap.rs");

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    // The memory map of the core built for (QEMU's machine for it), or an
    // nRF52840's with the `nrf52840` feature (whose `board` program also
    // needs defmt's linker script).
    let target = env::var("TARGET").unwrap();
    let board = env::var_os("CARGO_FEATURE_NRF52840").is_some();
    let memory = match target.as_str() {
        _ if board => "nrf52840",
        "thumbv6m-none-eabi" => "cortex-m0",
        "thumbv7m-none-eabi" => "cortex-m3",
        "thumbv7em-none-eabihf" => "cortex-m4f",
        "thumbv8m.main-none-eabihf" => "cortex-m33",
        "riscv32imac-unknown-none-elf" => "riscv32",
        other => panic!("no memory map for {other} (see firmware/memory/)"),
    };
    let memory = Path::new("memory").join(format!("{memory}.x"));
    fs::copy(&memory, out.join("memory.x")).unwrap();
    println!("cargo:rerun-if-changed=memory");
    println!("cargo:rerun-if-changed=overlap.rs");
    println!("cargo:rustc-link-search={}", out.display());
    // The runtime crates' linker scripts (cortex-m-rt's and riscv-rt's
    // `link.x` include `memory.x`).
    println!("cargo:rustc-link-arg=-Tlink.x");
    if board {
        println!("cargo:rustc-link-arg-bin=board=-Tdefmt.x");
    }
    // The Cortex-M0 part has 16 KiB of RAM: smaller buffers (see main.rs).
    // It is a Nordic part (QEMU's micro:bit), as is the board: a learned
    // detector is written to flash through the NVMC (src/nvmc.rs).
    println!("cargo::rustc-check-cfg=cfg(small_ram)");
    println!("cargo::rustc-check-cfg=cfg(nvmc)");
    if target.starts_with("thumbv6m") {
        println!("cargo:rustc-cfg=small_ram");
    }
    if target.starts_with("thumbv6m") || board {
        println!("cargo:rustc-cfg=nvmc");
    }
    println!("cargo:rerun-if-env-changed=TINYGEN_FW_CASES");

    let root = env::var_os("TINYGEN_FW_CASES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../models"));
    let root = fs::canonicalize(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    println!("cargo:rerun-if-changed={}", root.display());
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.join("model.tgm").is_file()
                && p.join("inputs.csv").is_file()
                && p.join("expected.csv").is_file()
        })
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "no test cases (model.tgm, inputs.csv, expected.csv) under {}",
        root.display()
    );

    let mut src = String::from("static CASES: &[Case] = &[\n");
    for dir in &dirs {
        for f in ["model.tgm", "inputs.csv", "expected.csv"] {
            println!("cargo:rerun-if-changed={}", dir.join(f).display());
        }
        let inputs = floats(&dir.join("inputs.csv"), false);
        let expected = floats(&dir.join("expected.csv"), true);
        assert_eq!(
            inputs.len(),
            expected.len(),
            "{}: inputs and expected differ in length",
            dir.display()
        );
        let labels_path = dir.join("labels.csv");
        println!("cargo:rerun-if-changed={}", labels_path.display());
        let labels: Vec<String> = if labels_path.is_file() {
            let text = fs::read_to_string(&labels_path).unwrap();
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_string())
                .collect()
        } else {
            Vec::new()
        };
        assert!(
            labels.is_empty() || labels.len() == inputs.len(),
            "{}: labels and inputs differ in length",
            dir.display()
        );
        let samples_path = dir.join("samples.csv");
        println!("cargo:rerun-if-changed={}", samples_path.display());
        let samples = if samples_path.is_file() {
            floats(&samples_path, true)
        } else {
            Vec::new()
        };
        let name = dir.file_name().unwrap().to_string_lossy();
        let dim = inputs[0].len();
        assert!(
            inputs.iter().all(|r| r.len() == dim),
            "{}: inputs rows differ in length",
            dir.display()
        );
        let (series, starts) = overlapped(&inputs);
        let _ = writeln!(
            src,
            "    Case {{ name: {name:?}, model: tinygen_runtime::include_model!({:?}), dim: {dim}, out_dim: {}, series: &[{}], starts: &[{}], expected: &[{}], labels: &[{}], samples: &[{}] }},",
            dir.join("model.tgm").display(),
            expected[0].len(),
            series
                .iter()
                .map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            starts
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            expected
                .iter()
                .flatten()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            labels.join(", "),
            samples
                .iter()
                .flatten()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    src.push_str("];\n");
    fs::write(out.join("cases.rs"), src).unwrap();
}
