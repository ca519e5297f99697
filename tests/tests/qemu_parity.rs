//! Host vs every class of microcontroller core: mixtures of every
//! covariance type, KDEs, detectors, decoders and diffusion models are
//! built here, evaluated
//! by the runtime on the host, and evaluated again by the firmware under
//! QEMU on a Cortex-M0, M3, M4F and M33 and a RISC-V rv32imac (soft-float
//! cores included; see `xtask::Core`). Every value must be bit-identical,
//! and corrupted model files must be rejected on the device.
//!
//! Needs qemu-system-arm, qemu-system-riscv32 and the five Rust targets;
//! without them the test skips with a message, unless
//! TINYGEN_REQUIRE_QEMU=1 (CI), which turns the skip into a failure.

use nalgebra::DMatrix;
use tinygen::data::{self, LoadOptions};
use tinygen::density::gmm::{EmOptions, fit_em};
use tinygen::density::kde::{KdeOptions, fit_kde};
use tinygen::density::standardize::Standardizer;
use tinygen::detector::density::{Density, Ensemble, GmmDensity, Pair, RegCovar};
use tinygen::detector::fit::{DetectorFit, fit_detector};
use tinygen::detector::neural::NeuralOptions;
use tinygen::detector::windows::series_windows;
use tinygen::host::AlignedBytes;
use tinygen::nn::config::{NetworkConfig, NetworkKind as NetKind, Objective, Reconstruction};
use tinygen::nn::export::{Part, export_int8, export_tgm, verify_tgm};
use tinygen::nn::network::Network;
use tinygen::nn::prior::Prior;
use tinygen::nn::quantize::{QuantOptions, WeightScales};
use tinygen_runtime::detector::Features;
use tinygen_runtime::features::window_stats;
use tinygen_runtime::gmm::Covariance;
use tinygen_runtime::learn::RecipeSpec;
use tinygen_runtime::qnetwork::FinalActivation;
use tinygen_runtime::{Activation, Detector, ModelKind};

/// Fits a mixture and writes it with test points (in-distribution rows and far-away ones).
fn case(dir: &std::path::Path, name: &str, x: &DMatrix<f64>, opts: &EmOptions, standardize: bool) {
    let standardizer = standardize.then(|| Standardizer::fit(x));
    let fit_on = standardizer
        .as_ref()
        .map_or_else(|| x.clone(), |s| s.apply(x));
    let (model, _) = fit_em(&fit_on, opts, &mut |_, _, _| {}).unwrap();
    let bytes = model
        .params(standardizer.as_ref().map(Standardizer::encoded))
        .encode()
        .unwrap();
    let d = x.ncols();
    let mut points: Vec<f32> = Vec::new();
    for i in 0..48.min(x.nrows()) {
        points.extend(x.row(i).iter().map(|&v| v as f32));
    }
    for i in 0..16 {
        points.extend((0..d).map(|j| (x[(i, j)] * (1.0 + i as f64 * 0.5) - j as f64) as f32));
    }
    xtask::write_case(&dir.join(name), &bytes, &points).unwrap();
}

/// The suite's case directories (built once, for the Rust firmware's test
/// and the C firmware's), and the line the stream case must report.
struct Suite {
    dir: std::path::PathBuf,
    stream_report: String,
    /// Lines the Rust firmware prints for the case that learns on the device.
    learn_report: Vec<String>,
}

/// A GAN's generator, exported as a decoder (untrained weights).
const GAN: &str = "decoder_gan";

/// The diffusion cases (untrained noise predictors: parity does not need
/// training), sampled by DDIM in 10 steps and by DDPM over all 50.
const DIFFUSION: [&str; 2] = ["diffusion_ddim", "diffusion_ddpm"];

/// The case that streams the BasicMotions test recordings through a detector.
const STREAM: &str = "basicmotions_stream";

/// The cases whose detectors are learned on the device.
const LEARN: &str = "learn_basicmotions";
const LEARN_PAIR: &str = "learn_basicmotions_pair";
const LEARN_MIXTURE_PAIR: &str = "learn_basicmotions_k2_pair";

fn suite() -> &'static Suite {
    static SUITE: std::sync::OnceLock<Suite> = std::sync::OnceLock::new();
    SUITE.get_or_init(build_suite)
}

/// Skips (returns true) when `missing` names something absent, unless
/// TINYGEN_REQUIRE_QEMU=1, which makes it a failure.
fn skip(missing: Option<String>) -> bool {
    let Some(missing) = missing else {
        return false;
    };
    assert!(
        std::env::var_os("TINYGEN_REQUIRE_QEMU").is_none_or(|v| v != "1"),
        "TINYGEN_REQUIRE_QEMU=1 but {missing}"
    );
    eprintln!("SKIPPED: {missing}");
    true
}

#[test]
fn firmware_scores_are_bit_identical_to_the_host() {
    if skip(xtask::qemu_missing()) {
        return;
    }
    let suite = suite();
    let plugin = xtask::build_icount_plugin().unwrap();
    for core in xtask::Core::ALL {
        check_core(core, suite, &plugin);
    }
}

/// The same suite through the C API: the C firmware (capi/examples/cmake,
/// built by CMake with Debian's gcc-arm-none-eabi and newlib-nano, the
/// static library by cargo) on the Cortex-M4F and the Cortex-M0 must give
/// every value of every case bit for bit, replay the decoders' samples,
/// raise the host's alarms, and reject corrupted models and misuse with
/// the right status codes.
#[test]
fn c_firmware_outputs_are_bit_identical_to_the_host() {
    if skip(xtask::qemu_missing())
        || skip(xtask::c_firmware_missing().map(|m| format!("the C firmware: {m}")))
    {
        return;
    }
    let suite = suite();
    for core in [xtask::Core::M4f, xtask::Core::M0] {
        let runs = xtask::run_c_suite(&suite.dir, core).unwrap();
        let stdout: String = runs.iter().map(|(_, r)| r.stdout.as_str()).collect();
        println!(
            "C firmware on the {} ({} image(s)):\n{stdout}",
            core.name(),
            runs.len()
        );
        for (elf, run) in &runs {
            let (flash, ram) = xtask::elf_size(elf).unwrap();
            println!(
                "{}: C firmware {}: {flash} bytes flash, {ram} bytes static RAM",
                core.name(),
                elf.display()
            );
            assert!(
                run.success && run.stdout.contains("c firmware: all checks passed"),
                "the C firmware failed on the {}:\n{}\n{}",
                core.name(),
                run.stdout,
                run.stderr
            );
        }
        check_c_report(core, &stdout, suite);
    }
}

/// The report lines of the [`DIFFUSION`] and [`GAN`] cases: every noise
/// prediction or decoded latent and both samples bit for bit.
fn sampled_case_lines() -> Vec<String> {
    DIFFUSION
        .iter()
        .chain(&[GAN])
        .flat_map(|name| {
            [
                format!("case {name}: 1024 values, 1024 bit-exact, 0 mismatches"),
                format!("case {name}: 2 samples from the prior, 0 values differ from the host"),
            ]
        })
        .collect()
}

/// Every case's line, as for the Rust firmware, in the C firmware's report.
fn check_c_report(core: xtask::Core, stdout: &str, suite: &Suite) {
    let mut lines = vec![
        suite.stream_report.clone(),
        format!("case {STREAM}: 360 values, 360 bit-exact, 0 mismatches"),
    ];
    lines.extend(suite.learn_report.iter().cloned());
    lines.push(format!(
        "case {INT8_EDGES}: 24 values, 24 bit-exact, 0 mismatches"
    ));
    lines.extend(sampled_case_lines());
    for name in [
        "full_k8_d16",
        "diag_k8_d16",
        "tied_k3_d5",
        "spherical_k3_d4_std",
        "full_k1_d7_std",
        "cardio_full_k4_std",
        "kde_scott_d3",
        "detector_points_d3",
        "detector_windows_3x10",
    ] {
        lines.push(format!(
            "case {name}: 64 values, 64 bit-exact, 0 mismatches"
        ));
    }
    lines.push("case basicmotions_neural: 40 values, 40 bit-exact, 0 mismatches".into());
    lines.push("case basicmotions_neural_int8: 40 values, 40 bit-exact, 0 mismatches".into());
    lines.push("case basicmotions_pair: 40 values, 40 bit-exact, 0 mismatches".into());
    for name in [
        "decoder_vae_gaussian",
        "decoder_swae_ring",
        "decoder_swae_gmm",
    ] {
        lines.push(format!(
            "case {name}: 1024 values, 1024 bit-exact, 0 mismatches"
        ));
        lines.push(format!(
            "case {name}: 2 samples from the prior, 0 values differ from the host"
        ));
        if name != "decoder_swae_gmm" {
            let encoded = if name == "decoder_vae_gaussian" {
                64
            } else {
                32
            };
            lines.push(format!(
                "case {name}_int8: 1024 values, 1024 bit-exact, 0 mismatches"
            ));
            lines.push(format!(
                "case {name}_int8: 2 samples from the prior, 0 values differ from the host"
            ));
            lines.push(format!(
                "case {name}_int8_encoder: {encoded} values, {encoded} bit-exact, 0 mismatches"
            ));
        }
    }
    for what in [
        "one bit flipped",
        "bad magic",
        "truncated",
        "at an odd address",
    ] {
        lines.push(format!("corrupted model ({what}) rejected: "));
    }
    for what in [
        "a closed model",
        "a NULL model",
        "NULL model bytes",
        "a NULL input",
        "a short input",
        "a call for another kind",
    ] {
        lines.push(format!("{what} rejected: "));
    }
    for line in lines {
        assert!(
            stdout.contains(&line),
            "missing {line:?} on the {core:?}:\n{stdout}"
        );
    }
    check_open_stack(core, stdout);
}

/// The stack `tg_model_open` took for each case on the device (painted and
/// measured by the C firmware, from the stack's top): at most 4 KiB for a
/// model without a neural part, 8 KiB for a neural detector (their spec
/// holds two networks' layer tables).
fn check_open_stack(core: xtask::Core, stdout: &str) {
    let mut opened = 0;
    for line in stdout.lines() {
        let Some((case, rest)) = line
            .strip_prefix("case ")
            .and_then(|l| l.split_once(": stack "))
        else {
            continue;
        };
        let bytes: usize = rest
            .strip_suffix(" bytes deep in tg_model_open")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unreadable stack line {line:?}"));
        let budget = if case.contains("neural") { 8192 } else { 4096 };
        assert!(
            bytes <= budget,
            "{case} took {bytes} bytes of stack to open on the {core:?} (budget {budget})"
        );
        opened += 1;
    }
    assert!(
        opened >= 20,
        "{opened} stack lines on the {core:?}:\n{stdout}"
    );
}

fn build_suite() -> Suite {
    let dir = tempfile_dir();
    let opts = |components, covariance| EmOptions {
        components,
        covariance,
        seed: 1,
        ..EmOptions::default()
    };
    let x16 = xtask::blobs(2000, 16, 8, 1);
    case(&dir, "full_k8_d16", &x16, &opts(8, Covariance::Full), false);
    case(&dir, "diag_k8_d16", &x16, &opts(8, Covariance::Diag), false);
    case(
        &dir,
        "tied_k3_d5",
        &xtask::blobs(600, 5, 3, 2),
        &opts(3, Covariance::Tied),
        false,
    );
    case(
        &dir,
        "spherical_k3_d4_std",
        &xtask::blobs(600, 4, 3, 3),
        &opts(3, Covariance::Spherical),
        true,
    );
    case(
        &dir,
        "full_k1_d7_std",
        &xtask::blobs(300, 7, 1, 4),
        &opts(1, Covariance::Full),
        true,
    );
    let cardio = data::load(
        &xtask::root().join("data/cardio.csv.gz"),
        &LoadOptions {
            label_column: Some("label".into()),
            drop_columns: vec![],
        },
    )
    .unwrap();
    let cardio = DMatrix::from_row_slice(cardio.rows, cardio.cols, &cardio.values);
    case(
        &dir,
        "cardio_full_k4_std",
        &cardio,
        &opts(4, Covariance::Full),
        true,
    );

    let kde_data = xtask::blobs(300, 3, 2, 5);
    let kde = fit_kde(&kde_data, None, &KdeOptions::default()).unwrap();
    let kde_bytes = kde.mixture.params(None).encode_as(ModelKind::Kde).unwrap();
    let kde_points: Vec<f32> = kde_data
        .rows(0, 64)
        .transpose()
        .iter()
        .map(|&v| v as f32)
        .collect();
    xtask::write_case(&dir.join("kde_scott_d3"), &kde_bytes, &kde_points).unwrap();

    // Detectors: on raw points, and on windows of a 3-channel stream.
    let (gmm1, _) = fit_em(&kde_data, &opts(2, Covariance::Full), &mut |_, _, _| {}).unwrap();
    let point_detector = gmm1
        .params(None)
        .encode_detector(ModelKind::Gmm, Features::Identity, 4.0)
        .unwrap();
    xtask::write_case(
        &dir.join("detector_points_d3"),
        &point_detector,
        &kde_points,
    )
    .unwrap();
    let stream = xtask::blobs(640, 3, 1, 6);
    let stream: Vec<f32> = stream.transpose().iter().map(|&v| v as f32).collect();
    let window_features: Vec<f64> = stream
        .chunks_exact(3 * 10)
        .flat_map(|w| {
            let mut out = [0.0f32; 12];
            window_stats(w, 3, &mut out).unwrap();
            out.map(f64::from)
        })
        .collect();
    let features = DMatrix::from_row_slice(window_features.len() / 12, 12, &window_features);
    let (gmm2, _) = fit_em(&features, &opts(1, Covariance::Diag), &mut |_, _, _| {}).unwrap();
    let windowed = Features::WindowStats {
        channels: 3,
        length: 10,
    };
    let window_detector = gmm2
        .params(None)
        .encode_detector(ModelKind::Gmm, windowed, 20.0)
        .unwrap();
    xtask::write_case(
        &dir.join("detector_windows_3x10"),
        &window_detector,
        &stream,
    )
    .unwrap();

    // The stream demo: a BasicMotions detector (Standing and Walking are
    // normal) streams the test recordings; the device must raise exactly the
    // host's alarms.
    let normal: Vec<String> = xtask::BASICMOTIONS_NORMAL.map(String::from).to_vec();
    let (length, stride) = xtask::BASICMOTIONS_WINDOW;
    let train = xtask::basicmotions("TRAIN").unwrap();
    let (train_windows, train_labels) = series_windows(&train, length, stride, &normal).unwrap();
    let fit = DetectorFit {
        density: Density::Gmm(GmmDensity::smoothed(0)),
        alarm_rate: 0.01,
        holdout: 0.2,
        seed: 0,
        neural: None,
    };
    let windowed = Features::WindowStats {
        channels: 6,
        length: length as u32,
    };
    let fitted = fit_detector(windowed, 24, &train_windows, Some(&train_labels), &fit).unwrap();
    xtask::basicmotions_stream_case(&dir.join(STREAM), &fitted.bytes).unwrap();
    let host = AlignedBytes::new(&fitted.bytes);
    let host = Detector::from_bytes(host.as_bytes()).unwrap();
    let (test_windows, test_labels) = series_windows(
        &xtask::basicmotions("TEST").unwrap(),
        length,
        stride,
        &normal,
    )
    .unwrap();
    let (mut hits, mut false_alarms) = (0, 0);
    for (x, &label) in test_windows
        .chunks_exact(host.input_len())
        .zip(&test_labels)
    {
        let alarm = host.is_anomaly(x).unwrap();
        hits += usize::from(alarm && label != 0.0);
        false_alarms += usize::from(alarm && label == 0.0);
    }
    assert!(
        hits >= 170 && false_alarms <= 18,
        "host: {hits} hits, {false_alarms} false alarms"
    );
    // The same windows with autoencoder scores: the device must compute
    // the combined score (density, reconstruction, latent) bit for bit.
    let neural_fit = DetectorFit {
        neural: Some(NeuralOptions {
            hidden: vec![16],
            latent: Some(4),
            steps: 300,
            ..NeuralOptions::default()
        }),
        ..fit.clone()
    };
    let neural = fit_detector(
        windowed,
        24,
        &train_windows,
        Some(&train_labels),
        &neural_fit,
    )
    .unwrap();
    let some_windows = &test_windows[..host.input_len() * 40];
    xtask::write_case(
        &dir.join("basicmotions_neural"),
        &neural.bytes,
        some_windows,
    )
    .unwrap();
    // Its autoencoder in int8 (`--quantize int8`): int8 layers inside the
    // detector, the same f32 rest, again bit for bit.
    let int8_fit = DetectorFit {
        neural: neural_fit
            .neural
            .clone()
            .map(|n| NeuralOptions { int8: true, ..n }),
        ..fit.clone()
    };
    let int8 = fit_detector(windowed, 24, &train_windows, Some(&train_labels), &int8_fit).unwrap();
    let int8_host = AlignedBytes::new(&int8.bytes);
    assert!(
        Detector::from_bytes(int8_host.as_bytes())
            .unwrap()
            .has_int8_neural()
    );
    xtask::write_case(
        &dir.join("basicmotions_neural_int8"),
        &int8.bytes,
        some_windows,
    )
    .unwrap();

    // Two densities (`--pair`, here in 8 KiB halves to spare the M0's
    // flash): the device must sum both robust z-scores bit for bit.
    let pair_fit = DetectorFit {
        density: Density::Pair(Box::new(Pair::halves(Ensemble {
            max_bytes: Some(16 * 1024),
            ..Ensemble::bagged(0)
        }))),
        ..fit.clone()
    };
    let pair = fit_detector(windowed, 24, &train_windows, Some(&train_labels), &pair_fit).unwrap();
    let pair_host = AlignedBytes::new(&pair.bytes);
    assert!(
        Detector::from_bytes(pair_host.as_bytes())
            .unwrap()
            .has_second_density()
    );
    xtask::write_case(&dir.join("basicmotions_pair"), &pair.bytes, some_windows).unwrap();

    let stream_report = format!(
        "case basicmotions_stream: detector flagged {hits} of 180 anomalous windows, {false_alarms} false alarms in 180 normal windows"
    );

    // Decoders (untrained weights: parity does not need training), with a
    // Gaussian, a ring and a mixture prior.
    for (name, kind, prior, hidden, activation, reconstruction) in [
        (
            "decoder_vae_gaussian",
            NetKind::Vae,
            Prior::Gaussian,
            vec![32],
            Activation::Relu,
            Reconstruction::Bce,
        ),
        (
            "decoder_swae_ring",
            NetKind::Swae,
            Prior::Ring,
            vec![24, 16],
            Activation::Tanh,
            Reconstruction::Bce,
        ),
        (
            "decoder_swae_gmm",
            NetKind::Swae,
            Prior::Gmm(3),
            vec![16],
            Activation::LeakyRelu,
            Reconstruction::Mse,
        ),
    ] {
        let latent = if kind == NetKind::Vae { 4 } else { 2 };
        let objective = match kind {
            NetKind::Vae => Objective::VAE,
            _ => Objective::Swae {
                prior,
                lambda: 1.0,
                projections: 10,
                semi_supervised: None,
            },
        };
        let config = NetworkConfig {
            image: Some((8, 8)),
            activation,
            reconstruction,
            ..NetworkConfig::new(objective, 64, hidden, latent)
        };
        let net = Network::new(config, 5).unwrap();
        let bytes = export_tgm(&net, Part::Decoder, None).unwrap();
        let worst = verify_tgm(&net, Part::Decoder, &bytes, &[], 1e-5).unwrap();
        assert!(worst <= 1e-5);
        let z: Vec<f32> = (0..16 * latent)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 5.0)
            .collect();
        xtask::write_case(&dir.join(name), &bytes, &z).unwrap();
        // The same network in int8, both halves, calibrated on the inputs
        // they are checked on: the device must give the host's integers
        // (compared as the dequantized floats, bit for bit).
        let x: Vec<f32> = (0..16 * 64)
            .map(|i| ((i * 53 % 97) as f32) / 96.0)
            .collect();
        // (int8 networks have no leaky ReLU.)
        let int8_parts = if activation == tinygen_runtime::Activation::LeakyRelu {
            vec![]
        } else {
            vec![
                (Part::Decoder, &z, "int8"),
                (Part::Encoder, &x, "int8_encoder"),
            ]
        };
        // The SWAE's decoder has one weight scale per layer, the others one
        // per output channel; the VAE's decoder is also written with its
        // sigmoid in f32.
        let f32_output =
            (name == "decoder_vae_gaussian").then_some((Part::Decoder, &z, "int8_f32_output"));
        for (part, inputs, suffix) in int8_parts.into_iter().chain(f32_output) {
            let options = QuantOptions {
                scales: if name == "decoder_swae_ring" && part == Part::Decoder {
                    WeightScales::PerTensor
                } else {
                    WeightScales::PerChannel
                },
                final_activation: if suffix == "int8_f32_output" {
                    FinalActivation::F32
                } else {
                    FinalActivation::Int8
                },
            };
            let (int8, _) = export_int8(&net, part, None, inputs, options).unwrap();
            xtask::write_case(&dir.join(format!("{name}_{suffix}")), &int8, inputs).unwrap();
        }
    }

    int8_edges_case(&dir.join(INT8_EDGES));
    imported_cases(&dir);
    diffusion_cases(&dir);
    gan_case(&dir.join(GAN));

    let learn_report = learn_cases(&dir);
    Suite {
        dir,
        stream_report,
        learn_report,
    }
}

/// The [`DIFFUSION`] cases over 8x8 images: one noise prediction for each
/// of 16 rows (a noisy image, then its timestep), and two samples by the
/// file's sampler.
fn diffusion_cases(dir: &std::path::Path) {
    use tinygen::nn::config::{DiffusionSettings, Sampler, Schedule};
    for (name, sampler, schedule, activation) in [
        (
            DIFFUSION[0],
            Sampler::ddim(10),
            Schedule::Linear {
                beta_start: 2e-3,
                beta_end: 0.4,
            },
            Activation::Relu,
        ),
        (
            DIFFUSION[1],
            Sampler::ddpm(50),
            Schedule::Cosine { offset: 0.008 },
            Activation::Tanh,
        ),
    ] {
        let settings = DiffusionSettings {
            steps: 50,
            schedule,
            embedding: 16,
            sampler,
            skip: name == DIFFUSION[0],
        };
        let config = NetworkConfig {
            image: Some((8, 8)),
            activation,
            ..NetworkConfig::new(Objective::Diffusion(settings), 64, vec![32], 64)
        };
        let net = Network::new(config, 6).unwrap();
        let bytes = tinygen::nn::diffusion::export(&net).unwrap();
        let inputs: Vec<f32> = (0..16)
            .flat_map(|r| {
                (0..64)
                    .map(move |j| (((r * 64 + j) * 37 % 41) as f32 - 20.0) / 10.0)
                    .chain(std::iter::once((r * 3 % 50 + 1) as f32))
            })
            .collect();
        xtask::write_case(&dir.join(name), &bytes, &inputs).unwrap();
    }
}

/// The [`GAN`] case: a generator 8 -> 16 (leaky relu) -> 64 (sigmoid) with
/// its N(0, I) prior, decoding 16 latents and sampling twice, as any
/// decoder; the discriminator stays on the host.
fn gan_case(dir: &std::path::Path) {
    let config = NetworkConfig {
        image: Some((8, 8)),
        activation: Activation::LeakyRelu,
        ..NetworkConfig::new(
            Objective::Gan {
                gradient_penalty: 1.0,
            },
            64,
            vec![16],
            8,
        )
    };
    let net = Network::new(config, 9).unwrap();
    let bytes = export_tgm(&net, Part::Decoder, None).unwrap();
    assert!(verify_tgm(&net, Part::Decoder, &bytes, &[], 1e-5).unwrap() <= 1e-5);
    let z: Vec<f32> = (0..16 * 8)
        .map(|i| ((i * 29 % 19) as f32 - 9.0) / 4.0)
        .collect();
    xtask::write_case(dir, &bytes, &z).unwrap();
}

/// Networks TensorFlow's converter wrote (`tests/fixtures/tflite`), float
/// and int8, imported as `tinygen import --part encoder` does (no prior to
/// sample), on their first 8 inputs.
fn imported_cases(dir: &std::path::Path) {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tflite");
    for name in ["int8_relu_sigmoid", "float_tanh_linear"] {
        let flat = std::fs::read(fixtures.join(format!("{name}.tflite"))).unwrap();
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixtures.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        let inputs: Vec<f32> = json["inputs"].as_array().unwrap()[..8]
            .iter()
            .flat_map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32)
            })
            .collect();
        let bytes = tinygen::import::tflite::import(&flat)
            .unwrap()
            .encode(tinygen_runtime::network::Role::Encoder)
            .unwrap();
        xtask::write_case(&dir.join(format!("tflite_{name}")), &bytes, &inputs).unwrap();
    }
}

/// The int8 case at the packed kernels' edges.
const INT8_EDGES: &str = "int8_packed_edges";

/// An int8 encoder 517 -> 37 -> 6 -> 3 whose sums reach the packed int8
/// kernels' edges on the device: 517 inputs cross two chunks of 256
/// inputs and pad to 520 columns; 37 rows
/// cross a group of 32 rows and pad to 40; rows of +-127 (and -128 in the
/// low row of a pair) meet inputs at x - z = 255 (the first row of inputs,
/// input zero point -128), the largest sums a chunk holds; the second
/// layer's input zero point 127 makes its x - z negative; the other
/// weights are pseudo-random in [-127, 127]. Eight input rows, 24 outputs.
fn int8_edges_case(dir: &std::path::Path) {
    use tinygen_runtime::network::{PriorParams, Role};
    use tinygen_runtime::qnetwork::{QLayerParams, QNetworkParams, QuantParams};
    use tinygen_runtime::quant::quantize_multiplier_single_rounding;

    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let widths = [517usize, 37, 6, 3];
    let mut weights: Vec<Vec<i8>> = Vec::new();
    for w in widths.windows(2) {
        let (inputs, outputs) = (w[0], w[1]);
        let mut layer: Vec<i8> = (0..inputs * outputs)
            .map(|_| (next(255) as i32 - 127) as i8)
            .collect();
        if inputs == 517 {
            for (row, value) in [127i8, -127, -128, 127].into_iter().enumerate() {
                layer[row * inputs..(row + 1) * inputs].fill(value);
            }
        }
        weights.push(layer);
    }
    let biases: Vec<Vec<i32>> = widths[1..]
        .iter()
        .map(|&n| (0..n).map(|_| next(40_001) as i32 - 20_000).collect())
        .collect();
    // Extreme rows: 517 * 127 * 255 to about 120 steps; random rows: about
    // sqrt(n) * 73 * 150 to 60 steps.
    let real = |extreme: bool, n: usize| {
        if extreme {
            120.0 / (n as f64 * 127.0 * 255.0)
        } else {
            60.0 / ((n as f64).sqrt() * 73.0 * 150.0)
        }
    };
    let (m1, s1): (Vec<i32>, Vec<i32>) = (0..37)
        .map(|o| quantize_multiplier_single_rounding(real(o < 4, 517) * (1.0 + o as f64 / 37.0)))
        .unzip();
    let (m2, s2) = quantize_multiplier_single_rounding(real(false, 37));
    let (m3, s3) = quantize_multiplier_single_rounding(real(false, 6));
    let tensor = |zero_point| QuantParams {
        scale: 0.25,
        zero_point,
    };
    let requant = [(m1, s1), (vec![m2], vec![s2]), (vec![m3], vec![s3])];
    let zero_points = [127, 0, -3];
    let params = QNetworkParams {
        role: Role::Encoder,
        input: QuantParams {
            scale: 1.0,
            zero_point: -128,
        },
        layers: (0..3)
            .map(|l| QLayerParams {
                inputs: widths[l],
                outputs: widths[l + 1],
                activation: Activation::Identity,
                weight: &weights[l],
                bias: &biases[l],
                multiplier: &requant[l].0,
                shift: &requant[l].1,
                output: tensor(zero_points[l]),
            })
            .collect(),
        prior: PriorParams::None,
        final_activation: FinalActivation::Int8,
    };
    let bytes = params.encode().unwrap();
    // Row 0 saturates every input at 127 (x - z = 255), row 1 at -128.
    let inputs: Vec<f32> = (0..8)
        .flat_map(|row| {
            (0..517).map(move |j| match row {
                0 => 300.0,
                1 => -300.0,
                _ => ((row * 517 + j) * 37 % 255) as f32 - 127.0,
            })
        })
        .collect();
    xtask::write_case(dir, &bytes, &inputs).unwrap();
}

/// The cases whose detectors are learned on the device, from recipes for
/// the BasicMotions windows (Standing and Walking normal): one full
/// Gaussian learned from the normal training windows in recording order
/// (144, then 36 to calibrate), a pair of diagonal Gaussians (reg-covar
/// Scott's and 0.01) from the same windows, and a pair of two-component
/// diagonal mixtures (20 k-means and EM passes) from 36 of them
/// alternating between the first and the last recordings (24, then 12:
/// the features it stores must fit the Cortex-M0's 16 KiB of RAM). Every
/// sixth test window follows.
/// The device must learn the host's bytes (the file's CRC) and score every
/// window bit for bit. Returns the lines the firmware must print.
fn learn_cases(dir: &std::path::Path) -> Vec<String> {
    let normal: Vec<String> = xtask::BASICMOTIONS_NORMAL.map(String::from).to_vec();
    let (length, stride) = xtask::BASICMOTIONS_WINDOW;
    let windows = |split| {
        series_windows(
            &xtask::basicmotions(split).unwrap(),
            length,
            stride,
            &normal,
        )
        .unwrap()
    };
    let (train, train_labels) = windows("TRAIN");
    let (test, test_labels) = windows("TEST");
    let input_len = 6 * length;
    let normal_train: Vec<&[f32]> = train
        .chunks_exact(input_len)
        .zip(&train_labels)
        .filter(|(_, l)| **l == 0.0)
        .map(|(w, _)| w)
        .collect();
    assert_eq!(normal_train.len(), 180);
    let some_test: Vec<(&[f32], f64)> = test
        .chunks_exact(input_len)
        .zip(test_labels)
        .step_by(6)
        .collect();
    let recipe = RecipeSpec {
        features: Features::WindowStats {
            channels: 6,
            length: length as u32,
        },
        dim: 24,
        covariance: Covariance::Full,
        components: 1,
        iterations: 0,
        seed: 0,
        reg_covar: RegCovar::Scott.value(144, 24),
        alarm_rate: 0.01,
        learn: 144,
        calibrate: 36,
        second_reg_covar: None,
    };
    let mut lines = learn_case(&dir.join(LEARN), &recipe, &normal_train, &some_test, true);
    let pair = RecipeSpec {
        covariance: Covariance::Diag,
        second_reg_covar: Some(0.01),
        ..recipe
    };
    lines.extend(learn_case(
        &dir.join(LEARN_PAIR),
        &pair,
        &normal_train,
        &some_test,
        true,
    ));
    let alternating: Vec<&[f32]> = (0..18)
        .flat_map(|i| [normal_train[i], normal_train[179 - i]])
        .collect();
    let mixture = RecipeSpec {
        covariance: Covariance::Diag,
        components: 2,
        iterations: 20,
        seed: 4,
        reg_covar: RegCovar::Scott.value(24, 24),
        learn: 24,
        calibrate: 12,
        second_reg_covar: Some(0.01),
        ..recipe
    };
    lines.extend(learn_case(
        &dir.join(LEARN_MIXTURE_PAIR),
        &mixture,
        &alternating,
        &some_test,
        false,
    ));
    lines
}

/// One learning case: the recipe learns from `stream` (its learning and
/// calibration inputs, labelled normal), then `test` follows.
fn learn_case(
    dir: &std::path::Path,
    recipe: &RecipeSpec,
    stream: &[&[f32]],
    test: &[(&[f32], f64)],
    check_quality: bool,
) -> Vec<String> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let stream: Vec<f32> = stream.concat();
    let test_inputs: Vec<f32> = test.iter().flat_map(|(w, _)| w.iter().copied()).collect();
    let test_labels: Vec<f64> = test.iter().map(|(_, l)| *l).collect();
    let learned =
        xtask::write_learn_case(dir, recipe, &stream, &test_inputs, &test_labels).unwrap();
    let inputs = [stream.as_slice(), &test_inputs].concat();
    let taken = stream.len() / recipe.input_len();
    let labels: Vec<f64> = std::iter::repeat_n(0.0, taken)
        .chain(test_labels.iter().copied())
        .collect();

    let aligned = AlignedBytes::new(&learned);
    let detector = Detector::from_bytes(aligned.as_bytes()).unwrap();
    let (mut hits, mut anomalies, mut false_alarms) = (0, 0, 0);
    for (x, &label) in inputs.chunks_exact(recipe.input_len()).zip(&labels) {
        let alarm = detector.is_anomaly(x).unwrap();
        anomalies += usize::from(label != 0.0);
        hits += usize::from(alarm && label != 0.0);
        false_alarms += usize::from(alarm && label == 0.0);
    }
    let normal = labels.len() - anomalies;
    assert!(
        !check_quality || (hits * 10 >= anomalies * 9 && false_alarms * 10 <= normal),
        "{name} learned on the host: {hits} of {anomalies} hits, {false_alarms} false alarms in {normal}"
    );
    let windows = labels.len();
    vec![
        format!(
            "case {name}: learned on the device from {taken} inputs, threshold bits {:#010x}, file crc {:#010x}",
            detector.spec().threshold.to_bits(),
            detector.density().header().crc
        ),
        format!("case {name}: {windows} values, {windows} bit-exact, 0 mismatches"),
        format!(
            "case {name}: detector flagged {hits} of {anomalies} anomalous windows, {false_alarms} false alarms in {normal} normal windows"
        ),
    ]
}

/// Runs the cases in `dir` on `core` and checks every line of the report.
fn check_core(core: xtask::Core, suite: &Suite, plugin: &std::path::Path) {
    let (dir, stream_report) = (&suite.dir, &suite.stream_report);
    // The suite runs as several images where it does not fit the flash at
    // once (the Cortex-M0); every image checks its cases, the corruption
    // and the hostile file.
    let runs = xtask::run_suite(dir, core, &[], Some(plugin)).unwrap();
    for run in &runs {
        check_image(core, run);
    }
    let stdout: String = runs.iter().map(|r| r.stdout.as_str()).collect();
    println!("{} ({} image(s)):\n{stdout}", core.name(), runs.len());
    for line in &suite.learn_report {
        assert!(
            stdout.contains(line),
            "missing {line:?} on the {core:?}:\n{stdout}"
        );
    }
    // The micro:bit (a Nordic part) keeps each learned file in flash,
    // written through its flash controller; the report's CRC above is of
    // the file found there.
    if core == xtask::Core::M0 {
        for name in [LEARN, LEARN_PAIR, LEARN_MIXTURE_PAIR] {
            let line = format!("case {name}: the learned file is in flash at 0x3f000, ");
            assert!(
                stdout.contains(&line),
                "missing {line:?} on the {core:?}:\n{stdout}"
            );
        }
    }
    for name in [
        "full_k8_d16",
        "diag_k8_d16",
        "tied_k3_d5",
        "spherical_k3_d4_std",
        "full_k1_d7_std",
        "cardio_full_k4_std",
        "kde_scott_d3",
        "detector_points_d3",
    ] {
        let line = format!("case {name}: 64 values, 64 bit-exact, 0 mismatches");
        assert!(
            stdout.contains(&line),
            "missing {line:?} on the {core:?}:\n{}",
            stdout
        );
    }
    assert!(
        stdout.contains(stream_report),
        "missing {stream_report:?} in:\n{}",
        stdout
    );
    let line = "case basicmotions_stream: 360 values, 360 bit-exact, 0 mismatches";
    assert!(
        stdout.contains(line),
        "missing {line:?} on the {core:?}:\n{}",
        stdout
    );
    let line = "case detector_windows_3x10: 64 values, 64 bit-exact, 0 mismatches";
    assert!(
        stdout.contains(line),
        "missing {line:?} on the {core:?}:\n{}",
        stdout
    );
    for name in [
        "basicmotions_neural",
        "basicmotions_neural_int8",
        "basicmotions_pair",
    ] {
        let line = format!("case {name}: 40 values, 40 bit-exact, 0 mismatches");
        assert!(
            stdout.contains(&line),
            "missing {line:?} on the {core:?}:\n{stdout}"
        );
    }
    for name in [
        "decoder_vae_gaussian",
        "decoder_swae_ring",
        "decoder_swae_gmm",
    ] {
        let mut lines = vec![
            format!("case {name}: 1024 values, 1024 bit-exact, 0 mismatches"),
            format!("case {name}: 2 samples from the prior, 0 values differ from the host"),
        ];
        if name != "decoder_swae_gmm" {
            let encoded = if name == "decoder_vae_gaussian" {
                64
            } else {
                32
            };
            lines.extend([
                format!("case {name}_int8: 1024 values, 1024 bit-exact, 0 mismatches"),
                format!(
                    "case {name}_int8: 2 samples from the prior, 0 values differ from the host"
                ),
                format!(
                    "case {name}_int8_encoder: {encoded} values, {encoded} bit-exact, 0 mismatches"
                ),
            ]);
        }
        for line in lines {
            assert!(
                stdout.contains(&line),
                "missing {line:?} on the {core:?}:\n{}",
                stdout
            );
        }
    }
    let line = format!("case {INT8_EDGES}: 24 values, 24 bit-exact, 0 mismatches");
    assert!(
        stdout.contains(&line),
        "missing {line:?} on the {core:?}:\n{}",
        stdout
    );
    for line in sampled_case_lines() {
        assert!(
            stdout.contains(&line),
            "missing {line:?} on the {core:?}:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("with 2-value buffers rejected: "),
        "a too-wide decoder was not rejected:\n{}",
        stdout
    );
    for what in [
        "one bit flipped",
        "bad magic",
        "truncated",
        "at an odd address",
    ] {
        let line = format!("corrupted model ({what}) rejected");
        assert!(
            stdout.contains(&line),
            "missing {line:?} on the {core:?}:\n{}",
            stdout
        );
    }
}

/// Checks one image's run: success, and the hostile file's rejection
/// within its instruction budget.
fn check_image(core: xtask::Core, run: &xtask::QemuRun) {
    assert!(
        run.success,
        "firmware failed on the {}:\n{}\n{}",
        core.name(),
        run.stdout,
        run.stderr
    );
    // The last measured region is the rejection of the hostile 32-byte file
    // (it once looped over a claimed dimension of 2.8e9); the first is the
    // markers' own overhead.
    let counts = xtask::icounts(&run.stderr);
    let (Some(overhead), Some(hostile)) = (counts.first(), counts.last()) else {
        panic!("no instruction counts in:\n{}", run.stderr);
    };
    let rejection = hostile - overhead;
    println!(
        "{}: rejecting the hostile 32-byte model: {rejection} instructions",
        core.name()
    );
    assert!(
        run.stdout.contains("hostile 32-byte model rejected: "),
        "{}",
        run.stdout
    );
    assert!(
        rejection < xtask::HOSTILE_REJECTION_BUDGET,
        "rejecting the hostile model took {rejection} instructions on the {core:?}"
    );
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = xtask::target_dir().join("qemu-parity-cases");
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A decoder bigger than the board's flash (1 MiB in firmware/memory.x)
/// fails the firmware's link, not its run: models live in flash.
#[test]
fn a_decoder_over_the_flash_budget_fails_the_link() {
    if let Some(missing) = xtask::qemu_missing() {
        assert!(
            std::env::var_os("TINYGEN_REQUIRE_QEMU").is_none_or(|v| v != "1"),
            "TINYGEN_REQUIRE_QEMU=1 but {missing}"
        );
        eprintln!("SKIPPED: {missing}");
        return;
    }
    // Its own folder: the parity test, running beside it, owns tempfile_dir().
    let dir = xtask::target_dir().join("qemu-overflow-case");
    std::fs::remove_dir_all(&dir).ok();
    // 16 -> 512 -> 784: about 411,000 f32 parameters, 1.6 MB.
    let config = NetworkConfig {
        image: Some((28, 28)),
        ..NetworkConfig::new(Objective::VAE, 784, vec![512], 16)
    };
    let bytes = export_tgm(&Network::new(config, 0).unwrap(), Part::Decoder, None).unwrap();
    assert!(bytes.len() > 1 << 20);
    xtask::write_case(&dir.join("too_big"), &bytes, &[0.0; 16]).unwrap();
    let out = std::process::Command::new(env!("CARGO"))
        .current_dir(xtask::root().join("firmware"))
        .args([
            "build",
            "--release",
            "--target",
            xtask::Core::MAIN.target(),
            "--bin",
            "tinygen-firmware",
        ])
        .arg("--target-dir")
        .arg(xtask::target_dir().join("firmware-overflow"))
        .env("TINYGEN_FW_CASES", &dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a 1.6 MB model linked into 1 MiB of flash"
    );
    assert!(
        stderr.contains("FLASH") && stderr.contains("overflow"),
        "the link failed for another reason:\n{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The board program's "learn normal, keep it in flash" flow
/// (firmware/src/learn_demo.rs), here as the host runs it.
#[path = "../../firmware/src/learn_demo.rs"]
mod learn_demo;

/// On QEMU's micro:bit (an nRF51, the nRF52840's flash controller) the
/// `learn_reset` program learns a detector, writes it to flash through the
/// NVMC and resets the part; after the reset it finds the file there and
/// scores with it. The file's CRC and the alarms must be the host's, which
/// runs the same flow on the same simulated sensor.
#[test]
fn a_detector_learned_on_the_micro_bit_is_found_in_flash_after_a_reset() {
    if skip(xtask::qemu_missing()) {
        return;
    }
    let mut file = tinygen_runtime::Aligned([0u8; learn_demo::FILE_BYTES]);
    let (len, windows) = learn_demo::learn(&mut file.0).unwrap();
    let learned = &file.0[..len];
    let crc = u32::from_le_bytes(*learned.last_chunk::<4>().unwrap());
    let detector = tinygen_runtime::Detector::from_bytes(learned).unwrap();
    let [normal, shaken] = learn_demo::alarms(&detector).unwrap();
    assert!(
        normal <= 5 && shaken >= 90,
        "the demo's detector: {normal} alarms on normal windows, {shaken} on shaken ones"
    );
    // What a boot finds in the page: the whole file; nothing in an erased
    // page or after a write cut short by a power loss (then it learns again).
    let mut page = tinygen_runtime::Aligned([0xFFu8; 4096]);
    assert_eq!(learn_demo::kept(&page.0), None);
    page.0[..len / 2].copy_from_slice(&learned[..len / 2]);
    assert_eq!(learn_demo::kept(&page.0), None);
    page.0[..len].copy_from_slice(learned);
    assert_eq!(learn_demo::kept(&page.0), Some(learned));

    // Its own target directory: the parity tests build the firmware beside it.
    let core = xtask::Core::M0;
    let target = xtask::target_dir().join("firmware-learn-reset");
    let status = std::process::Command::new(env!("CARGO"))
        .current_dir(xtask::root().join("firmware"))
        .args(["build", "--release", "--quiet", "--target", core.target()])
        .args(["--bin", "learn_reset"])
        .arg("--target-dir")
        .arg(&target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .unwrap();
    assert!(status.success(), "learn_reset did not build");
    let elf = target.join(core.target()).join("release/learn_reset");
    let run = xtask::run_qemu(&elf, core, None).unwrap();
    println!("{}", run.stdout);
    for line in [
        format!(
            "learn_reset: learned from {windows} windows, file crc {crc:#010x}; written to flash, resetting"
        ),
        format!(
            "learn_reset: after a reset, found in flash at 0x3f000: {len} bytes, file crc {crc:#010x}"
        ),
        format!(
            "learn_reset: normal windows {normal} alarms in 100, shaken windows {shaken} alarms in 100"
        ),
    ] {
        assert!(
            run.stdout.contains(&line),
            "missing {line:?}:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
}
