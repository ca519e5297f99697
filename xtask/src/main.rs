//! `cargo xtask <task>`: the steps plain cargo can't express.
//!
//! * `demo`   fit a mixture and a stream detector on bundled data, inspect
//!   and score with them, train a VAE on the bundled digits and export its
//!   decoder, and check all of it on the emulated Cortex-M4F (the device
//!   also samples digits and prints one): the main job, end to end.
//! * `test`   every test: the workspace's tests (QEMU parity included) and a
//!   no_std build of the runtime for the Cortex-M4F.
//! * `qemu [CASES_DIR]`  build the firmware with the cases in CASES_DIR
//!   (default `models/`) and run it under QEMU.
//! * `bench-mcu`  exact instructions per log-density call on the
//!   Cortex-M4F (K = 8, D = 16, full and diag) and firmware size.
//! * `bench-host` EM time per iteration and scoring throughput against
//!   scikit-learn on the same data, in one run.
//! * `bench-anomaly` mean ROC-AUC of tinygen's detectors over the 17 ODDS
//!   sets with PyOD's splits (needs ../shared or TINYGEN_SHARED), against
//!   the published table.
//! * `bench-decode` host latency of one decode (batch 1): the runtime
//!   crate against candle on the same weights, in one run.
//! * `bench-neural [--quality]` VAE training steps per second against
//!   PyTorch on the same MNIST batches and threads, in one run; with
//!   `--quality` also the 10-epoch MNIST VAE and the ring-prior SWAE
//!   (needs MNIST in data/mnist or ../shared, and torch for the python in
//!   TINYGEN_TORCH_PYTHON).
//! * `models` regenerate the example models in `models/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};
use tinygen::density::gmm::{EmOptions, em_from_responsibilities, fit_em};
use tinygen_runtime::gmm::Covariance;
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
        Some("bench-host") => bench_host(),
        Some("bench-anomaly") => bench_anomaly(),
        Some("bench-decode") => bench_decode(),
        Some("bench-neural") => bench_neural(args.get(1).map(String::as_str) == Some("--quality")),
        Some("models") => models(),
        _ => bail!(
            "usage: cargo xtask demo | test | qemu [CASES_DIR] | bench-mcu | bench-host | bench-anomaly | bench-decode | bench-neural [--quality] | models"
        ),
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

/// The example model: one full-covariance Gaussian on the standardized
/// bundled Cardio data (the PyOD GMM detector; more components also fit
/// the outliers and flag them less well, see models/README.md).
fn fit_cardio(out: &str) -> anyhow::Result<()> {
    tinygen(&[
        "fit",
        "gmm",
        "--data",
        "data/cardio.csv.gz",
        "--label-column",
        "label",
        "--components",
        "1",
        "--covariance",
        "full",
        "--standardize",
        "--quiet",
        "--out",
        out,
    ])
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
    fit_cardio(&model_s)?;
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
    let auc = roc_auc_of_scores(&scores, &root().join("data/cardio.csv.gz"))?;
    println!("ROC-AUC of -log-density against the outlier labels (all rows, in-sample): {auc:.4}");

    // A stream detector: smartwatch windows, Standing and Walking are normal.
    let detector = out.join("basicmotions.tgm");
    let detector_s = detector.to_string_lossy().into_owned();
    let (length, stride) = xtask::BASICMOTIONS_WINDOW;
    let (length, stride) = (length.to_string(), stride.to_string());
    tinygen(&[
        "fit",
        "detector",
        "--data",
        "data/basicmotions/BasicMotions_TRAIN.ts.gz",
        "--normal-classes",
        &xtask::BASICMOTIONS_NORMAL.join(","),
        "--window",
        &length,
        "--stride",
        &stride,
        "--alarm-rate",
        "0.01",
        "--out",
        &detector_s,
    ])?;
    tinygen(&["info", &detector_s])?;

    // A generative model: a VAE on the bundled 8x8 digits, its decoder
    // exported for the device and sampled on the host like the board does.
    let vae = out.join("digits-vae");
    std::fs::remove_dir_all(&vae).ok();
    let (vae_s, decoder) = (
        vae.to_string_lossy().to_string(),
        out.join("digits-decoder.tgm"),
    );
    let decoder_s = decoder.to_string_lossy().to_string();
    tinygen(&[
        "fit",
        "vae",
        "--data",
        "digits",
        "--hidden",
        "128",
        "--latent",
        "8",
        "--epochs",
        "60",
        "--batch-size",
        "64",
        "--log",
        "quiet",
        "--out",
        &vae_s,
    ])?;
    tinygen(&["export", &vae_s, "--part", "decoder", "--out", &decoder_s])?;
    let grid = out.join("digits-samples.png");
    tinygen(&[
        "sample",
        "--model",
        &decoder_s,
        "-n",
        "64",
        "--seed",
        "0",
        "--out",
        &grid.to_string_lossy(),
    ])?;
    println!(
        "plots of the run in {}; host samples in {}",
        vae.display(),
        grid.display()
    );

    xtask::install_prerequisites()?;
    let cases = out.join("cases");
    std::fs::remove_dir_all(&cases).ok();
    let points = first_rows(&root().join("data/cardio.csv.gz"), "label", 64)?;
    write_case(&cases.join("cardio"), &std::fs::read(&model)?, &points)?;
    xtask::basicmotions_stream_case(
        &cases.join("basicmotions_stream"),
        &std::fs::read(&detector)?,
    )?;
    let latents = tinygen::nn::prior::Prior::Gaussian.sample(
        4,
        8,
        None,
        &mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1),
    );
    write_case(
        &cases.join("digits_decoder"),
        &std::fs::read(&decoder)?,
        &latents,
    )?;
    qemu(&cases)
}

/// ROC-AUC of `-log_density` (from a `tinygen score` CSV) against a data
/// file's `label` column (1 = outlier).
fn roc_auc_of_scores(scores: &Path, data: &Path) -> anyhow::Result<f64> {
    let text = std::fs::read_to_string(scores)?;
    let outlier_score: Vec<f64> = text
        .lines()
        .skip(1)
        .map(|l| l.parse::<f64>().map(|v| -v))
        .collect::<Result<_, _>>()?;
    let opts = tinygen::data::LoadOptions {
        label_column: Some("label".into()),
        drop_columns: vec![],
    };
    let labels = tinygen::data::load(data, &opts)?
        .labels
        .context("no labels")?;
    let is_outlier: Vec<bool> = labels.iter().map(|&l| l == 1.0).collect();
    tinygen::eval::roc_auc(&outlier_score, &is_outlier).context("ROC-AUC undefined")
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
    run(cargo().args([
        "build",
        "-p",
        "tinygen-runtime",
        "--target",
        xtask::TARGET,
        "--features",
        "defmt,micromath",
    ]))?;
    // Run the workspace's tests, echoing their output, and close with one
    // summary line over every test binary.
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--features", "tinygen/onnx"])
        .current_dir(root())
        .stdout(std::process::Stdio::piped());
    eprintln!("$ {}", describe(&cmd));
    let mut child = cmd.spawn().context("cannot run cargo test")?;
    let (mut passed, mut failed) = (0u64, 0u64);
    let stdout = child.stdout.take().context("no stdout")?;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |word: &str| {
                rest.split(';')
                    .find_map(|part| {
                        part.trim()
                            .strip_suffix(word)?
                            .trim()
                            .rsplit(' ')
                            .next()?
                            .parse::<u64>()
                            .ok()
                    })
                    .unwrap_or(0)
            };
            passed += count(" passed");
            failed += count(" failed");
        }
    }
    let status = child.wait()?;
    println!("{passed} passed, {failed} failed");
    ensure!(status.success() && failed == 0, "tests failed");
    Ok(())
}

/// Instructions per `log_density` call on the Cortex-M4F, exact (QEMU
/// plugin): K = 8, D = 16 mixtures (diag, full), a 256-point KDE in
/// D = 16, and a stream detector scoring one 6 x 20 window, with libm and
/// with micromath.
fn bench_mcu() -> anyhow::Result<()> {
    use tinygen::density::kde::{KdeOptions, fit_kde};

    xtask::install_prerequisites()?;
    let cases = xtask::target_dir().join("bench-mcu-cases");
    std::fs::remove_dir_all(&cases).ok();
    let x = xtask::blobs(4000, 16, 8, 1);
    // Training rows, and midpoints between rows of different blobs (where
    // several components matter and exp/ln accuracy shows).
    let row = |r: usize| x.row(r).iter().map(|&v| v as f32).collect::<Vec<_>>();
    let points: Vec<f32> = (0..64)
        .flat_map(|i| {
            if i < 32 {
                row(i)
            } else {
                row(i)
                    .iter()
                    .zip(row(i + 1))
                    .map(|(a, b)| 0.5 * (a + b))
                    .collect()
            }
        })
        .collect();
    // Case directories are embedded in name order; the first is also the
    // one the firmware corrupts, so it must be small.
    let mut names = Vec::new();
    for (name, covariance) in [
        ("a_diag_k8_d16", Covariance::Diag),
        ("b_full_k8_d16", Covariance::Full),
    ] {
        let opts = EmOptions {
            components: 8,
            covariance,
            seed: 1,
            ..EmOptions::default()
        };
        let (model, _) = fit_em(&x, &opts, &mut |_, _, _| {})?;
        write_case(&cases.join(name), &model.params(None).encode()?, &points)?;
        names.push(name);
    }
    let kde_opts = KdeOptions {
        max_points: Some(256),
        ..KdeOptions::default()
    };
    let kde = fit_kde(&x, None, &kde_opts)?;
    let kde_file = kde
        .mixture
        .params(None)
        .encode_as(tinygen_runtime::ModelKind::Kde)?;
    write_case(&cases.join("c_kde_m256_d16"), &kde_file, &points)?;
    names.push("c_kde_m256_d16");
    // A stream detector: one 20-sample window of 6 smartwatch channels per call.
    let normal: Vec<String> = xtask::BASICMOTIONS_NORMAL.map(String::from).to_vec();
    let (length, stride) = xtask::BASICMOTIONS_WINDOW;
    let train = xtask::basicmotions("TRAIN")?;
    let (windows, labels) = tinygen::anomaly::series_windows(&train, length, stride, &normal)?;
    let fit = tinygen::anomaly::DetectorFit {
        density: tinygen::anomaly::Density::Gmm(tinygen::anomaly::GmmDensity::smoothed(0)),
        alarm_rate: 0.01,
        holdout: 0.2,
        seed: 0,
        neural: None,
    };
    let features = tinygen_runtime::detector::Features::WindowStats {
        channels: 6,
        length: length as u32,
    };
    let fitted = tinygen::anomaly::fit_detector(features, 24, &windows, Some(&labels), &fit)?;
    xtask::basicmotions_stream_case(&cases.join("d_detector_6x20"), &fitted.bytes)?;
    names.push("d_detector_6x20");
    // The same detector with autoencoder scores (`--neural ae` defaults:
    // 24 -> 32 -> 6 -> 32 -> 24 and a Gaussian on the codes).
    let neural_fit = tinygen::anomaly::DetectorFit {
        neural: Some(tinygen::neural_scores::NeuralOptions::default()),
        ..fit
    };
    let neural =
        tinygen::anomaly::fit_detector(features, 24, &windows, Some(&labels), &neural_fit)?;
    xtask::basicmotions_stream_case(&cases.join("d_detector_ae_6x20"), &neural.bytes)?;
    names.push("d_detector_ae_6x20");
    // An MNIST-sized decoder: latent 16 -> 128 relu -> 784 sigmoid (the
    // architecture of models/mnist-vae-decoder; weights untrained).
    let decoder = tinygen::nn::network::Network::new(
        tinygen::nn::config::NetworkConfig {
            image: Some((28, 28)),
            prior: Some(tinygen::nn::prior::Prior::Gaussian),
            ..tinygen::nn::config::NetworkConfig::new(
                tinygen::nn::config::ModelKind::Vae,
                784,
                vec![128],
                16,
            )
        },
        0,
    )?;
    let decoder_file =
        tinygen::nn::export::export_tgm(&decoder, tinygen::nn::export::Part::Decoder, None)?;
    let macs = 16 * 128 + 128 * 784;
    let latents = tinygen::nn::prior::Prior::Gaussian.sample(
        4,
        16,
        None,
        &mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(3),
    );
    write_case(&cases.join("e_decoder_16_128_784"), &decoder_file, &latents)?;
    names.push("e_decoder_16_128_784");

    let plugin = xtask::build_icount_plugin()?;
    println!(
        "| build | {} | flash (B) | static RAM (B) |",
        names.join(" | ")
    );
    println!("|{}", "---|".repeat(names.len() + 3));
    let mut accuracy = Vec::new();
    let mut per_mac = Vec::new();
    for features in [&[][..], &["micromath"][..]] {
        let elf = build_firmware(&cases, features)?;
        let run = run_qemu(&elf, Some(&plugin))?;
        ensure!(
            run.success,
            "firmware failed:\n{}{}",
            run.stdout,
            run.stderr
        );
        let counts = xtask::icounts(&run.stderr);
        // First region: the empty start/end pair (marker overhead); then one
        // per case; last, the rejection of the hostile model file.
        ensure!(
            counts.len() == names.len() + 2,
            "expected {} icount lines:\n{}",
            names.len() + 2,
            run.stderr
        );
        let (flash, ram) = xtask::elf_size(&elf)?;
        let label = if features.is_empty() {
            "libm (default)"
        } else {
            "micromath"
        };
        accuracy.extend(
            run.stdout
                .lines()
                .filter(|l| l.starts_with("case "))
                .map(|l| format!("{label}: {l}")),
        );
        let per_case: Vec<String> = counts[1..=names.len()]
            .iter()
            .map(|c| (c - counts[0]).to_string())
            .collect();
        println!("| {label} | {} | {flash} | {ram} |", per_case.join(" | "));
        let decode = counts[names.len()] - counts[0];
        per_mac.push(format!(
            "{label}: {decode} instructions per decode, {macs} multiply-accumulates, {:.2} instructions per MAC",
            decode as f64 / macs as f64
        ));
        let hostile = counts[names.len() + 1] - counts[0];
        per_mac.push(format!(
            "{label}: {hostile} instructions to reject the hostile 32-byte model (budget {})",
            xtask::HOSTILE_REJECTION_BUDGET
        ));
    }
    println!();
    for line in per_mac {
        println!("- {line}");
    }
    println!("\nDevice vs host (host values computed with libm):");
    for line in accuracy {
        println!("- {line}");
    }
    Ok(())
}

/// Host timings against scikit-learn on the same data, in one run: EM
/// seconds per iteration, and runtime scoring throughput.
fn bench_host() -> anyhow::Result<()> {
    let dir = xtask::target_dir().join("bench-host");
    let python = std::env::var("TINYGEN_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(root().join("scripts/bench_sklearn.py"))
        .arg("--out")
        .arg(&dir)
        .output()
        .with_context(|| format!("cannot run {python}"))?;
    ensure!(
        out.status.success(),
        "scripts/bench_sklearn.py failed (needs numpy and scikit-learn; set TINYGEN_PYTHON):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sk = String::from_utf8(out.stdout)?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let at = sk
            .find(&format!("\"{name}\": "))
            .with_context(|| format!("{name} missing in {sk}"))?;
        let rest = &sk[at + name.len() + 4..];
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        Ok(rest[..end].trim().parse()?)
    };
    let load = |file: &str| tinygen::data::load(&dir.join(file), &Default::default());
    let data = load("x.npy")?;
    let labels = load("labels.npy")?;
    let x = nalgebra::DMatrix::from_row_slice(data.rows, data.cols, &data.values);
    let k = 8;
    let mut resp = nalgebra::DMatrix::zeros(data.rows, k);
    for (i, &l) in labels.values.iter().enumerate() {
        resp[(i, l as usize)] = 1.0;
    }
    let points = data.to_f32();
    println!(
        "N = {}, D = {}, K = {k}; scikit-learn {}; speedup = scikit-learn time / tinygen time",
        data.rows,
        data.cols,
        sk.split('"').nth(3).unwrap_or("?")
    );
    println!("| measure | covariance | tinygen | scikit-learn | speedup |");
    println!("|---|---|---|---|---|");
    for (name, covariance) in [("full", Covariance::Full), ("diag", Covariance::Diag)] {
        let iters = 10;
        let opts = EmOptions {
            components: k,
            covariance,
            max_iter: iters,
            tol: 0.0,
            ..EmOptions::default()
        };
        let mut model = None;
        let em = median_seconds(|| {
            model =
                Some(em_from_responsibilities(&x, &resp, &opts, &mut |_, _, _| {}).map(|m| m.0));
        }) / iters as f64;
        let model = model.context("no fit")??;
        let sk_em = field(&format!("em_{name}_s_per_iter"))?;
        println!(
            "| EM time per iteration | {name} | {:.1} ms | {:.1} ms | {:.2} |",
            em * 1e3,
            sk_em * 1e3,
            sk_em / em
        );

        let file = tinygen::io::AlignedBytes::new(&model.params(None).encode()?);
        let gmm = tinygen_runtime::Gmm::from_bytes(file.as_bytes())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut scores = vec![0f32; data.rows];
        let batch = median_seconds(|| gmm.log_density_batch(&points, &mut scores).unwrap());
        let per_sample = batch / data.rows as f64;
        let sk_batch = 1.0 / field(&format!("score_{name}_samples_per_s"))?;
        println!(
            "| scoring, batch of N, per sample | {name} | {:.3} us | {:.3} us | {:.2} |",
            per_sample * 1e6,
            sk_batch * 1e6,
            sk_batch / per_sample
        );
        let sk_one = field(&format!("score_{name}_one_call_s"))?;
        println!(
            "| scoring, one sample per call | {name} | {:.3} us | {:.1} us | {:.0} |",
            per_sample * 1e6,
            sk_one * 1e6,
            sk_one / per_sample
        );
    }
    Ok(())
}

/// Mean ROC-AUC over PyOD's 10 splits for every ODDS set, per detector,
/// next to the published GMM and KDE columns.
fn bench_anomaly() -> anyhow::Result<()> {
    use tinygen::anomaly::{Density, GmmDensity, evaluate, read_splits};
    use tinygen::density::kde::KdeOptions;

    let shared = std::env::var_os("TINYGEN_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared"));
    let odds = shared.join("data/odds-pyod");
    let published = std::fs::read_to_string(odds.join("pyod_benchmark_roc.csv"))
        .with_context(|| format!("{} is missing: set TINYGEN_SHARED", odds.display()))?;
    let header: Vec<&str> = published
        .lines()
        .next()
        .context("empty table")?
        .split(',')
        .collect();
    let column = |name: &str| header.iter().position(|h| h.trim() == name);
    let (gmm_col, kde_col) = (
        column("GMM").context("no GMM column")?,
        column("KDE").context("no KDE column")?,
    );
    let ae = tinygen::neural_scores::NeuralOptions::default();
    let detectors = [
        ("GMM K=1 full", Density::Gmm(GmmDensity::pyod()), None),
        (
            "KDE isotropic h=1",
            Density::Kde(KdeOptions {
                isotropic: Some(1.0),
                ..KdeOptions::default()
            }),
            None,
        ),
        (
            "tinygen default",
            Density::Gmm(GmmDensity::smoothed(0)),
            None,
        ),
        (
            "tinygen default + AE scores",
            Density::Gmm(GmmDensity::smoothed(0)),
            Some(&ae),
        ),
    ];
    let inne_col = column("INNE").context("no INNE column")?;
    println!(
        "| data | features | published GMM | {} | published KDE | {} | published INNE | {} | {} | model bytes (max over splits) | with AE |",
        detectors[0].0, detectors[1].0, detectors[2].0, detectors[3].0
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut sums = [0.0f64; 7];
    let mut n = 0;
    for line in published.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let name = fields[0];
        let csv = odds.join(format!("csv/{name}.csv"));
        if !csv.is_file() {
            continue;
        }
        let opts = tinygen::data::LoadOptions {
            label_column: Some("label".into()),
            drop_columns: vec![],
        };
        let set = tinygen::data::load(&csv, &opts)?;
        let splits = read_splits(&odds.join(format!("splits/{name}.txt")), set.rows)?;
        let reports: Vec<_> = detectors
            .iter()
            .map(|(_, d, neural)| evaluate(&set, &splits, d, *neural))
            .collect::<anyhow::Result<_>>()?;
        let ours: Vec<f64> = reports.iter().map(|r| r.roc_auc()).collect();
        let bytes = |r: &tinygen::anomaly::Report| {
            r.per_split.iter().map(|s| s.model_bytes).max().unwrap_or(0)
        };
        let published: Vec<f64> = [gmm_col, kde_col, inne_col]
            .iter()
            .map(|&c| fields[c].parse())
            .collect::<Result<_, _>>()?;
        println!(
            "| {name} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {} | {} |",
            set.cols,
            published[0],
            ours[0],
            published[1],
            ours[1],
            published[2],
            ours[2],
            ours[3],
            bytes(&reports[2]),
            bytes(&reports[3])
        );
        let row = [
            published[0],
            ours[0],
            published[1],
            ours[1],
            published[2],
            ours[2],
            ours[3],
        ];
        for (s, v) in sums.iter_mut().zip(row) {
            *s += v;
        }
        n += 1;
    }
    let m: Vec<f64> = sums.iter().map(|s| s / n as f64).collect();
    println!(
        "| **mean of {n}** | | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | **{:.4}** | {:.4} | | |",
        m[0], m[1], m[2], m[3], m[4], m[5], m[6]
    );
    Ok(())
}

/// Median wall time of three runs of `f`.
fn median_seconds(mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..3)
        .map(|_| {
            let start = std::time::Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[1]
}

fn models() -> anyhow::Result<()> {
    let dir = root().join("models").join("cardio-gmm");
    std::fs::create_dir_all(&dir)?;
    let model = dir.join("model.tgm");
    fit_cardio(&model.to_string_lossy())?;
    let points = first_rows(&root().join("data/cardio.csv.gz"), "label", 32)?;
    write_case(&dir, &std::fs::read(&model)?, &points)?;
    match mnist_dir() {
        Ok(mnist) => mnist_decoder(&mnist),
        Err(e) => {
            eprintln!("models/mnist-vae-decoder not regenerated: {e}");
            Ok(())
        }
    }
}

/// The example MNIST decoder: a VAE with a 16-dimensional latent and one
/// hidden layer of 128, trained for 10 epochs; its decoder as `.tgm` and
/// ONNX, with 4 fixed latents from the prior (seeded) as test vectors.
fn mnist_decoder(mnist: &Path) -> anyhow::Result<()> {
    use rand::SeedableRng;

    let run = xtask::target_dir().join("models-mnist-vae");
    let _ = std::fs::remove_dir_all(&run);
    let (run_s, mnist_s) = (run.to_string_lossy(), mnist.to_string_lossy());
    tinygen(&[
        "fit",
        "vae",
        "--data",
        "mnist",
        "--data-dir",
        &mnist_s,
        "--latent",
        "16",
        "--hidden",
        "128",
        "--epochs",
        "10",
        "--seed",
        "0",
        "--iw-samples",
        "100",
        "--log",
        "quiet",
        "--out",
        &run_s,
    ])?;
    let dir = root().join("models").join("mnist-vae-decoder");
    std::fs::create_dir_all(&dir)?;
    let model = dir.join("model.tgm");
    tinygen(&[
        "export",
        &run_s,
        "--part",
        "decoder",
        "--out",
        &model.to_string_lossy(),
    ])?;
    // The same decoder as ONNX (the `onnx` feature of the binary).
    self::run(
        cargo()
            .args([
                "run",
                "--quiet",
                "--release",
                "-p",
                "tinygen",
                "--features",
                "onnx",
                "--",
            ])
            .args([
                "export", &run_s, "--part", "decoder", "--format", "onnx", "--out",
            ])
            .arg(dir.join("model.onnx")),
    )?;
    std::fs::copy(run.join("metrics.json"), dir.join("metrics.json"))?;
    std::fs::copy(run.join("samples.png"), dir.join("samples.png"))?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
    let latents = tinygen::nn::prior::Prior::Gaussian.sample(4, 16, None, &mut rng);
    write_case(&dir, &std::fs::read(&model)?, &latents)
}

/// The folder holding the MNIST IDX files: data/mnist, or ../shared/data/mnist.
fn mnist_dir() -> anyhow::Result<PathBuf> {
    let shared =
        std::env::var_os("TINYGEN_SHARED").map_or_else(|| root().join("../shared"), PathBuf::from);
    [root().join("data/mnist"), shared.join("data/mnist")]
        .into_iter()
        .find(|d| d.join("train-images-idx3-ubyte.gz").exists())
        .context(
            "MNIST not found: run `tinygen data mnist` (writes data/mnist) or set TINYGEN_SHARED",
        )
}

/// Runs the release `tinygen` binary and returns its standard output.
fn tinygen_output(args: &[&str]) -> anyhow::Result<String> {
    eprintln!("$ tinygen {}", args.join(" "));
    let out = cargo()
        .args(["run", "--quiet", "--release", "-p", "tinygen", "--"])
        .args(args)
        .current_dir(root())
        .stderr(std::process::Stdio::inherit())
        .output()?;
    ensure!(out.status.success(), "tinygen {} failed", args.join(" "));
    Ok(String::from_utf8(out.stdout)?)
}

/// VAE training speed against PyTorch (and, with `quality`, the MNIST
/// quality figures of the VAE and the ring-prior SWAE).
fn bench_neural(quality: bool) -> anyhow::Result<()> {
    let mnist = mnist_dir()?;
    let mnist_s = mnist.to_str().context("non-UTF-8 path")?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let python = std::env::var("TINYGEN_TORCH_PYTHON")
        .or_else(|_| std::env::var("TINYGEN_PYTHON"))
        .unwrap_or_else(|_| "python3".into());
    let dir = xtask::target_dir().join("bench-neural");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    // tinygen: one epoch of 469 steps; the JSON log gives its seconds.
    let run = dir.join("speed");
    let log = tinygen_output(&[
        "fit",
        "vae",
        "--data",
        "mnist",
        "--data-dir",
        mnist_s,
        "--epochs",
        "1",
        "--log",
        "json",
        "--no-plots",
        "--iw-samples",
        "0",
        "--out",
        run.to_str().context("path")?,
    ])?;
    let epoch: serde_json::Value = serde_json::from_str(log.lines().next().context("no log")?)?;
    let steps = 60_000usize.div_ceil(128) as f64;
    let ours = steps / epoch["seconds"].as_f64().context("seconds")?;
    let out = Command::new(&python)
        .arg(root().join("scripts/bench_vae_torch.py"))
        .args([
            "--data-dir",
            mnist_s,
            "--steps",
            "300",
            "--threads",
            &threads.to_string(),
        ])
        .output()
        .with_context(|| format!("cannot run {python}"))?;
    ensure!(
        out.status.success(),
        "scripts/bench_vae_torch.py failed (needs torch and numpy; set TINYGEN_TORCH_PYTHON):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let torch: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let theirs = torch["steps_per_second"]
        .as_f64()
        .context("steps_per_second")?;
    println!(
        "VAE 784-400-20, batch 128, MNIST, {threads} threads; PyTorch {}",
        torch["torch"]
    );
    println!("| trainer | steps/s | ratio to PyTorch |");
    println!("|---|---|---|");
    println!("| tinygen (candle) | {ours:.1} | {:.2} |", ours / theirs);
    println!("| PyTorch | {theirs:.1} | 1.00 |");
    if !quality {
        return Ok(());
    }
    let vae = dir.join("vae");
    // Seed 1 is pytorch/examples' default; other seeds spread over about
    // 0.5 nats (BENCHMARKS.md), for PyTorch as for tinygen.
    let m = tinygen_output(&[
        "fit",
        "vae",
        "--data",
        "mnist",
        "--data-dir",
        mnist_s,
        "--seed",
        "1",
        "--epochs",
        "10",
        "--log",
        "quiet",
        "--iw-samples",
        "1000",
        "--out",
        vae.to_str().context("path")?,
    ])?;
    let m: serde_json::Value = serde_json::from_str(m.trim())?;
    println!(
        "VAE 10 epochs: test loss per sample {:.2} (bar 105.6), test ELBO {:.2}, IW log-likelihood (k = 1000) {:.2}",
        m["test_loss"].as_f64().unwrap_or(f64::NAN),
        m["test_elbo"].as_f64().unwrap_or(f64::NAN),
        m["iw_log_likelihood"].as_f64().unwrap_or(f64::NAN)
    );
    let swae = dir.join("swae-ring");
    let m = tinygen_output(&[
        "fit",
        "swae",
        "--data",
        "mnist",
        "--data-dir",
        mnist_s,
        "--prior",
        "ring",
        "--latent",
        "2",
        "--lambda",
        "10000",
        "--epochs",
        "10",
        "--log",
        "quiet",
        "--out",
        swae.to_str().context("path")?,
    ])?;
    let m: serde_json::Value = serde_json::from_str(m.trim())?;
    println!(
        "SWAE ring prior, 2-D latent, lambda 10000, 10 epochs: test reconstruction {:.2}, test loss {:.2}, SW distance to the prior {:.4} (plots in {})",
        m["test_reconstruction"].as_f64().unwrap_or(f64::NAN),
        m["test_loss"].as_f64().unwrap_or(f64::NAN),
        m["sw_distance"].as_f64().unwrap_or(f64::NAN),
        swae.display()
    );
    Ok(())
}

/// Host latency of one decode (batch 1), same weights, one run: the runtime
/// crate (what the board runs, here compiled for the host), tract-onnx
/// running the exported ONNX file, and candle. Needs the `onnx` feature; without it,
/// reruns itself with it.
#[cfg(not(feature = "onnx"))]
fn bench_decode() -> anyhow::Result<()> {
    run(cargo()
        .args([
            "run",
            "--quiet",
            "-p",
            "xtask",
            "--features",
            "onnx",
            "--",
            "bench-decode",
        ])
        .current_dir(root()))
}

#[cfg(feature = "onnx")]
fn bench_decode() -> anyhow::Result<()> {
    use candle_core::{Device, Tensor};
    use tinygen::nn::config::{ModelKind, NetworkConfig};
    use tinygen::nn::export::{Part, dense_layers, export_tgm};
    use tinygen::nn::network::Network;
    use tinygen::nn::onnx::{TractPlan, export_onnx};
    use tinygen::nn::prior::Prior;
    use tinygen_runtime::{Network as RtNetwork, Scratch};

    println!(
        "| decoder | MACs | runtime (us) | tract-onnx (us) | candle (us) | tract / runtime | candle / runtime |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (latent, hidden) in [(16, 128), (20, 400)] {
        let config = NetworkConfig {
            image: Some((28, 28)),
            prior: Some(Prior::Gaussian),
            ..NetworkConfig::new(ModelKind::Vae, 784, vec![hidden], latent)
        };
        let net = Network::new(config, 0)?;
        let bytes = tinygen::io::AlignedBytes::new(&export_tgm(&net, Part::Decoder, None)?);
        let rt = RtNetwork::from_bytes(bytes.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let onnx = export_onnx(&dense_layers(&net, Part::Decoder)?, Part::Decoder, "bench")?;
        let tract = TractPlan::new(&onnx, 1, latent)?;
        let z: Vec<f32> = (0..latent).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut out = vec![0f32; 784];
        let mut scratch = Box::new(Scratch::<512>::new());
        let reps = 2000;
        let runtime = median_seconds(|| {
            for _ in 0..reps {
                rt.forward(std::hint::black_box(&z), &mut out, &mut scratch)
                    .expect("decode");
            }
        }) / reps as f64;
        let tract_s = median_seconds(|| {
            for _ in 0..reps {
                std::hint::black_box(tract.run(std::hint::black_box(&z)).expect("tract"));
            }
        }) / reps as f64;
        let zt = Tensor::from_slice(&z, (1, latent), &Device::Cpu)?;
        let candle = median_seconds(|| {
            for _ in 0..reps {
                std::hint::black_box(net.decode(&zt).expect("decode"));
            }
        }) / reps as f64;
        println!(
            "| {latent}-{hidden}-784 | {} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} |",
            rt.macs(),
            runtime * 1e6,
            tract_s * 1e6,
            candle * 1e6,
            tract_s / runtime,
            candle / runtime
        );
    }
    Ok(())
}
