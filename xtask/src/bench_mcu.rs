//! `cargo xtask bench-mcu`: exact instruction counts on the emulated Cortex-M4F.

use anyhow::ensure;
use tinygen::density::gmm::{EmOptions, fit_em};
use tinygen_runtime::gmm::Covariance;
use xtask::{build_firmware, run_qemu, write_case};

/// Instructions per `log_density` call on the Cortex-M4F, exact (QEMU
/// plugin): K = 8, D = 16 mixtures (diag, full), a 256-point KDE in
/// D = 16, and a stream detector scoring one 6 x 20 window, with libm and
/// with micromath.
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
