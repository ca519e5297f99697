//! Golden files: one small committed model file of each kind, so that a
//! change of the format is always deliberate.
//!
//! Each file is a model with a closed-form output. The tests check that the
//! committed bytes are exactly what the writer produces today, that the
//! header carries the pinned schema key, and that the runtime computes the
//! closed-form outputs from the committed bytes. After a deliberate format
//! change, rewrite the files with
//! `TINYGEN_BLESS=1 cargo test -p tinygen-runtime --features alloc --test golden`
//! and say so in FORMAT.md.
#![cfg(feature = "alloc")]

use std::path::PathBuf;

use tinygen_runtime::Activation;
use tinygen_runtime::detector::{AutoencoderParams, Features, NeuralParams, SecondDensityParams};
use tinygen_runtime::diffusion::{Diffusion, DiffusionParams, Sampler, Schedule};
use tinygen_runtime::gmm::{Covariance, GmmParams};
use tinygen_runtime::learn::{Recipe, RecipeSpec};
use tinygen_runtime::network::{DecoderParams, LayerParams, PriorParams, Role};
use tinygen_runtime::qnetwork::{
    FinalActivation, QLayerParams, QNetwork, QNetworkParams, QScratch, QuantParams, SIGMOID_OUTPUT,
};
use tinygen_runtime::rand_core::SeedableRng;
use tinygen_runtime::{
    AnyModel, Decoder, Detector, Encoder, Error, Gmm, ModelKind, Scratch, Xoshiro128PlusPlus,
    format, quant,
};

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// micromath's exp and ln are about 1e-3 off; libm's are exact to an ulp.
const TOLERANCE: f64 = if cfg!(feature = "micromath") {
    5e-3
} else {
    1e-6
};

/// A 1-D standard normal.
fn normal_1d() -> GmmParams<'static> {
    GmmParams {
        covariance: Covariance::Diag,
        dim: 1,
        weights: &[1.0],
        means: &[0.0],
        precisions_cholesky: &[1.0],
        standardizer: None,
    }
}

/// Layer `inputs -> outputs` with identity activation.
fn linear<'p>(weight: &'p [f32], bias: &'p [f32]) -> LayerParams<'p> {
    LayerParams {
        inputs: weight.len() / bias.len(),
        outputs: bias.len(),
        activation: Activation::Identity,
        weight,
        bias,
    }
}

/// Pinned schema key of detectors (`detector/6`).
const DETECTOR_KEY: u32 = 0x09b3_ff53;

/// Pinned schema key of `detector/5` files (`detector_v5.tgm` and
/// `detector_int8_v5.tgm`, the golden detectors before the second density,
/// read).
const DETECTOR_V5_KEY: u32 = 0x142c_61df;

/// Pinned schema key of `detector/4` files (`detector_v4.tgm`, read;
/// `detector_int8_v4.tgm`, whose int8 networks are `mlp-int8/3`, rejected).
const DETECTOR_V4_KEY: u32 = 0x117c_c51e;

/// Pinned schema key of `detector/3` files (`detector_v3.tgm`, read;
/// `detector_int8_v3.tgm`, whose int8 networks are `mlp-int8/2`, rejected).
const DETECTOR_V3_KEY: u32 = 0x9436_e365;

/// Pinned schema key of `detector/2` files (`detector_v2.tgm`, the golden
/// detector as committed before `detector/3`, still read, no longer written).
const DETECTOR_V2_KEY: u32 = 0xbfa4_6c95;

/// Pinned schema key of the int8 networks (`mlp-int8/4`).
const INT8_KEY: u32 = 0x1f63_666a;

/// Pinned schema key of `mlp-int8/3` files (`decoder_int8_v3.tgm`, the
/// golden int8 decoder before the final activation's choice, rejected).
const INT8_V3_KEY: u32 = 0xf741_b213;

/// Pinned schema key of `mlp-int8/2` files (`decoder_int8_v2.tgm`, the golden
/// int8 decoder before sigmoid and tanh tables, rejected).
const INT8_V2_KEY: u32 = 0x1979_ed36;

const SIXTEENTH: QuantParams = QuantParams {
    scale: 1.0 / 16.0,
    zero_point: 0,
};

/// Int8 decoder 2 -> 3 (relu) -> 1 (sigmoid), the f32 golden decoder's
/// weights quantized: input and tensors at scale 1/16, weights at 1/64
/// (per-tensor in the first layer, per-channel in the second), a standard
/// normal prior.
fn decoder_int8() -> QNetworkParams<'static> {
    QNetworkParams {
        role: Role::Decoder,
        input: SIXTEENTH,
        layers: vec![
            QLayerParams {
                inputs: 2,
                outputs: 3,
                activation: Activation::Relu,
                weight: &[64, 0, 0, 64, 64, 64],
                bias: &[0, 0, -1024],
                multiplier: &[1 << 30],
                shift: &[-5],
                output: SIXTEENTH,
            },
            QLayerParams {
                inputs: 3,
                outputs: 1,
                activation: Activation::Sigmoid,
                weight: &[64, -64, 32],
                bias: &[0],
                multiplier: &[1 << 30],
                shift: &[-5],
                output: SIXTEENTH,
            },
        ],
        prior: PriorParams::Gaussian,
        final_activation: FinalActivation::Int8,
    }
}

/// Int8 encoder 2 -> 1: z = x0 - x1 + 0.5, input zero point 2, output
/// zero point -5.
fn encoder_int8() -> QNetworkParams<'static> {
    QNetworkParams {
        role: Role::Encoder,
        input: QuantParams {
            scale: 1.0 / 16.0,
            zero_point: 2,
        },
        layers: vec![QLayerParams {
            inputs: 2,
            outputs: 1,
            activation: Activation::Identity,
            weight: &[64, -64],
            bias: &[512],
            multiplier: &[1 << 30],
            shift: &[-5],
            output: QuantParams {
                scale: 1.0 / 16.0,
                zero_point: -5,
            },
        }],
        prior: PriorParams::None,
        final_activation: FinalActivation::Int8,
    }
}

/// The golden models: (file name, kind, bytes the writer produces today).
/// Pinned schema key of learning recipes (`recipe/2`).
const RECIPE_KEY: u32 = 0xaaa6_cce8;

/// Pinned schema key of `recipe/1` files (`recipe_v1.tgm`, the golden
/// recipe before the second density), still read.
const RECIPE_V1_KEY: u32 = 0x3bd6_36f7;

/// A recipe: learn two diagonal components (20 EM passes from seed 7) over
/// the window statistics of two channels from 64 windows, calibrate on 16;
/// a second density regularised by 0.5.
fn recipe() -> RecipeSpec {
    RecipeSpec {
        features: Features::WindowStats {
            channels: 2,
            length: 4,
        },
        dim: 8,
        covariance: Covariance::Diag,
        components: 2,
        iterations: 20,
        seed: 7,
        reg_covar: 0.25,
        alarm_rate: 0.0625,
        learn: 64,
        calibrate: 16,
        second_reg_covar: Some(0.5),
    }
}

/// Pinned schema key of diffusion models (`diffusion/1`).
const DIFFUSION_KEY: u32 = 0x14a5_608e;

/// The golden diffusion model's schedule: `alpha_bar` for t = 1..=4.
const ALPHA_BAR: [f32; 4] = [0.9, 0.5, 0.25, 0.0625];

/// A diffusion model over one feature: embedding width 2, four steps of
/// [`ALPHA_BAR`], noise predictor `eps = x / 2 + sin(t) / 4` (the first
/// embedding value is `sin(t)`), output `2 x + 1`, default sampler DDIM in
/// four steps, no clipping.
fn diffusion() -> Vec<u8> {
    DiffusionParams {
        embedding: 2,
        schedule: Schedule::Custom,
        alpha_bar: &ALPHA_BAR,
        clip: false,
        sampler: Sampler::ddim(4),
        layers: vec![linear(&[0.5, 0.25, 0.0], &[0.0])],
        scale: &[2.0],
        offset: &[1.0],
        skip: None,
    }
    .encode()
    .unwrap()
}

/// The golden pair detector's second density: a KDE of one kernel
/// N(0, diag(4, 4)); the terms centred by (1, 2) and scaled by (2, 0.5).
fn second_density() -> SecondDensityParams<'static> {
    SecondDensityParams {
        kind: ModelKind::Kde,
        density: GmmParams {
            covariance: Covariance::Diag,
            dim: 2,
            weights: &[1.0],
            means: &[0.0, 0.0],
            precisions_cholesky: &[0.5, 0.5],
            standardizer: None,
        },
        center: [1.0, 2.0],
        scale: [2.0, 0.5],
    }
}

fn golden() -> Vec<(&'static str, ModelKind, Vec<u8>)> {
    // KDE: kernels N(-1, 1) and N(1, 1), equal weights (a tied mixture).
    let kde = GmmParams {
        covariance: Covariance::Tied,
        dim: 1,
        weights: &[0.5, 0.5],
        means: &[-1.0, 1.0],
        precisions_cholesky: &[1.0],
        standardizer: None,
    };
    // Detector: the standard normal density on 2-D points, an autoencoder
    // u = ((x0 - 1) / 2, (x1 - 2) / 4) -> z = u0 -> (z, 0), a standard
    // normal latent density, threshold 7.
    let neural = NeuralParams {
        mean: &[1.0, 2.0],
        inv_scale: &[0.5, 0.25],
        autoencoder: AutoencoderParams::F32 {
            encoder: DecoderParams {
                role: Role::Encoder,
                latent: 1,
                layers: vec![linear(&[1.0, 0.0], &[0.0])],
                prior: PriorParams::None,
            },
            decoder: DecoderParams {
                role: Role::Decoder,
                latent: 1,
                layers: vec![linear(&[1.0, 0.0], &[0.0, 0.0])],
                prior: PriorParams::None,
            },
        },
        latent: normal_1d(),
        center: [1.0, 0.5, -1.0],
        scale: [2.0, 4.0, 0.5],
    };
    // The same autoencoder in int8: tensors at scale 1/16, weights 1 as 64
    // at scale 1/64 (multiplier 2^30, shift -5: 1/64).
    let int8_layer = |inputs, outputs, bias: &'static [i32]| QLayerParams {
        inputs,
        outputs,
        activation: Activation::Identity,
        weight: &[64, 0],
        bias,
        multiplier: &[1 << 30],
        shift: &[-5],
        output: SIXTEENTH,
    };
    let int8_network = |role, layer| QNetworkParams {
        role,
        input: SIXTEENTH,
        layers: vec![layer],
        prior: PriorParams::None,
        final_activation: FinalActivation::Int8,
    };
    let neural_int8 = NeuralParams {
        autoencoder: AutoencoderParams::Int8 {
            encoder: int8_network(Role::Encoder, int8_layer(2, 1, &[0])),
            decoder: int8_network(Role::Decoder, int8_layer(1, 2, &[0, 0])),
        },
        ..neural.clone()
    };
    let density = GmmParams {
        covariance: Covariance::Full,
        dim: 2,
        weights: &[1.0],
        means: &[0.0, 0.0],
        precisions_cholesky: &[1.0, 0.0, 0.0, 1.0],
        standardizer: None,
    };
    // Decoder 2 -> 3 (relu) -> 1 (sigmoid) with a one-component mixture
    // prior N((1, -1), diag(4, 1)).
    let decoder = DecoderParams {
        role: Role::Decoder,
        latent: 2,
        layers: vec![
            LayerParams {
                activation: Activation::Relu,
                ..linear(&[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], &[0.0, 0.0, -1.0])
            },
            LayerParams {
                activation: Activation::Sigmoid,
                ..linear(&[1.0, -1.0, 0.5], &[0.0])
            },
        ],
        prior: PriorParams::Mixture {
            weights: &[1.0],
            means: &[1.0, -1.0],
            cholesky: &[2.0, 0.0, 0.0, 1.0],
        },
    };
    // Encoder 2 -> 1: z = x0 - x1 + 0.5.
    let encoder = DecoderParams {
        role: Role::Encoder,
        latent: 1,
        layers: vec![linear(&[1.0, -1.0], &[0.5])],
        prior: PriorParams::None,
    };
    vec![
        ("gmm.tgm", ModelKind::Gmm, normal_1d().encode().unwrap()),
        (
            "kde.tgm",
            ModelKind::Kde,
            kde.encode_as(ModelKind::Kde).unwrap(),
        ),
        (
            "detector.tgm",
            ModelKind::Detector,
            density
                .encode_neural_detector(ModelKind::Gmm, Features::Identity, 7.0, Some(&neural))
                .unwrap(),
        ),
        (
            "detector_int8.tgm",
            ModelKind::Detector,
            density
                .encode_neural_detector(ModelKind::Gmm, Features::Identity, 7.0, Some(&neural_int8))
                .unwrap(),
        ),
        (
            "detector_pair.tgm",
            ModelKind::Detector,
            density
                .encode_pair_detector(ModelKind::Gmm, Features::Identity, 7.0, &second_density())
                .unwrap(),
        ),
        ("decoder.tgm", ModelKind::Decoder, decoder.encode().unwrap()),
        ("encoder.tgm", ModelKind::Encoder, encoder.encode().unwrap()),
        (
            "decoder_int8.tgm",
            ModelKind::DecoderInt8,
            decoder_int8().encode().unwrap(),
        ),
        (
            "encoder_int8.tgm",
            ModelKind::EncoderInt8,
            encoder_int8().encode().unwrap(),
        ),
        ("recipe.tgm", ModelKind::Recipe, recipe().encode().unwrap()),
        ("diffusion.tgm", ModelKind::Diffusion, diffusion()),
        (
            "decoder_int8_f32_output.tgm",
            ModelKind::DecoderInt8,
            QNetworkParams {
                final_activation: FinalActivation::F32,
                ..decoder_int8()
            }
            .encode()
            .unwrap(),
        ),
    ]
}

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// A committed golden file, 4-byte aligned.
fn committed(name: &str) -> (Vec<u32>, usize) {
    let bytes = std::fs::read(path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut words = vec![0u32; bytes.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(&bytes);
    (words, bytes.len())
}

fn close(got: f32, want: f64, what: &str) {
    assert!(
        (f64::from(got) - want).abs() <= TOLERANCE * want.abs().max(1.0),
        "{what}: {got} vs {want}"
    );
}

#[test]
fn the_writer_produces_the_committed_bytes() {
    let bless = std::env::var_os("TINYGEN_BLESS").is_some();
    for (name, _, bytes) in golden() {
        if bless {
            std::fs::write(path(name), &bytes).unwrap();
        }
        let committed = std::fs::read(path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            committed == bytes,
            "{name}: the writer's bytes differ from the committed golden file; \
             if the format changed on purpose, bless the files (see this file's docs)"
        );
    }
}

#[test]
fn golden_headers_carry_the_pinned_kinds_and_schema_keys() {
    for (name, kind, _) in golden() {
        let (words, len) = committed(name);
        let header = format::read_header(&bytemuck::cast_slice(&words)[..len]).unwrap();
        let key = match kind {
            ModelKind::Gmm | ModelKind::Kde => 0x0be4_268f,
            ModelKind::Detector => DETECTOR_KEY,
            ModelKind::Decoder | ModelKind::Encoder => 0x9ea2_7bc7,
            ModelKind::DecoderInt8 | ModelKind::EncoderInt8 => INT8_KEY,
            ModelKind::Recipe => RECIPE_KEY,
            ModelKind::Diffusion => DIFFUSION_KEY,
        };
        assert_eq!((header.version, header.kind), (1, kind), "{name}");
        assert_eq!(header.schema, key, "{name}: schema key");
        assert_eq!(kind.schema_key(), key, "{name}: the reader's schema key");
    }
}

/// DDIM over every step of the golden diffusion model, computed here in
/// f64 from the module's formulas, against the runtime on the committed
/// bytes; and one evaluation of its noise predictor.
#[test]
fn the_golden_diffusion_model_samples_its_closed_form() {
    let (words, len) = committed("diffusion.tgm");
    let model = Diffusion::from_bytes(&bytemuck::cast_slice(&words)[..len]).unwrap();
    let mut work = vec![0f32; model.work_len()];
    let mut out = [0f32; 1];
    model
        .sample(
            &mut Xoshiro128PlusPlus::seed_from_u64(5),
            &mut out,
            &mut work,
        )
        .unwrap();
    let mut z = [0f32; 1];
    tinygen_runtime::prior::standard_normals(&mut Xoshiro128PlusPlus::seed_from_u64(5), &mut z);
    let mut x = f64::from(z[0]);
    for t in (1..=4usize).rev() {
        let a = f64::from(ALPHA_BAR[t - 1]);
        let p = if t == 1 {
            1.0
        } else {
            f64::from(ALPHA_BAR[t - 2])
        };
        let eps = x / 2.0 + (t as f64).sin() / 4.0;
        let x0 = (x - (1.0 - a).sqrt() * eps) / a.sqrt();
        x = p.sqrt() * x0 + (1.0 - p).sqrt() * eps;
    }
    close(out[0], 2.0 * x + 1.0, "diffusion sample");
    let any = AnyModel::from_bytes(&bytemuck::cast_slice(&words)[..len]).unwrap();
    let mut eps = [0f32; 1];
    any.eval(&[0.75, 3.0], &mut eps, &mut Scratch::<4>::new())
        .unwrap();
    close(eps[0], 0.375 + 3f64.sin() / 4.0, "noise prediction");
}

#[test]
fn golden_files_give_their_closed_form_outputs() {
    let (words, len) = committed("recipe.tgm");
    let parsed = Recipe::from_bytes(&bytemuck::cast_slice(&words)[..len]).unwrap();
    assert_eq!(parsed.spec(), recipe());
    // recipe/1, as that version wrote it: the same without the second.
    let (words, len) = committed("recipe_v1.tgm");
    let bytes = &bytemuck::cast_slice(&words)[..len];
    assert_eq!(format::read_header(bytes).unwrap().schema, RECIPE_V1_KEY);
    let parsed = Recipe::from_bytes(bytes).unwrap();
    let want = RecipeSpec {
        second_reg_covar: None,
        ..recipe()
    };
    assert_eq!(parsed.spec(), want);

    let (words, len) = committed("gmm.tgm");
    let gmm = Gmm::from_bytes(&bytemuck::cast_slice(&words)[..len]).unwrap();
    assert_eq!(len, 40, "FORMAT.md dumps this file byte by byte");
    for x in [0.0f32, 1.0, -2.5] {
        let want = -0.5 * LN_2PI - 0.5 * f64::from(x * x);
        close(gmm.log_density(&[x]).unwrap(), want, "gmm");
    }

    let (words, len) = committed("kde.tgm");
    let kde = Gmm::from_bytes(&bytemuck::cast_slice(&words)[..len]).unwrap();
    assert_eq!(kde.kind(), ModelKind::Kde);
    for x in [0.0f64, 1.0, 3.0] {
        let n = |m: f64| (-0.5 * (x - m) * (x - m)).exp() / LN_2PI.exp().sqrt();
        let want = (0.5 * n(-1.0) + 0.5 * n(1.0)).ln();
        close(kde.log_density(&[x as f32]).unwrap(), want, "kde");
    }

    // The f32 and the int8 detector (whose tensors are exact on these
    // points: the standardized features are multiples of 1/16), and the
    // f32 one as detector/2 to detector/5 wrote it (the int8 one too, for
    // detector/5).
    for name in [
        "detector.tgm",
        "detector_int8.tgm",
        "detector_v2.tgm",
        "detector_v3.tgm",
        "detector_v4.tgm",
        "detector_v5.tgm",
        "detector_int8_v5.tgm",
    ] {
        let (words, len) = committed(name);
        let bytes = &bytemuck::cast_slice(&words)[..len];
        let detector = Detector::from_bytes(bytes).unwrap();
        let key = format::read_header(bytes).unwrap().schema;
        let want_key = match name {
            "detector_v2.tgm" => DETECTOR_V2_KEY,
            "detector_v3.tgm" => DETECTOR_V3_KEY,
            "detector_v4.tgm" => DETECTOR_V4_KEY,
            "detector_v5.tgm" | "detector_int8_v5.tgm" => DETECTOR_V5_KEY,
            _ => DETECTOR_KEY,
        };
        assert_eq!(key, want_key, "{name}: schema key");
        assert_eq!(
            detector.has_int8_neural(),
            name.starts_with("detector_int8")
        );
        for x in [[3.0f32, -2.0], [1.0, 2.0], [-0.5, 9.0]] {
            let (x0, x1) = (f64::from(x[0]), f64::from(x[1]));
            let nll = 0.5 * (x0 * x0 + x1 * x1) + LN_2PI;
            let (u0, u1) = ((x0 - 1.0) / 2.0, (x1 - 2.0) / 4.0);
            let latent = 0.5 * u0 * u0 + 0.5 * LN_2PI;
            let want = (nll - 1.0) / 2.0 + (u1 * u1 - 0.5) / 4.0 + (latent + 1.0) / 0.5;
            let score = detector.score(&x).unwrap();
            close(score, want, name);
            assert_eq!(detector.is_anomaly(&x).unwrap(), score >= 7.0);
        }
    }

    // The pair: -ln N(x; 0, I) and -ln N(x; 0, 4 I), as robust z-scores.
    let (words, len) = committed("detector_pair.tgm");
    let detector = Detector::from_bytes(&bytemuck::cast_slice(&words)[..len]).unwrap();
    assert!(detector.has_second_density() && !detector.has_neural());
    for x in [[3.0f32, -2.0], [1.0, 2.0], [-0.5, 9.0]] {
        let r2 = f64::from(x[0]).powi(2) + f64::from(x[1]).powi(2);
        let first = 0.5 * r2 + LN_2PI;
        let second = 0.125 * r2 + LN_2PI + 2.0 * 2f64.ln();
        let terms = detector.density_terms(&x).unwrap().unwrap();
        close(terms[0], first, "pair: first density");
        close(terms[1], second, "pair: second density");
        let score = detector.score(&x).unwrap();
        close(score, (first - 1.0) / 2.0 + (second - 2.0) / 0.5, "pair");
        assert_eq!(detector.is_anomaly(&x).unwrap(), score >= 7.0);
        assert_eq!(detector.log_density(&x).unwrap(), -terms[0]);
    }

    let (words, len) = committed("decoder.tgm");
    let decoder = Decoder::<4>::from_bytes(&bytemuck::cast_slice(&words)[..len]).unwrap();
    let mut scratch = Scratch::new();
    let mut out = [0.0f32];
    for z in [[2.0f32, 1.0], [-1.0, 0.5], [0.0, 3.0]] {
        decoder.decode(&z, &mut out, &mut scratch).unwrap();
        let h = [z[0].max(0.0), z[1].max(0.0), (z[0] + z[1] - 1.0).max(0.0)];
        let logit = f64::from(h[0]) - f64::from(h[1]) + 0.5 * f64::from(h[2]);
        close(out[0], 1.0 / (1.0 + (-logit).exp()), "decoder");
    }
    // Samples from N((1, -1), diag(4, 1)): mean and spread of many draws.
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(7);
    let n = 20_000;
    let mut code = [0.0f32; 2];
    let (mut sum, mut sq) = ([0.0f64; 2], [0.0f64; 2]);
    for _ in 0..n {
        decoder.prior().sample(&mut rng, &mut code).unwrap();
        for i in 0..2 {
            sum[i] += f64::from(code[i]);
            sq[i] += f64::from(code[i]) * f64::from(code[i]);
        }
    }
    for (i, (mean, var)) in [(1.0, 4.0), (-1.0, 1.0)].into_iter().enumerate() {
        let m = sum[i] / f64::from(n);
        let v = sq[i] / f64::from(n) - m * m;
        assert!((m - mean).abs() < 0.05, "prior mean {i}: {m}");
        assert!((v - var).abs() < 0.1 * var, "prior variance {i}: {v}");
    }

    let (words, len) = committed("encoder.tgm");
    let encoder = Encoder::<4>::from_bytes(&bytemuck::cast_slice(&words)[..len]).unwrap();
    let mut z = [0.0f32];
    encoder.encode(&[3.0, 1.0], &mut z, &mut scratch).unwrap();
    assert_eq!(z[0], 2.5);

    // Int8 decoder at z = (2, 1): input (32, 16), hidden (32, 16, 32) = (2,
    // 1, 2), pre-activation 32 = 2.0, sigmoid(2) = 0.8808 -> 225 - 128 = 97,
    // which stands for 225 / 256.
    let (words, len) = committed("decoder_int8.tgm");
    let decoder = QNetwork::from_bytes(&bytemuck::cast_slice(&words)[..len]).unwrap();
    let mut qscratch = QScratch::<4>::new();
    decoder
        .forward(&[2.0, 1.0], &mut out, &mut qscratch)
        .unwrap();
    assert_eq!(out[0], 225.0 / 256.0);
    let mut q = [0i8];
    decoder
        .forward_i8(&[32, 16], &mut q, &mut qscratch)
        .unwrap();
    assert_eq!(q, [97]);
    // The file stores the sigmoid layer's table, from its output params.
    let table = quant::activation_table(Activation::Sigmoid, SIXTEENTH, SIGMOID_OUTPUT).unwrap();
    assert_eq!(decoder.activation_table(1), Some(&table));
    assert_eq!(decoder.activation_table(0), None);
    assert_eq!(table[32], 97);
    // Sampling draws the code as an f32 decoder does, then runs forward.
    let mut qscratch = QScratch::<8>::new();
    let (mut a, mut b) = (
        Xoshiro128PlusPlus::seed_from_u64(3),
        Xoshiro128PlusPlus::seed_from_u64(3),
    );
    for _ in 0..8 {
        decoder.sample(&mut a, &mut out, &mut qscratch).unwrap();
        decoder.prior().sample(&mut b, &mut code).unwrap();
        let mut want = [0.0f32];
        decoder.forward(&code, &mut want, &mut qscratch).unwrap();
        assert_eq!(out[0].to_bits(), want[0].to_bits());
    }

    // The same decoder with its sigmoid in f32: the last tensor is the
    // pre-activation 32 = 2.0, and the output f32's sigmoid of it.
    let (words, len) = committed("decoder_int8_f32_output.tgm");
    let decoder = QNetwork::from_bytes(&bytemuck::cast_slice(&words)[..len]).unwrap();
    assert_eq!(decoder.final_activation(), FinalActivation::F32);
    assert_eq!(
        decoder.activation_table(1),
        None,
        "no table for an f32 sigmoid"
    );
    assert_eq!(decoder.output_params(), SIXTEENTH);
    decoder
        .forward(&[2.0, 1.0], &mut out, &mut qscratch)
        .unwrap();
    assert_eq!(out[0], Activation::Sigmoid.apply(2.0));
    close(out[0], 1.0 / (1.0 + (-2.0f64).exp()), "f32 sigmoid");
    decoder
        .forward_i8(&[32, 16], &mut q, &mut qscratch)
        .unwrap();
    assert_eq!(q, [32]);
    assert_eq!(
        len + 256,
        committed("decoder_int8.tgm").1,
        "the table's 256 bytes are not stored"
    );

    // Int8 encoder at x = (1, 0.25): input (18, 6), accumulator 1280, 20 - 5.
    let (words, len) = committed("encoder_int8.tgm");
    let encoder = QNetwork::from_bytes(&bytemuck::cast_slice(&words)[..len]).unwrap();
    encoder
        .forward(&[1.0, 0.25], &mut z, &mut qscratch)
        .unwrap();
    assert_eq!(z[0], 1.25);
    encoder.forward_i8(&[18, 6], &mut q, &mut qscratch).unwrap();
    assert_eq!(q, [15]);
}

#[test]
fn files_of_replaced_int8_layouts_are_rejected() {
    // mlp-int8/2 (no sigmoid and tanh tables) and mlp-int8/3 (no final
    // activation's choice), alone or in a detector/3 or detector/4.
    for (name, key) in [
        ("decoder_int8_v2.tgm", INT8_V2_KEY),
        ("detector_int8_v3.tgm", DETECTOR_V3_KEY),
        ("decoder_int8_v3.tgm", INT8_V3_KEY),
        ("detector_int8_v4.tgm", DETECTOR_V4_KEY),
    ] {
        let (words, len) = committed(name);
        let bytes = &bytemuck::cast_slice(&words)[..len];
        assert_eq!(format::read_header(bytes).unwrap().schema, key, "{name}");
        let error = if name.starts_with("decoder") {
            QNetwork::from_bytes(bytes).map(|_| ())
        } else {
            Detector::from_bytes(bytes).map(|_| ())
        };
        assert_eq!(error, Err(Error::SchemaMismatch), "{name}");
        assert!(matches!(
            AnyModel::from_bytes(bytes),
            Err(Error::SchemaMismatch)
        ));
    }
}

/// Parses a model file of any kind, recipes included.
fn parse(bytes: &[u8]) -> Result<(), Error> {
    match format::read_header(bytes)?.kind {
        ModelKind::Recipe => Recipe::from_bytes(bytes).map(|_| ()),
        _ => AnyModel::from_bytes(bytes).map(|_| ()),
    }
}

#[test]
fn a_file_is_found_at_the_start_of_a_larger_region() {
    for (name, _, bytes) in golden() {
        // A flash page: the file, then erased bytes up to the page's end.
        let mut page = vec![u32::MAX; (bytes.len() + 64).div_ceil(4)];
        let region: &mut [u8] = bytemuck::cast_slice_mut(&mut page);
        region[..bytes.len()].copy_from_slice(&bytes);
        let region: &[u8] = region;
        assert_eq!(parse(region), Err(Error::LengthMismatch), "{name}");
        let file = format::file_in(region).unwrap();
        assert_eq!(file, &bytes[..], "{name}");
        // The header alone says how long the whole file is.
        assert_eq!(format::claimed_len(&bytes[..16]), Ok(bytes.len()), "{name}");
        assert_eq!(format::claimed_len(region), Ok(bytes.len()), "{name}");
        parse(file).unwrap_or_else(|e| panic!("{name}: {e}"));
        // The page cut short of the file's claimed length.
        assert_eq!(
            format::file_in(&region[..bytes.len() - 1]),
            Err(Error::LengthMismatch),
            "{name}"
        );
        let mut newer = region.to_vec();
        newer[4] = 2;
        assert_eq!(
            format::file_in(&newer),
            Err(Error::UnsupportedVersion(2)),
            "{name}"
        );
        // A header claiming more than any region holds.
        let mut huge = region.to_vec();
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(format::file_in(&huge), Err(Error::LengthMismatch), "{name}");
        // A torn write (the power cut before the last bytes): found by its
        // header, refused by its CRC.
        let mut torn = page.clone();
        let torn: &mut [u8] = bytemuck::cast_slice_mut(&mut torn);
        torn[bytes.len() - 8..bytes.len()].fill(0xFF);
        let found = format::file_in(torn).unwrap();
        assert!(
            matches!(parse(found), Err(Error::CrcMismatch { .. })),
            "{name}"
        );
    }
    let erased = [0xFF; 256];
    assert_eq!(format::file_in(&erased), Err(Error::BadMagic));
    assert_eq!(format::file_in(&[0; 256]), Err(Error::BadMagic));
    assert_eq!(format::file_in(&erased[..15]), Err(Error::TooShort));
    assert_eq!(format::file_in(&[]), Err(Error::TooShort));
}
