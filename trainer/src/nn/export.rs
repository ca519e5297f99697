//! Exporting a run's decoder or encoder as a runtime model file (`.tgm`),
//! with its latent prior, and checking the file against candle.

use std::path::Path;

use anyhow::{Context, bail};
use candle_core::{Device, Tensor};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tinygen_runtime::decoder::{
    Activation as RtActivation, DecoderParams, LayerParams, Network as RtNetwork, PriorParams,
    Role, Scratch,
};

use super::config::{Activation, ModelKind, Reconstruction};
use super::network::Network;
use super::prior::{GMM_STD, Prior, RING_NOISE};
use crate::io::AlignedBytes;

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

fn activation(a: Activation) -> RtActivation {
    match a {
        Activation::Relu => RtActivation::Relu,
        Activation::LeakyRelu => RtActivation::LeakyRelu,
        Activation::Tanh => RtActivation::Tanh,
        Activation::Sigmoid => RtActivation::Sigmoid,
    }
}

/// One layer's widths and values: (inputs, outputs, weight, bias).
type LayerValues = (usize, usize, Vec<f32>, Vec<f32>);

/// The weights and biases of the named layers, in order.
fn layer_values(net: &Network, names: &[String]) -> anyhow::Result<Vec<LayerValues>> {
    let data = net.varmap.data().lock().expect("varmap lock");
    names
        .iter()
        .map(|n| {
            let w = data
                .get(&format!("{n}.weight"))
                .with_context(|| format!("no parameter {n}.weight"))?;
            let b = data
                .get(&format!("{n}.bias"))
                .with_context(|| format!("no parameter {n}.bias"))?;
            let (out, inp) = w.dims2()?;
            Ok((
                inp,
                out,
                w.as_tensor().flatten_all()?.to_vec1::<f32>()?,
                b.as_tensor().to_vec1::<f32>()?,
            ))
        })
        .collect()
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
    let hidden = cfg.hidden.len();
    let (names, last_act): (Vec<String>, RtActivation) = match part {
        Part::Decoder => (
            (0..=hidden).map(|i| format!("decoder.{i}")).collect(),
            match cfg.reconstruction {
                Reconstruction::Bce => RtActivation::Sigmoid,
                Reconstruction::Mse => RtActivation::Identity,
            },
        ),
        Part::Encoder => (
            (0..hidden)
                .map(|i| format!("encoder.{i}"))
                .chain(std::iter::once("encoder.out".to_string()))
                .collect(),
            RtActivation::Identity,
        ),
    };
    let values = layer_values(net, &names)?;
    let count = values.len();
    let layers: Vec<LayerParams> = values
        .iter()
        .enumerate()
        .map(|(i, (inputs, outputs, w, b))| LayerParams {
            inputs: *inputs,
            outputs: *outputs,
            activation: if i + 1 == count {
                last_act
            } else {
                activation(cfg.activation)
            },
            weight: w,
            bias: b,
        })
        .collect();
    let d = cfg.latent;
    let k = cfg.prior.map_or(0, |p| p.components());
    let gmm_weights = vec![1.0 / k.max(1) as f64; k];
    let gmm_means: Vec<f64> = (0..k)
        .flat_map(|c| Prior::component_mean(c, k, d))
        .collect();
    let gmm_chol: Vec<f64> = (0..k)
        .flat_map(|_| (0..d * d).map(|i| if i % (d + 1) == 0 { GMM_STD } else { 0.0 }))
        .collect();
    let latent_chol = match latent {
        Some(m) => m.cholesky(d)?,
        None => Vec::new(),
    };
    let prior = match (cfg.kind, cfg.prior, latent) {
        (ModelKind::Vae, _, _) | (_, Some(Prior::Gaussian), _) => PriorParams::Gaussian,
        (_, Some(Prior::Uniform), _) => PriorParams::Uniform,
        (_, Some(Prior::Circle), _) => PriorParams::Circle,
        (_, Some(Prior::Ring), _) => PriorParams::Ring {
            noise: RING_NOISE as f32,
        },
        (_, Some(Prior::Gmm(_)), _) => PriorParams::Mixture {
            weights: &gmm_weights,
            means: &gmm_means,
            cholesky: &gmm_chol,
        },
        (_, None, Some(m)) => PriorParams::Mixture {
            weights: &m.weights,
            means: &m.means,
            cholesky: &latent_chol,
        },
        (_, None, None) => PriorParams::None,
    };
    let params = DecoderParams {
        role: match part {
            Part::Decoder => Role::Decoder,
            Part::Encoder => Role::Encoder,
        },
        latent: d,
        layers,
        prior: match part {
            Part::Decoder => prior,
            Part::Encoder => PriorParams::None,
        },
    };
    params
        .encode()
        .map_err(|e| anyhow::anyhow!("cannot encode the {part:?}: {e}"))
}

/// Largest activation width the host-side runtime calls support.
pub const HOST_WIDTH: usize = 4096;

/// Runs a runtime network (decoder or encoder) on each row of `inputs`, as
/// the device does.
pub fn run_network(net: &RtNetwork, inputs: &[f32]) -> anyhow::Result<Vec<f32>> {
    let (i, o) = (net.input_dim(), net.output_dim());
    if !inputs.len().is_multiple_of(i) {
        bail!("{} values are not rows of {i}", inputs.len());
    }
    let mut scratch = Box::new(Scratch::<HOST_WIDTH>::new());
    let mut out = vec![0f32; inputs.len() / i * o];
    for (x, y) in inputs.chunks(i).zip(out.chunks_mut(o)) {
        net.forward(x, y, &mut scratch)
            .map_err(|e| anyhow::anyhow!("runtime: {e}"))?;
    }
    Ok(out)
}

/// Checks a `.tgm` export against candle on `rows` inputs: prior draws for
/// a decoder, the first rows of `data` for an encoder. Returns the largest
/// absolute difference, an error if it exceeds `tolerance`.
pub fn verify_tgm(
    net: &Network,
    part: Part,
    file: &[u8],
    data: &[f32],
    tolerance: f32,
) -> anyhow::Result<f32> {
    let cfg = &net.config;
    let (inputs, width) = match part {
        Part::Decoder => {
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let prior = cfg.prior.unwrap_or(Prior::Gaussian);
            (prior.sample(64, cfg.latent, None, &mut rng), cfg.latent)
        }
        Part::Encoder => {
            let rows = (data.len() / cfg.input_dim).min(64);
            (data[..rows * cfg.input_dim].to_vec(), cfg.input_dim)
        }
    };
    let x = Tensor::from_slice(&inputs, (inputs.len() / width, width), &Device::Cpu)?;
    let expected = match part {
        Part::Decoder => net.decode(&x)?,
        Part::Encoder => net.encode(&x)?.0,
    }
    .flatten_all()?
    .to_vec1::<f32>()?;
    let aligned = AlignedBytes::new(file);
    let rt = RtNetwork::from_bytes(aligned.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let got = run_network(&rt, &inputs)?;
    let worst = got
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    if worst.is_nan() || worst > tolerance {
        bail!("the exported {part:?} differs from candle by {worst} (tolerance {tolerance})");
    }
    Ok(worst)
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
