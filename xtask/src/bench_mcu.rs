//! `cargo xtask bench-mcu`: exact instruction counts on every emulated core.

use std::path::Path;

use anyhow::ensure;
use tinygen::density::gmm::{EmOptions, fit_em};
use tinygen::detector::density::{Density, GmmDensity, Pair};
use tinygen::detector::fit::{DetectorFit, fit_detector};
use tinygen::detector::neural::NeuralOptions;
use tinygen::detector::windows::series_windows;
use tinygen_runtime::gmm::Covariance;
use xtask::{Core, build_firmware, run_qemu, write_case};

/// Instructions per call, exact (QEMU plugin): K = 8, D = 16 mixtures
/// (diag, full), a 256-point KDE in D = 16, a stream detector scoring one
/// 6 x 20 window (with and without autoencoder scores, and the default
/// pair of ensembles), learning such a
/// detector on the device (the whole learning, one call), an MNIST-sized
/// decoder and a digits-sized diffusion model (one whole sample per call,
/// 10, 50 and 200 steps); on the Cortex-M4F with libm and with micromath, then on every
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
    // The default detector since issue 16 (`fit detector` without
    // options: the z-score pair of bagged ensembles), as `cargo xtask
    // demo` fits and streams it.
    let pair_fit = DetectorFit {
        density: Density::Pair(Box::new(Pair::bagged(0))),
        alarm_rate: 0.01,
        holdout: 0.2,
        seed: 0,
        neural: None,
    };
    let pair = fit_detector(features, 24, &windows, Some(&labels), &pair_fit)?;
    xtask::basicmotions_stream_case(&cases.join(DETECTOR_PAIR), &pair.bytes)?;
    names.push(DETECTOR_PAIR);
    // Learning a detector on the device (the measured region is the whole
    // learning): one full Gaussian from the 180 normal training windows in
    // order (144, then 36 to calibrate), and two diagonal components (20
    // k-means and EM passes) from 36 windows alternating between the first
    // and last recordings (24, then 12); each alone and as the pair of
    // `--on-device-recipe`'s default (a second density with reg-covar
    // 0.01); four test windows follow each.
    let normal_windows: Vec<&[f32]> = windows
        .chunks_exact(6 * length)
        .zip(&labels)
        .filter(|(_, l)| **l == 0.0)
        .map(|(w, _)| w)
        .collect();
    let (test_windows, test_labels) =
        series_windows(&xtask::basicmotions("TEST")?, length, stride, &normal)?;
    let some_test = &test_windows[..4 * 6 * length];
    let full = tinygen_runtime::learn::RecipeSpec {
        features,
        dim: 24,
        covariance: Covariance::Full,
        components: 1,
        iterations: 0,
        seed: 0,
        reg_covar: tinygen::detector::density::RegCovar::Scott.value(144, 24),
        alarm_rate: 0.01,
        learn: 144,
        calibrate: 36,
        second_reg_covar: None,
    };
    xtask::write_learn_case(
        &cases.join(LEARN_FULL),
        &full,
        &normal_windows.concat(),
        some_test,
        &test_labels[..4],
    )?;
    names.push(LEARN_FULL);
    let pair = |spec: tinygen_runtime::learn::RecipeSpec| tinygen_runtime::learn::RecipeSpec {
        second_reg_covar: Some(tinygen::detector::density::SECOND_REG_COVAR),
        ..spec
    };
    xtask::write_learn_case(
        &cases.join(LEARN_FULL_PAIR),
        &pair(full),
        &normal_windows.concat(),
        some_test,
        &test_labels[..4],
    )?;
    names.push(LEARN_FULL_PAIR);
    let alternating: Vec<f32> = (0..18)
        .flat_map(|i| {
            [
                normal_windows[i],
                normal_windows[normal_windows.len() - 1 - i],
            ]
        })
        .flatten()
        .copied()
        .collect();
    let mixture = tinygen_runtime::learn::RecipeSpec {
        covariance: Covariance::Diag,
        components: 2,
        iterations: 20,
        seed: 4,
        reg_covar: tinygen::detector::density::RegCovar::Scott.value(24, 24),
        learn: 24,
        calibrate: 12,
        ..full
    };
    xtask::write_learn_case(
        &cases.join(LEARN_MIXTURE),
        &mixture,
        &alternating,
        some_test,
        &test_labels[..4],
    )?;
    names.push(LEARN_MIXTURE);
    xtask::write_learn_case(
        &cases.join(LEARN_MIXTURE_PAIR),
        &pair(mixture),
        &alternating,
        some_test,
        &test_labels[..4],
    )?;
    names.push(LEARN_MIXTURE_PAIR);
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
    let decoder_macs = 16 * 128 + 128 * 784;
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
        tinygen::nn::quantize::QuantOptions::default(),
    )?;
    write_case(&cases.join(INT8_DECODER), &int8_file, &latents)?;
    names.push(INT8_DECODER);
    // Its output sigmoid in f32 on the int8 pre-activation (`--f32-output`).
    let (f32_output_file, _) = tinygen::nn::export::export_int8(
        &decoder,
        tinygen::nn::export::Part::Decoder,
        None,
        &calibration,
        tinygen::nn::quantize::QuantOptions {
            final_activation: tinygen_runtime::qnetwork::FinalActivation::F32,
            ..Default::default()
        },
    )?;
    write_case(&cases.join(INT8_F32_OUTPUT), &f32_output_file, &latents)?;
    names.push(INT8_F32_OUTPUT);
    // MLPerf Tiny's anomaly-detection autoencoder shape in int8.
    let (ae_file, ae_points) = mlperf_tiny_autoencoder()?;
    write_case(&cases.join(INT8_AE), &ae_file, &ae_points)?;
    names.push(INT8_AE);
    let mut macs = vec![
        (F32_DECODER, decoder_macs),
        (INT8_DECODER, decoder_macs),
        (INT8_F32_OUTPUT, decoder_macs),
        (
            INT8_AE,
            MLPERF_AE_WIDTHS.windows(2).map(|w| w[0] * w[1]).sum(),
        ),
    ];
    // Diffusion over 8x8 images (the digits): one whole sample per
    // measured call, by DDIM in 10 and 50 steps and by DDPM in all 200.
    for (name, steps, bytes) in diffusion_cases()? {
        let file = tinygen::host::AlignedBytes::new(&bytes);
        let model = tinygen_runtime::Diffusion::from_bytes(file.as_bytes())
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let inputs: Vec<f32> = (0..65).map(|i| if i == 64 { 1.0 } else { 0.0 }).collect();
        write_case(&cases.join(name), &bytes, &inputs)?;
        names.push(name);
        macs.push((name, usize::from(steps) * model.macs_per_step()));
    }

    println!(
        "Networks (the same on every core): | case | file (B) | buffers (B) | multiply-accumulates per measured call |"
    );
    for (name, call_macs) in &macs {
        let bytes = std::fs::read(cases.join(name).join("model.tgm"))?;
        let file = tinygen::host::AlignedBytes::new(&bytes);
        let model = tinygen_runtime::AnyModel::from_bytes(file.as_bytes())
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let buffers = match model {
            tinygen_runtime::AnyModel::Diffusion(_) => model.scratch_bytes(),
            _ => 8 * model.scratch_width(),
        };
        println!("| {name} | {} | {buffers} | {call_macs} |", bytes.len());
    }
    println!();
    let plugin = xtask::build_icount_plugin()?;
    println!(
        "{}, libm and micromath:\n\n| build | {} | largest image's flash (B) | static RAM (B) |",
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
        let run = measure_images(&cases, Core::MAIN, features, &plugin)?;
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
        per_mac.extend(per_mac_lines(label, &run, &macs));
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
    // the 413 KB f32 decoder, the 265 KB autoencoder or the 149 KB
    // diffusion models, so its build leaves out what does not fit, keeps
    // the first 64 rows of the cases that score rows (the learning cases
    // need all theirs; the full Gaussians' pair, whose 5 KB of learner
    // state and 3 KB file its firmware's buffers do not hold, is left
    // out), and runs the rest as several images.
    let small = xtask::target_dir().join("bench-mcu-cases-small");
    std::fs::remove_dir_all(&small).ok();
    std::fs::create_dir_all(&small)?;
    for name in &names {
        if *name != LEARN_FULL_PAIR && xtask::model_fits(&cases.join(name), Core::M0)? {
            let rows = (!name.starts_with("d_learn")).then_some(64);
            copy_case(&cases.join(name), &small.join(name), rows)?;
        }
    }
    let mut core_macs = Vec::new();
    println!(
        "\nEvery core, libm (instructions per call):\n\n| core | {} | hostile file | flash (B) | static RAM (B) | images |",
        names.join(" | ")
    );
    println!("|{}", "---|".repeat(names.len() + 5));
    for core in Core::ALL {
        let dir = if core == Core::M0 { &small } else { &cases };
        let images = xtask::case_images(dir, core)?.len();
        let run = measure_images(dir, core, &[], &plugin)?;
        let mut cells = vec!["does not fit".to_string(); names.len()];
        for (name, count) in run.cases.iter().zip(&run.calls) {
            if let Some(i) = names.iter().position(|n| n == name) {
                cells[i] = count.to_string();
            }
        }
        core_macs.extend(per_mac_lines(core.name(), &run, &macs));
        let (hostile, flash, ram) = (run.hostile, run.flash, run.ram);
        accuracy.extend(
            run.stdout
                .lines()
                .filter(|l| l.starts_with("case ") && l.contains("mismatches"))
                .map(|l| format!("{}: {l}", core.name())),
        );
        println!(
            "| {} | {} | {hostile} | {flash} | {ram} | {} |",
            core.name(),
            cells.join(" | "),
            images
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

/// `cargo xtask qemu DIR --count`: the exact instructions of each case's
/// first call in `dir` on each core, the cases checked as in any run.
pub(crate) fn count(dir: &Path, cores: &[Core]) -> anyhow::Result<()> {
    println!("| core | case | instructions per call |\n|---|---|---|");
    for &core in cores {
        for (name, calls) in count_calls(dir, core)? {
            println!("| {} | {name} | {calls} |", core.name());
        }
    }
    Ok(())
}

/// The exact instructions of the first call of each case under `dir` that
/// fits `core`'s flash, by case name.
pub(crate) fn count_calls(dir: &Path, core: Core) -> anyhow::Result<Vec<(String, u64)>> {
    xtask::install_prerequisites()?;
    let plugin = xtask::build_icount_plugin()?;
    let cases = crate::qemu::fitting_cases(dir, core)?;
    let run = measure_images(&cases, core, &[], &plugin)?;
    Ok(run.cases.into_iter().zip(run.calls).collect())
}

/// The default detector (the z-score pair) scoring one BasicMotions window.
const DETECTOR_PAIR: &str = "d_detector_pair_6x20";
/// Learning a detector on the device from BasicMotions windows: one full
/// Gaussian from 180 windows, two diagonal components from 36.
const LEARN_FULL: &str = "d_learn_full_180";
const LEARN_MIXTURE: &str = "d_learn_k2_diag_36";
const LEARN_FULL_PAIR: &str = "d_learn_full_pair_180";
const LEARN_MIXTURE_PAIR: &str = "d_learn_k2_diag_pair_36";

/// The MNIST-sized decoder's cases: f32, int8, and int8 with its output
/// sigmoid in f32.
const F32_DECODER: &str = "e_decoder_16_128_784";
const INT8_DECODER: &str = "f_decoder_int8_16_128_784";
const INT8_F32_OUTPUT: &str = "f_decoder_int8_f32_output";

/// Diffusion cases: (name, sampling steps, file). A digits-sized noise
/// predictor, 64 + 32 -> 128 -> 128 -> 64 (relu; untrained: the speed does
/// not depend on the weights), over T = 200 linear steps.
fn diffusion_cases() -> anyhow::Result<Vec<(&'static str, u16, Vec<u8>)>> {
    use tinygen::nn::config::{DiffusionSettings, NetworkConfig, Objective, Sampler, Schedule};
    let mut out = Vec::new();
    for (name, sampler) in [
        ("h_diffusion_ddim_10", Sampler::ddim(10)),
        ("h_diffusion_ddim_50", Sampler::ddim(50)),
        ("h_diffusion_ddpm_200", Sampler::ddpm(200)),
    ] {
        let settings = DiffusionSettings {
            steps: 200,
            schedule: Schedule::Linear {
                beta_start: 5e-4,
                beta_end: 0.1,
            },
            embedding: 32,
            sampler,
            skip: true,
        };
        let config = NetworkConfig {
            image: Some((8, 8)),
            ..NetworkConfig::new(Objective::Diffusion(settings), 64, vec![128, 128], 64)
        };
        let net = tinygen::nn::network::Network::new(config, 0)?;
        out.push((name, sampler.steps, tinygen::nn::diffusion::export(&net)?));
    }
    Ok(out)
}

/// MLPerf Tiny's anomaly-detection autoencoder (ToyADMOS), layer widths.
const MLPERF_AE_WIDTHS: [usize; 11] = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640];
const INT8_AE: &str = "g_ae_int8_mlperf_tiny";

/// An int8 network of [`MLPERF_AE_WIDTHS`] (ReLU, the last layer linear)
/// with random weights (the speed does not depend on them), as an encoder
/// file, and four random input rows.
fn mlperf_tiny_autoencoder() -> anyhow::Result<(Vec<u8>, Vec<f32>)> {
    use rand::{Rng, SeedableRng};
    use tinygen_runtime::Activation;
    use tinygen_runtime::network::{PriorParams, Role};
    use tinygen_runtime::qnetwork::{FinalActivation, QLayerParams, QNetworkParams, QuantParams};
    use tinygen_runtime::quant::quantize_multiplier_single_rounding;

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let layers: Vec<(Vec<i8>, Vec<i32>)> = MLPERF_AE_WIDTHS
        .windows(2)
        .map(|w| {
            let weights = (0..w[0] * w[1])
                .map(|_| rng.random_range(-127..=127))
                .collect();
            let bias = (0..w[1]).map(|_| rng.random_range(-2000..=2000)).collect();
            (weights, bias)
        })
        .collect();
    let tensor = QuantParams {
        scale: 0.05,
        zero_point: -20,
    };
    // Roughly unit-variance sums of n products of int8 values.
    let requant: Vec<(i32, i32)> = MLPERF_AE_WIDTHS
        .iter()
        .map(|&n| quantize_multiplier_single_rounding(1.0 / (40.0 * (n as f64).sqrt() * 60.0)))
        .collect();
    let last = layers.len() - 1;
    let params = QNetworkParams {
        role: Role::Encoder,
        input: tensor,
        layers: layers
            .iter()
            .enumerate()
            .map(|(i, (weights, bias))| QLayerParams {
                inputs: MLPERF_AE_WIDTHS[i],
                outputs: MLPERF_AE_WIDTHS[i + 1],
                activation: if i == last {
                    Activation::Identity
                } else {
                    Activation::Relu
                },
                weight: weights,
                bias,
                multiplier: std::slice::from_ref(&requant[i].0),
                shift: std::slice::from_ref(&requant[i].1),
                output: tensor,
            })
            .collect(),
        prior: PriorParams::None,
        final_activation: FinalActivation::Int8,
    };
    let bytes = params.encode()?;
    let points = (0..4 * MLPERF_AE_WIDTHS[0])
        .map(|_| rng.random_range(-3.0f32..3.0))
        .collect();
    Ok((bytes, points))
}

/// Instructions per call and per multiply-accumulate of the network cases
/// (`macs`: name, multiply-accumulates per call) a run measured.
fn per_mac_lines(label: &str, run: &Measured, macs: &[(&str, usize)]) -> Vec<String> {
    run.cases
        .iter()
        .zip(&run.calls)
        .filter_map(|(name, &call)| {
            let &(_, macs) = macs.iter().find(|(n, _)| n == name)?;
            Some(format!(
                "{label}: {name}: {call} instructions per call, {macs} multiply-accumulates, {:.2} instructions per MAC",
                call as f64 / macs as f64
            ))
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

/// [`measure`] over the images [`xtask::case_images`] splits `cases` into:
/// the cases in name order, the largest flash and RAM, the slowest
/// rejection of the hostile file.
fn measure_images(
    cases: &Path,
    core: Core,
    features: &[&str],
    plugin: &Path,
) -> anyhow::Result<Measured> {
    let mut all = Measured {
        cases: vec![],
        calls: vec![],
        hostile: 0,
        flash: 0,
        ram: 0,
        stdout: String::new(),
    };
    for image in xtask::case_images(cases, core)? {
        let run = measure(&image, core, features, plugin)?;
        all.cases.extend(run.cases);
        all.calls.extend(run.calls);
        all.hostile = all.hostile.max(run.hostile);
        all.flash = all.flash.max(run.flash);
        all.ram = all.ram.max(run.ram);
        all.stdout.push_str(&run.stdout);
    }
    let mut order: Vec<usize> = (0..all.cases.len()).collect();
    order.sort_by(|&a, &b| all.cases[a].cmp(&all.cases[b]));
    all.cases = order.iter().map(|&i| all.cases[i].clone()).collect();
    all.calls = order.iter().map(|&i| all.calls[i]).collect();
    Ok(all)
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
/// Copies a case directory, keeping at most `rows` input rows (with their
/// expected values and labels; the measured call is the first row's).
fn copy_case(from: &Path, to: &Path, rows: Option<usize>) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default();
        // expected.csv starts with a header line.
        let header = usize::from(name == "expected.csv");
        match (rows, name.to_str()) {
            (Some(n), Some("inputs.csv" | "expected.csv" | "labels.csv")) => {
                let text = std::fs::read_to_string(&path)?;
                let kept: String = text
                    .lines()
                    .take(n + header)
                    .map(|l| format!("{l}\n"))
                    .collect();
                std::fs::write(to.join(name), kept)?;
            }
            _ => {
                std::fs::copy(&path, to.join(name))?;
            }
        }
    }
    Ok(())
}
