//! The networks (MLP encoder, decoder and optional classifier head) and
//! their training objectives, in candle.
//!
//! Parameter names, used by checkpoints and exports: `encoder.{i}` (hidden
//! layers), `encoder.out` (the latent code, or its mean for the VAE),
//! `encoder.logvar` (VAE), `decoder.{i}` (the last one produces the output;
//! the GAN's generator), `classifier` (class-supervised AE),
//! `discriminator.{i}` (GAN; the last one gives the logit) and
//! `predictor.{i}` (the diffusion model's noise predictor). Weights are
//! stored as in PyTorch's `nn.Linear`: `weight` is out x in, `bias` has
//! length out.

use anyhow::{Context, bail};
use candle_core::{D, DType, Device, Tensor};
use candle_nn::{Linear, Module, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use tinygen_runtime::Activation;

use super::config::{Classifier, NetworkConfig, Objective, Reconstruction};
use super::prior::Prior;
use crate::density::sample::fill_standard_normal;

/// A network and its parameters.
pub struct Network {
    /// Architecture and objective.
    pub config: NetworkConfig,
    /// The parameters (and a diffusion model's data statistics), by name.
    pub varmap: VarMap,
    /// Every kind but the GAN and the diffusion model has one.
    encoder: Option<Encoder>,
    decoder: Vec<Linear>,
    classifier: Option<Linear>,
    /// The GAN's discriminator: `input, hidden.., 1` (empty otherwise).
    discriminator: Vec<Linear>,
    /// The diffusion model's noise predictor: `input + embedding,
    /// hidden.., input` (empty otherwise).
    predictor: Vec<Linear>,
    /// The diffusion model's linear skip: the training data's mean and
    /// variance per feature in the model's space (`data.mean`,
    /// `data.variance`; set from the data, not trained).
    skip: Option<(Tensor, Tensor)>,
}

/// The encoder's layers.
struct Encoder {
    trunk: Vec<Linear>,
    out: Linear,
    logvar: Option<Linear>,
}

/// Slope of the GAN discriminator's leaky ReLU for negative inputs (0.2,
/// as DCGAN and most GANs since; the discriminator is never exported).
pub const DISCRIMINATOR_SLOPE: f64 = 0.2;

/// A batch of training rows.
pub struct Batch {
    /// Features, B x D.
    pub x: Tensor,
    /// Class of each row, when the run uses labels.
    pub labels: Option<Vec<u32>>,
    /// Which rows' labels the semi-supervised SWAE may use.
    pub labelled: Option<Vec<bool>>,
}

/// The source of every random draw during training and evaluation.
pub struct Draws {
    rng: ChaCha8Rng,
}

impl Draws {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The underlying generator.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// Independent standard normals of the given shape.
    pub fn normal(&mut self, rows: usize, cols: usize) -> candle_core::Result<Tensor> {
        Tensor::from_vec(self.normal_values(rows, cols), (rows, cols), &Device::Cpu)
    }

    /// [`Draws::normal`]'s values, row-major.
    pub fn normal_values(&mut self, rows: usize, cols: usize) -> Vec<f32> {
        let mut v = vec![0f64; rows * cols];
        fill_standard_normal(&mut self.rng, &mut v);
        v.into_iter().map(|x| x as f32).collect()
    }

    /// `count` random unit directions in `dim` dimensions, as the columns of
    /// a dim x count matrix.
    pub fn directions(&mut self, dim: usize, count: usize) -> candle_core::Result<Tensor> {
        let mut v = vec![0f64; dim * count];
        fill_standard_normal(&mut self.rng, &mut v);
        let mut cols = vec![0f32; dim * count];
        for (j, dir) in v.chunks(dim).enumerate() {
            let norm = dir.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-12);
            for (i, a) in dir.iter().enumerate() {
                cols[i * count + j] = (a / norm) as f32;
            }
        }
        Tensor::from_vec(cols, (dim, count), &Device::Cpu)
    }

    /// `n` draws from a prior (optionally one component of a `gmm:K` prior).
    pub fn prior(
        &mut self,
        prior: &Prior,
        n: usize,
        dim: usize,
        component: Option<usize>,
    ) -> candle_core::Result<Tensor> {
        let v = prior.sample(n, dim, component, &mut self.rng);
        Tensor::from_vec(v, (n, dim), &Device::Cpu)
    }
}

fn linear_stack(vb: &VarBuilder, widths: &[usize]) -> candle_core::Result<Vec<Linear>> {
    widths
        .windows(2)
        .enumerate()
        .map(|(i, w)| candle_nn::linear(w[0], w[1], vb.pp(i.to_string())))
        .collect()
}

impl Network {
    /// A network with fresh weights: every `weight` and `bias` drawn
    /// uniformly from +-1/sqrt(fan_in) (PyTorch's `nn.Linear` default) by a
    /// generator seeded with `seed`, so a seed gives the same network.
    pub fn new(config: NetworkConfig, seed: u64) -> anyhow::Result<Self> {
        let net = Self::build(config)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let data = net.varmap.data().lock().expect("varmap lock");
        let mut names: Vec<&String> = data.keys().filter(|n| n.ends_with(".weight")).collect();
        names.sort();
        for name in names {
            let weight = &data[name];
            let (out, inp) = weight.dims2()?;
            let bound = 1.0 / (inp as f64).sqrt();
            let mut uniform = |n: usize| -> Vec<f32> {
                (0..n)
                    .map(|_| rng.random_range(-bound..bound) as f32)
                    .collect()
            };
            weight.set(&Tensor::from_vec(
                uniform(out * inp),
                (out, inp),
                &Device::Cpu,
            )?)?;
            let bias_name = format!("{}.bias", name.trim_end_matches(".weight"));
            if let Some(bias) = data.get(&bias_name) {
                bias.set(&Tensor::from_vec(uniform(out), out, &Device::Cpu)?)?;
            }
        }
        drop(data);
        Ok(net)
    }

    /// A network with the parameters stored in a checkpoint.
    pub fn with_parameters(
        config: NetworkConfig,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> anyhow::Result<Self> {
        let net = Self::build(config)?;
        {
            let data = net.varmap.data().lock().expect("varmap lock");
            for (name, var) in data.iter() {
                let t = tensors
                    .get(name)
                    .with_context(|| format!("the checkpoint has no parameter {name}"))?;
                if t.dims() != var.dims() {
                    bail!(
                        "parameter {name} has shape {:?} in the checkpoint but the configuration needs {:?}",
                        t.dims(),
                        var.dims()
                    );
                }
                var.set(&t.to_dtype(DType::F32)?)?;
            }
        }
        Ok(net)
    }

    fn build(config: NetworkConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let mut enc_widths = vec![config.input_dim];
        enc_widths.extend(&config.hidden);
        let last = *enc_widths.last().expect("non-empty");
        let (encoder, discriminator) = if let Objective::Gan { .. } = config.objective {
            enc_widths.push(1);
            (None, linear_stack(&vb.pp("discriminator"), &enc_widths)?)
        } else if let Objective::Diffusion(_) = config.objective {
            (None, Vec::new())
        } else {
            let enc = vb.pp("encoder");
            let logvar = match config.objective {
                Objective::Vae { .. } => {
                    Some(candle_nn::linear(last, config.latent, enc.pp("logvar"))?)
                }
                _ => None,
            };
            let encoder = Encoder {
                trunk: linear_stack(&enc, &enc_widths)?,
                out: candle_nn::linear(last, config.latent, enc.pp("out"))?,
                logvar,
            };
            (Some(encoder), Vec::new())
        };
        let skip = match config.objective {
            Objective::Diffusion(d) if d.skip => {
                let data = vb.pp("data");
                let zeros = candle_nn::Init::Const(0.0);
                Some((
                    data.get_with_hints(config.input_dim, "mean", zeros)?,
                    data.get_with_hints(config.input_dim, "variance", zeros)?,
                ))
            }
            _ => None,
        };
        let (decoder, predictor) = match config.objective {
            Objective::Diffusion(d) => {
                let mut widths = vec![config.input_dim + d.embedding];
                widths.extend(&config.hidden);
                widths.push(config.input_dim);
                (Vec::new(), linear_stack(&vb.pp("predictor"), &widths)?)
            }
            _ => (
                linear_stack(&vb.pp("decoder"), &config.decoder_widths())?,
                Vec::new(),
            ),
        };
        let classifier = match config.objective {
            Objective::Ae {
                classifier: Some(Classifier { classes, .. }),
                ..
            } => Some(candle_nn::linear(
                config.latent,
                classes,
                vb.pp("classifier"),
            )?),
            _ => None,
        };
        Ok(Self {
            config,
            varmap,
            encoder,
            decoder,
            classifier,
            discriminator,
            predictor,
            skip,
        })
    }

    /// The diffusion model's skip statistics (mean, variance), if any.
    pub fn skip_statistics(&self) -> Option<&(Tensor, Tensor)> {
        self.skip.as_ref()
    }

    /// The parameters the optimiser trains: every variable but the data
    /// statistics (`data.*`), in name order.
    pub fn trainable_vars(&self) -> Vec<candle_core::Var> {
        self.vars_where(|name| !name.starts_with("data."))
    }

    /// The diffusion model's noise predictor layers in order (empty for the
    /// other kinds); the last gives the noise estimate (no activation).
    pub fn predictor_layers(&self) -> &[Linear] {
        &self.predictor
    }

    /// Whether the network has an encoder (every kind but the GAN and the
    /// diffusion model).
    pub fn has_encoder(&self) -> bool {
        self.encoder.is_some()
    }

    /// The encoder's dense layers in order: the hidden layers, then the one
    /// giving the latent code (its mean for the VAE; the VAE's
    /// log-variance layer is not part of the deployed encoder). Empty for
    /// the GAN.
    pub fn encoder_layers(&self) -> Vec<&Linear> {
        match &self.encoder {
            Some(e) => e.trunk.iter().chain(std::iter::once(&e.out)).collect(),
            None => Vec::new(),
        }
    }

    /// The VAE's log-variance layer (beside the mean's, on the encoder's
    /// last hidden layer); `None` for the other kinds.
    pub fn vae_logvar_layer(&self) -> Option<&Linear> {
        self.encoder.as_ref()?.logvar.as_ref()
    }

    /// The GAN discriminator's dense layers in order (empty for the other
    /// kinds); the last gives one logit.
    pub fn discriminator_layers(&self) -> &[Linear] {
        &self.discriminator
    }

    /// The trainable parameters whose names start with `prefix` (for
    /// example `discriminator.`), in name order.
    pub fn vars_named(&self, prefix: &str) -> Vec<candle_core::Var> {
        self.vars_where(|name| name.starts_with(prefix))
    }

    /// The variables whose names pass `keep`, in name order.
    fn vars_where(&self, keep: impl Fn(&str) -> bool) -> Vec<candle_core::Var> {
        let data = self.varmap.data().lock().expect("varmap lock");
        let mut vars: Vec<(&String, &candle_core::Var)> =
            data.iter().filter(|(n, _)| keep(n)).collect();
        vars.sort_by(|a, b| a.0.cmp(b.0));
        vars.into_iter().map(|(_, v)| v.clone()).collect()
    }

    /// The decoder's dense layers in order; the last produces the output.
    pub fn decoder_layers(&self) -> &[Linear] {
        &self.decoder
    }

    /// Number of trainable parameters.
    pub fn parameter_count(&self) -> usize {
        self.trainable_vars().iter().map(|v| v.elem_count()).sum()
    }

    /// The hidden layers' activation of `x`.
    pub(crate) fn activate(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self.config.activation {
            Activation::Identity => Ok(x.clone()),
            Activation::Relu => x.relu(),
            Activation::LeakyRelu => candle_nn::ops::leaky_relu(x, 0.01),
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => candle_nn::ops::sigmoid(x),
        }
    }

    /// The latent code (the mean for the VAE) and, for the VAE, the
    /// log-variance of the encoder's Gaussian.
    pub fn encode(&self, x: &Tensor) -> candle_core::Result<(Tensor, Option<Tensor>)> {
        let Some(enc) = &self.encoder else {
            return Err(candle_core::Error::Msg(
                "a GAN has no encoder (its generator is the decoder)".into(),
            ));
        };
        let mut h = x.clone();
        for layer in &enc.trunk {
            h = self.activate(&layer.forward(&h)?)?;
        }
        let mu = enc.out.forward(&h)?;
        let logvar = match &enc.logvar {
            Some(l) => Some(l.forward(&h)?),
            None => None,
        };
        Ok((mu, logvar))
    }

    /// The decoder's last pre-activation: logits for BCE, the output for MSE.
    pub fn decode_raw(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = z.clone();
        let last = self.decoder.len() - 1;
        for (i, layer) in self.decoder.iter().enumerate() {
            h = layer.forward(&h)?;
            if i < last {
                h = self.activate(&h)?;
            }
        }
        Ok(h)
    }

    /// The reconstruction (or sample) for latent codes `z`.
    pub fn decode(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        let raw = self.decode_raw(z)?;
        match self.config.reconstruction {
            Reconstruction::Bce => candle_nn::ops::sigmoid(&raw),
            Reconstruction::Mse => Ok(raw),
        }
    }

    /// Class logits of the classifier head, if there is one.
    pub fn classify(&self, z: &Tensor) -> candle_core::Result<Option<Tensor>> {
        self.classifier.as_ref().map(|c| c.forward(z)).transpose()
    }

    /// Reconstruction loss of each row (length B): the negative
    /// log-likelihood of `x` under the decoder's output `raw`.
    pub fn reconstruction_loss(&self, raw: &Tensor, x: &Tensor) -> candle_core::Result<Tensor> {
        match self.config.reconstruction {
            // max(l, 0) - l x + ln(1 + exp(-|l|)): BCE of sigmoid(l), stable for any l.
            Reconstruction::Bce => {
                let softplus = (raw.abs()?.neg()?.exp()? + 1.0)?.log()?;
                ((raw.relu()? - (raw * x)?)? + softplus)?.sum(D::Minus1)
            }
            Reconstruction::Mse => (raw - x)?.sqr()?.sum(D::Minus1),
        }
    }

    /// The training objective of a batch, averaged over its rows; for the
    /// GAN the discriminator's loss against as many generated rows (the
    /// GAN trains by [`super::gan::Trainer`]); for the diffusion model the
    /// noise prediction's squared error ([`super::diffusion::noise_loss`]).
    pub fn objective(&self, batch: &Batch, draws: &mut Draws) -> anyhow::Result<Tensor> {
        let cfg = &self.config;
        let rows = batch.x.dim(0)?;
        match cfg.objective {
            Objective::Gan { .. } => {
                let fake = self.decode(&draws.normal(rows, cfg.latent)?)?;
                return Ok(super::gan::discriminator_loss(self, &batch.x, &fake)?.0);
            }
            Objective::Diffusion(_) => return super::diffusion::noise_loss(self, &batch.x, draws),
            _ => {}
        }
        let (mu, logvar) = self.encode(&batch.x)?;
        let z = match &logvar {
            // Reparameterisation: z = mu + exp(logvar / 2) * eps.
            Some(lv) => (&mu + ((lv * 0.5)?.exp()? * draws.normal(rows, cfg.latent)?)?)?,
            None => mu.clone(),
        };
        let raw = self.decode_raw(&z)?;
        let loss = self.reconstruction_loss(&raw, &batch.x)?.mean_all()?;
        let loss = match cfg.objective {
            Objective::Pca
            | Objective::Gan { .. }
            | Objective::Diffusion(_)
            | Objective::Ae {
                classifier: None, ..
            } => loss,
            Objective::Vae { beta } => {
                let lv = logvar.as_ref().expect("a VAE's encoder has a log-variance");
                (loss + (kl_to_standard_normal(&mu, lv)?.mean_all()? * beta)?)?
            }
            Objective::Ae {
                classifier: Some(Classifier { weight, .. }),
                ..
            } => {
                let logits = self.classify(&z)?.expect("a classifier head");
                let labels = batch
                    .labels
                    .as_ref()
                    .context("the class-supervised AE needs labels")?;
                let targets = Tensor::new(labels.as_slice(), &Device::Cpu)?;
                let ce = candle_nn::loss::cross_entropy(&logits, &targets)?;
                (loss + (ce * weight)?)?
            }
            Objective::Swae {
                prior,
                lambda,
                projections,
                ..
            } => {
                let sw = match (&batch.labelled, &batch.labels) {
                    (Some(labelled), Some(labels)) => {
                        semi_supervised_sw(&z, &prior, labels, labelled, projections, draws)?
                    }
                    _ => {
                        let p = draws.prior(&prior, rows, cfg.latent, None)?;
                        let theta = draws.directions(cfg.latent, projections)?;
                        sliced_wasserstein2(&z, &p, &theta)?
                    }
                };
                (loss + (sw * lambda)?)?
            }
        };
        Ok(loss)
    }
}

/// KL(N(mu, exp(logvar)) || N(0, I)) of each row:
/// `-1/2 sum(1 + logvar - mu^2 - exp(logvar))`.
pub fn kl_to_standard_normal(mu: &Tensor, logvar: &Tensor) -> candle_core::Result<Tensor> {
    let inner = ((logvar + 1.0)? - mu.sqr()?)?.sub(&logvar.exp()?)?;
    inner.sum(D::Minus1)? * -0.5
}

/// Sliced squared 2-Wasserstein distance between two equal-size point sets
/// (rows of `a` and `b`) along the columns of `theta` (unit directions): the
/// projections are sorted and the mean squared difference of the sorted
/// values is taken over points and directions. Gradients flow to both sets
/// through the sort.
pub fn sliced_wasserstein2(a: &Tensor, b: &Tensor, theta: &Tensor) -> candle_core::Result<Tensor> {
    let pa = a.matmul(theta)?.t()?.contiguous()?;
    let pb = b.matmul(theta)?.t()?.contiguous()?;
    let (sa, _) = pa.sort_last_dim(true)?;
    let (sb, _) = pb.sort_last_dim(true)?;
    (sa - sb)?.sqr()?.mean_all()
}

/// The semi-supervised SWAE's matching term: labelled rows of class c are
/// matched to component c of the `gmm:K` prior, the other rows to the whole
/// mixture; the terms are weighted by their row counts.
fn semi_supervised_sw(
    z: &Tensor,
    prior: &Prior,
    labels: &[u32],
    labelled: &[bool],
    projections: usize,
    draws: &mut Draws,
) -> anyhow::Result<Tensor> {
    let (rows, dim) = z.dims2()?;
    let theta = draws.directions(dim, projections)?;
    let mut groups: Vec<(Option<usize>, Vec<u32>)> = vec![(None, Vec::new())];
    for c in 0..prior.components() {
        groups.push((Some(c), Vec::new()));
    }
    for (i, (&label, &known)) in labels.iter().zip(labelled).enumerate() {
        let g = if known { label as usize + 1 } else { 0 };
        match groups.get_mut(g) {
            Some(group) => group.1.push(i as u32),
            None => bail!(
                "label {label} has no prior component (the prior has {})",
                prior.components()
            ),
        }
    }
    let mut total = Tensor::zeros((), DType::F32, &Device::Cpu)?;
    for (component, idx) in groups.iter().filter(|(_, idx)| !idx.is_empty()) {
        let index = Tensor::new(idx.as_slice(), &Device::Cpu)?;
        let zs = z.index_select(&index, 0)?;
        let p = draws.prior(prior, idx.len(), dim, *component)?;
        let term = (sliced_wasserstein2(&zs, &p, &theta)? * (idx.len() as f64 / rows as f64))?;
        total = (total + term)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(objective: Objective) -> NetworkConfig {
        NetworkConfig::new(objective, 6, vec![5], 2)
    }

    /// KL(N(mu, s^2) || N(0, 1)) by the trapezoid rule on a wide grid.
    fn kl_numeric(mu: f64, s: f64) -> f64 {
        let (lo, hi, n) = (mu - 12.0 * s, mu + 12.0 * s, 200_000);
        let h = (hi - lo) / n as f64;
        let ln_p =
            |x: f64| -0.5 * ((x - mu) / s).powi(2) - s.ln() - 0.5 * (std::f64::consts::TAU).ln();
        let ln_q = |x: f64| -0.5 * x * x - 0.5 * (std::f64::consts::TAU).ln();
        (0..=n)
            .map(|i| {
                let x = lo + i as f64 * h;
                let w = if i == 0 || i == n { 0.5 } else { 1.0 };
                w * ln_p(x).exp() * (ln_p(x) - ln_q(x))
            })
            .sum::<f64>()
            * h
    }

    #[test]
    fn kl_matches_numeric_integration() {
        let (mus, sds) = ([0.3f64, -1.5, 2.0], [0.5f64, 1.7, 0.05]);
        let mu = Tensor::new(
            &[[mus[0] as f32, mus[1] as f32, mus[2] as f32]],
            &Device::Cpu,
        )
        .unwrap();
        let lv: Vec<f32> = sds.iter().map(|s| (2.0 * s.ln()) as f32).collect();
        let lv = Tensor::new(&[[lv[0], lv[1], lv[2]]], &Device::Cpu).unwrap();
        let kl = kl_to_standard_normal(&mu, &lv)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()[0] as f64;
        let numeric: f64 = mus.iter().zip(&sds).map(|(&m, &s)| kl_numeric(m, s)).sum();
        assert!(
            (kl - numeric).abs() < 1e-4 * numeric.max(1.0),
            "{kl} vs {numeric}"
        );
    }

    #[test]
    fn sliced_wasserstein_of_identical_and_shifted_sets() {
        let mut draws = Draws::new(5);
        let a = draws.normal(300, 3).unwrap();
        let theta = draws.directions(3, 50).unwrap();
        let same = sliced_wasserstein2(&a, &a, &theta)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(same, 0.0);
        // In one dimension the only directions are +-1 and the distance
        // between a set and its shift by s is exactly s^2.
        let x = draws.normal(500, 1).unwrap();
        let shifted = (&x + 0.75).unwrap();
        let dirs = Tensor::new(&[[1f32, -1.0]], &Device::Cpu).unwrap();
        let sw = sliced_wasserstein2(&x, &shifted, &dirs)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((sw - 0.5625).abs() < 1e-5, "{sw}");
        // And with shuffled rows: the sort pairs them up again.
        let rev = x.flip(&[0]).unwrap();
        let sw = sliced_wasserstein2(&rev, &shifted, &dirs)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((sw - 0.5625).abs() < 1e-5, "{sw}");
    }

    /// The objective's gradient reaches the encoder's weights through the
    /// reparameterisation (VAE) and through the sort of the
    /// sliced-Wasserstein term (SWAE; checked on that term alone too).
    #[test]
    fn gradients_reach_the_encoder() {
        let swae = Objective::Swae {
            prior: Prior::Ring,
            lambda: 10.0,
            projections: 20,
            semi_supervised: None,
        };
        for objective in [Objective::VAE, swae] {
            let kind = objective.kind();
            let net = Network::new(config(objective), 3).unwrap();
            let mut draws = Draws::new(1);
            let x = Tensor::rand(0f32, 1.0, (16, 6), &Device::Cpu).unwrap();
            let batch = Batch {
                x,
                labels: None,
                labelled: None,
            };
            let loss = net.objective(&batch, &mut draws).unwrap();
            let grads = loss.backward().unwrap();
            let data = net.varmap.data().lock().unwrap();
            for name in ["encoder.0.weight", "encoder.out.weight"] {
                let g = grads.get(data[name].as_tensor()).expect("gradient");
                let norm = g
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(norm > 0.0, "{kind:?}: no gradient reaches {name}");
            }
            if objective == swae {
                // The SW term alone also sends a gradient to the encoder.
                let (z, _) = net.encode(&batch.x).unwrap();
                let p = draws.prior(&Prior::Ring, 16, 2, None).unwrap();
                let theta = draws.directions(2, 10).unwrap();
                let sw = sliced_wasserstein2(&z, &p, &theta).unwrap();
                let g = sw.backward().unwrap();
                let w = g
                    .get(data["encoder.out.weight"].as_tensor())
                    .expect("gradient");
                let norm = w
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(norm > 0.0, "the sort blocks the gradient");
            }
        }
    }
}
