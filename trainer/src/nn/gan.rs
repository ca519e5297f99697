//! The generative adversarial network's two players and their training
//! step (Goodfellow et al., 2014, with the non-saturating generator loss).
//!
//! The generator is the network's decoder (N(0, I) latent draws in, rows
//! out, a sigmoid output for `--reconstruction bce`), so it is exported,
//! quantized and run on the device exactly as a VAE decoder. The
//! discriminator is an MLP `input, hidden.., 1` with leaky ReLUs of slope
//! [`DISCRIMINATOR_SLOPE`] that gives one logit per row.
//!
//! One step, on a batch of `B` real rows:
//! 1. the discriminator minimises
//!    `mean softplus(-D(x)) + mean softplus(D(G(z)))` over `B` fresh draws
//!    `z`, plus the optional R1 penalty `gamma/2 mean |grad_x D(x)|^2` on
//!    the real rows (Mescheder et al., 2018), with the generator fixed;
//! 2. the generator minimises `mean softplus(-D(G(z)))` over `B` new draws.
//!
//! Each player has its own Adam with betas (0.5, 0.999) (Radford et al.,
//! 2016) at the run's learning rate.

use candle_core::{D, DType, Tensor};
use candle_nn::{Module, ParamsAdamW};

use super::adam::Adam;
use super::network::{DISCRIMINATOR_SLOPE, Draws, Network};

/// Adam's (beta1, beta2) for both players.
pub const BETAS: (f64, f64) = (0.5, 0.999);

/// `ln(1 + e^x)` of every element, stable for any `x`.
fn softplus(x: &Tensor) -> candle_core::Result<Tensor> {
    x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?
}

/// The slope of the discriminator's leaky ReLU at each pre-activation.
fn leaky_slope(pre: &Tensor) -> candle_core::Result<Tensor> {
    let positive = pre.ge(0.0)?.to_dtype(DType::F32)?;
    (positive * (1.0 - DISCRIMINATOR_SLOPE))? + DISCRIMINATOR_SLOPE
}

impl Network {
    /// The discriminator's logit of each row of `x` (length B); an error
    /// for networks without one.
    pub fn discriminate(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let layers = self.discriminator_layers();
        let Some((last, hidden)) = layers.split_last() else {
            return Err(candle_core::Error::Msg(
                "only a GAN has a discriminator".into(),
            ));
        };
        let mut h = x.clone();
        for layer in hidden {
            h = candle_nn::ops::leaky_relu(&layer.forward(&h)?, DISCRIMINATOR_SLOPE)?;
        }
        last.forward(&h)?.squeeze(D::Minus1)
    }

    /// The gradient of the discriminator's logit with respect to each row
    /// of `x` (B x input), written out as the backward pass of the MLP,
    /// `W_1^T diag(s_1) .. W_{L-1}^T diag(s_{L-1}) w_L` with `s_i` the
    /// leaky ReLU's slopes, so that candle can differentiate it once more
    /// (with respect to the weights) for the R1 penalty.
    pub fn discriminator_input_gradient(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let layers = self.discriminator_layers();
        let Some((last, hidden)) = layers.split_last() else {
            return Err(candle_core::Error::Msg(
                "only a GAN has a discriminator".into(),
            ));
        };
        let mut h = x.clone();
        let mut slopes = Vec::with_capacity(hidden.len());
        for layer in hidden {
            let pre = layer.forward(&h)?;
            slopes.push(leaky_slope(&pre.detach())?);
            h = candle_nn::ops::leaky_relu(&pre, DISCRIMINATOR_SLOPE)?;
        }
        // d logit / d h_{L-1} is the last layer's weight row, for every row.
        let rows = x.dim(0)?;
        let mut g = last.weight().broadcast_as((rows, last.weight().dim(1)?))?;
        for (layer, slope) in hidden.iter().zip(&slopes).rev() {
            g = (g * slope)?.matmul(layer.weight())?;
        }
        Ok(g)
    }
}

/// The discriminator's loss on real rows `real` and generated rows `fake`
/// (`mean softplus(-D(real)) + mean softplus(D(fake))`) and its accuracy:
/// the share of the `2B` rows on the right side of logit 0.
pub fn discriminator_loss(
    net: &Network,
    real: &Tensor,
    fake: &Tensor,
) -> candle_core::Result<(Tensor, f64)> {
    let lr = net.discriminate(real)?;
    let lf = net.discriminate(fake)?;
    let loss = (softplus(&lr.neg()?)?.mean_all()? + softplus(&lf)?.mean_all()?)?;
    let right = lr
        .gt(0.0)?
        .to_dtype(DType::F32)?
        .sum_all()?
        .to_scalar::<f32>()?
        + lf.le(0.0)?
            .to_dtype(DType::F32)?
            .sum_all()?
            .to_scalar::<f32>()?;
    let total = (lr.elem_count() + lf.elem_count()).max(1);
    Ok((loss, f64::from(right) / total as f64))
}

/// The non-saturating generator loss `mean softplus(-D(G(z)))`.
pub fn generator_loss(net: &Network, z: &Tensor) -> candle_core::Result<Tensor> {
    softplus(&net.discriminate(&net.decode(z)?)?.neg()?)?.mean_all()
}

/// The R1 penalty's expectation `mean |grad_x D(x)|^2` over the rows of `x`.
pub fn r1(net: &Network, x: &Tensor) -> candle_core::Result<Tensor> {
    net.discriminator_input_gradient(x)?
        .sqr()?
        .sum(D::Minus1)?
        .mean_all()
}

/// What one training step measured (per row, before the step's updates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// The discriminator's loss (without the penalty).
    pub discriminator_loss: f64,
    /// The discriminator's accuracy on the real and generated rows.
    pub discriminator_accuracy: f64,
    /// The generator's non-saturating loss.
    pub generator_loss: f64,
}

impl StepStats {
    /// Whether both losses are finite (the run has not diverged).
    pub fn is_finite(&self) -> bool {
        self.discriminator_loss.is_finite() && self.generator_loss.is_finite()
    }
}

/// The two players' optimisers.
pub struct Trainer {
    discriminator: Adam,
    generator: Adam,
    gradient_penalty: f64,
}

impl Trainer {
    /// Fresh optimisers for the GAN `net` (zero moments) at learning rate
    /// `lr` with decoupled weight decay `weight_decay`, and the R1 weight
    /// `gradient_penalty`.
    pub fn new(net: &Network, lr: f64, weight_decay: f64, gradient_penalty: f64) -> Self {
        let params = ParamsAdamW {
            lr,
            beta1: BETAS.0,
            beta2: BETAS.1,
            weight_decay,
            ..ParamsAdamW::default()
        };
        Self {
            discriminator: Adam::new(net.vars_named("discriminator."), params.clone()),
            generator: Adam::new(net.vars_named("decoder."), params),
            gradient_penalty,
        }
    }

    /// One step of each player on the real rows `real` (see the module's
    /// documentation). When a loss is not finite, no player steps after it
    /// and the caller sees it in the returned statistics.
    pub fn step(
        &mut self,
        net: &Network,
        real: &Tensor,
        draws: &mut Draws,
    ) -> anyhow::Result<StepStats> {
        let rows = real.dim(0)?;
        let latent = net.config.latent;
        let fake = net.decode(&draws.normal(rows, latent)?)?.detach();
        let (d_loss, accuracy) = discriminator_loss(net, real, &fake)?;
        let d_value = f64::from(d_loss.to_scalar::<f32>()?);
        let mut stats = StepStats {
            discriminator_loss: d_value,
            discriminator_accuracy: accuracy,
            generator_loss: f64::NAN,
        };
        if !d_value.is_finite() {
            return Ok(stats);
        }
        let d_objective = if self.gradient_penalty > 0.0 {
            (d_loss + (r1(net, real)? * (0.5 * self.gradient_penalty))?)?
        } else {
            d_loss
        };
        self.discriminator.backward_step(&d_objective)?;
        let g_loss = generator_loss(net, &draws.normal(rows, latent)?)?;
        stats.generator_loss = f64::from(g_loss.to_scalar::<f32>()?);
        if stats.generator_loss.is_finite() {
            self.generator.backward_step(&g_loss)?;
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;
    use crate::nn::config::{NetworkConfig, Objective};

    fn gan(input: usize, hidden: Vec<usize>, latent: usize, seed: u64) -> Network {
        let objective = Objective::Gan {
            gradient_penalty: 0.0,
        };
        Network::new(NetworkConfig::new(objective, input, hidden, latent), seed).unwrap()
    }

    #[test]
    fn softplus_matches_its_definition_and_does_not_overflow() {
        let x = Tensor::new(&[-100f32, -3.0, 0.0, 2.5, 100.0], &Device::Cpu).unwrap();
        let got = softplus(&x).unwrap().to_vec1::<f32>().unwrap();
        for (g, v) in got.iter().zip([-100f64, -3.0, 0.0, 2.5, 100.0]) {
            let want = if v > 30.0 { v } else { v.exp().ln_1p() };
            assert!(
                (f64::from(*g) - want).abs() < 1e-5 * want.max(1.0),
                "{v}: {g}"
            );
        }
    }

    /// The written-out input gradient equals central finite differences of
    /// the discriminator's logit, row by row.
    #[test]
    fn input_gradient_matches_finite_differences() {
        let net = gan(5, vec![7, 6], 2, 3);
        // Fixed inputs (not `Tensor::rand`, which is unseeded): a random
        // draw now and then put a kink within +-h of a point.
        let values: Vec<f64> = (0..15).map(|i| (i as f64 * 2.3 + 0.4).sin()).collect();
        let x = Tensor::from_vec(values, (3, 5), &Device::Cpu).unwrap();
        let x32 = x.to_dtype(DType::F32).unwrap();
        let g = net.discriminator_input_gradient(&x32).unwrap();
        let g = g.to_vec2::<f32>().unwrap();
        let rows = x.to_vec2::<f64>().unwrap();
        let h = 1e-3;
        for (r, row) in rows.iter().enumerate() {
            for j in 0..5 {
                let logit = |delta: f64| {
                    let mut v = row.clone();
                    v[j] += delta;
                    let v: Vec<f32> = v.iter().map(|&a| a as f32).collect();
                    let t = Tensor::from_vec(v, (1, 5), &Device::Cpu).unwrap();
                    f64::from(net.discriminate(&t).unwrap().to_vec1::<f32>().unwrap()[0])
                };
                let numeric = (logit(h) - logit(-h)) / (2.0 * h);
                let exact = f64::from(g[r][j]);
                // Piecewise linear: equal unless a pre-activation changes
                // sign within +-h (then the slopes differ by at most 0.8).
                assert!(
                    (numeric - exact).abs() < 2e-3,
                    "row {r} input {j}: {numeric} vs {exact}"
                );
            }
        }
    }

    /// The R1 penalty sends a gradient to every discriminator weight and
    /// none to the generator.
    #[test]
    fn the_penalty_reaches_the_discriminator_weights() {
        let net = gan(6, vec![8], 3, 1);
        let x = Tensor::rand(0f32, 1.0, (4, 6), &Device::Cpu).unwrap();
        let grads = r1(&net, &x).unwrap().backward().unwrap();
        for var in net.vars_named("discriminator.") {
            let name = format!("{:?}", var.shape());
            let g = grads.get(var.as_tensor());
            if var.dims().len() == 2 {
                let norm = g.expect("gradient").sqr().unwrap().sum_all().unwrap();
                assert!(norm.to_scalar::<f32>().unwrap() > 0.0, "{name}");
            }
        }
        for var in net.vars_named("decoder.") {
            assert!(grads.get(var.as_tensor()).is_none());
        }
    }

    /// On the bundled digits, the discriminator's accuracy leaves chance
    /// (0.5) within the first steps, as it learns to tell the untrained
    /// generator's rows apart, then leaves certainty (1.0) again as the
    /// generator catches up; both losses stay finite and the R1 penalty
    /// does not stop either.
    #[test]
    fn the_players_move_on_the_digits() {
        const STEPS: usize = 1500;
        use crate::data::images::{Split, load_samples};
        use crate::nn::metrics::samples_tensor;
        let digits = load_samples("digits", None, Split::Train, None).unwrap();
        let x = samples_tensor(&digits).unwrap();
        for gamma in [0.0, 1.0] {
            let objective = Objective::Gan {
                gradient_penalty: gamma,
            };
            let config = NetworkConfig::new(objective, 64, vec![64], 8);
            let net = Network::new(config, 0).unwrap();
            let mut trainer = Trainer::new(&net, 2e-4, 0.0, gamma);
            let mut draws = Draws::new(1);
            let mut accuracy = Vec::new();
            for step in 0..STEPS {
                let start = (step * 32) % (digits.n - 32);
                let real = x.narrow(0, start, 32).unwrap();
                let stats = trainer.step(&net, &real, &mut draws).unwrap();
                assert!(stats.is_finite(), "step {step}: {stats:?}");
                accuracy.push(stats.discriminator_accuracy);
            }
            // Means over windows of 10 steps.
            let window: Vec<f64> = accuracy
                .windows(10)
                .map(|w| w.iter().sum::<f64>() / 10.0)
                .collect();
            assert!(window[0] < 0.6, "gamma {gamma}: starts at {}", window[0]);
            let peak = (0..window.len())
                .max_by(|&a, &b| window[a].total_cmp(&window[b]))
                .unwrap();
            assert!(
                window[peak] > 0.95,
                "gamma {gamma}: the discriminator never learns ({})",
                window[peak]
            );
            let later = window[peak..].iter().copied().fold(1.0, f64::min);
            assert!(
                later < 0.9,
                "gamma {gamma}: the generator never catches up ({later})"
            );
        }
    }

    /// Known values: logits 0 give a loss of 2 ln 2 and the real rows
    /// count as wrong (logit 0 is not > 0), the generated as right.
    #[test]
    fn discriminator_loss_at_zero_logits() {
        let net = gan(3, vec![4], 2, 0);
        for var in net.vars_named("discriminator.") {
            let zeros = var.zeros_like().unwrap();
            var.set(&zeros).unwrap();
        }
        let x = Tensor::rand(0f32, 1.0, (5, 3), &Device::Cpu).unwrap();
        let (loss, accuracy) = discriminator_loss(&net, &x, &x).unwrap();
        let loss = f64::from(loss.to_scalar::<f32>().unwrap());
        assert!((loss - 2.0 * std::f64::consts::LN_2).abs() < 1e-6, "{loss}");
        assert_eq!(accuracy, 0.5);
    }
}
