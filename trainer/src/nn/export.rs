//! Exporting a run's decoder or encoder as a runtime model file (`.tgm`),
//! with its latent prior, and checking the file against candle.

use std::path::Path;

use anyhow::{Context, bail, ensure};
use candle_core::{Device, Tensor};
use candle_nn::Linear;
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tinygen_runtime::Activation;
use tinygen_runtime::AnyModel;
use tinygen_runtime::network::{
    DecoderParams, LayerParams, Network as RtNetwork, PriorParams, Role,
};

use super::config::Reconstruction;
use super::network::Network;
use super::prior::{GMM_STD, Prior, RING_NOISE};
use crate::host::{self, AlignedBytes};

/// File name of the AE's latent mixture parameters (for sampling).
pub const LATENT_GMM_JSON: &str = "latent_gmm.json";

/// Which half of the network to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// Latent code -> data point, with the latent prior.
    Decoder,
    /// Data point -> latent code (the mean for a VAE).
    Encoder,
}

impl Part {
    /// The runtime's role of this part.
    pub fn role(self) -> Role {
        match self {
            Part::Decoder => Role::Decoder,
            Part::Encoder => Role::Encoder,
        }
    }
}

/// A full-covariance latent mixture: what an AE samples from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatentMixture {
    /// Weights (K).
    pub weights: Vec<f64>,
    /// Means, K x d row-major.
    pub means: Vec<f64>,
    /// Covariances, K x d x d row-major.
    pub covariances: Vec<f64>,
}

impl LatentMixture {
    /// Lower Cholesky factors of the covariances, K x d x d row-major.
    pub fn cholesky(&self, d: usize) -> anyhow::Result<Vec<f64>> {
        let mut out = Vec::with_capacity(self.covariances.len());
        for c in self.covariances.chunks(d * d) {
            let m = DMatrix::from_row_slice(d, d, c);
            let l = m
                .cholesky()
                .context("a latent mixture covariance is not positive definite")?
                .l();
            for i in 0..d {
                for j in 0..d {
                    out.push(l[(i, j)]);
                }
            }
        }
        Ok(out)
    }
}

/// One dense layer of an exported network, as the runtime runs it:
/// `y = activation(W x + b)` with `W` row-major, `outputs x inputs`.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseLayer {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// Weights, `outputs x inputs` row-major.
    pub weight: Vec<f32>,
    /// Biases (`outputs`).
    pub bias: Vec<f32>,
    /// Activation after the affine map.
    pub activation: Activation,
}

impl DenseLayer {
    /// The layer as the runtime's encoder takes it.
    pub fn params(&self) -> LayerParams<'_> {
        LayerParams {
            inputs: self.inputs,
            outputs: self.outputs,
            activation: self.activation,
            weight: &self.weight,
            bias: &self.bias,
        }
    }
}

/// The dense layers of the decoder or encoder of `net`, in order, with the
/// activations the exported file applies: the network's between layers; on
/// the decoder's last layer a sigmoid for BCE reconstructions, none for MSE;
/// none on the encoder's last layer (the mean for a VAE).
pub fn dense_layers(net: &Network, part: Part) -> anyhow::Result<Vec<DenseLayer>> {
    let cfg = &net.config;
    if !net.predictor_layers().is_empty() {
        bail!(
            "a diffusion model exports whole, as a .tgm file (tinygen export RUN --out model.tgm)"
        );
    }
    if part == Part::Encoder && !net.has_encoder() {
        bail!(
            "a {} has no encoder; export its generator with --part decoder",
            cfg.kind().name()
        );
    }
    let (layers, last_act): (Vec<&Linear>, Activation) = match part {
        Part::Decoder => (
            net.decoder_layers().iter().collect(),
            match cfg.reconstruction {
                Reconstruction::Bce => Activation::Sigmoid,
                Reconstruction::Mse => Activation::Identity,
            },
        ),
        Part::Encoder => (net.encoder_layers(), Activation::Identity),
    };
    let count = layers.len();
    layers
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            let w = layer.weight();
            let b = layer.bias().context("an exported layer has no bias")?;
            let (outputs, inputs) = w.dims2()?;
            Ok(DenseLayer {
                inputs,
                outputs,
                weight: w.flatten_all()?.to_vec1::<f32>()?,
                bias: b.to_vec1::<f32>()?,
                activation: if i + 1 == count {
                    last_act
                } else {
                    cfg.activation
                },
            })
        })
        .collect()
}

/// The latent prior a decoder file carries, with the values it borrows:
/// N(0, I) for the VAE and the GAN, the SWAE's prior, the AE's fitted latent mixture,
/// none otherwise.
pub struct PriorData {
    prior: Option<Prior>,
    ring_noise: f32,
    /// Mixture weights, means and Cholesky factors (a GMM prior or the AE's mixture).
    mixture: Option<(Vec<f64>, Vec<f64>, Vec<f64>)>,
}

impl PriorData {
    /// The prior of `net`'s decoder (`latent`: the AE's fitted mixture).
    pub fn new(net: &Network, latent: Option<&LatentMixture>) -> anyhow::Result<Self> {
        let cfg = &net.config;
        let d = cfg.latent;
        let mixture = match (cfg.prior(), latent) {
            (Some(Prior::Gmm(k)), _) => Some((
                vec![1.0 / k.max(1) as f64; k],
                (0..k)
                    .flat_map(|c| Prior::component_mean(c, k, d))
                    .collect(),
                (0..k)
                    .flat_map(|_| (0..d * d).map(|i| if i % (d + 1) == 0 { GMM_STD } else { 0.0 }))
                    .collect(),
            )),
            (None, Some(m)) => Some((m.weights.clone(), m.means.clone(), m.cholesky(d)?)),
            _ => None,
        };
        Ok(Self {
            prior: cfg.prior(),
            ring_noise: RING_NOISE as f32,
            mixture,
        })
    }

    /// The runtime writer's view; an encoder carries none.
    pub fn params(&self, part: Part) -> PriorParams<'_> {
        if part == Part::Encoder {
            return PriorParams::None;
        }
        match (self.prior, &self.mixture) {
            (Some(Prior::Gaussian), _) => PriorParams::Gaussian,
            (Some(Prior::Uniform), _) => PriorParams::Uniform,
            (Some(Prior::Circle), _) => PriorParams::Circle,
            (Some(Prior::Ring), _) => PriorParams::Ring {
                noise: self.ring_noise,
            },
            (_, Some((weights, means, cholesky))) => PriorParams::Mixture {
                weights,
                means,
                cholesky,
            },
            _ => PriorParams::None,
        }
    }
}

/// Encodes the decoder or encoder of `net` as a `.tgm` file. The decoder
/// carries the latent prior: N(0, I) for the VAE, the SWAE's prior, the
/// AE's fitted latent mixture (`latent`), none otherwise.
pub fn export_tgm(
    net: &Network,
    part: Part,
    latent: Option<&LatentMixture>,
) -> anyhow::Result<Vec<u8>> {
    let cfg = &net.config;
    let dense = dense_layers(net, part)?;
    let layers: Vec<LayerParams> = dense.iter().map(DenseLayer::params).collect();
    let prior = PriorData::new(net, latent)?;
    let params = DecoderParams {
        role: part.role(),
        latent: cfg.latent,
        layers,
        prior: prior.params(part),
    };
    params
        .encode()
        .map_err(|e| anyhow::anyhow!("cannot encode the {part:?}: {e}"))
}

/// The inputs an export is checked on and candle's outputs for them: 64
/// prior draws for a decoder, the first (up to 64) rows of `data` for an
/// encoder. Returns `(inputs, outputs)`, both row-major.
pub fn reference_outputs(
    net: &Network,
    part: Part,
    data: &[f32],
) -> anyhow::Result<(Vec<f32>, Vec<f32>)> {
    let cfg = &net.config;
    let (inputs, width) = match part {
        Part::Decoder => {
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let prior = cfg.prior().unwrap_or(Prior::Gaussian);
            (prior.sample(64, cfg.latent, None, &mut rng), cfg.latent)
        }
        Part::Encoder => {
            let rows = (data.len() / cfg.input_dim).min(64);
            (data[..rows * cfg.input_dim].to_vec(), cfg.input_dim)
        }
    };
    if inputs.is_empty() {
        bail!("no data to check the exported {part:?} on");
    }
    let x = Tensor::from_slice(&inputs, (inputs.len() / width, width), &Device::Cpu)?;
    let expected = match part {
        Part::Decoder => net.decode(&x)?,
        Part::Encoder => net.encode(&x)?.0,
    }
    .flatten_all()?
    .to_vec1::<f32>()?;
    Ok((inputs, expected))
}

/// The largest absolute difference between `got` and `expected`; an error
/// naming `what` if it exceeds `tolerance`, is NaN, or the lengths differ.
pub fn check_close(
    what: &str,
    got: &[f32],
    expected: &[f32],
    tolerance: f32,
) -> anyhow::Result<f32> {
    if got.len() != expected.len() {
        bail!(
            "{what} gives {} values where candle gives {}",
            got.len(),
            expected.len()
        );
    }
    let worst = got
        .iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, |m, d| {
            if m.is_nan() || d.is_nan() {
                f32::NAN
            } else {
                m.max(d)
            }
        });
    if worst.is_nan() || worst > tolerance {
        bail!("{what} differs from candle by {worst} (tolerance {tolerance})");
    }
    Ok(worst)
}

/// Checks a `.tgm` export against candle (see [`reference_outputs`]).
/// Returns the largest absolute difference, an error if it exceeds
/// `tolerance`.
pub fn verify_tgm(
    net: &Network,
    part: Part,
    file: &[u8],
    data: &[f32],
    tolerance: f32,
) -> anyhow::Result<f32> {
    let (inputs, expected) = reference_outputs(net, part, data)?;
    let aligned = AlignedBytes::new(file);
    let rt = RtNetwork::from_bytes(aligned.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let got = host::run_rows(&AnyModel::Network(rt), &inputs)?;
    check_close(
        &format!("the exported {part:?}"),
        &got,
        &expected,
        tolerance,
    )
}

/// Rows an int8 export is calibrated on, from the first (up to) `rows` rows
/// of `train` (the run's training data): the rows themselves for an
/// encoder; for a decoder their codes (the encoder's mean), which it
/// reconstructs from, and as many draws from the prior (seeded), which it
/// generates from (twice as many draws for a GAN's generator, which has no
/// encoder).
pub fn calibration_rows(
    net: &Network,
    part: Part,
    train: &[f32],
    rows: usize,
) -> anyhow::Result<Vec<f32>> {
    let d = net.config.input_dim;
    let n = (train.len() / d).min(rows);
    if n == 0 {
        bail!("no training rows to calibrate the int8 {part:?} on");
    }
    let x = &train[..n * d];
    Ok(match part {
        Part::Encoder => x.to_vec(),
        Part::Decoder => {
            let prior = net.config.prior().unwrap_or(Prior::Gaussian);
            let mut rng = ChaCha8Rng::seed_from_u64(11);
            if !net.has_encoder() {
                return Ok(prior.sample(2 * n, net.config.latent, None, &mut rng));
            }
            let x = Tensor::from_slice(x, (n, d), &Device::Cpu)?;
            let mut codes = net.encode(&x)?.0.flatten_all()?.to_vec1::<f32>()?;
            codes.extend(prior.sample(n, net.config.latent, None, &mut rng));
            codes
        }
    })
}

/// Encodes the decoder or encoder of `net` as an int8 file (TFLite's
/// scheme, see [`super::quantize`]) calibrated on `calibration` (rows of the
/// part's input, see [`calibration_rows`]) with the choices `options`.
pub fn export_int8(
    net: &Network,
    part: Part,
    latent: Option<&LatentMixture>,
    calibration: &[f32],
    options: super::quantize::QuantOptions,
) -> anyhow::Result<(Vec<u8>, super::quantize::QuantNetwork)> {
    let quantized =
        super::quantize::quantize_with(&dense_layers(net, part)?, calibration, options)?;
    let prior = PriorData::new(net, latent)?;
    let bytes = quantized
        .params(part.role(), prior.params(part))
        .encode()
        .map_err(|e| anyhow::anyhow!("cannot encode the int8 {part:?}: {e}"))?;
    Ok((bytes, quantized))
}

/// How far a model file's outputs are from candle's on the inputs of
/// [`reference_outputs`]: `(largest, mean)` absolute difference.
pub fn error_against_f32(
    net: &Network,
    part: Part,
    file: &[u8],
    data: &[f32],
) -> anyhow::Result<(f32, f32)> {
    let (inputs, expected) = reference_outputs(net, part, data)?;
    let aligned = AlignedBytes::new(file);
    let model = AnyModel::from_bytes(aligned.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let got = host::run_rows(&model, &inputs)?;
    ensure!(
        got.len() == expected.len(),
        "the file gives {} values, candle {}",
        got.len(),
        expected.len()
    );
    Ok(abs_error(&got, &expected))
}

/// `(largest, mean)` absolute difference of two equally long outputs.
pub fn abs_error(got: &[f32], expected: &[f32]) -> (f32, f32) {
    let diffs = got.iter().zip(expected).map(|(a, b)| (a - b).abs());
    let worst = diffs.clone().fold(0f32, f32::max);
    let mean = diffs.map(f64::from).sum::<f64>() / expected.len().max(1) as f64;
    (worst, mean as f32)
}

/// Reads the AE's latent mixture from a run folder, if there is one.
pub fn read_latent_mixture(run: &Path) -> anyhow::Result<Option<LatentMixture>> {
    let path = run.join(LATENT_GMM_JSON);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some(serde_json::from_str(&text).with_context(|| {
        format!("{} is malformed", path.display())
    })?))
}
