//! The neural part of a detector: an AE or VAE trained on the
//! standardized normal features, a Gaussian mixture over its latent codes,
//! and the combination with the density score that the runtime computes
//! (`tinygen_runtime::detector`, module docs):
//!
//! ```text
//! score = sum over (density NLL, reconstruction error, latent NLL) of (t - median) / (IQR / 1.349)
//! ```
//!
//! with the medians and interquartile ranges measured by the runtime on the
//! training rows, so each term counts as a robust z-score and none wins by
//! its units.
//!
//! With [`NeuralOptions::int8`] the trained encoder and decoder are
//! quantized to int8 (TensorFlow Lite's scheme, [`crate::nn::quantize`]):
//! the encoder's activation ranges are the minimum and maximum over all
//! standardized training rows, the decoder's over their codes (the f32
//! encoder's, as the latent mixture is fitted on). The medians and IQRs are
//! then measured by the runtime on the int8 detector itself, so the score
//! the device computes is the one calibrated.

use anyhow::Context;
use candle_core::{Device, Tensor};
use nalgebra::DMatrix;
use tinygen_runtime::ModelKind;
use tinygen_runtime::detector::{AutoencoderParams, Features, NeuralParams};
use tinygen_runtime::gmm::GmmParams;
use tinygen_runtime::network::{DecoderParams, PriorParams, Role};
use tinygen_runtime::qnetwork::QNetworkParams;

use super::calibrate::Combination;
use super::density::RegCovar;
use crate::data::images::Samples;
use crate::density::gmm::{Components, EmOptions, GaussianMixture, fit_em_select};
use crate::density::standardize::Standardizer;
use crate::host::{self, AlignedBytes};
use crate::nn::config::{
    NetworkConfig, NetworkKind as NetKind, Objective, Reconstruction, RunConfig, TrainConfig,
};
use crate::nn::export::{DenseLayer, Part, abs_error, dense_layers};
use crate::nn::network::Network;
use crate::nn::quantize::{QuantNetwork, quantize};
use crate::nn::run::TrainState;
use crate::nn::train::{LogMode, train};

/// How to train a detector's autoencoder.
#[derive(Debug, Clone, PartialEq)]
pub struct NeuralOptions {
    /// `Ae` or `Vae` (MSE reconstruction of the standardized features).
    pub kind: NetKind,
    /// Encoder hidden widths (the decoder mirrors them).
    pub hidden: Vec<usize>,
    /// Latent dimension; `None` picks `clamp(D / 4, 2, 16)`.
    pub latent: Option<usize>,
    /// Optimisation steps (whole epochs, at least one).
    pub steps: usize,
    /// Rows per step.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Components of the latent mixture (full covariance, Scott's
    /// regularisation).
    pub latent_components: usize,
    /// Seed of the weights, the batches and the latent mixture.
    pub seed: u64,
    /// Quantize the encoder and the decoder to int8 (see the module docs).
    pub int8: bool,
}

impl Default for NeuralOptions {
    fn default() -> Self {
        Self {
            kind: NetKind::Ae,
            hidden: vec![32],
            latent: None,
            steps: 2000,
            batch_size: 64,
            lr: 1e-3,
            latent_components: 1,
            seed: 0,
            int8: false,
        }
    }
}

/// A trained neural part, before the combination's constants are set.
#[derive(Debug, Clone)]
pub struct NeuralPart {
    mean: Vec<f32>,
    inv_scale: Vec<f32>,
    encoder: Vec<DenseLayer>,
    decoder: Vec<DenseLayer>,
    latent: GaussianMixture,
    int8: Option<Int8Part>,
}

/// The int8 encoder and decoder of a neural part, and how far they are
/// from the f32 ones.
#[derive(Debug, Clone)]
pub struct Int8Part {
    encoder: QuantNetwork,
    decoder: QuantNetwork,
    /// Their outputs against the f32 networks', on the calibration rows.
    pub error: Int8Error,
}

/// How far int8 networks' outputs are from the f32 networks' (both run by
/// the runtime) on the calibration rows: `(largest, mean)` absolute
/// difference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Int8Error {
    /// Training rows the ranges were measured on (and the errors).
    pub rows: usize,
    /// The encoder's codes (standardized rows in).
    pub codes: (f32, f32),
    /// The decoder's reconstructions (the f32 codes in).
    pub reconstructions: (f32, f32),
}

impl std::fmt::Display for Int8Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "int8 against f32 on the {} training rows it was calibrated on: codes max {:.4} mean {:.5}, \
             reconstructions max {:.4} mean {:.5} (standardized units)",
            self.rows, self.codes.0, self.codes.1, self.reconstructions.0, self.reconstructions.1
        )
    }
}

fn f32_network(role: Role, latent: usize, layers: &[DenseLayer]) -> DecoderParams<'_> {
    DecoderParams {
        role,
        latent,
        layers: layers.iter().map(DenseLayer::params).collect(),
        prior: PriorParams::None,
    }
}

fn int8_network(role: Role, network: &QuantNetwork) -> QNetworkParams<'_> {
    network.params(role, PriorParams::None)
}

/// Quantizes `encoder` on the standardized rows `u` and `decoder` on their
/// f32 `codes`, and measures both against the f32 networks in the runtime.
fn quantize_part(
    encoder: &[DenseLayer],
    decoder: &[DenseLayer],
    latent: usize,
    u: &[f32],
    codes: &[f32],
) -> anyhow::Result<Int8Part> {
    let qencoder = quantize(encoder, u).context("quantizing the detector's encoder")?;
    let qdecoder = quantize(decoder, codes).context("quantizing the detector's decoder")?;
    let run = |bytes: Result<Vec<u8>, tinygen_runtime::Error>, rows: &[f32]| {
        host::run_file(&bytes.map_err(|e| anyhow::anyhow!("{e}"))?, rows)
    };
    let f32_codes = run(f32_network(Role::Encoder, latent, encoder).encode(), u)?;
    let int8_codes = run(int8_network(Role::Encoder, &qencoder).encode(), u)?;
    let f32_rec = run(f32_network(Role::Decoder, latent, decoder).encode(), codes)?;
    let int8_rec = run(int8_network(Role::Decoder, &qdecoder).encode(), codes)?;
    let error = Int8Error {
        rows: qencoder.calibration_rows,
        codes: abs_error(&int8_codes, &f32_codes),
        reconstructions: abs_error(&int8_rec, &f32_rec),
    };
    anyhow::ensure!(
        int8_codes.iter().chain(&int8_rec).all(|v| v.is_finite()),
        "the int8 autoencoder's outputs are not finite"
    );
    Ok(Int8Part {
        encoder: qencoder,
        decoder: qdecoder,
        error,
    })
}

/// Trains the autoencoder on the standardized rows of `train` (raw
/// features, rows are points) and fits the latent mixture on its codes.
pub fn fit_neural_part(
    train_x: &DMatrix<f64>,
    standardizer: &Standardizer,
    opts: &NeuralOptions,
) -> anyhow::Result<NeuralPart> {
    let (n, d) = (train_x.nrows(), train_x.ncols());
    anyhow::ensure!(n >= 2, "too few rows ({n}) to train an autoencoder");
    let u = standardizer.apply(train_x);
    let x: Vec<f32> = (0..n)
        .flat_map(|i| (0..d).map(move |j| (i, j)))
        .map(|(i, j)| u[(i, j)] as f32)
        .collect();
    let latent = opts.latent.unwrap_or((d / 4).clamp(2, 16));
    let objective =
        Objective::plain(opts.kind).context("a detector's autoencoder is an AE or a VAE")?;
    let network = NetworkConfig {
        reconstruction: Reconstruction::Mse,
        ..NetworkConfig::new(objective, d, opts.hidden.clone(), latent)
    };
    network.validate()?;
    let batch_size = opts.batch_size.min(n);
    let config = RunConfig {
        data: "detector features".into(),
        data_dir: None,
        label_column: None,
        network: network.clone(),
        train: TrainConfig {
            epochs: opts.steps.div_ceil(n.div_ceil(batch_size)).max(1),
            batch_size,
            lr: opts.lr,
            weight_decay: 0.0,
            seed: opts.seed,
        },
    };
    let samples = Samples {
        name: "detector features".into(),
        n,
        dim: d,
        x,
        labels: None,
        image: None,
    };
    let net = Network::new(network, opts.seed)?;
    train(
        None,
        &config,
        &net,
        TrainState::default(),
        &samples,
        None,
        LogMode::Quiet,
    )
    .context("training the detector's autoencoder")?;
    let codes = net
        .encode(&Tensor::from_slice(&samples.x, (n, d), &Device::Cpu)?)?
        .0
        .to_vec2::<f32>()?;
    let flat_codes: Vec<f32> = codes.iter().flatten().copied().collect();
    let codes = DMatrix::from_fn(n, latent, |i, j| f64::from(codes[i][j]));
    let em = EmOptions {
        seed: opts.seed,
        reg_covar: RegCovar::Scott.value(n, latent),
        ..EmOptions::default()
    };
    let (mixture, ..) = fit_em_select(
        &codes,
        Components::Fixed(opts.latent_components),
        &em,
        &mut |_, _, _| {},
    )
    .context("fitting the latent mixture")?;
    let encoder = dense_layers(&net, Part::Encoder)?;
    let decoder = dense_layers(&net, Part::Decoder)?;
    let int8 = if opts.int8 {
        Some(quantize_part(
            &encoder,
            &decoder,
            latent,
            &samples.x,
            &flat_codes,
        )?)
    } else {
        None
    };
    Ok(NeuralPart {
        mean: standardizer.mean.iter().map(|&m| m as f32).collect(),
        inv_scale: standardizer
            .scale
            .iter()
            .map(|&s| (1.0 / s) as f32)
            .collect(),
        encoder,
        decoder,
        latent: mixture,
        int8,
    })
}

impl NeuralPart {
    /// The int8 networks and their error against f32, if quantized.
    pub fn int8(&self) -> Option<&Int8Part> {
        self.int8.as_ref()
    }

    /// Encodes a detector around `density` with this neural part.
    pub fn encode(
        &self,
        density: &GmmParams<'_>,
        density_kind: ModelKind,
        features: Features,
        threshold: f32,
        combination: Combination<3>,
    ) -> anyhow::Result<Vec<u8>> {
        let latent = self.latent.dim();
        let autoencoder = match &self.int8 {
            None => AutoencoderParams::F32 {
                encoder: f32_network(Role::Encoder, latent, &self.encoder),
                decoder: f32_network(Role::Decoder, latent, &self.decoder),
            },
            Some(q) => AutoencoderParams::Int8 {
                encoder: int8_network(Role::Encoder, &q.encoder),
                decoder: int8_network(Role::Decoder, &q.decoder),
            },
        };
        let neural = NeuralParams {
            mean: &self.mean,
            inv_scale: &self.inv_scale,
            autoencoder,
            latent: self.latent.params(None),
            center: combination.center,
            scale: combination.scale,
        };
        density
            .encode_neural_detector(density_kind, features, threshold, Some(&neural))
            .map_err(|e| anyhow::anyhow!("cannot encode the detector: {e}"))
    }

    /// The combination whose constants are the medians and IQR / 1.349 of
    /// the three terms over `train_features` (feature rows, row-major), as
    /// the runtime computes them.
    pub fn calibrate(
        &self,
        density: &GmmParams<'_>,
        density_kind: ModelKind,
        train_features: &[f32],
    ) -> anyhow::Result<Combination<3>> {
        let raw = self.encode(
            density,
            density_kind,
            Features::Identity,
            f32::MAX,
            Combination::RAW,
        )?;
        let raw = AlignedBytes::new(&raw);
        let detector = tinygen_runtime::Detector::from_bytes(raw.as_bytes())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Combination::measure(&host::detector_terms(&detector, train_features)?)
    }
}
