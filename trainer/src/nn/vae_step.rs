//! The VAE's training step written out by hand: forward pass, loss,
//! back-propagation and Adam over plain f32 buffers, the matrix products
//! through `matrixmultiply` (its AVX-512 kernel where the CPU has one; two
//! threads take half of each product's rows). It computes what
//! [`Network::objective`] and [`super::adam::Adam`] compute for
//! `Objective::Vae` (the same loss, the same gradient of the batch's sum,
//! the same update and random draws), in another order of summation, so
//! the trajectories agree to rounding (the tests compare gradients with
//! candle's autograd). candle spent most of a step in per-operation
//! temporaries and an AVX2 matrix kernel.
//!
//! Layers are `y = x W^T + b` with `W` out x in row-major, as candle's
//! `Linear` stores them; the parameters are copied in at the start and
//! written back to the network's variables by [`VaeStep::write_back`].

use anyhow::{Context, ensure};
use candle_core::{Tensor, Var};
use candle_nn::{Linear, ParamsAdamW};
use multiversion::multiversion;
use rayon::prelude::*;
use tinygen_runtime::Activation;

use super::adam::{AdamConstants, adam_update};
use super::config::{Objective, Reconstruction};
use super::network::Network;
use crate::fast_math::{Block, LANES, exp8, ln8};

/// One dense layer's parameters, gradients and Adam moments.
struct Dense {
    inputs: usize,
    outputs: usize,
    /// `outputs x inputs` weights, then `outputs` biases.
    theta: Vec<f32>,
    grad: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    /// The network's variables (weight, bias) the values came from.
    vars: [Var; 2],
}

impl Dense {
    fn new(layer: &Linear, vars: &[Var]) -> anyhow::Result<Self> {
        let find = |t: &Tensor| {
            vars.iter()
                .find(|v| v.as_tensor().id() == t.id())
                .cloned()
                .context("a layer's parameter is not one of the network's variables")
        };
        let bias = layer.bias().context("a layer without a bias")?;
        let (outputs, inputs) = layer.weight().dims2()?;
        let mut theta = layer.weight().flatten_all()?.to_vec1::<f32>()?;
        theta.extend(bias.to_vec1::<f32>()?);
        let n = theta.len();
        Ok(Self {
            inputs,
            outputs,
            theta,
            grad: vec![0.0; n],
            m: vec![0.0; n],
            v: vec![0.0; n],
            vars: [find(layer.weight())?, find(bias)?],
        })
    }

    /// `y = x W^T + b` for the rows of `x`.
    fn forward(&self, x: &[f32], y: &mut [f32]) {
        let rows = x.len() / self.inputs;
        let (w, b) = self.theta.split_at(self.inputs * self.outputs);
        for row in y.chunks_exact_mut(self.outputs) {
            row.copy_from_slice(b);
        }
        // W^T: element (i, o) at o * inputs + i.
        gemm(
            [rows, self.inputs, self.outputs],
            (x, self.inputs, 1),
            (w, 1, self.inputs),
            y,
            true,
        );
    }

    /// From `dy` (the loss's gradient at this layer's outputs, for the
    /// rows of `x`): the parameters' gradients, and `dx = dy W` when asked.
    fn backward(&mut self, x: &[f32], dy: &[f32], dx: Option<&mut [f32]>, add_to_dx: bool) {
        let rows = x.len() / self.inputs;
        let (n, m) = (self.inputs, self.outputs);
        let (gw, gb) = self.grad.split_at_mut(n * m);
        // dW = dy^T x: dy^T's element (o, r) at r * m + o.
        gemm([m, rows, n], (dy, 1, m), (x, n, 1), gw, false);
        gb.fill(0.0);
        for row in dy.chunks_exact(m) {
            gb.iter_mut().zip(row).for_each(|(g, d)| *g += d);
        }
        if let Some(dx) = dx {
            let w = &self.theta[..n * m];
            gemm([rows, m, n], (dy, m, 1), (w, n, 1), dx, add_to_dx);
        }
    }

    /// The AdamW update of [`super::adam`], one pass.
    fn adam(&mut self, k: &AdamConstants) {
        adam_update(&mut self.theta, &mut self.m, &mut self.v, &self.grad, k);
    }
}

/// Rows of `c` below which a product runs on one thread.
const SPLIT_ROWS: usize = 32;

/// `c = a b` (or `c += a b` when `add`): `a` m x k and `b` k x n given as
/// (values, row stride, column stride), `c` m x n row-major; the rows of
/// `c` in two halves on two threads (the products of this model are too
/// small to share otherwise).
fn gemm(
    [m, k, n]: [usize; 3],
    (a, rsa, csa): (&[f32], usize, usize),
    b: (&[f32], usize, usize),
    c: &mut [f32],
    add: bool,
) {
    if m < SPLIT_ROWS || rayon::current_num_threads() < 2 {
        return gemm_serial([m, k, n], (a, rsa, csa), b, c, add);
    }
    let half = m / 2;
    let (top, bottom) = c.split_at_mut(half * n);
    rayon::join(
        || gemm_serial([half, k, n], (a, rsa, csa), b, top, add),
        || {
            gemm_serial(
                [m - half, k, n],
                (&a[half * rsa..], rsa, csa),
                b,
                bottom,
                add,
            )
        },
    );
}

/// [`gemm`] on the calling thread.
fn gemm_serial(
    [m, k, n]: [usize; 3],
    (a, rsa, csa): (&[f32], usize, usize),
    (b, rsb, csb): (&[f32], usize, usize),
    c: &mut [f32],
    add: bool,
) {
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * rs + (cols - 1) * cs + 1
        }
    };
    assert!(
        a.len() >= last(m, k, rsa, csa) && b.len() >= last(k, n, rsb, csb) && c.len() >= m * n,
        "matrix product out of bounds"
    );
    // SAFETY: every element the product reads or writes is in bounds (the
    // assertion above), and `c` does not overlap `a` or `b` (it is borrowed
    // mutably).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            if add { 1.0 } else { 0.0 },
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// One row's reconstruction loss (the negative log-likelihood of the data
/// `t` under the logits or outputs `l`), and its gradient at `l` in `g`:
/// BCE `max(l, 0) - l t + ln(1 + e^-|l|)` (candle's stable form), whose
/// derivative is `sigmoid(l) - t`, or the squared error. Eight values at a
/// time through the vectorised `expf` and `logf`.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn row_loss(reconstruction: Reconstruction, l: &[f32], t: &[f32], g: &mut [f32]) -> f32 {
    if reconstruction == Reconstruction::Mse {
        let mut sum = 0.0;
        for ((&l, &t), g) in l.iter().zip(t).zip(g.iter_mut()) {
            sum += (l - t) * (l - t);
            *g = 2.0 * (l - t);
        }
        return sum;
    }
    let mut sums = [0.0; LANES];
    let (lw, lr) = l.as_chunks::<LANES>();
    let (tw, tr) = t.as_chunks::<LANES>();
    let (gw, gr) = g.as_chunks_mut::<LANES>();
    for ((l, t), g) in lw.iter().zip(tw).zip(gw.iter_mut()) {
        let loss = bce(l, t, g);
        sums.iter_mut().zip(&loss).for_each(|(s, v)| *s += v);
    }
    // The last values, padded with zeros.
    let (mut l_tail, mut t_tail, mut g_tail) = ([0.0; LANES], [0.0; LANES], [0.0; LANES]);
    l_tail[..lr.len()].copy_from_slice(lr);
    t_tail[..tr.len()].copy_from_slice(tr);
    let loss = bce(&l_tail, &t_tail, &mut g_tail);
    gr.copy_from_slice(&g_tail[..gr.len()]);
    sums.iter().sum::<f32>() + loss[..lr.len()].iter().sum::<f32>()
}

/// [`row_loss`]'s BCE of eight values (inlined into its callers, so that
/// it takes their instruction set).
#[inline(always)]
fn bce(l: &Block, t: &Block, g: &mut Block) -> Block {
    let e = exp8(&l.map(|v| -v.abs()));
    let softplus = ln8(&e.map(|e| e + 1.0));
    let mut loss = [0.0; LANES];
    for i in 0..LANES {
        let numerator = if l[i] >= 0.0 { 1.0 } else { e[i] };
        g[i] = numerator / (1.0 + e[i]) - t[i];
        loss[i] = (l[i].max(0.0) - l[i] * t[i]) + softplus[i];
    }
    loss
}

/// The derivative of the hidden activation (the runtime's
/// `Activation::apply`, which the forward pass uses) from the
/// pre-activation `a` and the output `h`.
fn derivative(activation: Activation, a: f32, h: f32) -> f32 {
    match activation {
        Activation::Identity => 1.0,
        Activation::Relu => f32::from(u8::from(a > 0.0)),
        Activation::LeakyRelu => {
            if a > 0.0 {
                1.0
            } else {
                Activation::LEAKY_RELU_SLOPE
            }
        }
        Activation::Tanh => 1.0 - h * h,
        Activation::Sigmoid => h * (1.0 - h),
    }
}

/// A VAE's training state: its layers and Adam's.
pub struct VaeStep {
    /// Encoder hidden layers, the mean head, the log-variance head, then
    /// the decoder's layers.
    trunk: Vec<Dense>,
    mean: Dense,
    logvar: Dense,
    decoder: Vec<Dense>,
    activation: Activation,
    reconstruction: Reconstruction,
    beta: f32,
    params: ParamsAdamW,
    step: i32,
}

/// One row block's activations (pre and post) through the network.
#[derive(Default)]
struct Pass {
    /// Per layer of trunk then decoder: (pre-activation, output).
    trunk: Vec<(Vec<f32>, Vec<f32>)>,
    decoder: Vec<(Vec<f32>, Vec<f32>)>,
    mu: Vec<f32>,
    lv: Vec<f32>,
    z: Vec<f32>,
}

impl VaeStep {
    /// The step for `net` if it is a VAE (`None` for the other kinds).
    pub fn new(net: &Network, params: ParamsAdamW) -> anyhow::Result<Option<Self>> {
        let Objective::Vae { beta } = net.config.objective else {
            return Ok(None);
        };
        let vars = net.trainable_vars();
        let encoder = net.encoder_layers();
        let (mean, trunk) = encoder.split_last().context("a VAE without an encoder")?;
        let logvar = net
            .vae_logvar_layer()
            .context("a VAE without a log-variance")?;
        let trunk = trunk
            .iter()
            .map(|l| Dense::new(l, &vars))
            .collect::<Result<_, _>>()?;
        let decoder = net
            .decoder_layers()
            .iter()
            .map(|l| Dense::new(l, &vars))
            .collect::<Result<_, _>>()?;
        let step = Self {
            trunk,
            mean: Dense::new(mean, &vars)?,
            logvar: Dense::new(logvar, &vars)?,
            decoder,
            activation: net.config.activation,
            reconstruction: net.config.reconstruction,
            beta: beta as f32,
            params,
            step: 0,
        };
        ensure!(
            step.layers().map(|l| l.theta.len()).sum::<usize>() == net.parameter_count(),
            "the VAE has parameters this step does not train"
        );
        Ok(Some(step))
    }

    fn layers(&self) -> impl Iterator<Item = &Dense> {
        self.trunk
            .iter()
            .chain([&self.mean, &self.logvar])
            .chain(&self.decoder)
    }

    fn layers_mut(&mut self) -> impl Iterator<Item = &mut Dense> {
        self.trunk
            .iter_mut()
            .chain([&mut self.mean, &mut self.logvar])
            .chain(&mut self.decoder)
    }

    fn latent(&self) -> usize {
        self.mean.outputs
    }

    /// The forward pass of rows `x` with the noise `eps`.
    fn forward(&self, x: &[f32], eps: &[f32]) -> Pass {
        let rows = x.len() / self.trunk.first().map_or(self.mean.inputs, |l| l.inputs);
        let mut pass = Pass::default();
        let mut h = x;
        for layer in &self.trunk {
            let mut a = vec![0.0; rows * layer.outputs];
            layer.forward(h, &mut a);
            let mut out = a.clone();
            self.activation.apply_all(&mut out);
            pass.trunk.push((a, out));
            h = &pass.trunk.last().expect("pushed").1;
        }
        let l = self.latent();
        let (mut mu, mut lv) = (vec![0.0; rows * l], vec![0.0; rows * l]);
        self.mean.forward(h, &mut mu);
        self.logvar.forward(h, &mut lv);
        // Reparameterisation: z = mu + exp(logvar / 2) eps.
        pass.z = mu
            .iter()
            .zip(&lv)
            .zip(eps)
            .map(|((m, v), e)| m + (v * 0.5).exp() * e)
            .collect();
        (pass.mu, pass.lv) = (mu, lv);
        let last = self.decoder.len() - 1;
        for (i, layer) in self.decoder.iter().enumerate() {
            let input = match i {
                0 => &pass.z,
                _ => &pass.decoder[i - 1].1,
            };
            let mut a = vec![0.0; rows * layer.outputs];
            layer.forward(input, &mut a);
            let out = if i < last {
                let mut out = a.clone();
                self.activation.apply_all(&mut out);
                out
            } else {
                Vec::new()
            };
            pass.decoder.push((a, out));
        }
        pass
    }

    /// One step on the rows `x` (row-major) with the reparameterisation's
    /// noise `eps` (rows x latent, as `Draws::normal` gives it): returns
    /// the batch's mean loss (reconstruction plus beta times the KL
    /// divergence, per row), and updates the parameters when it is finite.
    pub fn step(&mut self, x: &[f32], eps: &[f32]) -> f64 {
        let loss = self.gradients(x, eps);
        if loss.is_finite() {
            self.step += 1;
            let k = AdamConstants::new(&self.params, self.step);
            self.layers_mut()
                .collect::<Vec<_>>()
                .into_par_iter()
                .for_each(|l| l.adam(&k));
        }
        loss
    }

    /// The mean loss of the rows, and the gradient of their summed loss
    /// in every layer's `grad`.
    fn gradients(&mut self, x: &[f32], eps: &[f32]) -> f64 {
        let pass = self.forward(x, eps);
        let rows = pass.z.len() / self.latent();
        let d = self.decoder.last().expect("a decoder").outputs;
        let raw = &pass.decoder.last().expect("a decoder").0;
        // The reconstruction's loss and its gradient at the logits, rows
        // in parallel.
        let mut d_raw = vec![0.0; rows * d];
        let reconstruction = self.reconstruction;
        let mut row_losses = vec![0.0f32; rows];
        raw.par_chunks(d)
            .zip(x.par_chunks(d))
            .zip(d_raw.par_chunks_mut(d))
            .zip(&mut row_losses)
            .with_min_len(16)
            .for_each(|(((l, t), g), loss)| *loss = row_loss(reconstruction, l, t, g));
        // Summed in order, so that a seed gives the same reported loss.
        let total: f64 = row_losses.iter().map(|&v| f64::from(v)).sum();
        // KL(N(mu, e^lv) || N(0, I)) = -1/2 Σ (1 + lv - mu² - e^lv).
        let mut kl = 0.0f64;
        for (mu, lv) in pass
            .mu
            .chunks_exact(self.latent())
            .zip(pass.lv.chunks_exact(self.latent()))
        {
            let s: f32 = mu
                .iter()
                .zip(lv)
                .map(|(m, v)| 1.0 + v - m * m - v.exp())
                .sum();
            kl += f64::from(s * -0.5);
        }
        let loss = (total + f64::from(self.beta) * kl) / rows as f64;
        if !loss.is_finite() {
            return loss;
        }
        // Back through the decoder.
        let mut dy = d_raw;
        for i in (0..self.decoder.len()).rev() {
            let input = if i == 0 {
                &pass.z
            } else {
                &pass.decoder[i - 1].1
            };
            let mut dx = vec![0.0; input.len()];
            self.decoder[i].backward(input, &dy, Some(&mut dx), false);
            if i > 0 {
                let (a, h) = &pass.decoder[i - 1];
                for ((g, &a), &h) in dx.iter_mut().zip(a).zip(h) {
                    *g *= derivative(self.activation, a, h);
                }
            }
            dy = dx;
        }
        // dz into the heads: d mu = dz + beta mu; d lv = dz eps e^(lv/2) / 2
        // + beta (e^lv - 1) / 2.
        let beta = self.beta;
        let d_mu: Vec<f32> = dy.iter().zip(&pass.mu).map(|(g, m)| g + beta * m).collect();
        let d_lv: Vec<f32> = dy
            .iter()
            .zip(&pass.lv)
            .zip(eps)
            .map(|((g, v), e)| g * e * (v * 0.5).exp() * 0.5 + beta * (v.exp() - 1.0) * 0.5)
            .collect();
        let h = pass.trunk.last().map_or(x, |t| &t.1);
        let mut dh = vec![0.0; h.len()];
        let has_trunk = !self.trunk.is_empty();
        self.mean
            .backward(h, &d_mu, has_trunk.then_some(&mut dh[..]), false);
        self.logvar
            .backward(h, &d_lv, has_trunk.then_some(&mut dh[..]), true);
        // Back through the encoder's hidden layers (no gradient for the data).
        for i in (0..self.trunk.len()).rev() {
            let (a, h) = &pass.trunk[i];
            for ((g, &a), &h) in dh.iter_mut().zip(a).zip(h) {
                *g *= derivative(self.activation, a, h);
            }
            let input = if i == 0 { x } else { &pass.trunk[i - 1].1 };
            if i == 0 {
                self.trunk[i].backward(input, &dh, None, false);
            } else {
                let mut dx = vec![0.0; input.len()];
                self.trunk[i].backward(input, &dh, Some(&mut dx), false);
                dh = dx;
            }
        }
        loss
    }

    /// Writes the trained parameters into the network's variables.
    pub fn write_back(&self) -> anyhow::Result<()> {
        for layer in self.layers() {
            let (w, b) = layer.theta.split_at(layer.inputs * layer.outputs);
            for (var, values) in layer.vars.iter().zip([w, b]) {
                let shape = var.shape().clone();
                var.set(&Tensor::from_slice(values, shape, var.device())?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;
    use crate::nn::config::NetworkConfig;
    use crate::nn::network::{Batch, Draws};

    /// A small VAE and a batch of data in [0, 1].
    fn setup(activation: Activation, reconstruction: Reconstruction) -> (Network, Vec<f32>) {
        let config = NetworkConfig {
            activation,
            reconstruction,
            ..NetworkConfig::new(Objective::Vae { beta: 0.7 }, 12, vec![9, 7], 3)
        };
        let net = Network::new(config, 3).unwrap();
        let x = (0..5 * 12).map(|i| ((i * 37 % 17) as f32) / 16.0).collect();
        (net, x)
    }

    /// The gradient of the batch's summed loss equals candle's autograd of
    /// `Network::objective` (times the rows), for every activation and
    /// both reconstructions; the loss equals it too.
    #[test]
    fn gradients_are_candles() {
        for activation in [
            Activation::Relu,
            Activation::LeakyRelu,
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Identity,
        ] {
            for reconstruction in [Reconstruction::Bce, Reconstruction::Mse] {
                let (net, x) = setup(activation, reconstruction);
                let rows = x.len() / 12;
                let mut draws = Draws::new(11);
                let batch = Batch {
                    x: Tensor::from_slice(&x, (rows, 12), &Device::Cpu).unwrap(),
                    labels: None,
                    labelled: None,
                };
                let loss = net.objective(&batch, &mut draws).unwrap();
                let grads = (&loss * rows as f64).unwrap().backward().unwrap();
                let eps = Draws::new(11).normal_values(rows, 3);
                let mut ours = VaeStep::new(&net, ParamsAdamW::default()).unwrap().unwrap();
                let value = ours.gradients(&x, &eps);
                let want = f64::from(loss.to_scalar::<f32>().unwrap());
                let what = format!("{activation:?} {reconstruction:?}");
                assert!(
                    (value - want).abs() <= 1e-5 * want.abs(),
                    "{what}: {value} vs {want}"
                );
                for layer in ours.layers() {
                    let (gw, gb) = layer.grad.split_at(layer.inputs * layer.outputs);
                    for (var, got) in layer.vars.iter().zip([gw, gb]) {
                        let want = grads
                            .get(var.as_tensor())
                            .unwrap()
                            .flatten_all()
                            .unwrap()
                            .to_vec1::<f32>()
                            .unwrap();
                        let scale = want.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
                        for (g, w) in got.iter().zip(&want) {
                            assert!((g - w).abs() <= 1e-4 * scale, "{what}: {g} vs {w}");
                        }
                    }
                }
            }
        }
    }

    /// Steps update the network's variables as candle's path does: the
    /// same parameters after three steps, to rounding.
    #[test]
    fn steps_follow_the_candle_path() {
        let (net, x) = setup(Activation::Relu, Reconstruction::Bce);
        let (twin, _) = setup(Activation::Relu, Reconstruction::Bce);
        let rows = x.len() / 12;
        let params = ParamsAdamW {
            lr: 1e-3,
            ..ParamsAdamW::default()
        };
        let mut ours = VaeStep::new(&net, params.clone()).unwrap().unwrap();
        let mut adam = crate::nn::adam::Adam::new(twin.trainable_vars(), params);
        let (mut a, mut b) = (Draws::new(5), Draws::new(5));
        let batch = Batch {
            x: Tensor::from_slice(&x, (rows, 12), &Device::Cpu).unwrap(),
            labels: None,
            labelled: None,
        };
        let before: Vec<Vec<f32>> = net
            .trainable_vars()
            .iter()
            .map(|v| v.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect();
        for _ in 0..3 {
            ours.step(&x, &a.normal_values(rows, 3));
            let loss = twin.objective(&batch, &mut b).unwrap();
            adam.backward_step(&(loss * rows as f64).unwrap()).unwrap();
        }
        ours.write_back().unwrap();
        for ((u, v), start) in net
            .trainable_vars()
            .iter()
            .zip(twin.trainable_vars())
            .zip(&before)
        {
            let u = u.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let v = v.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(
                u.iter().zip(start).any(|(p, q)| p != q),
                "a parameter did not move"
            );
            for (p, q) in u.iter().zip(&v) {
                assert!((p - q).abs() <= 1e-5, "{p} vs {q}");
            }
        }
    }

    #[test]
    fn other_kinds_have_no_step() {
        let net = Network::new(NetworkConfig::new(Objective::Pca, 4, vec![], 2), 0).unwrap();
        assert!(
            VaeStep::new(&net, ParamsAdamW::default())
                .unwrap()
                .is_none()
        );
    }
}
