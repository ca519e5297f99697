//! `cargo xtask bench-mcu`: exact instruction counts on every emulated core.

use std::path::Path;

use anyhow::ensure;
use tinygen::density::gmm::{EmOptions, fit_em};
use tinygen::detector::density::{Density, GmmDensity};
use tinygen::detector::fit::{DetectorFit, fit_detector};
use tinygen::detector::neural::NeuralOptions;
use tinygen::detector::windows::series_windows;
use tinygen_runtime::gmm::Covariance;
use xtask::{Core, build_firmware, run_qemu, write_case};

/// Instructions per call, exact (QEMU plugin): K = 8, D = 16 mixtures
/// (diag, full), a 256-point KDE in D = 16, a stream detector scoring one
/// 6 x 20 window (with and without autoencoder scores) and an MNIST-sized
/// decoder; on the Cortex-M4F with libm and with micromath, then on every
/// core with libm.
pub(crate) fn bench_mcu() -> anyhow::Result<()> {
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
    // Case directories are embedded (and measured) in name order.
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
    let (windows, labels) = series_windows(&train, length, stride, &normal)?;
    let fit = DetectorFit {
        density: Density::Gmm(GmmDensity::smoothed(0)),
        alarm_rate: 0.01,
        holdout: 0.2,
        seed: 0,
        neural: None,
    };
    let features = tinygen_runtime::detector::Features::WindowStats {
        channels: 6,
        length: length as u32,
    };
    let fitted = fit_detector(features, 24, &windows, Some(&labels), &fit)?;
    xtask::basicmotions_stream_case(&cases.join("d_detector_6x20"), &fitted.bytes)?;
    names.push("d_detector_6x20");
    // The same detector with autoencoder scores (`--neural ae` defaults:
    // 24 -> 32 -> 6 -> 32 -> 24 and a Gaussian on the codes).
    let neural_fit = DetectorFit {
        neural: Some(NeuralOptions::default()),
        ..fit
    };
    let neural = fit_detector(features, 24, &windows, Some(&labels), &neural_fit)?;
    xtask::basicmotions_stream_case(&cases.join("d_detector_ae_6x20"), &neural.bytes)?;
    names.push("d_detector_ae_6x20");
    // An MNIST-sized decoder: latent 16 -> 128 relu -> 784 sigmoid (the
    // architecture of models/mnist-vae-decoder; weights untrained).
    let decoder = tinygen::nn::network::Network::new(
        tinygen::nn::config::NetworkConfig {
            image: Some((28, 28)),
            ..tinygen::nn::config::NetworkConfig::new(
                tinygen::nn::config::Objective::VAE,
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
    write_case(&cases.join(F32_DECODER), &decoder_file, &latents)?;
    names.push(F32_DECODER);
    // The same decoder in int8, calibrated on 1,000 prior draws.
    let calibration = tinygen::nn::prior::Prior::Gaussian.sample(
        1000,
        16,
        None,
        &mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(4),
    );
    let (int8_file, _) = tinygen::nn::export::export_int8(
        &decoder,
        tinygen::nn::export::Part::Decoder,
        None,
        &calibration,
    )?;
    write_case(&cases.join(INT8_DECODER), &int8_file, &latents)?;
    names.push(INT8_DECODER);

    let plugin = xtask::build_icount_plugin()?;
    println!(
        "{}, libm and micromath:\n\n| build | {} | flash (B) | static RAM (B) |",
        Core::MAIN.name(),
        names.join(" | ")
    );
    println!("|{}", "---|".repeat(names.len() + 3));
    let mut accuracy = Vec::new();
    let mut per_mac = Vec::new();
    for features in [&[][..], &["micromath"][..]] {
        let label = if features.is_empty() {
            "libm (default)"
        } else {
            "micromath"
        };
        let run = measure(&cases, Core::MAIN, features, &plugin)?;
        accuracy.extend(
            run.stdout
                .lines()
                .filter(|l| l.starts_with("case "))
                .map(|l| format!("{label}: {l}")),
        );
        let counts: Vec<String> = run.calls.iter().map(u64::to_string).collect();
        println!(
            "| {label} | {} | {} | {} |",
            counts.join(" | "),
            run.flash,
            run.ram
        );
        per_mac.extend(per_mac_lines(label, &run, macs));
        per_mac.push(format!(
            "{label}: {} instructions to reject the hostile 32-byte model (budget {})",
            run.hostile,
            xtask::HOSTILE_REJECTION_BUDGET
        ));
    }
    println!();
    for line in per_mac {
        println!("- {line}");
    }

    // Every core with libm. The Cortex-M0's 256 KiB of flash cannot hold
    // the 413 KB f32 decoder, so its build leaves that case out, and runs
    // the rest as several images.
    let small = xtask::target_dir().join("bench-mcu-cases-small");
    std::fs::remove_dir_all(&small).ok();
    std::fs::create_dir_all(&small)?;
    for name in names.iter().filter(|&&n| n != F32_DECODER) {
        copy_case(&cases.join(name), &small.join(name))?;
    }
    let mut core_macs = Vec::new();
    println!(
        "\nEvery core, libm (instructions per call):\n\n| core | {} | hostile file | flash (B) | static RAM (B) | images |",
        names.join(" | ")
    );
    println!("|{}", "---|".repeat(names.len() + 5));
    for core in Core::ALL {
        let dir = if core == Core::M0 { &small } else { &cases };
        let images = xtask::case_images(dir, core)?;
        let mut cells = vec!["does not fit".to_string(); names.len()];
        let (mut hostile, mut flash, mut ram) = (0, 0, 0);
        for image in &images {
            let run = measure(image, core, &[], &plugin)?;
            for (name, count) in run.cases.iter().zip(&run.calls) {
                if let Some(i) = names.iter().position(|n| n == name) {
                    cells[i] = count.to_string();
                }
            }
            core_macs.extend(per_mac_lines(core.name(), &run, macs));
            hostile = hostile.max(run.hostile);
            flash = flash.max(run.flash);
            ram = ram.max(run.ram);
            accuracy.extend(
                run.stdout
                    .lines()
                    .filter(|l| l.starts_with("case ") && l.contains("mismatches"))
                    .map(|l| format!("{}: {l}", core.name())),
            );
        }
        println!(
            "| {} | {} | {hostile} | {flash} | {ram} | {} |",
            core.name(),
            cells.join(" | "),
            images.len()
        );
    }
    println!();
    for line in core_macs {
        println!("- {line}");
    }
    println!("\nDevice vs host (host values computed with libm):");
    for line in accuracy {
        println!("- {line}");
    }
    Ok(())
}

/// The MNIST-sized decoder's cases, f32 and int8.
const F32_DECODER: &str = "e_decoder_16_128_784";
const INT8_DECODER: &str = "f_decoder_int8_16_128_784";

/// Instructions per decode and per multiply-accumulate of the decoder
/// cases a run measured.
fn per_mac_lines(label: &str, run: &Measured, macs: usize) -> Vec<String> {
    run.cases
        .iter()
        .zip(&run.calls)
        .filter(|(name, _)| *name == F32_DECODER || *name == INT8_DECODER)
        .map(|(name, &decode)| {
            format!(
                "{label}: {name}: {decode} instructions per decode, {macs} multiply-accumulates, {:.2} instructions per MAC",
                decode as f64 / macs as f64
            )
        })
        .collect()
}

/// One firmware build's exact counts: instructions per case's first call
/// (marker overhead subtracted; cases in name order), for the hostile
/// file's rejection, and the image's flash and static RAM.
struct Measured {
    cases: Vec<String>,
    calls: Vec<u64>,
    hostile: u64,
    flash: u64,
    ram: u64,
    stdout: String,
}

fn measure(cases: &Path, core: Core, features: &[&str], plugin: &Path) -> anyhow::Result<Measured> {
    let mut names: Vec<String> = std::fs::read_dir(cases)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.tgm").is_file())
        .filter_map(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    let count = names.len();
    let elf = build_firmware(cases, core, features)?;
    let run = run_qemu(&elf, core, Some(plugin))?;
    ensure!(
        run.success,
        "firmware failed on the {}:\n{}{}",
        core.name(),
        run.stdout,
        run.stderr
    );
    let counts = xtask::icounts(&run.stderr);
    // First region: the empty start/end pair (marker overhead); then one
    // per case; last, the rejection of the hostile model file.
    ensure!(
        counts.len() == count + 2,
        "expected {} icount lines on the {}:\n{}",
        count + 2,
        core.name(),
        run.stderr
    );
    let (flash, ram) = xtask::elf_size(&elf)?;
    Ok(Measured {
        cases: names,
        calls: counts[1..=count].iter().map(|c| c - counts[0]).collect(),
        hostile: counts[count + 1] - counts[0],
        flash,
        ram,
        stdout: run.stdout,
    })
}

/// Copies a case directory's files.
fn copy_case(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let path = entry?.path();
        std::fs::copy(&path, to.join(path.file_name().unwrap_or_default()))?;
    }
    Ok(())
}
