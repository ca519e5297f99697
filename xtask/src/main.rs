//! `cargo xtask <task>`: the steps plain cargo can't express.
//!
//! * `demo`   fit a mixture on bundled data, inspect it, score with it, and
//!   check it on the emulated Cortex-M4F: the main job, end to end.
//! * `test`   every test: the workspace's tests (QEMU parity included) and a
//!   no_std build of the runtime for the Cortex-M4F.
//! * `qemu [CASES_DIR]`  build the firmware with the cases in CASES_DIR
//!   (default `models/`) and run it under QEMU.
//! * `bench-mcu`  exact instructions per log-density call on the
//!   Cortex-M4F (K = 8, D = 16, full and diag) and firmware size.
//! * `models` regenerate the example models in `models/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};
use xtask::{build_firmware, root, run_qemu, write_case};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("test") => test(),
        Some("qemu") => {
            let cases = args
                .get(1)
                .map_or_else(|| root().join("models"), PathBuf::from);
            qemu(&cases)
        }
        Some("bench-mcu") => bench_mcu(),
        Some("models") => models(),
        _ => bail!("usage: cargo xtask demo | test | qemu [CASES_DIR] | bench-mcu | models"),
    }
}

/// Runs a command from the workspace root, failing on a non-zero exit.
fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("$ {}", describe(cmd));
    let status = cmd
        .current_dir(root())
        .status()
        .with_context(|| describe(cmd))?;
    ensure!(status.success(), "failed: {}", describe(cmd));
    Ok(())
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// `tinygen` from a release build.
fn tinygen(args: &[&str]) -> anyhow::Result<()> {
    run(cargo()
        .args(["run", "--quiet", "--release", "-p", "tinygen", "--"])
        .args(args))
}

/// The first `rows` feature rows of a data file, as f32.
fn first_rows(data: &Path, label: &str, rows: usize) -> anyhow::Result<Vec<f32>> {
    let opts = tinygen::data::LoadOptions {
        label_column: Some(label.into()),
        drop_columns: vec![],
    };
    let set = tinygen::data::load(data, &opts)?;
    let idx: Vec<usize> = (0..rows.min(set.rows)).collect();
    Ok(set.select_rows(&idx).to_f32())
}

fn demo() -> anyhow::Result<()> {
    let out = root().join("out").join("demo");
    std::fs::create_dir_all(&out)?;
    let model = out.join("cardio.tgm");
    let model_s = model.to_string_lossy().into_owned();
    let scores = out.join("cardio_scores.csv");
    tinygen(&[
        "fit",
        "gmm",
        "--data",
        "data/cardio.csv.gz",
        "--label-column",
        "label",
        "--components",
        "4",
        "--covariance",
        "full",
        "--standardize",
        "--seed",
        "0",
        "--quiet",
        "--out",
        &model_s,
    ])?;
    tinygen(&["info", &model_s])?;
    tinygen(&[
        "score",
        "--model",
        &model_s,
        "--data",
        "data/cardio.csv.gz",
        "--label-column",
        "label",
        "--out",
        &scores.to_string_lossy(),
    ])?;
    eprintln!("wrote {}", scores.display());
    xtask::install_prerequisites()?;
    let cases = out.join("cases");
    let points = first_rows(&root().join("data/cardio.csv.gz"), "label", 64)?;
    write_case(&cases.join("cardio"), &std::fs::read(&model)?, &points)?;
    qemu(&cases)
}

fn qemu(cases: &Path) -> anyhow::Result<()> {
    xtask::install_prerequisites()?;
    let elf = build_firmware(cases, &[])?;
    let (flash, ram) = xtask::elf_size(&elf)?;
    eprintln!(
        "firmware {}: {flash} bytes flash, {ram} bytes static RAM",
        elf.display()
    );
    let result = run_qemu(&elf, None)?;
    print!("{}", result.stdout);
    eprint!("{}", result.stderr);
    ensure!(result.success, "the firmware reported a failure under QEMU");
    Ok(())
}

fn test() -> anyhow::Result<()> {
    xtask::install_prerequisites()?;
    run(cargo().args(["build", "-p", "tinygen-runtime", "--target", xtask::TARGET]))?;
    run(cargo().args(["test", "--workspace"]))
}

fn bench_mcu() -> anyhow::Result<()> {
    bail!("bench-mcu: not yet implemented")
}

fn models() -> anyhow::Result<()> {
    let dir = root().join("models").join("cardio-gmm");
    std::fs::create_dir_all(&dir)?;
    let model = dir.join("model.tgm");
    tinygen(&[
        "fit",
        "gmm",
        "--data",
        "data/cardio.csv.gz",
        "--label-column",
        "label",
        "--components",
        "4",
        "--covariance",
        "full",
        "--standardize",
        "--seed",
        "0",
        "--quiet",
        "--out",
        &model.to_string_lossy(),
    ])?;
    let points = first_rows(&root().join("data/cardio.csv.gz"), "label", 32)?;
    write_case(&dir, &std::fs::read(&model)?, &points)
}
