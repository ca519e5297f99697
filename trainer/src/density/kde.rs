//! Gaussian kernel density estimation with the semantics of
//! `scipy.stats.gaussian_kde`: the kernel covariance is `factor²` times the
//! (weighted, unbiased) data covariance, with Scott's or Silverman's factor
//! computed from the effective sample size `n_eff = 1 / Σ w_i²`.
//!
//! A KDE is a Gaussian mixture with one component per point and a shared
//! ("tied") covariance, so it is stored and scored as one: the runtime's
//! mixture scorer projects the input once and then costs D operations per
//! point.

use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use tinygen_runtime::gmm::Covariance;

use super::gmm::GaussianMixture;
use super::kmeans;

/// How the bandwidth factor is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bandwidth {
    /// Scott's rule: `n_eff^(-1/(d+4))` (scipy's default).
    Scott,
    /// Silverman's rule: `(n_eff (d+2) / 4)^(-1/(d+4))`.
    Silverman,
    /// A fixed factor (scipy's scalar `bw_method`).
    Factor(f64),
}

impl std::str::FromStr for Bandwidth {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "scott" => Ok(Bandwidth::Scott),
            "silverman" => Ok(Bandwidth::Silverman),
            other => other.parse::<f64>().map(Bandwidth::Factor).map_err(|_| {
                format!("bandwidth must be scott, silverman or a positive number, not {other:?}")
            }),
        }
    }
}

/// How to keep at most `max_points` kernel centres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    /// A random subset (sampled without replacement), weights renormalised.
    Random,
    /// k-means centroids, each weighted by the total weight of its cluster.
    KMeans,
}

/// Options of a KDE fit.
#[derive(Debug, Clone)]
pub struct KdeOptions {
    /// Bandwidth rule or factor.
    pub bandwidth: Bandwidth,
    /// Keep only the diagonal of the kernel covariance.
    pub diagonal: bool,
    /// Use the kernel covariance `h² I` (scikit-learn `KernelDensity`'s
    /// bandwidth `h`, and PyOD's KDE detector) instead of scipy's rule;
    /// `bandwidth` and `diagonal` are then ignored.
    pub isotropic: Option<f64>,
    /// Keep at most this many kernel centres (the bandwidth still comes from all points).
    pub max_points: Option<usize>,
    /// How to reduce the points.
    pub reduce: Reduce,
    /// Seed of the reduction.
    pub seed: u64,
}

impl Default for KdeOptions {
    fn default() -> Self {
        Self {
            bandwidth: Bandwidth::Scott,
            diagonal: false,
            isotropic: None,
            max_points: None,
            reduce: Reduce::KMeans,
            seed: 0,
        }
    }
}

/// Why a KDE could not be fitted.
#[derive(Debug, thiserror::Error)]
pub enum KdeError {
    /// Fewer than two points.
    #[error("a KDE needs at least 2 points to estimate a covariance, got {0}")]
    TooFewPoints(usize),
    /// A feature has zero variance, so the kernel would be degenerate.
    #[error(
        "feature {0} has zero variance: the kernel covariance is singular; drop the constant \
         feature (--drop-columns) or add noise"
    )]
    ZeroVariance(usize),
    /// The covariance is singular although no single feature is constant.
    #[error(
        "the data covariance is singular (linearly dependent features); drop redundant features or use --diagonal"
    )]
    Singular,
    /// Invalid bandwidth.
    #[error("the bandwidth factor must be a positive finite number, got {0}")]
    Bandwidth(f64),
    /// Invalid weights.
    #[error("weights must be non-negative and finite, with a positive sum ({0})")]
    Weights(String),
    /// Invalid max-points.
    #[error("--max-points must be at least 1")]
    MaxPoints,
}

/// A fitted kernel density estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct Kde {
    /// The bandwidth factor.
    pub factor: f64,
    /// The effective number of points, `1 / Σ w²` over all points.
    pub n_eff: f64,
    /// The kernel covariance (D x D; diagonal with `diagonal`).
    pub covariance: DMatrix<f64>,
    /// The density as a tied mixture (diag with `diagonal`), one component per kept point.
    pub mixture: GaussianMixture,
}

/// Fits a KDE to the rows of `x`, with optional per-point `weights`.
pub fn fit_kde(
    x: &DMatrix<f64>,
    weights: Option<&[f64]>,
    opts: &KdeOptions,
) -> Result<Kde, KdeError> {
    let (n, d) = x.shape();
    if n < 2 {
        return Err(KdeError::TooFewPoints(n));
    }
    let w = normalized_weights(n, weights)?;
    let n_eff = 1.0 / w.iter().map(|v| v * v).sum::<f64>();
    if let Some(h) = opts.isotropic {
        if !(h.is_finite() && h > 0.0) {
            return Err(KdeError::Bandwidth(h));
        }
        let covariance = DMatrix::from_diagonal_element(d, d, h * h);
        return finish(x, &w, opts, h, n_eff, covariance, true);
    }
    let factor = match opts.bandwidth {
        Bandwidth::Scott => n_eff.powf(-1.0 / (d as f64 + 4.0)),
        Bandwidth::Silverman => (n_eff * (d as f64 + 2.0) / 4.0).powf(-1.0 / (d as f64 + 4.0)),
        Bandwidth::Factor(f) => f,
    };
    if !(factor.is_finite() && factor > 0.0) {
        return Err(KdeError::Bandwidth(factor));
    }

    // Weighted covariance with numpy's aweights correction 1 / (1 - Σ w²).
    let mean = x.tr_mul(&w).transpose();
    let mut centered = x.clone();
    for (j, mut col) in centered.column_iter_mut().enumerate() {
        col.add_scalar_mut(-mean[j]);
    }
    let mut weighted = centered.clone();
    for mut col in weighted.column_iter_mut() {
        col.component_mul_assign(&w);
    }
    let data_cov = weighted.tr_mul(&centered) / (1.0 - w.iter().map(|v| v * v).sum::<f64>());
    if let Some(j) = (0..d).find(|&j| data_cov[(j, j)].is_nan() || data_cov[(j, j)] <= 0.0) {
        return Err(KdeError::ZeroVariance(j));
    }
    let mut covariance = data_cov * (factor * factor);
    if opts.diagonal {
        covariance = DMatrix::from_diagonal(&covariance.diagonal());
    }
    finish(x, &w, opts, factor, n_eff, covariance, opts.diagonal)
}

/// Builds the mixture from the kernel covariance and the (reduced) points.
fn finish(
    x: &DMatrix<f64>,
    w: &DVector<f64>,
    opts: &KdeOptions,
    factor: f64,
    n_eff: f64,
    covariance: DMatrix<f64>,
    diagonal: bool,
) -> Result<Kde, KdeError> {
    let d = x.ncols();
    let (points, point_weights) = reduce(x, w, opts)?;
    let k = points.nrows();
    let (covariances, precisions_cholesky, kind) = if diagonal {
        let var: Vec<f64> = covariance.diagonal().iter().copied().collect();
        let cov: Vec<f64> = (0..k).flat_map(|_| var.iter().copied()).collect();
        let prec = cov.iter().map(|v| 1.0 / v.sqrt()).collect();
        (cov, prec, Covariance::Diag)
    } else {
        let chol = covariance.clone().cholesky().ok_or(KdeError::Singular)?;
        let lower_inv = chol
            .l()
            .solve_lower_triangular(&DMatrix::identity(d, d))
            .ok_or(KdeError::Singular)?;
        // Row-major upper factor (L⁻¹)ᵀ = column-major L⁻¹, as the mixture keeps it.
        let cov = covariance.transpose().as_slice().to_vec();
        (cov, lower_inv.as_slice().to_vec(), Covariance::Tied)
    };
    let mixture = GaussianMixture {
        covariance: kind,
        weights: point_weights,
        means: points.transpose().as_slice().to_vec(),
        covariances,
        precisions_cholesky,
    };
    Ok(Kde {
        factor,
        n_eff,
        covariance,
        mixture,
    })
}

/// Weights summing to one (uniform when none are given).
fn normalized_weights(n: usize, weights: Option<&[f64]>) -> Result<DVector<f64>, KdeError> {
    let Some(w) = weights else {
        return Ok(DVector::from_element(n, 1.0 / n as f64));
    };
    if w.len() != n {
        return Err(KdeError::Weights(format!(
            "{} weights for {n} points",
            w.len()
        )));
    }
    if w.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
        return Err(KdeError::Weights(
            "a weight is negative or not finite".into(),
        ));
    }
    let total: f64 = w.iter().sum();
    if !(total > 0.0 && total.is_finite()) {
        return Err(KdeError::Weights(format!("they sum to {total}")));
    }
    Ok(DVector::from_iterator(n, w.iter().map(|v| v / total)))
}

/// The kernel centres and their weights, reduced to `max_points` if asked.
fn reduce(
    x: &DMatrix<f64>,
    w: &DVector<f64>,
    opts: &KdeOptions,
) -> Result<(DMatrix<f64>, Vec<f64>), KdeError> {
    let n = x.nrows();
    let m = match opts.max_points {
        None => return Ok((x.clone(), w.iter().copied().collect())),
        Some(0) => return Err(KdeError::MaxPoints),
        Some(m) if m >= n => return Ok((x.clone(), w.iter().copied().collect())),
        Some(m) => m,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    match opts.reduce {
        Reduce::Random => {
            let mut idx = sample(&mut rng, n, m).into_vec();
            idx.sort_unstable();
            let points = x.select_rows(idx.iter());
            let total: f64 = idx.iter().map(|&i| w[i]).sum();
            Ok((points, idx.iter().map(|&i| w[i] / total).collect()))
        }
        Reduce::KMeans => {
            let labels = kmeans::kmeans_labels(x, m, &mut rng);
            let mut sums = DMatrix::<f64>::zeros(m, x.ncols());
            let mut mass = vec![0.0; m];
            for (i, &c) in labels.iter().enumerate() {
                mass[c] += w[i];
                for j in 0..x.ncols() {
                    sums[(c, j)] += w[i] * x[(i, j)];
                }
            }
            // Empty clusters carry no weight and are dropped.
            let kept: Vec<usize> = (0..m).filter(|&c| mass[c] > 0.0).collect();
            let points = DMatrix::from_fn(kept.len(), x.ncols(), |r, j| {
                sums[(kept[r], j)] / mass[kept[r]]
            });
            Ok((points, kept.iter().map(|&c| mass[c]).collect()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> DMatrix<f64> {
        DMatrix::from_fn(60, 2, |i, j| {
            ((i * 7 + j * 13) % 17) as f64 * 0.3 + (i as f64 * 0.1).sin() * (j as f64 + 1.0)
        })
    }

    #[test]
    fn one_point_in_one_dimension_is_a_gaussian() {
        // Two points with a fixed factor: each kernel is N(p, factor² var).
        let x = DMatrix::from_row_slice(2, 1, &[0.0, 2.0]);
        let kde = fit_kde(
            &x,
            None,
            &KdeOptions {
                bandwidth: Bandwidth::Factor(0.5),
                ..Default::default()
            },
        )
        .unwrap();
        let var = 2.0 * 0.25; // unbiased variance of {0, 2} is 2
        assert!((kde.covariance[(0, 0)] - var).abs() < 1e-12);
        let at = DMatrix::from_row_slice(1, 1, &[0.5]);
        let n = |m: f64| {
            (-(0.5f64 - m).powi(2) / (2.0 * var)).exp() / (2.0 * std::f64::consts::PI * var).sqrt()
        };
        let expected = (0.5 * n(0.0) + 0.5 * n(2.0)).ln();
        assert!((kde.mixture.score_samples(&at)[0] - expected).abs() < 1e-12);
    }

    #[test]
    fn rules_follow_scipy_formulas() {
        let x = data();
        let scott = fit_kde(&x, None, &KdeOptions::default()).unwrap();
        assert!((scott.factor - 60f64.powf(-1.0 / 6.0)).abs() < 1e-15);
        let opts = KdeOptions {
            bandwidth: Bandwidth::Silverman,
            ..Default::default()
        };
        let silverman = fit_kde(&x, None, &opts).unwrap();
        assert!((silverman.factor - (60.0 * 4.0 / 4.0f64).powf(-1.0 / 6.0)).abs() < 1e-15);
        // Weights change n_eff.
        let w: Vec<f64> = (0..60).map(|i| 1.0 + (i % 3) as f64).collect();
        let weighted = fit_kde(&x, Some(&w), &KdeOptions::default()).unwrap();
        let total: f64 = w.iter().sum();
        let n_eff = 1.0 / w.iter().map(|v| (v / total).powi(2)).sum::<f64>();
        assert!((weighted.n_eff - n_eff).abs() < 1e-9);
    }

    #[test]
    fn isotropic_bandwidth_ignores_the_data_covariance() {
        // Constant feature: fine with a fixed kernel; each kernel is N(p, h² I).
        let x = DMatrix::from_row_slice(3, 2, &[0.0, 5.0, 1.0, 5.0, 3.0, 5.0]);
        let opts = KdeOptions {
            isotropic: Some(0.5),
            ..Default::default()
        };
        let kde = fit_kde(&x, None, &opts).unwrap();
        let at = DMatrix::from_row_slice(1, 2, &[1.0, 5.0]);
        let g =
            |dx: f64| (-dx * dx / (2.0 * 0.25)).exp() / (2.0 * std::f64::consts::PI * 0.25).sqrt();
        let expected = ((g(1.0) + g(0.0) + g(2.0)) / 3.0 * g(0.0)).ln();
        assert!((kde.mixture.score_samples(&at)[0] - expected).abs() < 1e-12);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let one = DMatrix::from_row_slice(1, 2, &[1.0, 2.0]);
        assert!(matches!(
            fit_kde(&one, None, &KdeOptions::default()),
            Err(KdeError::TooFewPoints(1))
        ));
        let constant = DMatrix::from_row_slice(3, 2, &[1.0, 5.0, 2.0, 5.0, 3.0, 5.0]);
        assert!(matches!(
            fit_kde(&constant, None, &KdeOptions::default()),
            Err(KdeError::ZeroVariance(1))
        ));
        let opts = KdeOptions {
            bandwidth: Bandwidth::Factor(0.0),
            ..Default::default()
        };
        assert!(matches!(
            fit_kde(&data(), None, &opts),
            Err(KdeError::Bandwidth(_))
        ));
        assert!(matches!(
            fit_kde(&data(), Some(&[1.0; 3]), &KdeOptions::default()),
            Err(KdeError::Weights(_))
        ));
        let dependent = DMatrix::from_fn(10, 2, |i, _| i as f64);
        assert!(matches!(
            fit_kde(&dependent, None, &KdeOptions::default()),
            Err(KdeError::Singular)
        ));
    }

    #[test]
    fn reduction_keeps_weights_normalised_and_density_close() {
        let x = data();
        let full = fit_kde(&x, None, &KdeOptions::default()).unwrap();
        for reduce in [Reduce::Random, Reduce::KMeans] {
            let opts = KdeOptions {
                max_points: Some(20),
                reduce,
                ..Default::default()
            };
            let small = fit_kde(&x, None, &opts).unwrap();
            assert!(small.mixture.components() <= 20);
            assert!((small.mixture.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert_eq!(
                small.covariance, full.covariance,
                "bandwidth comes from all points"
            );
            let err = mean_abs_difference(
                &full.mixture.score_samples(&x),
                &small.mixture.score_samples(&x),
            );
            assert!(err < 0.5, "{reduce:?}: mean |Δ log p| = {err}");
        }
    }

    fn mean_abs_difference(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(p, q)| (p - q).abs()).sum::<f64>() / a.len() as f64
    }
}
