//! The denoising diffusion model (DDPM, Ho et al. 2020) in candle: the
//! noise predictor's training loss, a batched sampler with the runtime's
//! formulas, and the export to a runtime `diffusion` file.
//!
//! The schedule (`alpha_bar`) and the time embedding are the runtime's own
//! functions ([`crate::nn::config::Schedule::alpha_bar`],
//! [`time_embedding`]), so the network trains on exactly the values the
//! device uses.
//!
//! Data: with `--reconstruction bce` (the default) rows lie in [0, 1] and
//! the model works on `2 x - 1`, clipping its predictions of `x_0` to
//! [-1, 1] while sampling; with `mse` it works on the rows as they are
//! (standardize them first).
//!
//! Training: for each row a timestep `t` uniform in 1..=T and noise `eps`
//! from N(0, I) give `x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps`; the loss is
//! `|eps - predictor(x_t, embedding(t))|^2` summed over features and
//! averaged over rows (Ho et al.'s simplified objective).
//!
//! With the linear skip (the default) the estimate is the network's output
//! plus `sqrt(1 - a) (x_t - sqrt(a) m) / (a v + 1 - a)`, with `m` and `v`
//! the training rows' mean and variance per feature (model space), set
//! once from the data and stored in the checkpoint and the file: the best
//! linear estimate for Gaussian data, which an MLP narrower than the data
//! could not learn (on MNIST, 512-wide layers: the loss after 600 steps
//! falls from 490 to 84 with it).

use anyhow::Context;
use candle_core::{D, Device, Tensor};
use candle_nn::Module;
use rand::Rng;
use tinygen_runtime::Activation;
use tinygen_runtime::diffusion::{DiffusionParams, Sampler, time_embedding, timestep};
use tinygen_runtime::network::LayerParams;

use super::config::{DiffusionSettings, Objective, Reconstruction};
use super::network::{Draws, Network};

/// The diffusion settings of `net`; an error for other kinds.
pub fn settings(net: &Network) -> anyhow::Result<DiffusionSettings> {
    match net.config.objective {
        Objective::Diffusion(d) => Ok(d),
        _ => anyhow::bail!("not a diffusion model"),
    }
}

/// The map from the model's space to data, per feature: `(scale, offset,
/// clip)` (see the module's documentation).
pub fn data_map(net: &Network) -> (f32, f32, bool) {
    match net.config.reconstruction {
        Reconstruction::Bce => (0.5, 0.5, true),
        Reconstruction::Mse => (1.0, 0.0, false),
    }
}

/// Rows in data space to the model's space.
fn to_model_space(net: &Network, x: &Tensor) -> candle_core::Result<Tensor> {
    let (scale, offset, _) = data_map(net);
    (x - f64::from(offset))? / f64::from(scale)
}

/// The time embeddings of `ts` (one row each), from the runtime's function.
fn embeddings(ts: &[u32], width: usize) -> anyhow::Result<Tensor> {
    let mut values = vec![0f32; ts.len() * width];
    for (row, &t) in values.chunks_mut(width).zip(ts) {
        time_embedding(t, row).map_err(|e| anyhow::anyhow!("time embedding: {e}"))?;
    }
    Ok(Tensor::from_vec(values, (ts.len(), width), &Device::Cpu)?)
}

/// Sets a diffusion network's skip statistics from the training rows
/// `train` (data space): per feature the mean and the population variance
/// in the model's space. Nothing for other networks.
pub fn set_data_statistics(
    net: &Network,
    train: &crate::data::images::Samples,
) -> anyhow::Result<()> {
    if net.skip_statistics().is_none() {
        return Ok(());
    }
    let x = to_model_space(net, &crate::nn::metrics::samples_tensor(train)?)?;
    let m = x.mean(0)?;
    let v = x.broadcast_sub(&m)?.sqr()?.mean(0)?;
    let vars = net.varmap.data().lock().expect("varmap lock");
    for (name, value) in [("data.mean", m), ("data.variance", v)] {
        vars.get(name).context("skip statistics")?.set(&value)?;
    }
    Ok(())
}

impl Network {
    /// The noise predictor's estimate for the noisy rows `xt` (model space)
    /// at timesteps `ts` (one per row), the linear skip included.
    pub fn predict_noise(&self, xt: &Tensor, ts: &[u32]) -> anyhow::Result<Tensor> {
        let d = settings(self)?;
        let emb = embeddings(ts, d.embedding)?;
        let mut h = Tensor::cat(&[xt, &emb], 1)?;
        let layers = self.predictor_layers();
        for (i, layer) in layers.iter().enumerate() {
            h = layer.forward(&h)?;
            if i + 1 < layers.len() {
                h = self.activate(&h)?;
            }
        }
        if let Some((mean, variance)) = self.skip_statistics() {
            let alpha_bar = d.alpha_bar()?;
            // The runtime's f32 coefficients, rounded once from f64.
            let column = |f: &dyn Fn(f64) -> f32| -> candle_core::Result<Tensor> {
                let v: Vec<f32> = ts
                    .iter()
                    .map(|&t| f(f64::from(alpha_bar[t as usize - 1])))
                    .collect();
                Tensor::from_vec(v, (ts.len(), 1), &Device::Cpu)
            };
            let a = column(&|a| a as f32)?;
            let rest = column(&|a| (1.0 - a) as f32)?;
            let signal = column(&|a| a.sqrt() as f32)?;
            let noise = column(&|a| (1.0 - a).sqrt() as f32)?;
            let centred = xt.broadcast_sub(&signal.broadcast_mul(&mean.unsqueeze(0)?)?)?;
            let denom = a
                .broadcast_mul(&variance.unsqueeze(0)?)?
                .broadcast_add(&rest)?;
            h = (h + centred.broadcast_mul(&noise)?.div(&denom)?)?;
        }
        Ok(h)
    }
}

/// The training loss of a batch of rows `x` (data space), averaged over
/// rows, with the timesteps and noise drawn from `draws`.
pub fn noise_loss(net: &Network, x: &Tensor, draws: &mut Draws) -> anyhow::Result<Tensor> {
    let d = settings(net)?;
    let alpha_bar = d.alpha_bar()?;
    let (rows, dim) = x.dims2()?;
    let ts: Vec<u32> = (0..rows)
        .map(|_| draws.rng().random_range(1..=u32::from(d.steps)))
        .collect();
    let column = |f: &dyn Fn(f32) -> f32| -> candle_core::Result<Tensor> {
        let v: Vec<f32> = ts.iter().map(|&t| f(alpha_bar[t as usize - 1])).collect();
        Tensor::from_vec(v, (rows, 1), &Device::Cpu)
    };
    let signal = column(&|a| (f64::from(a).sqrt()) as f32)?;
    let noise_scale = column(&|a| ((1.0 - f64::from(a)).sqrt()) as f32)?;
    let eps = draws.normal(rows, dim)?;
    let x0 = to_model_space(net, x)?;
    let xt = (x0.broadcast_mul(&signal)? + eps.broadcast_mul(&noise_scale)?)?;
    let predicted = net.predict_noise(&xt, &ts)?;
    Ok((predicted - eps)?.sqr()?.sum(D::Minus1)?.mean_all()?)
}

/// Draws `n` samples (data space, row-major) by `sampler`'s steps with the
/// runtime's formulas ([`tinygen_runtime::diffusion`]), batched in candle,
/// starting from `initial` (n x D standard normals, model space) or from
/// fresh draws.
pub fn sample(
    net: &Network,
    n: usize,
    sampler: Sampler,
    initial: Option<Tensor>,
    draws: &mut Draws,
) -> anyhow::Result<Vec<f32>> {
    let d = settings(net)?;
    anyhow::ensure!(
        sampler.steps >= 1 && sampler.steps <= d.steps && (0.0..=1.0).contains(&sampler.eta),
        "a sampler needs 1 to {} steps and eta in [0, 1]",
        d.steps
    );
    let alpha_bar = d.alpha_bar()?;
    let at = |s: u32| {
        if s == 0 {
            1.0
        } else {
            f64::from(alpha_bar[s as usize - 1])
        }
    };
    let dim = net.config.input_dim;
    let (scale, offset, clip) = data_map(net);
    let mut x = match initial {
        Some(x) => x,
        None => draws.normal(n, dim)?,
    };
    let (steps, total) = (u32::from(sampler.steps), u32::from(d.steps));
    for i in (0..steps).rev() {
        let t = timestep(i, steps, total);
        let prev = if i == 0 {
            0
        } else {
            timestep(i - 1, steps, total)
        };
        let (a, p) = (at(t), at(prev));
        let eps = net.predict_noise(&x, &vec![t; n])?;
        let sigma = if sampler.eta > 0.0 && prev > 0 {
            f64::from(sampler.eta) * ((1.0 - p) / (1.0 - a)).sqrt() * (1.0 - a / p).sqrt()
        } else {
            0.0
        };
        let direction = (1.0 - p - sigma * sigma).max(0.0).sqrt();
        // The runtime's f32 coefficients, rounded once.
        let f = |v: f64| f64::from(v as f32);
        let mut x0 = ((&x - (&eps * f((1.0 - a).sqrt()))?)? * f(1.0 / a.sqrt()))?;
        let mut eps = eps;
        if clip {
            x0 = x0.clamp(-1f32, 1f32)?;
            eps = ((&x - (&x0 * f(a.sqrt()))?)? * f(1.0 / (1.0 - a).sqrt()))?;
        }
        x = ((x0 * f(p.sqrt()))? + (&eps * f(direction))?)?;
        if sigma > 0.0 {
            x = (x + (draws.normal(n, dim)? * f(sigma))?)?;
        }
    }
    let y = ((x * f64::from(scale))? + f64::from(offset))?;
    Ok(y.flatten_all()?.to_vec1::<f32>()?)
}

/// The run's diffusion model as a runtime model file.
pub fn export(net: &Network) -> anyhow::Result<Vec<u8>> {
    let d = settings(net)?;
    let alpha_bar = d.alpha_bar()?;
    let layers = net.predictor_layers();
    let mut stored = Vec::with_capacity(layers.len());
    for layer in layers {
        let w = layer.weight();
        let (outputs, inputs) = w.dims2()?;
        let bias = layer.bias().context("a predictor layer has no bias")?;
        stored.push((
            inputs,
            outputs,
            w.flatten_all()?.to_vec1::<f32>()?,
            bias.to_vec1::<f32>()?,
        ));
    }
    let count = stored.len();
    let params: Vec<LayerParams> = stored
        .iter()
        .enumerate()
        .map(|(i, (inputs, outputs, weight, bias))| LayerParams {
            inputs: *inputs,
            outputs: *outputs,
            activation: if i + 1 == count {
                Activation::Identity
            } else {
                net.config.activation
            },
            weight,
            bias,
        })
        .collect();
    let (scale, offset, clip) = data_map(net);
    let dim = net.config.input_dim;
    let (scale, offset) = (vec![scale; dim], vec![offset; dim]);
    let stats = match net.skip_statistics() {
        Some((m, v)) => Some((m.to_vec1::<f32>()?, v.to_vec1::<f32>()?)),
        None => None,
    };
    DiffusionParams {
        embedding: d.embedding,
        schedule: d.schedule,
        alpha_bar: &alpha_bar,
        clip,
        sampler: d.sampler,
        layers: params,
        scale: &scale,
        offset: &offset,
        skip: stats.as_ref().map(|(m, v)| (m.as_slice(), v.as_slice())),
    }
    .encode()
    .map_err(|e| anyhow::anyhow!("cannot encode the diffusion model: {e}"))
}

#[cfg(test)]
mod tests {
    use tinygen_runtime::Diffusion;
    use tinygen_runtime::rand_core::SeedableRng;
    use tinygen_runtime::{Xoshiro128PlusPlus, prior::standard_normals};

    use super::*;
    use crate::host::AlignedBytes;
    use crate::nn::config::{NetworkConfig, Schedule};

    fn model(steps: u16, reconstruction: Reconstruction, skip: bool) -> Network {
        let settings = DiffusionSettings {
            steps,
            schedule: Schedule::Cosine { offset: 0.008 },
            embedding: 8,
            sampler: Sampler::ddim(steps.min(10)),
            skip,
        };
        let config = NetworkConfig {
            reconstruction,
            activation: Activation::Tanh,
            ..NetworkConfig::new(Objective::Diffusion(settings), 5, vec![16, 12], 5)
        };
        let net = Network::new(config, 4).unwrap();
        // Skip statistics of some rows in [0, 1].
        let rows: Vec<f32> = (0..40).map(|i| ((i * 7) % 11) as f32 / 10.0).collect();
        let samples = crate::data::images::Samples {
            name: "rows".into(),
            n: 8,
            dim: 5,
            x: rows,
            labels: None,
            image: None,
        };
        set_data_statistics(&net, &samples).unwrap();
        net
    }

    /// The candle sampler and the runtime's, from the same first draw
    /// (DDIM is deterministic after it), agree to f32 rounding; the
    /// predictor agrees with the file's to 1e-5.
    #[test]
    fn candle_and_the_runtime_sample_alike() {
        for (reconstruction, skip) in [
            (Reconstruction::Bce, true),
            (Reconstruction::Mse, false),
            (Reconstruction::Bce, false),
        ] {
            let net = model(40, reconstruction, skip);
            let file = AlignedBytes::new(&export(&net).unwrap());
            let rt = Diffusion::from_bytes(file.as_bytes()).unwrap();
            let mut work = vec![0f32; rt.work_len()];
            for steps in [1u16, 7, 40] {
                let sampler = Sampler::ddim(steps);
                let mut got = vec![0f32; 5];
                rt.sample_in(
                    &mut Xoshiro128PlusPlus::seed_from_u64(9),
                    sampler,
                    &mut got,
                    &mut work,
                )
                .unwrap();
                let mut z = vec![0f32; 5];
                standard_normals(&mut Xoshiro128PlusPlus::seed_from_u64(9), &mut z);
                let initial = Tensor::from_vec(z, (1, 5), &Device::Cpu).unwrap();
                let want = sample(&net, 1, sampler, Some(initial), &mut Draws::new(0)).unwrap();
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() < 1e-4 * w.abs().max(1.0),
                        "{reconstruction:?} {steps}: {g} vs {w}"
                    );
                }
            }
            let x =
                Tensor::from_vec(vec![0.3f32, -0.2, 0.9, 0.0, 1.5], (1, 5), &Device::Cpu).unwrap();
            let eps = net
                .predict_noise(&x, &[17])
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let (mut a, mut b) = (vec![0f32; 32], vec![0f32; 32]);
            let mut got = vec![0f32; 5];
            rt.predict_noise(&[0.3, -0.2, 0.9, 0.0, 1.5], 17, &mut got, &mut a, &mut b)
                .unwrap();
            for (g, w) in got.iter().zip(&eps) {
                assert!((g - w).abs() < 1e-5, "{g} vs {w}");
            }
        }
    }

    /// The loss of a predictor that outputs zero is the noise's squared
    /// norm, D on average.
    #[test]
    fn a_zero_predictor_costs_the_noise_energy() {
        let net = model(100, Reconstruction::Mse, false);
        for var in net.vars_named("predictor.") {
            var.set(&var.zeros_like().unwrap()).unwrap();
        }
        let x = Tensor::zeros((4000, 5), candle_core::DType::F32, &Device::Cpu).unwrap();
        let loss = noise_loss(&net, &x, &mut Draws::new(1))
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((loss - 5.0).abs() < 0.15, "{loss}");
    }

    /// On the bundled digits the loss drops within a few hundred steps.
    #[test]
    fn the_loss_drops_on_the_digits() {
        use crate::data::images::{Split, load_samples};
        use crate::nn::adam::Adam;
        use crate::nn::metrics::samples_tensor;
        let digits = load_samples("digits", None, Split::Train, None).unwrap();
        let x = samples_tensor(&digits).unwrap();
        let settings = DiffusionSettings {
            steps: 100,
            schedule: Schedule::Linear {
                beta_start: 1e-4,
                beta_end: 0.05,
            },
            embedding: 16,
            sampler: Sampler::ddim(10),
            skip: false,
        };
        let config = NetworkConfig::new(Objective::Diffusion(settings), 64, vec![128], 64);
        let net = Network::new(config, 0).unwrap();
        let mut adam = Adam::new(
            net.trainable_vars(),
            candle_nn::ParamsAdamW {
                lr: 1e-3,
                ..Default::default()
            },
        );
        let mut draws = Draws::new(2);
        let mut losses = Vec::new();
        for step in 0..300 {
            let start = (step * 64) % (digits.n - 64);
            let loss = noise_loss(&net, &x.narrow(0, start, 64).unwrap(), &mut draws).unwrap();
            losses.push(loss.to_scalar::<f32>().unwrap());
            adam.backward_step(&loss).unwrap();
        }
        let mean =
            |r: std::ops::Range<usize>| losses[r.clone()].iter().sum::<f32>() / r.len() as f32;
        let (first, last) = (mean(0..20), mean(280..300));
        assert!(last < 0.5 * first, "{first} -> {last}");
    }
}
