//! Gaussian mixtures fitted by expectation-maximisation, with the semantics
//! of scikit-learn's `GaussianMixture` (same initialisations, M-step,
//! `reg_covar`, convergence test and precision Cholesky factors).
//!
//! With one component the fit is the closed-form Gaussian maximum-likelihood
//! estimate: the sample mean and the biased (1/N) covariance, plus `reg_covar`
//! on the diagonal.

use crate::linalg::gram;
use nalgebra::{DMatrix, DVector};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use tinygen_runtime::gmm::{Covariance, GmmParams, Standardizer};

use super::kmeans;

/// How the responsibilities of the first EM step are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// Hard labels of one k-means run (scikit-learn's `kmeans`, the default).
    KMeans,
    /// One-hot responsibilities at k-means++ seeds (`k-means++`).
    KMeansPlusPlus,
    /// Uniform random responsibilities, normalised per row (`random`).
    Random,
}

/// Options of an EM fit; the defaults are scikit-learn's.
#[derive(Debug, Clone)]
pub struct EmOptions {
    /// Number of components K.
    pub components: usize,
    /// Covariance structure.
    pub covariance: Covariance,
    /// Initialisation method.
    pub init: Init,
    /// Number of initialisations; the best lower bound wins.
    pub n_init: usize,
    /// Maximum EM iterations per initialisation.
    pub max_iter: usize,
    /// Convergence threshold on the change of the mean log-likelihood.
    pub tol: f64,
    /// Added to the covariance diagonal for numerical stability.
    pub reg_covar: f64,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for EmOptions {
    fn default() -> Self {
        Self {
            components: 1,
            covariance: Covariance::Full,
            init: Init::KMeans,
            n_init: 1,
            max_iter: 100,
            tol: 1e-3,
            reg_covar: 1e-6,
            seed: 0,
        }
    }
}

/// Why a fit failed.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    /// Fewer rows than components.
    #[error(
        "cannot fit {components} components to {rows} rows: need at least as many rows as components"
    )]
    TooFewRows {
        /// Rows in the data.
        rows: usize,
        /// Components asked for.
        components: usize,
    },
    /// A covariance was not positive definite.
    #[error(
        "covariance of component {component} is singular or not positive definite \
         (constant or duplicated features, or a collapsed component); increase --reg-covar \
         (now {reg_covar:e}), use fewer components, or drop the degenerate features"
    )]
    SingularCovariance {
        /// Index of the offending component.
        component: usize,
        /// The regularisation that was not enough.
        reg_covar: f64,
    },
    /// The log-likelihood became NaN or infinite.
    #[error("EM diverged: the log-likelihood became {0} at iteration {1}")]
    Diverged(f64, usize),
    /// Invalid options or data shape.
    #[error("{0}")]
    Invalid(String),
}

/// A fitted Gaussian mixture in scikit-learn's parametrisation.
///
/// Flat layouts (row-major): `covariances` and `precisions_cholesky` are
/// K x D x D (full), D x D (tied), K x D (diag) or K (spherical).
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianMixture {
    /// Covariance structure.
    pub covariance: Covariance,
    /// Mixture weights, summing to 1.
    pub weights: Vec<f64>,
    /// Means, K x D, row-major.
    pub means: Vec<f64>,
    /// Covariances (flat, see above).
    pub covariances: Vec<f64>,
    /// Upper Cholesky factors of the precisions (flat, see above).
    pub precisions_cholesky: Vec<f64>,
}

/// How an EM run went.
#[derive(Debug, Clone, PartialEq)]
pub struct EmReport {
    /// Whether the change of the lower bound fell below `tol`.
    pub converged: bool,
    /// Iterations run by the winning initialisation.
    pub n_iter: usize,
    /// Final mean log-likelihood (before the last M-step, as scikit-learn).
    pub lower_bound: f64,
    /// The mean log-likelihood at every iteration of the winning initialisation.
    pub lower_bounds: Vec<f64>,
}

impl GaussianMixture {
    /// Number of components K.
    pub fn components(&self) -> usize {
        self.weights.len()
    }

    /// Dimension D.
    pub fn dim(&self) -> usize {
        self.means.len() / self.components()
    }

    /// Mean of component `c` as a row vector.
    fn mean(&self, c: usize) -> nalgebra::RowDVector<f64> {
        let d = self.dim();
        nalgebra::RowDVector::from_row_slice(&self.means[c * d..(c + 1) * d])
    }

    /// The M-step: parameters from responsibilities `resp` (N x K).
    pub fn from_responsibilities(
        x: &DMatrix<f64>,
        resp: &DMatrix<f64>,
        covariance: Covariance,
        reg_covar: f64,
    ) -> Result<Self, FitError> {
        let d = x.ncols();
        let k = resp.ncols();
        let nk: DVector<f64> = resp.row_sum().transpose().add_scalar(10.0 * f64::EPSILON);
        let mut means = gram(resp, x);
        for (c, mut row) in means.row_iter_mut().enumerate() {
            row /= nk[c];
        }
        let covariances = match covariance {
            Covariance::Full => {
                let blocks: Vec<Vec<f64>> = (0..k)
                    .into_par_iter()
                    .map(|c| {
                        let diff = centered(x, &means, c);
                        let mut weighted = diff.clone();
                        for mut col in weighted.column_iter_mut() {
                            col.component_mul_assign(&resp.column(c));
                        }
                        let mut cov = gram(&weighted, &diff) / nk[c];
                        for j in 0..d {
                            cov[(j, j)] += reg_covar;
                        }
                        cov.transpose().as_slice().to_vec()
                    })
                    .collect();
                blocks.concat()
            }
            Covariance::Tied => {
                let avg_x2 = gram(x, x);
                let mut weighted_means = means.clone();
                for (c, mut row) in weighted_means.row_iter_mut().enumerate() {
                    row *= nk[c];
                }
                let mut cov = (avg_x2 - weighted_means.tr_mul(&means)) / nk.sum();
                for j in 0..d {
                    cov[(j, j)] += reg_covar;
                }
                cov.transpose().iter().copied().collect()
            }
            Covariance::Diag | Covariance::Spherical => {
                let x2 = x.component_mul(x);
                let avg_x2 = gram(resp, &x2);
                let diag = DMatrix::from_fn(k, d, |c, j| {
                    avg_x2[(c, j)] / nk[c] - means[(c, j)] * means[(c, j)] + reg_covar
                });
                if covariance == Covariance::Diag {
                    diag.transpose().iter().copied().collect()
                } else {
                    diag.row_iter().map(|r| r.mean()).collect()
                }
            }
        };
        let total = nk.sum();
        let weights = nk.iter().map(|w| w / total).collect();
        let precisions_cholesky = precision_cholesky(&covariances, covariance, k, d, reg_covar)?;
        Ok(Self {
            covariance,
            weights,
            means: means.transpose().as_slice().to_vec(),
            covariances,
            precisions_cholesky,
        })
    }

    /// One full-covariance Gaussian with this mean and covariance.
    pub fn gaussian(mean: &[f64], covariance: &DMatrix<f64>) -> Result<Self, FitError> {
        let d = mean.len();
        if covariance.shape() != (d, d) {
            return Err(FitError::Invalid(format!(
                "a {d}-dimensional Gaussian needs a {d} x {d} covariance"
            )));
        }
        let covariances = covariance.transpose().as_slice().to_vec();
        let precisions_cholesky = precision_cholesky(&covariances, Covariance::Full, 1, d, 0.0)?;
        Ok(Self {
            covariance: Covariance::Full,
            weights: vec![1.0],
            means: mean.to_vec(),
            covariances,
            precisions_cholesky,
        })
    }

    /// `ln N(x_i | mu_k, Sigma_k)` for every row i and component k (N x K).
    pub fn log_gaussian(&self, x: &DMatrix<f64>) -> DMatrix<f64> {
        let (n, d) = x.shape();
        let log_2pi = d as f64 * (2.0 * std::f64::consts::PI).ln();
        let columns: Vec<DVector<f64>> = (0..self.components())
            .into_par_iter()
            .map(|c| {
                let mu = self.mean(c);
                let (sq, log_det) = match self.covariance {
                    Covariance::Full | Covariance::Tied => {
                        let offset = if self.covariance == Covariance::Full {
                            c * d * d
                        } else {
                            0
                        };
                        let u = DMatrix::from_row_slice(
                            d,
                            d,
                            &self.precisions_cholesky[offset..offset + d * d],
                        );
                        let b = &mu * &u;
                        let mut y = x * &u;
                        for (j, mut col) in y.column_iter_mut().enumerate() {
                            col.add_scalar_mut(-b[j]);
                        }
                        let log_det: f64 = u.diagonal().iter().map(|v| v.ln()).sum();
                        (y.component_mul(&y).column_sum(), log_det)
                    }
                    Covariance::Diag | Covariance::Spherical => {
                        let p = |j: usize| match self.covariance {
                            Covariance::Diag => self.precisions_cholesky[c * d + j],
                            _ => self.precisions_cholesky[c],
                        };
                        let mut sq = DVector::zeros(n);
                        for (j, col) in x.column_iter().enumerate() {
                            let (m, pj) = (mu[j], p(j));
                            sq.zip_apply(&col, |s, v| *s += ((v - m) * pj).powi(2));
                        }
                        (sq, (0..d).map(|j| p(j).ln()).sum())
                    }
                };
                sq.map(|s| -0.5 * (log_2pi + s) + log_det)
            })
            .collect();
        DMatrix::from_columns(&columns)
    }

    /// `ln w_k + ln N(x_i | mu_k, Sigma_k)` (N x K).
    fn weighted_log_prob(&self, x: &DMatrix<f64>) -> DMatrix<f64> {
        let mut weighted = self.log_gaussian(x);
        for (c, mut col) in weighted.column_iter_mut().enumerate() {
            col.add_scalar_mut(self.weights[c].ln());
        }
        weighted
    }

    /// The E-step: mean log-likelihood and log-responsibilities (N x K).
    pub fn e_step(&self, x: &DMatrix<f64>) -> (f64, DMatrix<f64>) {
        let mut weighted = self.weighted_log_prob(x);
        let norm = row_logsumexp(&weighted);
        for mut col in weighted.column_iter_mut() {
            col -= &norm;
        }
        (norm.sum() / x.nrows() as f64, weighted)
    }

    /// Per-row log-density (scikit-learn's `score_samples`).
    pub fn score_samples(&self, x: &DMatrix<f64>) -> Vec<f64> {
        row_logsumexp(&self.weighted_log_prob(x))
            .iter()
            .copied()
            .collect()
    }

    /// Number of free parameters (as scikit-learn's `_n_parameters`).
    pub fn n_parameters(&self) -> usize {
        let (k, d) = (self.components(), self.dim());
        let cov = match self.covariance {
            Covariance::Full => k * d * (d + 1) / 2,
            Covariance::Tied => d * (d + 1) / 2,
            Covariance::Diag => k * d,
            Covariance::Spherical => k,
        };
        cov + k * d + k - 1
    }

    /// Bayesian information criterion on `x` (lower is better).
    pub fn bic(&self, x: &DMatrix<f64>) -> f64 {
        let n = x.nrows() as f64;
        -2.0 * self.score_samples(x).iter().sum::<f64>() + self.n_parameters() as f64 * n.ln()
    }

    /// Akaike information criterion on `x` (lower is better).
    pub fn aic(&self, x: &DMatrix<f64>) -> f64 {
        -2.0 * self.score_samples(x).iter().sum::<f64>() + 2.0 * self.n_parameters() as f64
    }

    /// The mixture without the components whose weight is below
    /// `min_weight`, the remaining weights renormalised to sum to 1 (a
    /// constant shift of every log-density). The heaviest component always
    /// stays. A tied covariance is shared and kept as is.
    pub fn retain_components(&self, min_weight: f64) -> GaussianMixture {
        let k = self.components();
        let d = self.dim();
        let heaviest = (0..k)
            .max_by(|&a, &b| self.weights[a].total_cmp(&self.weights[b]))
            .unwrap_or(0);
        let keep: Vec<usize> = (0..k)
            .filter(|&c| c == heaviest || self.weights[c] >= min_weight)
            .collect();
        let per = match self.covariance {
            Covariance::Full => d * d,
            Covariance::Diag => d,
            Covariance::Spherical => 1,
            Covariance::Tied => 0,
        };
        let pick = |v: &[f64], len: usize| -> Vec<f64> {
            if len == 0 {
                return v.to_vec();
            }
            keep.iter()
                .flat_map(|&c| v[c * len..(c + 1) * len].iter().copied())
                .collect()
        };
        let total: f64 = keep.iter().map(|&c| self.weights[c]).sum();
        GaussianMixture {
            covariance: self.covariance,
            weights: keep.iter().map(|&c| self.weights[c] / total).collect(),
            means: pick(&self.means, d),
            covariances: pick(&self.covariances, per),
            precisions_cholesky: pick(&self.precisions_cholesky, per),
        }
    }

    /// The equal-weight average of the members' densities, `p(x) = Σ_m
    /// p_m(x) / M`: itself a mixture, of every member's components with
    /// their weights divided by M. The members must share a dimension and
    /// a covariance structure other than tied (whose one shared covariance
    /// cannot hold several members').
    pub fn average(members: &[GaussianMixture]) -> Result<GaussianMixture, FitError> {
        let first = members
            .first()
            .ok_or_else(|| FitError::Invalid("an average needs at least one mixture".into()))?;
        let (covariance, d) = (first.covariance, first.dim());
        if covariance == Covariance::Tied && members.len() > 1 {
            return Err(FitError::Invalid(
                "tied covariances cannot be averaged into one mixture".into(),
            ));
        }
        if members
            .iter()
            .any(|m| m.covariance != covariance || m.dim() != d)
        {
            return Err(FitError::Invalid(
                "averaged mixtures must share their dimension and covariance structure".into(),
            ));
        }
        let share = 1.0 / members.len() as f64;
        let cat = |f: fn(&GaussianMixture) -> &[f64]| -> Vec<f64> {
            members.iter().flat_map(|m| f(m).iter().copied()).collect()
        };
        Ok(GaussianMixture {
            covariance,
            weights: members
                .iter()
                .flat_map(|m| m.weights.iter().map(move |w| w * share))
                .collect(),
            means: cat(|m| &m.means),
            covariances: cat(|m| &m.covariances),
            precisions_cholesky: cat(|m| &m.precisions_cholesky),
        })
    }

    /// The parameters in the runtime encoder's form.
    pub fn params<'a>(&'a self, standardizer: Option<Standardizer<'a>>) -> GmmParams<'a> {
        GmmParams {
            covariance: self.covariance,
            dim: self.dim(),
            weights: &self.weights,
            means: &self.means,
            precisions_cholesky: &self.precisions_cholesky,
            standardizer,
        }
    }
}

/// `x - mu_c` for every row.
fn centered(x: &DMatrix<f64>, means: &DMatrix<f64>, c: usize) -> DMatrix<f64> {
    let mut diff = x.clone();
    for (j, mut col) in diff.column_iter_mut().enumerate() {
        col.add_scalar_mut(-means[(c, j)]);
    }
    diff
}

/// Upper Cholesky factors of the precisions from the covariances (flat).
pub(crate) fn precision_cholesky(
    covariances: &[f64],
    covariance: Covariance,
    k: usize,
    d: usize,
    reg_covar: f64,
) -> Result<Vec<f64>, FitError> {
    let singular = |component| FitError::SingularCovariance {
        component,
        reg_covar,
    };
    match covariance {
        Covariance::Full | Covariance::Tied => {
            let blocks = if covariance == Covariance::Full { k } else { 1 };
            let mut out = Vec::with_capacity(blocks * d * d);
            for c in 0..blocks {
                let cov = DMatrix::from_row_slice(d, d, &covariances[c * d * d..(c + 1) * d * d]);
                let chol = cov.cholesky().ok_or_else(|| singular(c))?;
                let lower_inv = chol
                    .l()
                    .solve_lower_triangular(&DMatrix::identity(d, d))
                    .ok_or_else(|| singular(c))?;
                // precisions_cholesky = (L^-1)^T, upper triangular; row-major of
                // the transpose is column-major of L^-1.
                out.extend(lower_inv.iter());
            }
            if out.iter().any(|v: &f64| !v.is_finite()) {
                return Err(singular(0));
            }
            Ok(out)
        }
        Covariance::Diag | Covariance::Spherical => {
            let per = if covariance == Covariance::Diag { d } else { 1 };
            covariances
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    if v > 0.0 && v.is_finite() {
                        Ok(1.0 / v.sqrt())
                    } else {
                        Err(singular(i / per))
                    }
                })
                .collect()
        }
    }
}

/// Stable `ln Σ_k exp(m[i][k])` for every row i, computed column by column.
fn row_logsumexp(m: &DMatrix<f64>) -> DVector<f64> {
    let mut max = DVector::from_element(m.nrows(), f64::NEG_INFINITY);
    for col in m.column_iter() {
        max.zip_apply(&col, |a, v| *a = a.max(v));
    }
    let mut sum: DVector<f64> = DVector::zeros(m.nrows());
    for col in m.column_iter() {
        sum.zip_zip_apply(&col, &max, |s, v, mx| *s += (v - mx).exp());
    }
    sum.zip_map(&max, |s: f64, mx: f64| {
        if mx == f64::NEG_INFINITY {
            mx
        } else {
            mx + s.ln()
        }
    })
}

/// Initial responsibilities (N x K) by the chosen method.
pub fn initial_responsibilities(
    x: &DMatrix<f64>,
    k: usize,
    init: Init,
    rng: &mut impl Rng,
) -> DMatrix<f64> {
    let n = x.nrows();
    let mut resp = DMatrix::zeros(n, k);
    match init {
        Init::KMeans => {
            for (i, label) in kmeans::kmeans_labels(x, k, rng).into_iter().enumerate() {
                resp[(i, label)] = 1.0;
            }
        }
        Init::KMeansPlusPlus => {
            for (c, i) in kmeans::kmeans_plusplus(x, k, rng).into_iter().enumerate() {
                resp[(i, c)] = 1.0;
            }
        }
        Init::Random => {
            for mut row in resp.row_iter_mut() {
                for v in row.iter_mut() {
                    *v = rng.random::<f64>();
                }
                let s = row.sum();
                row /= s;
            }
        }
    }
    resp
}

/// Runs EM from given initial responsibilities; `on_iter(iteration, lower_bound, change)`.
pub fn em_from_responsibilities(
    x: &DMatrix<f64>,
    resp: &DMatrix<f64>,
    opts: &EmOptions,
    on_iter: &mut dyn FnMut(usize, f64, f64),
) -> Result<(GaussianMixture, EmReport), FitError> {
    let mut model = match super::em_pass::initial_m_step(x, resp, opts.covariance, opts.reg_covar) {
        Some(model) => model?,
        None => GaussianMixture::from_responsibilities(x, resp, opts.covariance, opts.reg_covar)?,
    };
    let mut lower_bound = f64::NEG_INFINITY;
    let mut lower_bounds = Vec::new();
    let mut converged = false;
    let mut n_iter = 0;
    for iter in 1..=opts.max_iter {
        n_iter = iter;
        let previous = lower_bound;
        let mean_ll = match super::em_pass::em_iteration(&model, x, opts.reg_covar) {
            Some((mean_ll, next)) => {
                if !mean_ll.is_finite() {
                    return Err(FitError::Diverged(mean_ll, iter));
                }
                model = next?;
                mean_ll
            }
            None => {
                let (mean_ll, log_resp) = model.e_step(x);
                if !mean_ll.is_finite() {
                    return Err(FitError::Diverged(mean_ll, iter));
                }
                model = GaussianMixture::from_responsibilities(
                    x,
                    &log_resp.map(f64::exp),
                    opts.covariance,
                    opts.reg_covar,
                )?;
                mean_ll
            }
        };
        lower_bound = mean_ll;
        lower_bounds.push(lower_bound);
        let change = lower_bound - previous;
        on_iter(iter, lower_bound, change);
        if change.abs() < opts.tol {
            converged = true;
            break;
        }
    }
    Ok((
        model,
        EmReport {
            converged,
            n_iter,
            lower_bound,
            lower_bounds,
        },
    ))
}

/// Fits a mixture by EM with `n_init` initialisations, keeping the best.
pub fn fit_em(
    x: &DMatrix<f64>,
    opts: &EmOptions,
    on_iter: &mut dyn FnMut(usize, f64, f64),
) -> Result<(GaussianMixture, EmReport), FitError> {
    let (n, d) = x.shape();
    if opts.components == 0 || opts.n_init == 0 || d == 0 {
        return Err(FitError::Invalid(
            "components, n-init and the number of features must be at least 1".into(),
        ));
    }
    if n < opts.components {
        return Err(FitError::TooFewRows {
            rows: n,
            components: opts.components,
        });
    }
    if !(opts.reg_covar.is_finite()
        && opts.reg_covar >= 0.0
        && opts.tol.is_finite()
        && opts.tol >= 0.0)
    {
        return Err(FitError::Invalid(
            "reg-covar and tol must be non-negative".into(),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut best: Option<(GaussianMixture, EmReport)> = None;
    for _ in 0..opts.n_init {
        let resp = initial_responsibilities(x, opts.components, opts.init, &mut rng);
        let (model, report) = em_from_responsibilities(x, &resp, opts, on_iter)?;
        if best
            .as_ref()
            .is_none_or(|(_, b)| report.lower_bound > b.lower_bound)
        {
            best = Some((model, report));
        }
    }
    Ok(best.expect("n_init >= 1"))
}

/// How many components to fit: a number, or the best BIC over a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Components {
    /// Exactly this many.
    Fixed(usize),
    /// The count in `min..=max` with the lowest BIC on the training data.
    Bic {
        /// Smallest count tried.
        min: usize,
        /// Largest count tried.
        max: usize,
    },
}

impl std::str::FromStr for Components {
    type Err = String;

    /// `N`, `A..B` (inclusive) or `auto` (= `1..8`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let count = |v: &str| {
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    format!("components must be a positive number, A..B or auto, not {s:?}")
                })
        };
        match s.split_once("..") {
            _ if s == "auto" => Ok(Components::Bic { min: 1, max: 8 }),
            Some((a, b)) => {
                let (min, max) = (count(a)?, count(b)?);
                if min > max {
                    return Err(format!("empty range {s:?}"));
                }
                Ok(Components::Bic { min, max })
            }
            None => count(s).map(Components::Fixed),
        }
    }
}

/// `(components, BIC)` for every component count tried.
pub type BicTable = Vec<(usize, f64)>;

/// Fits `opts` with the component count chosen by `components`; returns
/// the model, its report and, for each count tried, its BIC.
pub fn fit_em_select(
    x: &DMatrix<f64>,
    components: Components,
    opts: &EmOptions,
    on_iter: &mut dyn FnMut(usize, f64, f64),
) -> Result<(GaussianMixture, EmReport, BicTable), FitError> {
    let (min, max) = match components {
        Components::Fixed(k) => (k, k),
        Components::Bic { min, max } => (min, max.min(x.nrows())),
    };
    let mut best: Option<(GaussianMixture, EmReport)> = None;
    let mut tried = Vec::new();
    for k in min..=max.max(min) {
        let (model, report) = fit_em(
            x,
            &EmOptions {
                components: k,
                ..opts.clone()
            },
            on_iter,
        )?;
        let bic = model.bic(x);
        tried.push((k, bic));
        if best.as_ref().is_none_or(|(m, _)| bic < m.bic(x)) {
            best = Some((model, report));
        }
    }
    let (model, report) = best.expect("at least one count is tried");
    Ok((model, report, tried))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_scores_the_mean_of_the_members_densities() {
        let x = DMatrix::from_fn(60, 3, |i, j| ((i * 7 + j * 3) % 11) as f64 * 0.3 + j as f64);
        let fit = |k, covariance, seed| {
            let opts = EmOptions {
                components: k,
                covariance,
                reg_covar: 1e-2,
                seed,
                ..EmOptions::default()
            };
            fit_em(&x, &opts, &mut |_, _, _| {}).unwrap().0
        };
        for covariance in [Covariance::Full, Covariance::Diag, Covariance::Spherical] {
            let members = [
                fit(1, covariance, 0),
                fit(3, covariance, 1),
                fit(2, covariance, 2),
            ];
            let avg = GaussianMixture::average(&members).unwrap();
            assert_eq!(avg.components(), 6);
            assert!((avg.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let each: Vec<Vec<f64>> = members.iter().map(|m| m.score_samples(&x)).collect();
            for (i, got) in avg.score_samples(&x).iter().enumerate() {
                let mean = each.iter().map(|s| s[i].exp()).sum::<f64>() / 3.0;
                assert!((got - mean.ln()).abs() < 1e-9, "{covariance:?} row {i}");
            }
        }
        let one = fit(2, Covariance::Full, 0);
        assert_eq!(
            GaussianMixture::average(std::slice::from_ref(&one)).unwrap(),
            one
        );
        assert!(GaussianMixture::average(&[]).is_err());
        let diag = fit(2, Covariance::Diag, 0);
        assert!(GaussianMixture::average(&[one.clone(), diag]).is_err());
        let tied = fit(2, Covariance::Tied, 0);
        assert!(GaussianMixture::average(&[tied.clone(), tied]).is_err());
        let narrow = DMatrix::from_fn(20, 2, |i, j| (i * (j + 1)) as f64);
        let other_dim = fit_em(&narrow, &EmOptions::default(), &mut |_, _, _| {})
            .unwrap()
            .0;
        assert!(GaussianMixture::average(&[one, other_dim]).is_err());
    }

    #[test]
    fn retain_components_drops_light_ones_and_renormalises() {
        let x = DMatrix::from_row_iterator(
            9,
            2,
            [
                0.0, 0.0, 0.1, 0.2, -0.1, 0.1, 5.0, 5.0, 5.1, 4.9, 4.8, 5.2, 0.05, -0.1, 5.2, 5.1,
                9.0, -9.0,
            ],
        );
        for covariance in [
            Covariance::Full,
            Covariance::Tied,
            Covariance::Diag,
            Covariance::Spherical,
        ] {
            let opts = EmOptions {
                components: 3,
                covariance,
                reg_covar: 1e-3,
                ..EmOptions::default()
            };
            let (m, _) = fit_em(&x, &opts, &mut |_, _, _| {}).unwrap();
            let light = m.weights.iter().copied().fold(f64::INFINITY, f64::min);
            assert!(light < 0.2, "{:?}", m.weights);
            let kept = m.retain_components(0.2);
            assert_eq!(kept.components(), 2, "{covariance:?}");
            assert!((kept.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            // The survivors score every point like the original components,
            // up to the constant log of the renormalisation.
            let shift = (1.0 - light).ln();
            let a = kept.score_samples(&x.rows(0, 6).into_owned());
            let b = m.score_samples(&x.rows(0, 6).into_owned());
            for (a, b) in a.iter().zip(&b) {
                assert!((a + shift - b).abs() < 1e-3, "{covariance:?}: {a} {b}");
            }
            assert_eq!(m.retain_components(0.0), m);
            assert_eq!(m.retain_components(2.0).components(), 1);
        }
    }

    fn data() -> DMatrix<f64> {
        DMatrix::from_fn(50, 3, |i, j| {
            let t = i as f64;
            (t * (0.7 + j as f64)).sin() * (1.0 + j as f64) + (t * 0.13).cos() * (j as f64 - 1.0)
        })
    }

    #[test]
    fn one_component_is_the_closed_form_mle() {
        let x = data();
        let n = x.nrows() as f64;
        let opts = EmOptions {
            reg_covar: 1e-6,
            ..EmOptions::default()
        };
        let (model, report) = fit_em(&x, &opts, &mut |_, _, _| {}).unwrap();
        assert!(report.converged);
        let mean = x.row_mean();
        let centered = DMatrix::from_fn(x.nrows(), 3, |i, j| x[(i, j)] - mean[j]);
        let cov = centered.tr_mul(&centered) / n; // biased (1/N) covariance
        for j in 0..3 {
            assert!((model.means[j] - mean[j]).abs() < 1e-12);
            for i in 0..3 {
                let reg = if i == j { 1e-6 } else { 0.0 };
                assert!((model.covariances[i * 3 + j] - cov[(i, j)] - reg).abs() < 1e-12);
            }
        }
        // The log-density is the Gaussian's, computed independently.
        let sigma = DMatrix::from_row_slice(3, 3, &model.covariances);
        let inv = sigma.clone().try_inverse().unwrap();
        let x0 = x.row(0).transpose() - mean.transpose();
        let quad = (x0.transpose() * &inv * &x0)[(0, 0)];
        let expected =
            -0.5 * (3.0 * (2.0 * std::f64::consts::PI).ln() + sigma.determinant().ln() + quad);
        assert!((model.score_samples(&x)[0] - expected).abs() < 1e-10);
    }

    #[test]
    fn em_never_decreases_the_likelihood() {
        let x = data();
        for covariance in [
            Covariance::Full,
            Covariance::Tied,
            Covariance::Diag,
            Covariance::Spherical,
        ] {
            let opts = EmOptions {
                components: 3,
                covariance,
                tol: 0.0,
                max_iter: 30,
                ..EmOptions::default()
            };
            let (_, report) = fit_em(&x, &opts, &mut |_, _, _| {}).unwrap();
            for w in report.lower_bounds.windows(2) {
                assert!(
                    w[1] >= w[0] - 1e-9,
                    "{covariance:?}: {} then {}",
                    w[0],
                    w[1]
                );
            }
        }
    }

    #[test]
    fn bic_selects_the_number_of_clusters() {
        // Three well separated blobs.
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let x = DMatrix::from_fn(300, 2, |i, _| {
            let noise: f64 = (0..6).map(|_| rng.random::<f64>()).sum::<f64>() - 3.0;
            (i % 3) as f64 * 10.0 + noise
        });
        let range: Components = "1..5".parse().unwrap();
        let (model, _, tried) =
            fit_em_select(&x, range, &EmOptions::default(), &mut |_, _, _| {}).unwrap();
        assert_eq!(model.components(), 3, "BIC per count: {tried:?}");
        assert_eq!(tried.len(), 5);
        assert_eq!("auto".parse(), Ok(Components::Bic { min: 1, max: 8 }));
        assert_eq!("4".parse(), Ok(Components::Fixed(4)));
        assert!("0".parse::<Components>().is_err() && "3..2".parse::<Components>().is_err());
    }

    #[test]
    fn same_seed_gives_the_same_fit() {
        let x = data();
        let opts = EmOptions {
            components: 3,
            init: Init::Random,
            seed: 5,
            ..EmOptions::default()
        };
        let a = fit_em(&x, &opts, &mut |_, _, _| {}).unwrap().0;
        let b = fit_em(&x, &opts, &mut |_, _, _| {}).unwrap().0;
        assert_eq!(a, b);
    }
}
