//! Gaussian mixtures fitted by gradient descent with candle: weights by a
//! softmax of logits, variances by softplus + 1e-6, the negative
//! log-likelihood by log-sum-exp, optimised with Adam (full batch).

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tinygen_runtime::gmm::Covariance;

use super::gmm::{EmReport, FitError, GaussianMixture, Init, initial_responsibilities};

/// Floor added to every variance.
pub const VARIANCE_FLOOR: f64 = 1e-6;

/// Options of a gradient-descent fit.
#[derive(Debug, Clone)]
pub struct GdOptions {
    /// Number of components K.
    pub components: usize,
    /// `Diag` or `Spherical`.
    pub covariance: Covariance,
    /// Adam learning rate.
    pub lr: f64,
    /// Number of full-batch steps.
    pub steps: usize,
    /// Seed of the k-means initialisation.
    pub seed: u64,
}

fn candle_err(e: candle_core::Error) -> FitError {
    FitError::Invalid(format!("candle: {e}"))
}

/// `softplus⁻¹(v) = ln(eᵛ - 1)`, stable for large v.
fn inverse_softplus(v: f64) -> f64 {
    v + (-(-v).exp_m1()).ln()
}

/// The trainable parameters and the negative log-likelihood they define.
struct Model {
    logits: Var,
    means: Var,
    raw_var: Var,
}

impl Model {
    fn variances(&self) -> candle_core::Result<Tensor> {
        // softplus(r) = relu(r) + ln(1 + exp(-|r|)), stable for any r.
        let r = self.raw_var.as_tensor();
        let softplus = (r.relu()? + (r.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
        softplus + VARIANCE_FLOOR
    }

    /// Mean negative log-likelihood of `x` (N x D).
    fn nll(&self, x: &Tensor, x2: &Tensor, d: usize) -> candle_core::Result<Tensor> {
        let var = self.variances()?.broadcast_as(self.means.shape())?; // K x D
        let inv = var.recip()?;
        let mu = self.means.as_tensor();
        // sum_d (x_d - mu_kd)^2 / var_kd = x² inv - 2 x (mu inv) + sum mu² inv
        let quad = (x2.matmul(&inv.t()?)? - (x.matmul(&(mu * &inv)?.t()?)? * 2.0)?)?
            .broadcast_add(&(mu.sqr()? * &inv)?.sum(1)?.unsqueeze(0)?)?;
        let log_det = var.log()?.sum(1)?.unsqueeze(0)?; // 1 x K
        let log_2pi = d as f64 * (2.0 * std::f64::consts::PI).ln();
        let log_gauss = ((quad.broadcast_add(&log_det)? + log_2pi)? * -0.5)?;
        let log_w = candle_nn::ops::log_softmax(self.logits.as_tensor(), 0)?.unsqueeze(0)?;
        let weighted = log_gauss.broadcast_add(&log_w)?; // N x K
        let max = weighted.max_keepdim(1)?.detach();
        let lse = (weighted.broadcast_sub(&max)?.exp()?.sum_keepdim(1)?.log()? + max)?;
        lse.mean_all()?.neg()
    }
}

/// Fits a diagonal or spherical mixture by Adam on the negative
/// log-likelihood, starting from the k-means initialisation EM uses.
/// `on_iter(step, mean log-likelihood, change)` is called every 50 steps.
pub fn fit_gd(
    x: &DMatrix<f64>,
    opts: &GdOptions,
    on_iter: &mut dyn FnMut(usize, f64, f64),
) -> Result<(GaussianMixture, EmReport), FitError> {
    let (n, d) = x.shape();
    let k = opts.components;
    if !matches!(opts.covariance, Covariance::Diag | Covariance::Spherical) {
        return Err(FitError::Invalid(
            "--method gd fits diag or spherical covariances; use --method em for full or tied"
                .into(),
        ));
    }
    if k == 0 || d == 0 || opts.steps == 0 || !opts.lr.is_finite() || opts.lr <= 0.0 {
        return Err(FitError::Invalid(
            "components, steps and lr must be positive".into(),
        ));
    }
    if n < k {
        return Err(FitError::TooFewRows {
            rows: n,
            components: k,
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let resp = initial_responsibilities(x, k, Init::KMeans, &mut rng);
    let start = GaussianMixture::from_responsibilities(x, &resp, Covariance::Diag, VARIANCE_FLOOR)?;

    let dev = Device::Cpu;
    let var_cols = if opts.covariance == Covariance::Diag {
        d
    } else {
        1
    };
    let raw_var: Vec<f64> = (0..k)
        .flat_map(|c| {
            let row = &start.covariances[c * d..(c + 1) * d];
            if var_cols == d {
                row.to_vec()
            } else {
                vec![row.iter().sum::<f64>() / d as f64]
            }
        })
        .map(|v| inverse_softplus((v - VARIANCE_FLOOR).max(1e-12)))
        .collect();
    let model = (|| -> candle_core::Result<Model> {
        Ok(Model {
            logits: Var::from_vec(start.weights.iter().map(|w| w.ln()).collect(), k, &dev)?,
            means: Var::from_vec(start.means.clone(), (k, d), &dev)?,
            raw_var: Var::from_vec(raw_var, (k, var_cols), &dev)?,
        })
    })()
    .map_err(candle_err)?;
    let row_major: Vec<f64> = x.transpose().as_slice().to_vec();
    let xt = Tensor::from_vec(row_major, (n, d), &dev).map_err(candle_err)?;
    let x2 = xt.sqr().map_err(candle_err)?;
    let params = ParamsAdamW {
        lr: opts.lr,
        weight_decay: 0.0,
        ..ParamsAdamW::default()
    };
    let mut adam = AdamW::new(
        vec![
            model.logits.clone(),
            model.means.clone(),
            model.raw_var.clone(),
        ],
        params,
    )
    .map_err(candle_err)?;

    let mut lower_bounds = Vec::with_capacity(opts.steps);
    let mut previous = f64::NEG_INFINITY;
    for step in 1..=opts.steps {
        let loss = model.nll(&xt, &x2, d).map_err(candle_err)?;
        let ll = -loss.to_scalar::<f64>().map_err(candle_err)?;
        if !ll.is_finite() {
            return Err(FitError::Diverged(ll, step));
        }
        adam.backward_step(&loss).map_err(candle_err)?;
        lower_bounds.push(ll);
        if step % 50 == 0 || step == 1 || step == opts.steps {
            on_iter(step, ll, ll - previous);
        }
        previous = ll;
    }

    let to_vec = |t: &Tensor| -> Result<Vec<f64>, FitError> {
        t.to_dtype(DType::F64)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f64>())
            .map_err(candle_err)
    };
    let weights =
        to_vec(&candle_nn::ops::softmax(model.logits.as_tensor(), 0).map_err(candle_err)?)?;
    let means = to_vec(model.means.as_tensor())?;
    let covariances = to_vec(&model.variances().map_err(candle_err)?)?;
    let precisions_cholesky = covariances.iter().map(|v| 1.0 / v.sqrt()).collect();
    let model = GaussianMixture {
        covariance: opts.covariance,
        weights,
        means,
        covariances,
        precisions_cholesky,
    };
    let lower_bound = model.score_samples(x).iter().sum::<f64>() / n as f64;
    Ok((
        model,
        EmReport {
            converged: false,
            n_iter: opts.steps,
            lower_bound,
            lower_bounds,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::gmm::{EmOptions, em_from_responsibilities};

    fn two_blobs() -> DMatrix<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        use rand::Rng;
        DMatrix::from_fn(400, 2, |i, j| {
            let center = if i < 200 { -3.0 } else { 3.0 };
            let u: f64 = rng.random::<f64>() + rng.random::<f64>() + rng.random::<f64>() - 1.5;
            center * (j as f64 + 1.0) + u
        })
    }

    #[test]
    fn gradient_descent_reaches_the_em_optimum() {
        let x = two_blobs();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let resp = initial_responsibilities(&x, 2, Init::KMeans, &mut rng);
        let em_opts = EmOptions {
            components: 2,
            covariance: Covariance::Diag,
            tol: 1e-10,
            max_iter: 1000,
            ..EmOptions::default()
        };
        let (em, _) = em_from_responsibilities(&x, &resp, &em_opts, &mut |_, _, _| {}).unwrap();
        let gd_opts = GdOptions {
            components: 2,
            covariance: Covariance::Diag,
            lr: 0.05,
            steps: 600,
            seed: 1,
        };
        let (gd, report) = fit_gd(&x, &gd_opts, &mut |_, _, _| {}).unwrap();
        let em_ll = em.score_samples(&x).iter().sum::<f64>() / 400.0;
        assert!(
            (report.lower_bound - em_ll).abs() < 1e-3,
            "GD {} vs EM {em_ll}",
            report.lower_bound
        );
        assert!((gd.weights.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn full_covariance_is_rejected() {
        let opts = GdOptions {
            components: 1,
            covariance: Covariance::Full,
            lr: 0.1,
            steps: 1,
            seed: 0,
        };
        assert!(matches!(
            fit_gd(&two_blobs(), &opts, &mut |_, _, _| {}),
            Err(FitError::Invalid(_))
        ));
    }
}
