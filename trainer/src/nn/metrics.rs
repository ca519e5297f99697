//! Metrics of a trained network on a data set.
//!
//! * `loss`: the training objective per row (with fresh random draws);
//! * `reconstruction`: reconstruction loss per row from the latent code
//!   (the encoder's mean for the VAE), no sampling;
//! * `elbo` (VAE): the evidence lower bound per row, `-(reconstruction of a
//!   sampled z + KL)` at beta = 1 — the negative of pytorch/examples'
//!   "test loss";
//! * `iw_log_likelihood` (VAE): the importance-weighted estimate
//!   `log 1/k sum_i p(x, z_i) / q(z_i | x)` with `k = iw_samples` draws
//!   from the encoder (Burda et al., 2016), averaged over rows; it is a
//!   tighter lower bound on `log p(x)` than the ELBO and grows with k;
//! * `sw_distance` (VAE, SWAE): sliced 2-Wasserstein distance between the
//!   latent codes and as many prior draws (square root of the mean over
//!   200 directions of the squared 1-D distances);
//! * `latent_accuracy`: share of rows whose class the latent code gives
//!   (the classifier head of the supervised AE; the nearest prior component
//!   of the semi-supervised SWAE);
//! * for the GAN, which has no encoder: `loss` is the discriminator's loss
//!   against as many generated rows, `discriminator_accuracy` its accuracy
//!   on both, and `sample_sw_distance` the sliced 2-Wasserstein distance
//!   in data space between the rows and as many generated ones (200
//!   directions, as `sw_distance`);
//! * for the diffusion model: `loss` is the noise prediction's squared
//!   error, and `sample_sw_distance` as the GAN's, between up to
//!   [`DIFFUSION_SAMPLES`] rows and as many samples by the model's default
//!   sampler.

use candle_core::{DType, Device, Tensor};
use nalgebra::DMatrix;
use serde::Serialize;

use super::config::{NetworkKind, Objective, Reconstruction};
use super::network::{Batch, Draws, Network, kl_to_standard_normal};
use crate::data::images::Samples;
use crate::divergence::sliced_wasserstein;

/// Rows per evaluation batch.
const EVAL_BATCH: usize = 1000;
/// Directions of the reported sliced-Wasserstein distance.
const SW_PROJECTIONS: usize = 200;
/// Samples a diffusion model draws for `sample_sw_distance` at most.
pub const DIFFUSION_SAMPLES: usize = 1000;

/// What to compute besides the always-present metrics.
#[derive(Debug, Clone, Copy)]
pub struct EvalOptions {
    /// Importance samples per row for the VAE's log-likelihood (0: skip).
    pub iw_samples: usize,
    /// Seed of every random draw.
    pub seed: u64,
    /// Whether to draw samples for `sample_sw_distance` (GAN, diffusion);
    /// off for the test loss after each epoch.
    pub samples: bool,
}

/// Metrics of a network on one data set (per row).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// Rows evaluated.
    pub rows: usize,
    /// Training objective.
    pub loss: f64,
    /// Reconstruction loss from the latent code (not the GAN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconstruction: Option<f64>,
    /// Evidence lower bound (VAE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elbo: Option<f64>,
    /// Importance-weighted log-likelihood estimate (VAE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iw_log_likelihood: Option<f64>,
    /// Importance samples used for `iw_log_likelihood`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iw_samples: Option<usize>,
    /// Sliced 2-Wasserstein distance between latent codes and the prior.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sw_distance: Option<f64>,
    /// Share of rows classified correctly from their latent code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latent_accuracy: Option<f64>,
    /// The GAN discriminator's accuracy on the rows and as many generated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discriminator_accuracy: Option<f64>,
    /// Sliced 2-Wasserstein distance between the rows and as many
    /// generated ones, in data space (GAN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_sw_distance: Option<f64>,
}

/// The rows of `samples` as a tensor (all of them).
pub fn samples_tensor(samples: &Samples) -> candle_core::Result<Tensor> {
    Tensor::from_slice(&samples.x, (samples.n, samples.dim), &Device::Cpu)
}

/// Checks that the data fits the network.
pub fn check_data(net: &Network, samples: &Samples) -> anyhow::Result<()> {
    let cfg = &net.config;
    if samples.dim != cfg.input_dim {
        anyhow::bail!(
            "{} has {} features per row but the network takes {}",
            samples.name,
            samples.dim,
            cfg.input_dim
        );
    }
    if samples.n == 0 {
        anyhow::bail!("{} has no rows", samples.name);
    }
    if cfg.reconstruction == Reconstruction::Bce
        && samples.x.iter().any(|v| !(0.0..=1.0).contains(v))
    {
        anyhow::bail!(
            "{}: binary cross-entropy needs values in [0, 1]; scale the data or use --reconstruction mse",
            samples.name
        );
    }
    if cfg.classes().is_some() && samples.labels.is_none() {
        anyhow::bail!(
            "{} has no labels, which the {} needs (give --label-column for CSV/NPY data)",
            samples.name,
            if cfg.kind() == NetworkKind::Swae {
                "semi-supervised SWAE"
            } else {
                "class-supervised AE"
            }
        );
    }
    Ok(())
}

/// The latent codes (encoder means) of every row, row-major.
pub fn latents(net: &Network, samples: &Samples) -> anyhow::Result<Vec<f32>> {
    let x = samples_tensor(samples)?;
    let mut out = Vec::with_capacity(samples.n * net.config.latent);
    for start in (0..samples.n).step_by(EVAL_BATCH) {
        let len = EVAL_BATCH.min(samples.n - start);
        let (mu, _) = net.encode(&x.narrow(0, start, len)?)?;
        out.extend(mu.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(out)
}

/// The reconstruction loss per row, as [`Metrics::reconstruction`], when
/// the run's encoder codes (means) go through a decoder *file* run by the
/// runtime (`file`: for example the run's f32 or int8 export), computed
/// from the file's outputs as [`reconstruction_of`].
pub fn file_reconstruction(net: &Network, samples: &Samples, file: &[u8]) -> anyhow::Result<f64> {
    check_data(net, samples)?;
    let codes = latents(net, samples)?;
    let out = crate::host::run_file(file, &codes)?;
    reconstruction_of(net, samples, &out)
}

/// What an int8 decoder file's output grid alone costs: the reconstruction
/// loss of the run's own f32 decoder (candle) on the encoder codes, each
/// output rounded to the file's output tensor (`dequantize(quantize(y))`,
/// for a sigmoid output steps of 1/256 from exactly 0). `None` when `file`
/// is not an int8 decoder, or its last activation runs in f32 (no output
/// grid).
pub fn output_grid_reconstruction(
    net: &Network,
    samples: &Samples,
    file: &[u8],
) -> anyhow::Result<Option<f64>> {
    let file = crate::host::AlignedBytes::new(file);
    let Ok(q) = tinygen_runtime::qnetwork::QNetwork::from_bytes(file.as_bytes()) else {
        return Ok(None);
    };
    if q.final_activation() == tinygen_runtime::qnetwork::FinalActivation::F32 {
        return Ok(None);
    }
    check_data(net, samples)?;
    let grid = q.output_params();
    let codes = latents(net, samples)?;
    let latent = net.config.latent;
    let mut out = Vec::with_capacity(samples.n * net.config.input_dim);
    for batch in codes.chunks(EVAL_BATCH * latent) {
        let z = Tensor::from_slice(batch, (batch.len() / latent, latent), &Device::Cpu)?;
        let y = net.decode(&z)?.flatten_all()?.to_vec1::<f32>()?;
        out.extend(y.iter().map(|&v| grid.dequantize(grid.quantize(v))));
    }
    reconstruction_of(net, samples, &out).map(Some)
}

/// The reconstruction loss per row of decoder outputs `out` (row-major, one
/// row per sample): BCE of the output probabilities with each log clamped
/// at -100 (as PyTorch's `BCELoss`; an int8 sigmoid can output exactly 0),
/// or the squared error.
pub fn reconstruction_of(net: &Network, samples: &Samples, out: &[f32]) -> anyhow::Result<f64> {
    let d = net.config.input_dim;
    anyhow::ensure!(
        out.len() == samples.n * d,
        "the decoder file writes {} values per code; the run's data has {d}",
        out.len() / samples.n.max(1)
    );
    let ln = |p: f32| f64::from(p).ln().max(-100.0);
    let total: f64 = out
        .chunks_exact(d)
        .zip(samples.x.chunks_exact(d))
        .map(|(y, x)| {
            y.iter()
                .zip(x)
                .map(|(&y, &x)| match net.config.reconstruction {
                    Reconstruction::Bce => {
                        -(f64::from(x) * ln(y) + (1.0 - f64::from(x)) * ln(1.0 - y))
                    }
                    Reconstruction::Mse => (f64::from(y) - f64::from(x)).powi(2),
                })
                .sum::<f64>()
        })
        .sum();
    Ok(total / samples.n as f64)
}

/// Evaluates a network on a data set.
pub fn evaluate(net: &Network, samples: &Samples, opts: EvalOptions) -> anyhow::Result<Metrics> {
    check_data(net, samples)?;
    match net.config.objective {
        Objective::Gan { .. } => return evaluate_gan(net, samples, opts),
        Objective::Diffusion(_) => return evaluate_diffusion(net, samples, opts),
        _ => {}
    }
    let cfg = &net.config;
    let x = samples_tensor(samples)?;
    let mut draws = Draws::new(opts.seed);
    let (mut loss, mut recon, mut elbo, mut iw) = (0.0, 0.0, 0.0, 0.0);
    let mut correct = 0usize;
    let mut codes = Vec::with_capacity(samples.n * cfg.latent);
    let mse_constant = match cfg.reconstruction {
        Reconstruction::Mse => 0.5 * cfg.input_dim as f64 * std::f64::consts::PI.ln(),
        Reconstruction::Bce => 0.0,
    };
    for start in (0..samples.n).step_by(EVAL_BATCH) {
        let len = EVAL_BATCH.min(samples.n - start);
        let xb = x.narrow(0, start, len)?;
        let labels = samples
            .labels
            .as_ref()
            .map(|l| l[start..start + len].to_vec());
        let batch = Batch {
            x: xb.clone(),
            labels: labels.clone(),
            labelled: None,
        };
        let weight = len as f64;
        loss += weight * scalar(&net.objective(&batch, &mut draws)?)?;
        let (mu, logvar) = net.encode(&xb)?;
        let r = net.reconstruction_loss(&net.decode_raw(&mu)?, &xb)?;
        recon += weight * scalar(&r.mean_all()?)?;
        codes.extend(mu.flatten_all()?.to_vec1::<f32>()?);
        if let Some(lv) = &logvar {
            let sd = (lv * 0.5)?.exp()?;
            let z = (&mu + (&sd * draws.normal(len, cfg.latent)?)?)?;
            let r = net.reconstruction_loss(&net.decode_raw(&z)?, &xb)?;
            let kl = kl_to_standard_normal(&mu, lv)?;
            elbo -= weight * (scalar(&(r + kl)?.mean_all()?)? + mse_constant);
            if opts.iw_samples > 0 {
                iw +=
                    iw_sum(net, &xb, &mu, lv, opts.iw_samples, &mut draws)? - weight * mse_constant;
            }
        }
        if let (Some(logits), Some(l)) = (net.classify(&mu)?, &labels) {
            let pred = logits.argmax(candle_core::D::Minus1)?.to_vec1::<u32>()?;
            correct += pred.iter().zip(l).filter(|(p, t)| p == t).count();
        }
    }
    let n = samples.n as f64;
    let is_vae = cfg.kind() == NetworkKind::Vae;
    let mut latent_accuracy = cfg.classes().map(|_| correct as f64 / n);
    if let (
        Objective::Swae {
            prior,
            semi_supervised: Some(_),
            ..
        },
        Some(labels),
    ) = (cfg.objective, &samples.labels)
    {
        let pred = prior.nearest_component(&codes, cfg.latent);
        let hits = pred.iter().zip(labels).filter(|(p, t)| p == t).count();
        latent_accuracy = Some(hits as f64 / n);
    }
    let sw_distance = match cfg.prior() {
        Some(prior) => {
            let p = prior.sample(samples.n, cfg.latent, None, draws.rng());
            let a =
                DMatrix::from_row_iterator(samples.n, cfg.latent, codes.iter().map(|&v| v as f64));
            let b = DMatrix::from_row_iterator(samples.n, cfg.latent, p.iter().map(|&v| v as f64));
            Some(sliced_wasserstein(&a, &b, SW_PROJECTIONS, draws.rng())?.sqrt())
        }
        None => None,
    };
    Ok(Metrics {
        rows: samples.n,
        loss: loss / n,
        reconstruction: Some(recon / n),
        elbo: is_vae.then_some(elbo / n),
        iw_log_likelihood: (is_vae && opts.iw_samples > 0).then_some(iw / n),
        iw_samples: (is_vae && opts.iw_samples > 0).then_some(opts.iw_samples),
        sw_distance,
        latent_accuracy,
        discriminator_accuracy: None,
        sample_sw_distance: None,
    })
}

/// The GAN's metrics (see the module's documentation).
fn evaluate_gan(net: &Network, samples: &Samples, opts: EvalOptions) -> anyhow::Result<Metrics> {
    let x = samples_tensor(samples)?;
    let mut draws = Draws::new(opts.seed);
    let (mut loss, mut accuracy) = (0.0, 0.0);
    let mut generated = Vec::with_capacity(samples.x.len());
    for start in (0..samples.n).step_by(EVAL_BATCH) {
        let len = EVAL_BATCH.min(samples.n - start);
        let fake = net.decode(&draws.normal(len, net.config.latent)?)?;
        let (l, a) = super::gan::discriminator_loss(net, &x.narrow(0, start, len)?, &fake)?;
        loss += len as f64 * scalar(&l)?;
        accuracy += len as f64 * a;
        generated.extend(fake.flatten_all()?.to_vec1::<f32>()?);
    }
    let n = samples.n as f64;
    let sw = if opts.samples {
        Some(sample_sw(&samples.x, &generated, samples.dim, &mut draws)?)
    } else {
        None
    };
    Ok(Metrics {
        discriminator_accuracy: Some(accuracy / n),
        sample_sw_distance: sw,
        ..Metrics::without_encoder(samples.n, loss / n)
    })
}

/// The diffusion model's metrics (see the module's documentation).
fn evaluate_diffusion(
    net: &Network,
    samples: &Samples,
    opts: EvalOptions,
) -> anyhow::Result<Metrics> {
    let x = samples_tensor(samples)?;
    let mut draws = Draws::new(opts.seed);
    let mut loss = 0.0;
    for start in (0..samples.n).step_by(EVAL_BATCH) {
        let len = EVAL_BATCH.min(samples.n - start);
        let l = super::diffusion::noise_loss(net, &x.narrow(0, start, len)?, &mut draws)?;
        loss += len as f64 * scalar(&l)?;
    }
    let sw = if opts.samples {
        let n = samples.n.min(DIFFUSION_SAMPLES);
        let sampler = super::diffusion::settings(net)?.sampler;
        let generated = super::diffusion::sample(net, n, sampler, None, &mut draws)?;
        let rows = &samples.x[..n * samples.dim];
        Some(sample_sw(rows, &generated, samples.dim, &mut draws)?)
    } else {
        None
    };
    Ok(Metrics {
        sample_sw_distance: sw,
        ..Metrics::without_encoder(samples.n, loss / samples.n as f64)
    })
}

/// The sliced 2-Wasserstein distance between two equally many rows of `d`
/// values (`SW_PROJECTIONS` directions).
fn sample_sw(a: &[f32], b: &[f32], d: usize, draws: &mut Draws) -> anyhow::Result<f64> {
    let n = a.len() / d;
    let a = DMatrix::from_row_iterator(n, d, a.iter().map(|&v| v as f64));
    let b = DMatrix::from_row_iterator(n, d, b.iter().map(|&v| v as f64));
    Ok(sliced_wasserstein(&a, &b, SW_PROJECTIONS, draws.rng())?.sqrt())
}

impl Metrics {
    /// The metrics of a model without encoder: only `rows` and `loss`.
    fn without_encoder(rows: usize, loss: f64) -> Self {
        Self {
            rows,
            loss,
            reconstruction: None,
            elbo: None,
            iw_log_likelihood: None,
            iw_samples: None,
            sw_distance: None,
            latent_accuracy: None,
            discriminator_accuracy: None,
            sample_sw_distance: None,
        }
    }
}

fn scalar(t: &Tensor) -> candle_core::Result<f64> {
    t.to_dtype(DType::F64)?.to_scalar::<f64>()
}

/// Sum over the batch rows of the importance-weighted log-likelihood
/// estimate with `k` draws from the encoder (up to the MSE constant).
fn iw_sum(
    net: &Network,
    x: &Tensor,
    mu: &Tensor,
    logvar: &Tensor,
    k: usize,
    draws: &mut Draws,
) -> anyhow::Result<f64> {
    let (rows, dim) = mu.dims2()?;
    let sd = (logvar * 0.5)?.exp()?;
    let half_logvar = (logvar.sum(1)? * 0.5)?;
    let mut weights = vec![0f64; rows * k];
    for s in 0..k {
        let eps = draws.normal(rows, dim)?;
        let z = (mu + (&sd * &eps)?)?;
        let log_px = net.reconstruction_loss(&net.decode_raw(&z)?, x)?.neg()?;
        // log p(z) - log q(z|x) = -|z|^2/2 + |eps|^2/2 + sum(logvar)/2
        // (the 2 pi terms cancel).
        let log_ratio = ((eps.sqr()?.sum(1)? - z.sqr()?.sum(1)?)? * 0.5)?.add(&half_logvar)?;
        let lw = (log_px + log_ratio)?
            .to_dtype(DType::F64)?
            .to_vec1::<f64>()?;
        for (r, v) in lw.into_iter().enumerate() {
            weights[r * k + s] = v;
        }
    }
    let ln_k = (k as f64).ln();
    Ok(weights
        .chunks(k)
        .map(|w| {
            let m = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            m + w.iter().map(|v| (v - m).exp()).sum::<f64>().ln() - ln_k
        })
        .sum())
}
