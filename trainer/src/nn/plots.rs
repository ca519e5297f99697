//! The pictures of a run: `loss.png` (train and test loss per epoch; for
//! the GAN the losses of both players), `latent.png` (latent codes of the
//! evaluation split coloured by label, projected by PCA when the latent has
//! more than 2 dimensions; not for the GAN, which has no encoder), and for
//! image data `reconstructions.png` (inputs above their reconstructions;
//! not for the GAN) and `samples.png` (decoded prior draws, draws from
//! the AE's latent GMM, or a diffusion model's samples by its default
//! sampler).

use std::path::Path;

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::metrics::latents;
use super::network::Network;
use super::run::TrainState;
use crate::data::images::Samples;
use crate::density::gmm::GaussianMixture;
use crate::plot::{self, YScale};

/// Rows shown in the latent scatter at most.
const SCATTER_ROWS: usize = 5000;
/// Images in the reconstruction grid.
const RECONSTRUCTIONS: usize = 20;
/// Images in the sample grid (8 x 8).
const SAMPLES: usize = 64;

/// Writes every picture of a run into `out`.
pub fn write_all(
    out: &Path,
    net: &Network,
    state: &TrainState,
    eval: &Samples,
    latent_gmm: Option<&GaussianMixture>,
) -> anyhow::Result<()> {
    let kind = net.config.kind().name();
    if !state.history.is_empty() {
        let train: Vec<f64> = state.history.iter().map(|r| r.train_loss).collect();
        let test: Option<Vec<f64>> = state.history.iter().map(|r| r.test_loss).collect();
        let generator: Option<Vec<f64>> = state.history.iter().map(|r| r.generator_loss).collect();
        let (train_name, test_name) = match generator {
            Some(_) => ("discriminator (train)", "discriminator (test)"),
            None => ("train", "test"),
        };
        let mut series = vec![(train_name, train.as_slice())];
        if let Some(t) = &test {
            series.push((test_name, t.as_slice()));
        }
        if let Some(g) = &generator {
            series.push(("generator (train)", g.as_slice()));
        }
        plot::loss_curves(
            &out.join("loss.png"),
            &format!("{kind}: loss per row"),
            &series,
            YScale::Linear,
        )?;
    }
    if net.has_encoder() {
        encoder_plots(out, net, eval)?;
    }
    let Some((h, w)) = eval.image else {
        return Ok(());
    };
    if let Ok(settings) = super::diffusion::settings(net) {
        let mut draws = super::network::Draws::new(0);
        let images = super::diffusion::sample(net, SAMPLES, settings.sampler, None, &mut draws)?;
        return sample_grid(&out.join("samples.png"), &images, h, w);
    }
    let d = net.config.latent;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let draws: Option<Vec<f32>> = match (net.config.prior(), latent_gmm) {
        (Some(prior), _) => Some(prior.sample(SAMPLES, d, None, &mut rng)),
        (None, Some(gmm)) => Some(
            gmm.sample(SAMPLES, &mut rng)
                .transpose()
                .iter()
                .map(|&v| v as f32)
                .collect(),
        ),
        (None, None) => None,
    };
    if let Some(z) = draws {
        let z = Tensor::from_vec(z, (SAMPLES, d), &Device::Cpu)?;
        let images = net.decode(&z)?.flatten_all()?.to_vec1::<f32>()?;
        sample_grid(&out.join("samples.png"), &images, h, w)?;
    }
    Ok(())
}

/// `latent.png` and, for images, `reconstructions.png`.
fn encoder_plots(out: &Path, net: &Network, eval: &Samples) -> anyhow::Result<()> {
    let kind = net.config.kind().name();
    let shown = eval.n.min(SCATTER_ROWS);
    let subset = Samples {
        n: shown,
        x: eval.x[..shown * eval.dim].to_vec(),
        labels: eval.labels.as_ref().map(|l| l[..shown].to_vec()),
        ..eval.clone()
    };
    let z = latents(net, &subset)?;
    let points = plot::project_2d(&z, net.config.latent)?;
    let title = if net.config.latent > 2 {
        format!("{kind}: latent codes of {} (PCA to 2-D)", eval.name)
    } else {
        format!("{kind}: latent codes of {}", eval.name)
    };
    plot::latent_scatter(
        &out.join("latent.png"),
        &title,
        &points,
        subset.labels.as_deref(),
    )?;
    let Some((h, w)) = eval.image else {
        return Ok(());
    };
    let count = eval.n.min(RECONSTRUCTIONS);
    let inputs = &eval.x[..count * eval.dim];
    let x = Tensor::from_slice(inputs, (count, eval.dim), &Device::Cpu)?;
    let (mu, _) = net.encode(&x)?;
    let recons = net.decode(&mu)?.flatten_all()?.to_vec1::<f32>()?;
    plot::reconstruction_grid(&out.join("reconstructions.png"), inputs, &recons, h, w)
}

/// Writes `h x w` images (values clamped to [0, 1]) as a PNG grid 8 wide.
fn sample_grid(path: &Path, images: &[f32], h: usize, w: usize) -> anyhow::Result<()> {
    let images: Vec<f32> = images.iter().map(|v| v.clamp(0.0, 1.0)).collect();
    plot::image_grid(path, &images, h, w, 8)
}

/// Writes samples of `d` values each, square images, as a PNG grid 8 wide
/// (values clamped to [0, 1]); an error if `d` is not a square.
pub fn square_image_grid(path: &Path, samples: &[f32], d: usize) -> anyhow::Result<()> {
    let side = (d as f64).sqrt().round() as usize;
    if side * side != d {
        anyhow::bail!("{d} outputs are not a square image; write CSV instead");
    }
    sample_grid(path, samples, side, side)
}
