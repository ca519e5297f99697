//! Firmware and QEMU helpers shared by `cargo xtask` and the cross-crate tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};
use tinygen::detector::windows::series_windows;
use tinygen::host::AlignedBytes;
use tinygen::io::write_atomic;

/// `n` points (row-major N x D) from `k` axis-aligned Gaussian-ish blobs
/// (sums of uniforms), deterministic for a seed: test and benchmark data.
pub fn blobs(n: usize, d: usize, k: usize, seed: u64) -> nalgebra::DMatrix<f64> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let centers: Vec<f64> = (0..k * d).map(|_| rng.random_range(-5.0..5.0)).collect();
    let scales: Vec<f64> = (0..k * d).map(|_| rng.random_range(0.3..2.0)).collect();
    nalgebra::DMatrix::from_fn(n, d, |i, j| {
        let c = i % k;
        let u: f64 = (0..4).map(|_| rng.random::<f64>()).sum::<f64>() - 2.0;
        centers[c * d + j] + scales[c * d + j] * u + 10.0
    })
}

/// A class of core the firmware runs on, each under its QEMU machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Core {
    /// Cortex-M0 (Armv6-M, no FPU): the BBC micro:bit, 256 KiB flash, 16 KiB RAM.
    M0,
    /// Cortex-M3 (Armv7-M, no FPU): MPS2 AN385.
    M3,
    /// Cortex-M4F (Armv7E-M, DSP and single-precision FPU): MPS2 AN386.
    M4f,
    /// Cortex-M33 (Armv8-M mainline, FPU): MPS2 AN505, running Secure.
    M33,
    /// RISC-V rv32imac (no FPU): QEMU's `virt` board.
    Rv32,
}

impl Core {
    /// Every core, smallest first.
    pub const ALL: [Core; 5] = [Core::M0, Core::M3, Core::M4f, Core::M33, Core::Rv32];

    /// The core `cargo xtask qemu`, the demo and bench-mcu's main table use.
    pub const MAIN: Core = Core::M4f;

    /// Its name, as in the reports.
    pub fn name(self) -> &'static str {
        match self {
            Core::M0 => "Cortex-M0",
            Core::M3 => "Cortex-M3",
            Core::M4f => "Cortex-M4F",
            Core::M33 => "Cortex-M33",
            Core::Rv32 => "RISC-V rv32imac",
        }
    }

    /// The Rust target (memory maps in `firmware/memory/`).
    pub fn target(self) -> &'static str {
        match self {
            Core::M0 => "thumbv6m-none-eabi",
            Core::M3 => "thumbv7m-none-eabi",
            Core::M4f => "thumbv7em-none-eabihf",
            Core::M33 => "thumbv8m.main-none-eabihf",
            Core::Rv32 => "riscv32imac-unknown-none-elf",
        }
    }

    /// Flash of its memory map (`firmware/memory/`) for code and data (the
    /// Cortex-M0 keeps 4 KiB more for a learned detector).
    pub fn flash_bytes(self) -> u64 {
        match self {
            Core::M0 => 252 << 10,
            _ => 1024 << 10,
        }
    }

    /// The QEMU program, and its arguments before `-kernel`.
    fn qemu(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Core::M0 => ("qemu-system-arm", &["-machine", "microbit"]),
            Core::M3 => ("qemu-system-arm", &["-machine", "mps2-an385"]),
            Core::M4f => ("qemu-system-arm", &["-machine", "mps2-an386"]),
            Core::M33 => ("qemu-system-arm", &["-machine", "mps2-an505"]),
            Core::Rv32 => (
                "qemu-system-riscv32",
                &["-machine", "virt", "-bios", "none"],
            ),
        }
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, or `target/` in the workspace).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Whether a program can be started (`NAME --version` succeeds).
pub fn has_program(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn installed_targets() -> Vec<String> {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|t| t.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The Debian packages holding the QEMU programs.
const QEMU_PACKAGES: [(&str, &str); 2] = [
    ("qemu-system-arm", "qemu-system-arm"),
    ("qemu-system-riscv32", "qemu-system-misc"),
];

/// What is missing to build and run the firmware on every core, if anything.
pub fn qemu_missing() -> Option<String> {
    for (program, package) in QEMU_PACKAGES {
        if !has_program(program) {
            return Some(format!(
                "{program} is not installed (apt-get install {package})"
            ));
        }
    }
    let installed = installed_targets();
    for core in Core::ALL {
        if !installed.iter().any(|t| t == core.target()) {
            return Some(format!(
                "the Rust target is missing (rustup target add {})",
                core.target()
            ));
        }
    }
    if llvm_tool("llvm-nm").is_err() {
        return Some("the LLVM tools are missing (rustup component add llvm-tools)".into());
    }
    None
}

/// Installs what the firmware needs: the Rust targets and LLVM tools with
/// rustup, and QEMU with apt-get when running as root (otherwise says how).
/// apt-get is told never to remove a package (`scripts/install-qemu.sh`:
/// where the release's QEMU conflicts with a newer one from backports, it
/// installs from backports); if installing would still need a removal, it
/// stops and the error gives the command to run by hand.
pub fn install_prerequisites() -> anyhow::Result<()> {
    let installed = installed_targets();
    for core in Core::ALL {
        let target = core.target();
        if !installed.iter().any(|t| t == target) {
            eprintln!("installing the Rust target {target}");
            ensure!(
                Command::new("rustup")
                    .args(["target", "add", target])
                    .status()?
                    .success(),
                "rustup target add {target} failed"
            );
        }
    }
    if llvm_tool("llvm-nm").is_err() {
        eprintln!("installing the LLVM tools");
        ensure!(
            Command::new("rustup")
                .args(["component", "add", "llvm-tools"])
                .status()?
                .success(),
            "rustup component add llvm-tools failed"
        );
    }
    let packages: Vec<&str> = QEMU_PACKAGES
        .iter()
        .filter(|(program, _)| !has_program(program))
        .map(|&(_, package)| package)
        .collect();
    if !packages.is_empty() {
        let by_hand = format!(
            "sudo apt-get install --no-install-recommends {}",
            packages.join(" ")
        );
        let root_user = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        ensure!(
            root_user && has_program("apt-get"),
            "QEMU is missing: install it (Debian/Ubuntu: {by_hand})"
        );
        eprintln!("installing {} with apt-get", packages.join(" "));
        let status = Command::new("sh")
            .arg(root().join("scripts/install-qemu.sh"))
            .args(&packages)
            .status()?;
        ensure!(
            status.success(),
            "apt-get could not install {} without removing other packages (or failed); \
             nothing was removed. Install it yourself, checking what apt proposes: {by_hand}",
            packages.join(" ")
        );
    }
    Ok(())
}

/// Writes a firmware test case: the model, the input rows, and what the
/// runtime computes for them on this host: a density's log-density
/// (`tinygen score`'s format), a detector's anomaly score, or a decoder's
/// output row (`tinygen decode`'s format), a diffusion model's noise
/// prediction. A decoder or diffusion case also gets `samples.csv`: its
/// first two samples with the device generator seeded with 0 (`tinygen
/// sample --seed 0`; a diffusion model's by its file's sampler).
pub fn write_case(dir: &Path, model: &[u8], points: &[f32]) -> anyhow::Result<()> {
    use tinygen::host::{HOST_WIDTH, run_rows};
    use tinygen_runtime::rand_core::SeedableRng;
    use tinygen_runtime::{AnyModel, Decoder, ModelKind, Scratch};

    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file = AlignedBytes::new(model);
    let bytes = file.as_bytes();
    let fail = |e: tinygen_runtime::Error| anyhow::anyhow!("model: {e}");
    let parsed = AnyModel::from_bytes(bytes).map_err(fail)?;
    let (d, o) = (parsed.input_len(), parsed.output_len());
    ensure!(
        !points.is_empty() && points.len().is_multiple_of(d),
        "points must be whole rows of {d} values"
    );
    let outputs = run_rows(&parsed, points)?;
    let header = match parsed {
        AnyModel::Density(_) => "log_density".to_string(),
        AnyModel::Detector(_) => "score".to_string(),
        AnyModel::Network(_) | AnyModel::QNetwork(_) | AnyModel::Diffusion(_) => (0..o)
            .map(|j| format!("x{j}"))
            .collect::<Vec<_>>()
            .join(","),
    };
    let mut samples = None;
    let mut rng = tinygen_runtime::Xoshiro128PlusPlus::seed_from_u64(0);
    let mut drawn = vec![0f32; 2 * o];
    match (parsed, parsed.kind()) {
        (AnyModel::Network(_), ModelKind::Decoder) => {
            let decoder = Decoder::<HOST_WIDTH>::from_bytes(bytes).map_err(fail)?;
            let mut scratch = Box::new(Scratch::<HOST_WIDTH>::new());
            for row in drawn.chunks_exact_mut(o) {
                decoder.sample(&mut rng, row, &mut scratch).map_err(fail)?;
            }
            samples = Some(drawn);
        }
        (AnyModel::QNetwork(decoder), ModelKind::DecoderInt8) => {
            let mut scratch = Box::new(tinygen_runtime::qnetwork::QScratch::<HOST_WIDTH>::new());
            for row in drawn.chunks_exact_mut(o) {
                decoder.sample(&mut rng, row, &mut scratch).map_err(fail)?;
            }
            samples = Some(drawn);
        }
        (AnyModel::Diffusion(model), _) => {
            let mut work = vec![0f32; model.work_len()];
            for row in drawn.chunks_exact_mut(o) {
                model.sample(&mut rng, row, &mut work).map_err(fail)?;
            }
            samples = Some(drawn);
        }
        _ => {}
    }
    let rows = |values: &[f32], width: usize| -> String {
        values
            .chunks_exact(width)
            .map(|row| {
                let line: Vec<String> = row.iter().map(|v| format!("{v:?}")).collect();
                line.join(",") + "\n"
            })
            .collect()
    };
    let expected = format!("{header}\n{}", rows(&outputs, o));
    write_atomic(&dir.join("model.tgm"), model)?;
    write_atomic(&dir.join("inputs.csv"), rows(points, d).as_bytes())?;
    write_atomic(&dir.join("expected.csv"), expected.as_bytes())?;
    if let Some(drawn) = samples {
        write_atomic(
            &dir.join("samples.csv"),
            format!("{header}\n{}", rows(&drawn, o)).as_bytes(),
        )?;
    }
    Ok(())
}

/// Adds `labels.csv` (0 or 1 per input row) to a case, for the firmware's
/// hit and false-alarm report.
pub fn write_labels(dir: &Path, labels: &[f64]) -> anyhow::Result<()> {
    let text: String = labels
        .iter()
        .map(|&l| if l != 0.0 { "1\n" } else { "0\n" })
        .collect();
    write_atomic(&dir.join("labels.csv"), text.as_bytes())
}

/// The bundled BasicMotions smartwatch recordings (6 channels, 100 steps).
pub fn basicmotions(split: &str) -> anyhow::Result<tinygen::data::ts::SeriesSet> {
    tinygen::data::ts::load_ts(
        &root().join(format!("data/basicmotions/BasicMotions_{split}.ts.gz")),
    )
}

/// Activities a BasicMotions detector learns as normal.
pub const BASICMOTIONS_NORMAL: [&str; 2] = ["Standing", "Walking"];
/// Samples per BasicMotions window, and the step between windows.
pub const BASICMOTIONS_WINDOW: (usize, usize) = (20, 10);

/// A firmware case that streams the BasicMotions test recordings, window by
/// window, through a detector file, with labels (Running and Badminton are
/// anomalies) for the firmware's hit and false-alarm report.
pub fn basicmotions_stream_case(dir: &Path, detector: &[u8]) -> anyhow::Result<()> {
    let normal: Vec<String> = BASICMOTIONS_NORMAL.map(String::from).to_vec();
    let (length, stride) = BASICMOTIONS_WINDOW;
    let (windows, labels) = series_windows(&basicmotions("TEST")?, length, stride, &normal)?;
    write_case(dir, detector, &windows)?;
    write_labels(dir, &labels)
}

/// A firmware case whose detector is learned on the device: the recipe as
/// its model; `stream` (the recipe's learning and calibration inputs, all
/// normal) and then `test` as its inputs (labels: 0 for the stream, then
/// `test_labels`); as expected values, the scores of the detector the
/// host's run of the device's learner learns from `stream`, which is
/// returned.
pub fn write_learn_case(
    dir: &Path,
    recipe: &tinygen_runtime::learn::RecipeSpec,
    stream: &[f32],
    test: &[f32],
    test_labels: &[f64],
) -> anyhow::Result<Vec<u8>> {
    let learned = tinygen::detector::on_device::learn_on_host(recipe, stream)?;
    let taken = stream.len() / recipe.input_len();
    let inputs = [stream, test].concat();
    let labels: Vec<f64> = std::iter::repeat_n(0.0, taken)
        .chain(test_labels.iter().copied())
        .collect();
    write_case(dir, &learned.file, &inputs)?;
    write_labels(dir, &labels)?;
    let recipe = recipe
        .encode()
        .map_err(|e| anyhow::anyhow!("recipe: {e}"))?;
    write_atomic(&dir.join("model.tgm"), &recipe)?;
    Ok(learned.file)
}

/// Builds the firmware (release) for `core`, embedding the cases under
/// `cases`; returns the ELF path.
pub fn build_firmware(cases: &Path, core: Core, features: &[&str]) -> anyhow::Result<PathBuf> {
    let firmware = root().join("firmware");
    let target_dir = target_dir().join("firmware");
    let cases = cases
        .canonicalize()
        .with_context(|| format!("no case directory {}", cases.display()))?;
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(&firmware)
        .args(["build", "--release", "--quiet", "--target", core.target()])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("TINYGEN_FW_CASES", &cases)
        // The host's flags must not leak into the cross build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if !features.is_empty() {
        cmd.arg("--features").arg(features.join(","));
    }
    let status = cmd.status().context("cannot run cargo for the firmware")?;
    ensure!(
        status.success(),
        "firmware build for the {} failed",
        core.name()
    );
    Ok(target_dir
        .join(core.target())
        .join("release")
        .join("tinygen-firmware"))
}

/// Output of one QEMU run.
#[derive(Debug)]
pub struct QemuRun {
    /// Whether the firmware exited with success.
    pub success: bool,
    /// Everything the firmware printed over semihosting.
    pub stdout: String,
    /// QEMU's own messages (and the icount plugin's lines).
    pub stderr: String,
}

/// Runs an ELF built for `core` on its emulated machine, optionally with
/// the instruction counting plugin between the firmware's marker functions.
pub fn run_qemu(elf: &Path, core: Core, icount: Option<&Path>) -> anyhow::Result<QemuRun> {
    let (qemu, machine) = core.qemu();
    let mut cmd = Command::new("timeout");
    cmd.args(["120", qemu])
        .args(machine)
        .args([
            "-nographic",
            "-semihosting-config",
            "enable=on,target=native",
        ])
        .arg("-kernel")
        .arg(elf);
    if let Some(plugin) = icount {
        let start = symbol_address(elf, "tinygen_bench_start")?;
        let end = symbol_address(elf, "tinygen_bench_end")?;
        cmd.arg("-plugin")
            .arg(format!(
                "{},start={start:#x},end={end:#x}",
                plugin.display()
            ))
            .args(["-d", "plugin"]);
    }
    let out = cmd.output().with_context(|| format!("cannot run {qemu}"))?;
    Ok(QemuRun {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Overlapping input rows stored once (the Rust firmware's build script
/// does the same).
mod overlap {
    include!("../../firmware/overlap.rs");

    #[cfg(test)]
    mod tests {
        use super::overlapped;

        fn rebuilt(series: &[&u32], starts: &[usize], dim: usize) -> Vec<Vec<u32>> {
            starts
                .iter()
                .map(|&s| series[s..s + dim].iter().map(|&&v| v).collect())
                .collect()
        }

        #[test]
        fn windows_that_share_samples_are_stored_once() {
            // Windows of 4 values, stride 2, over 0..10, then an unrelated row.
            let mut rows: Vec<Vec<u32>> = (0..4).map(|w| (2 * w..2 * w + 4).collect()).collect();
            rows.push(vec![100, 101, 102, 103]);
            let (series, starts) = overlapped(&rows);
            assert_eq!(starts, [0, 2, 4, 6, 10]);
            assert_eq!(series.len(), 14);
            assert_eq!(rebuilt(&series, &starts, 4), rows);
        }

        #[test]
        fn equal_rows_share_and_bits_decide() {
            // 0.0 and -0.0 compare equal as floats: compared by bits they
            // must not share storage.
            let (zero, minus_zero) = (0.0f32.to_bits(), (-0.0f32).to_bits());
            let rows = vec![vec![1, zero], vec![1, zero], vec![minus_zero, 7]];
            let (series, starts) = overlapped(&rows);
            assert_eq!(starts, [0, 0, 2]);
            assert_eq!(rebuilt(&series, &starts, 2), rows);
            // As floats, -0.0 would take 0.0's place: why the C writer
            // compares bits.
            let floats: Vec<Vec<f32>> = rows
                .iter()
                .map(|r| r.iter().map(|&b| f32::from_bits(b)).collect())
                .collect();
            assert_eq!(overlapped(&floats).1, [0, 0, 1]);
        }
    }
}

/// Flash reserved for the Rust firmware's own code and constants when a
/// suite is split into images (about 120 KB on the Cortex-M0, whose
/// soft-float code is the largest, since the on-device learner brought
/// f64 arithmetic, the diffusion sampler sines and cosines, and the
/// network layers an integer fused multiply-add).
const CODE_RESERVE: u64 = 132 << 10;

/// The same for the C firmware (its Cortex-M0 build, the one that splits:
/// up to 106 KB of code with the on-device learner and newlib, and the
/// C tables' padding the estimate of a case's bytes leaves out).
const C_CODE_RESERVE: u64 = 120 << 10;

/// Flash a case directory takes in the firmware, at most: the model file,
/// 4 bytes per value of the CSV files, 1 per label (both firmwares store
/// overlapping input rows once, so windows may take less).
fn case_bytes(case: &Path) -> anyhow::Result<u64> {
    let mut bytes = std::fs::metadata(case.join("model.tgm"))?.len();
    for (name, width) in [
        ("inputs.csv", 4),
        ("expected.csv", 4),
        ("samples.csv", 4),
        ("labels.csv", 1),
    ] {
        if let Ok(text) = std::fs::read_to_string(case.join(name)) {
            let values: usize = text.lines().map(|l| l.split(',').count()).sum();
            bytes += width * values as u64;
        }
    }
    Ok(bytes)
}

/// Whether the model of the case directory `case` can fit `core`'s flash
/// beside the firmware's code (its test vectors may still need an image of
/// their own, and the link has the last word).
pub fn model_fits(case: &Path, core: Core) -> anyhow::Result<bool> {
    let model = std::fs::metadata(case.join("model.tgm"))?.len();
    Ok(model <= core.flash_bytes().saturating_sub(CODE_RESERVE))
}

/// Splits the cases under `dir` into firmware images that fit `core`'s
/// flash: `dir` itself when everything fits, otherwise directories of
/// links to the cases, packed largest first into the first image with room.
/// A case too big for any image gets one of its own, whose link then fails
/// with the linker's message.
pub fn case_images(dir: &Path, core: Core) -> anyhow::Result<Vec<PathBuf>> {
    case_images_in(dir, core, &target_dir().join("case-images"), CODE_RESERVE)
}

/// [`case_images`] for the C firmware, under `c-case-images`.
pub fn c_case_images(dir: &Path, core: Core) -> anyhow::Result<Vec<PathBuf>> {
    case_images_in(
        dir,
        core,
        &target_dir().join("c-case-images"),
        C_CODE_RESERVE,
    )
}

/// [`case_images`] with the images' directories under `under` (where
/// they are made anew), so that two suites can be split at once, and
/// `reserve` bytes of flash left for the firmware's code.
pub fn case_images_in(
    dir: &Path,
    core: Core,
    under: &Path,
    reserve: u64,
) -> anyhow::Result<Vec<PathBuf>> {
    let budget = core.flash_bytes().saturating_sub(reserve);
    let mut cases = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("no case directory {}", dir.display()))?
    {
        let path = entry?.path();
        if path.join("model.tgm").is_file() {
            let bytes = case_bytes(&path)?;
            cases.push((path, bytes));
        }
    }
    if cases.iter().map(|(_, b)| b).sum::<u64>() <= budget {
        return Ok(vec![dir.to_path_buf()]);
    }
    cases.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut images: Vec<(Vec<PathBuf>, u64)> = Vec::new();
    for (case, bytes) in cases {
        match images.iter_mut().find(|(_, used)| used + bytes <= budget) {
            Some((members, used)) => {
                members.push(case);
                *used += bytes;
            }
            None => images.push((vec![case], bytes)),
        }
    }
    let root = under.join(core.target());
    std::fs::remove_dir_all(&root).ok();
    let mut dirs = Vec::new();
    for (i, (members, _)) in images.iter().enumerate() {
        let image = root.join(format!("image-{i}"));
        std::fs::create_dir_all(&image)?;
        for case in members {
            let case = case.canonicalize()?;
            let name = case.file_name().context("case without a name")?;
            std::os::unix::fs::symlink(&case, image.join(name))?;
        }
        dirs.push(image);
    }
    Ok(dirs)
}

/// Builds and runs the cases under `dir` on `core`, split into images that
/// fit its flash ([`case_images`]); one run per image, in order.
pub fn run_suite(
    dir: &Path,
    core: Core,
    features: &[&str],
    icount: Option<&Path>,
) -> anyhow::Result<Vec<QemuRun>> {
    case_images(dir, core)?
        .iter()
        .map(|image| run_qemu(&build_firmware(image, core, features)?, core, icount))
        .collect()
}

/// Directory of the LLVM tools that `rustup component add llvm-tools` installs.
pub fn llvm_tool(name: &str) -> anyhow::Result<PathBuf> {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()?;
    let sysroot = String::from_utf8(sysroot.stdout)?.trim().to_string();
    let lib = Path::new(&sysroot).join("lib").join("rustlib");
    for entry in std::fs::read_dir(&lib)? {
        let tool = entry?.path().join("bin").join(name);
        if tool.is_file() {
            return Ok(tool);
        }
    }
    bail!("{name} not found: rustup component add llvm-tools")
}

/// Address of a symbol in an ELF (via llvm-nm).
pub fn symbol_address(elf: &Path, symbol: &str) -> anyhow::Result<u64> {
    let out = Command::new(llvm_tool("llvm-nm")?).arg(elf).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        if let (Some(addr), Some(_), Some(name)) = (parts.next(), parts.next(), parts.next())
            && name == symbol
        {
            return Ok(u64::from_str_radix(addr, 16)?);
        }
    }
    bail!("symbol {symbol} not found in {}", elf.display())
}

/// Instructions any core may spend rejecting the firmware's hostile 32-byte
/// model file (header, CRC and spec checks; see BENCHMARKS.md):
/// parsing does work bounded by the file's length, not by the counts it claims.
pub const HOSTILE_REJECTION_BUDGET: u64 = 5_000;

/// Builds the instruction-counting QEMU plugin (C, needs gcc); returns the .so path.
pub fn build_icount_plugin() -> anyhow::Result<PathBuf> {
    let src = root().join("xtask").join("icount").join("icount.c");
    let out = target_dir().join("libicount.so");
    let status = Command::new("gcc")
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .context("cannot run gcc")?;
    ensure!(status.success(), "building the icount plugin failed");
    Ok(out)
}

/// The `icount N` lines the plugin printed, in order.
pub fn icounts(stderr: &str) -> Vec<u64> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("icount "))
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

/// Flash (text + rodata) and static RAM (data + bss) of an ELF, via llvm-size.
pub fn elf_size(elf: &Path) -> anyhow::Result<(u64, u64)> {
    let out = Command::new(llvm_tool("llvm-size")?).arg(elf).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1).context("llvm-size printed nothing")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .take(3)
        .map(|s| s.parse().unwrap_or(0))
        .collect();
    ensure!(v.len() == 3, "unexpected llvm-size output: {text}");
    Ok((v[0] + v[1], v[1] + v[2]))
}

/// The C firmware's name of a core it runs on (`capi/examples/cmake`'s
/// `TINYGEN_CORE`): the Cortex-M4F and the Cortex-M0.
pub fn c_core(core: Core) -> Option<&'static str> {
    match core {
        Core::M4f => Some("m4f"),
        Core::M0 => Some("m0"),
        _ => None,
    }
}

/// What is missing to build the C firmware (Debian's gcc-arm-none-eabi,
/// libnewlib-arm-none-eabi and cmake), if anything.
pub fn c_firmware_missing() -> Option<String> {
    for (program, package) in [
        ("arm-none-eabi-gcc", "gcc-arm-none-eabi"),
        ("cmake", "cmake"),
    ] {
        if !has_program(program) {
            return Some(format!(
                "{program} is not installed (apt-get install {package})"
            ));
        }
    }
    let newlib = Command::new("arm-none-eabi-gcc")
        .args([
            "-mthumb",
            "-mcpu=cortex-m0",
            "-print-file-name=librdimon_nano.a",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if !Path::new(&newlib).is_absolute() {
        return Some(
            "newlib-nano is not installed (apt-get install libnewlib-arm-none-eabi)".into(),
        );
    }
    None
}

/// A C99 hexadecimal floating literal that is exactly `v` (finite).
fn c_float(v: f32) -> String {
    let bits = v.to_bits();
    let sign = if bits >> 31 == 1 { "-" } else { "" };
    let exponent = ((bits >> 23) & 0xff) as i32;
    let mantissa = (bits & 0x7f_ffff) << 1; // 24 bits, 6 hex digits
    match exponent {
        0 if mantissa == 0 => format!("{sign}0x0p+0f"),
        0 => format!("{sign}0x0.{mantissa:06x}p-126f"),
        _ => format!("{sign}0x1.{mantissa:06x}p{:+}f", exponent - 127),
    }
}

/// The values of a case CSV file, row by row (`skip_header` drops the first line).
fn csv_rows(path: &Path, skip_header: bool) -> anyhow::Result<Vec<Vec<f32>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .skip(usize::from(skip_header))
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split(',')
                .map(|v| {
                    v.trim()
                        .parse::<f32>()
                        .with_context(|| format!("{}: {v:?}", path.display()))
                })
                .collect()
        })
        .collect()
}

/// Writes the C firmware's cases source (`capi/examples/cmake/firmware/
/// cases.h`'s `tg_cases`) for every case directory under `dir` (as the Rust
/// firmware embeds them: model.tgm, inputs.csv, expected.csv, optional
/// samples.csv and labels.csv): models as aligned arrays (the trainer's
/// `--format c` writer), inputs as exact hexadecimal floats (overlapping
/// rows stored once, with each row's start), expected outputs and samples
/// as f32 bit patterns.
pub fn write_c_cases(dir: &Path, out: &Path) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("no case directory {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    cases.retain(|p| p.join("model.tgm").is_file());
    cases.sort();
    ensure!(!cases.is_empty(), "no cases under {}", dir.display());
    let mut src = String::from(
        "/* Test cases for the C firmware, written by `cargo xtask c-cases`. */\n\
         #include \"cases.h\"\n\n",
    );
    let mut table = String::new();
    for (i, case) in cases.iter().enumerate() {
        let name = case.file_name().context("case without a name")?;
        let name = name.to_string_lossy();
        let model = std::fs::read(case.join("model.tgm"))?;
        let inputs = csv_rows(&case.join("inputs.csv"), false)?;
        let expected = csv_rows(&case.join("expected.csv"), true)?;
        ensure!(
            inputs.len() == expected.len() && !inputs.is_empty(),
            "{}: inputs and expected differ in length",
            case.display()
        );
        let (dim, out_dim) = (inputs[0].len(), expected[0].len());
        let samples = match case.join("samples.csv") {
            p if p.is_file() => csv_rows(&p, true)?,
            _ => Vec::new(),
        };
        let labels: Vec<u8> = match std::fs::read_to_string(case.join("labels.csv")) {
            Ok(text) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| u8::from(l.trim() != "0"))
                .collect(),
            Err(_) => Vec::new(),
        };
        let flat = |rows: &[Vec<f32>], f: &dyn Fn(f32) -> String| -> String {
            rows.iter()
                .flatten()
                .map(|&v| f(v))
                .collect::<Vec<_>>()
                .chunks(6)
                .map(|c| format!("    {},\n", c.join(", ")))
                .collect()
        };
        let hex_bits = |v: f32| format!("0x{:08x}u", v.to_bits());
        src.push_str(&tinygen::c_source::model_array(
            &format!("model_{i}"),
            &model,
        )?);
        // Overlapping rows (windows sharing samples) stored once, compared
        // by their bits (0.0 and -0.0 differ).
        let bits: Vec<Vec<u32>> = inputs
            .iter()
            .map(|r| r.iter().map(|v| v.to_bits()).collect())
            .collect();
        let (series, starts) = overlap::overlapped(&bits);
        let series: Vec<f32> = series.into_iter().map(|&b| f32::from_bits(b)).collect();
        let _ = writeln!(
            src,
            "static const float inputs_{i}[] = {{\n{}}};",
            flat(&[series], &c_float)
        );
        let starts: Vec<String> = starts.iter().map(usize::to_string).collect();
        let _ = writeln!(
            src,
            "static const uint32_t starts_{i}[] = {{{}}};",
            starts.join(", ")
        );
        let _ = writeln!(
            src,
            "static const uint32_t expected_{i}[] = {{\n{}}};",
            flat(&expected, &hex_bits)
        );
        let samples_ref = if samples.is_empty() {
            "NULL".to_string()
        } else {
            let _ = writeln!(
                src,
                "static const uint32_t samples_{i}[] = {{\n{}}};",
                flat(&samples, &hex_bits)
            );
            format!("samples_{i}")
        };
        let labels_ref = if labels.is_empty() {
            "NULL".to_string()
        } else {
            let text: Vec<String> = labels.iter().map(u8::to_string).collect();
            let _ = writeln!(
                src,
                "static const uint8_t labels_{i}[] = {{{}}};",
                text.join(", ")
            );
            format!("labels_{i}")
        };
        let _ = writeln!(
            table,
            "    {{{name:?}, model_{i}, sizeof model_{i}, {dim}, {out_dim}, {}, inputs_{i}, \
             starts_{i}, expected_{i}, {samples_ref}, {}, {labels_ref}, {}}},",
            inputs.len(),
            samples.len(),
            labels.len()
        );
    }
    let _ = write!(
        src,
        "\nconst struct tg_case tg_cases[] = {{\n{table}}};\n\
         const size_t tg_case_count = sizeof tg_cases / sizeof tg_cases[0];\n"
    );
    write_atomic(out, src.as_bytes())
}

/// Builds the C firmware (`capi/examples/cmake`) for `core` with CMake,
/// over the cases source `cases` (see [`write_c_cases`]); returns the ELF.
/// Without `learner` the firmware leaves the on-device learner out (and
/// its code: the Cortex-M0's largest case fills the flash without it).
/// The static library is built by cargo, called from CMake, in
/// `<target dir>/capi`.
pub fn build_c_firmware(
    cases: &Path,
    core: Core,
    build: &Path,
    learner: bool,
) -> anyhow::Result<PathBuf> {
    let name = c_core(core).with_context(|| format!("no C firmware for the {}", core.name()))?;
    let example = root().join("capi/examples/cmake");
    forget_other_checkouts_cache(build, &example)?;
    let status = Command::new("cmake")
        .arg("-S")
        .arg(&example)
        .arg("-B")
        .arg(build)
        .arg(format!(
            "-DCMAKE_TOOLCHAIN_FILE={}",
            example.join("toolchain-arm-none-eabi.cmake").display()
        ))
        .arg(format!("-DTINYGEN_CORE={name}"))
        .arg(format!("-DTINYGEN_CASES={}", cases.display()))
        .arg(format!(
            "-DTINYGEN_LEARNER={}",
            if learner { "ON" } else { "OFF" }
        ))
        .arg(format!(
            "-DTINYGEN_CARGO_TARGET_DIR={}",
            target_dir().join("capi").display()
        ))
        .arg("-DCMAKE_BUILD_TYPE=Release")
        .stdout(std::process::Stdio::null())
        .status()
        .context("cannot run cmake")?;
    ensure!(status.success(), "cmake could not configure the C firmware");
    let out = Command::new("cmake")
        .arg("--build")
        .arg(build)
        .output()
        .context("cannot run cmake --build")?;
    ensure!(
        out.status.success(),
        "the C firmware for the {} did not build:\n{}{}",
        core.name(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(build.join("tinygen_cases"))
}

/// Removes `build`'s CMake cache when it was configured from another source
/// directory (another checkout sharing the target directory), which CMake
/// refuses to reconfigure.
fn forget_other_checkouts_cache(build: &Path, source: &Path) -> anyhow::Result<()> {
    let Ok(cache) = std::fs::read_to_string(build.join("CMakeCache.txt")) else {
        return Ok(());
    };
    let ours = format!("CMAKE_HOME_DIRECTORY:INTERNAL={}", source.display());
    if !cache.lines().any(|line| line == ours) {
        std::fs::remove_file(build.join("CMakeCache.txt"))?;
        let files = build.join("CMakeFiles");
        if files.exists() {
            std::fs::remove_dir_all(files)?;
        }
    }
    Ok(())
}

/// Whether a case under `dir` is a recipe (learned on the device).
fn has_recipe(dir: &Path) -> anyhow::Result<bool> {
    for entry in std::fs::read_dir(dir)? {
        let model = entry?.path().join("model.tgm");
        if model.is_file() {
            let bytes = std::fs::read(&model)?;
            let header = tinygen_runtime::format::read_header(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))?;
            if header.kind == tinygen_runtime::ModelKind::Recipe {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Builds and runs the C firmware on `core` over the cases under `dir`,
/// split into images that fit its flash as the Rust firmware's
/// ([`case_images`]); one run per image, with each image's ELF.
pub fn run_c_suite(dir: &Path, core: Core) -> anyhow::Result<Vec<(PathBuf, QemuRun)>> {
    let mut runs = Vec::new();
    let images = c_case_images(dir, core)?;
    for (i, image) in images.iter().enumerate() {
        let build = target_dir()
            .join("c-firmware")
            .join(core.target())
            .join(format!("image-{i}"));
        std::fs::create_dir_all(&build)?;
        let cases = build.join("cases.c");
        write_c_cases(image, &cases)?;
        let elf = build_c_firmware(&cases, core, &build, has_recipe(image)?)?;
        runs.push((elf.clone(), run_qemu(&elf, core, None)?));
    }
    Ok(runs)
}

/// Builds the C API's static library (`cargo build -p tinygen-capi
/// --profile capi`) for a Rust target, or the host when `None`, in
/// `<target dir>/capi` (where the C firmware's CMake build puts it too);
/// returns the archive's path.
pub fn build_capi(target: Option<&str>) -> anyhow::Result<PathBuf> {
    let dir = target_dir().join("capi");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(root())
        .args([
            "build",
            "--quiet",
            "-p",
            "tinygen-capi",
            "--profile",
            "capi",
        ])
        .arg("--target-dir")
        .arg(&dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    let mut lib = dir;
    if let Some(target) = target {
        cmd.args(["--target", target]);
        lib = lib.join(target);
    }
    let status = cmd.status().context("cannot run cargo for the C API")?;
    ensure!(
        status.success(),
        "the C API did not build for {}",
        target.unwrap_or("the host")
    );
    Ok(lib.join("capi").join("libtinygen_capi.a"))
}
