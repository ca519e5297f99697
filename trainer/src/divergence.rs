//! Divergences between distributions: discrete and Gaussian Kullback-Leibler
//! divergences in closed form, a Monte Carlo KL estimate between Gaussian
//! mixtures, and the sliced Wasserstein distance between point sets.
//!
//! All logarithms are natural, so KL divergences are in nats.

use nalgebra::DMatrix;
use rand::Rng;
use rayon::prelude::*;
use tinygen_runtime::gmm::Covariance;

use crate::density::gmm::GaussianMixture;
use crate::density::sample::fill_standard_normal;

/// Why a divergence could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DivergenceError {
    /// An input with no entries (or no points, or no dimensions).
    #[error("{what} is empty")]
    Empty {
        /// Which input.
        what: &'static str,
    },
    /// Two inputs that must have the same length do not.
    #[error("{what} has {found} entries but {expected} were expected (lengths must match)")]
    LengthMismatch {
        /// Which input has the unexpected length.
        what: &'static str,
        /// The length of the first input.
        expected: usize,
        /// The length of `what`.
        found: usize,
    },
    /// An entry outside its allowed range.
    #[error("{what}[{index}] = {value}, but every entry must be {requirement}")]
    InvalidValue {
        /// Which input.
        what: &'static str,
        /// Position of the offending entry.
        index: usize,
        /// The offending entry.
        value: f64,
        /// What the entries must be.
        requirement: &'static str,
    },
    /// A weight vector whose sum is zero or not finite, so it cannot be normalised.
    #[error("{what} sums to {sum}; it must sum to a positive finite number to be normalised")]
    BadSum {
        /// Which input.
        what: &'static str,
        /// Its sum.
        sum: f64,
    },
    /// Two point sets of different shapes.
    #[error(
        "the point sets must have the same shape (N x D), got {}x{} and {}x{}",
        x.0, x.1, y.0, y.1
    )]
    ShapeMismatch {
        /// Rows and columns of the first set.
        x: (usize, usize),
        /// Rows and columns of the second set.
        y: (usize, usize),
    },
    /// Two mixtures of different dimensions.
    #[error("the mixtures have different dimensions: p is {p}-dimensional, q is {q}-dimensional")]
    DimensionMismatch {
        /// Dimension of p.
        p: usize,
        /// Dimension of q.
        q: usize,
    },
    /// A mixture whose parameter arrays are inconsistent.
    #[error("mixture {which} is malformed: {reason}")]
    InvalidMixture {
        /// `"p"` or `"q"`.
        which: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A count (of projections or samples) below its minimum.
    #[error("need at least {min} {what}, got {got}")]
    TooFew {
        /// What is counted.
        what: &'static str,
        /// The count given.
        got: usize,
        /// The minimum.
        min: usize,
    },
}

/// Checks that `values` is non-empty, of length `len` and finite.
fn check_finite(what: &'static str, values: &[f64], len: usize) -> Result<(), DivergenceError> {
    if values.len() != len {
        return Err(DivergenceError::LengthMismatch {
            what,
            expected: len,
            found: values.len(),
        });
    }
    if values.is_empty() {
        return Err(DivergenceError::Empty { what });
    }
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(DivergenceError::InvalidValue {
            what,
            index,
            value: values[index],
            requirement: "finite",
        }),
        None => Ok(()),
    }
}

/// Checks that `values` are non-negative and finite and returns their sum,
/// which must be positive and finite.
fn check_weights(what: &'static str, values: &[f64]) -> Result<f64, DivergenceError> {
    if let Some(index) = values.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
        return Err(DivergenceError::InvalidValue {
            what,
            index,
            value: values[index],
            requirement: "finite and non-negative",
        });
    }
    let sum: f64 = values.iter().sum();
    if sum > 0.0 && sum.is_finite() {
        Ok(sum)
    } else {
        Err(DivergenceError::BadSum { what, sum })
    }
}

/// Checks that every variance is positive and finite.
fn check_variances(what: &'static str, values: &[f64]) -> Result<(), DivergenceError> {
    match values.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
        Some(index) => Err(DivergenceError::InvalidValue {
            what,
            index,
            value: values[index],
            requirement: "a positive finite variance",
        }),
        None => Ok(()),
    }
}

/// Kullback-Leibler divergence `KL(P || Q) = Σ_i p_i ln(p_i / q_i)` of two
/// discrete distributions over the same outcomes, in nats.
///
/// Both inputs are normalised by their sums first, so counts or unnormalised
/// weights can be passed directly. Outcomes with `p_i = 0` contribute 0
/// (the convention `0 ln 0 = 0`, whatever `q_i` is). If some outcome has
/// `p_i > 0` but `q_i = 0`, P is not absolutely continuous with respect to Q
/// and the result is `f64::INFINITY`.
///
/// # Errors
///
/// If the lengths differ, the inputs are empty, an entry is negative or not
/// finite, or an input sums to zero (or overflows to infinity).
pub fn kl_discrete(p: &[f64], q: &[f64]) -> Result<f64, DivergenceError> {
    if p.len() != q.len() {
        return Err(DivergenceError::LengthMismatch {
            what: "q",
            expected: p.len(),
            found: q.len(),
        });
    }
    if p.is_empty() {
        return Err(DivergenceError::Empty { what: "p" });
    }
    let sp = check_weights("p", p)?;
    let sq = check_weights("q", q)?;
    let mut kl = 0.0;
    for (&pi, &qi) in p.iter().zip(q) {
        if pi == 0.0 {
            continue;
        }
        if qi == 0.0 {
            return Ok(f64::INFINITY);
        }
        let (pi, qi) = (pi / sp, qi / sq);
        kl += pi * (pi / qi).ln();
    }
    Ok(kl)
}

/// One term of the Gaussian KL: `ln(var_q/var_p) + (var_p + (mu_p-mu_q)^2)/var_q - 1`,
/// written as `t - ln(1 + t) + (mu_p-mu_q)^2/var_q` with `t = var_p/var_q - 1`
/// for accuracy when the variances are close.
fn kl_gaussian_term(mu_p: f64, var_p: f64, mu_q: f64, var_q: f64) -> f64 {
    let t = (var_p - var_q) / var_q;
    // t - ln(1 + t) >= 0; rounding may only make it a hair negative.
    (t - t.ln_1p()).max(0.0) + (mu_p - mu_q).powi(2) / var_q
}

/// Kullback-Leibler divergence `KL(N(mu_p, var_p) || N(mu_q, var_q))` of two
/// univariate Gaussians given by mean and **variance**, in nats:
///
/// `0.5 * [ln(var_q / var_p) + (var_p + (mu_p - mu_q)^2) / var_q - 1]`.
///
/// Returns NaN if a variance is not positive and finite or a mean is not
/// finite (use [`kl_gaussian_diag`] for a checked version).
pub fn kl_gaussian_1d(mu_p: f64, var_p: f64, mu_q: f64, var_q: f64) -> f64 {
    let valid = |v: f64| v.is_finite() && v > 0.0;
    if !(valid(var_p) && valid(var_q) && mu_p.is_finite() && mu_q.is_finite()) {
        return f64::NAN;
    }
    0.5 * kl_gaussian_term(mu_p, var_p, mu_q, var_q)
}

/// Kullback-Leibler divergence between two Gaussians with diagonal
/// covariances, given by their means and per-coordinate **variances**, in nats:
///
/// `0.5 * Σ_j [ln(var_q_j / var_p_j) + (var_p_j + (mu_p_j - mu_q_j)^2) / var_q_j - 1]`,
///
/// the sum of the univariate divergences of the coordinates.
///
/// # Errors
///
/// If the four slices do not all have the same length, are empty, a mean is
/// not finite or a variance is not positive and finite.
pub fn kl_gaussian_diag(
    mu_p: &[f64],
    var_p: &[f64],
    mu_q: &[f64],
    var_q: &[f64],
) -> Result<f64, DivergenceError> {
    let d = mu_p.len();
    check_finite("mu_p", mu_p, d)?;
    check_finite("var_p", var_p, d)?;
    check_finite("mu_q", mu_q, d)?;
    check_finite("var_q", var_q, d)?;
    check_variances("var_p", var_p)?;
    check_variances("var_q", var_q)?;
    let sum: f64 = (0..d)
        .map(|j| kl_gaussian_term(mu_p[j], var_p[j], mu_q[j], var_q[j]))
        .sum();
    Ok(0.5 * sum)
}

/// Projections processed together (one matrix product per chunk).
const PROJECTION_CHUNK: usize = 32;

/// Squared sliced 2-Wasserstein distance `SW_2^2(X, Y)` between two point
/// sets of equal size (N x D each, one point per row), treated as uniform
/// empirical distributions.
///
/// For `projections` random directions θ, uniform on the unit sphere (normalised
/// standard Gaussian vectors drawn from `rng`), both sets are projected onto θ
/// and the squared 1-D 2-Wasserstein distance of the projections — the mean
/// squared difference of the sorted projections — is computed; the result is
/// the average over directions. It is the **square** of SW_2 (take `sqrt` for
/// the distance itself), a Monte Carlo estimate of the integral over the sphere.
///
/// In one dimension the directions are ±1 and the value is the exact squared
/// W_2 distance. Shifting one set by a vector `s` gives `E[SW_2^2] = |s|^2 / D`.
/// The directions are drawn sequentially from `rng`, so a seeded generator
/// gives a reproducible value; the projections themselves run in parallel.
///
/// # Errors
///
/// If the shapes differ, the sets have no points or no columns, an entry is
/// not finite, or `projections` is 0.
pub fn sliced_wasserstein(
    x: &DMatrix<f64>,
    y: &DMatrix<f64>,
    projections: usize,
    rng: &mut impl Rng,
) -> Result<f64, DivergenceError> {
    if x.shape() != y.shape() {
        return Err(DivergenceError::ShapeMismatch {
            x: x.shape(),
            y: y.shape(),
        });
    }
    let (n, d) = x.shape();
    if n == 0 || d == 0 {
        return Err(DivergenceError::Empty {
            what: "the point set",
        });
    }
    if projections == 0 {
        return Err(DivergenceError::TooFew {
            what: "projections",
            got: 0,
            min: 1,
        });
    }
    for (what, m) in [("x", x), ("y", y)] {
        if let Some(index) = m.iter().position(|v| !v.is_finite()) {
            return Err(DivergenceError::InvalidValue {
                what,
                index,
                value: m[index],
                requirement: "finite",
            });
        }
    }

    // Directions as the columns of a D x P matrix.
    let mut theta = DMatrix::zeros(d, projections);
    for mut col in theta.column_iter_mut() {
        loop {
            fill_standard_normal(rng, col.as_mut_slice());
            let norm = col.norm();
            if norm > 0.0 {
                col /= norm;
                break;
            }
        }
    }

    let per_projection: Vec<f64> = (0..projections)
        .step_by(PROJECTION_CHUNK)
        .collect::<Vec<_>>()
        .into_par_iter()
        .flat_map_iter(|start| {
            let width = PROJECTION_CHUNK.min(projections - start);
            let dirs = theta.columns(start, width);
            let px = x * dirs;
            let py = y * dirs;
            (0..width)
                .map(|c| {
                    let mut a = px.column(c).iter().copied().collect::<Vec<_>>();
                    let mut b = py.column(c).iter().copied().collect::<Vec<_>>();
                    a.sort_unstable_by(f64::total_cmp);
                    b.sort_unstable_by(f64::total_cmp);
                    a.iter().zip(&b).map(|(u, v)| (u - v).powi(2)).sum::<f64>() / n as f64
                })
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(per_projection.iter().sum::<f64>() / projections as f64)
}

/// A Monte Carlo estimate with its standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct McEstimate {
    /// The sample mean of the estimated quantity.
    pub value: f64,
    /// Its standard error: the sample standard deviation (with `n - 1`)
    /// divided by `sqrt(n)`. About 95% of estimates fall within
    /// `±2 std_error` of the true value.
    pub std_error: f64,
}

/// Checks that a mixture's parameter arrays are consistent and returns its dimension.
fn mixture_dim(which: &'static str, gm: &GaussianMixture) -> Result<usize, DivergenceError> {
    let invalid = |reason: String| DivergenceError::InvalidMixture { which, reason };
    let k = gm.components();
    if k == 0 || gm.means.is_empty() {
        return Err(invalid("it has no components or no dimensions".into()));
    }
    if !gm.means.len().is_multiple_of(k) {
        return Err(invalid(format!(
            "{} means do not split into {k} components",
            gm.means.len()
        )));
    }
    let d = gm.dim();
    let expected = match gm.covariance {
        Covariance::Full => k * d * d,
        Covariance::Tied => d * d,
        Covariance::Diag => k * d,
        Covariance::Spherical => k,
    };
    for (name, len) in [
        ("covariances", gm.covariances.len()),
        ("precisions_cholesky", gm.precisions_cholesky.len()),
    ] {
        if len != expected {
            return Err(invalid(format!(
                "{name} has {len} entries, expected {expected} for {k} {:?} components of dimension {d}",
                gm.covariance
            )));
        }
    }
    Ok(d)
}

/// Monte Carlo estimate of `KL(p || q) = E_{x ~ p}[ln p(x) - ln q(x)]`
/// between two Gaussian mixtures, in nats, from `samples` draws of
/// [`GaussianMixture::sample`] scored with [`GaussianMixture::score_samples`].
///
/// There is no closed form for mixtures; the estimate is unbiased, with the
/// standard error reported in [`McEstimate::std_error`]. An individual
/// estimate may be negative when the divergence is small compared with its
/// standard error. `kl_monte_carlo(p, p, ..)` is exactly 0. If q has zero
/// density (underflow) where p draws a point, the value is `f64::INFINITY`.
///
/// # Errors
///
/// If the mixtures are malformed or of different dimensions, or `samples < 2`
/// (the standard error needs two draws).
///
/// # Panics
///
/// As [`GaussianMixture::sample`], if p's weights or covariances are invalid.
pub fn kl_monte_carlo(
    p: &GaussianMixture,
    q: &GaussianMixture,
    samples: usize,
    rng: &mut impl Rng,
) -> Result<McEstimate, DivergenceError> {
    let (dp, dq) = (mixture_dim("p", p)?, mixture_dim("q", q)?);
    if dp != dq {
        return Err(DivergenceError::DimensionMismatch { p: dp, q: dq });
    }
    if samples < 2 {
        return Err(DivergenceError::TooFew {
            what: "samples",
            got: samples,
            min: 2,
        });
    }
    let x = p.sample(samples, rng);
    let log_p = p.score_samples(&x);
    let log_q = q.score_samples(&x);
    let diffs: Vec<f64> = log_p.iter().zip(&log_q).map(|(a, b)| a - b).collect();
    let n = samples as f64;
    let value = diffs.iter().sum::<f64>() / n;
    let var = diffs.iter().map(|v| (v - value).powi(2)).sum::<f64>() / (n - 1.0);
    Ok(McEstimate {
        value,
        std_error: (var / n).sqrt(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::sample::tests::mixture;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    #[test]
    fn kl_discrete_lecture_example() {
        let p = [9.0 / 25.0, 12.0 / 25.0, 4.0 / 25.0];
        let q = [1.0 / 3.0; 3];
        let pq = kl_discrete(&p, &q).unwrap();
        let qp = kl_discrete(&q, &p).unwrap();
        assert!((pq - 0.085_299_6).abs() < 5e-8, "KL(P||Q) = {pq}");
        assert!((qp - 0.097_455).abs() < 5e-7, "KL(Q||P) = {qp}");
        // Counts are normalised: the same distributions as raw counts.
        let counts = kl_discrete(&[9.0, 12.0, 4.0], &[5.0, 5.0, 5.0]).unwrap();
        assert!((counts - pq).abs() < 1e-15);
    }

    #[test]
    fn kl_discrete_edge_cases() {
        assert_eq!(kl_discrete(&[0.2, 0.8], &[0.2, 0.8]).unwrap(), 0.0);
        // p = 0 contributes nothing, even where q = 0.
        let kl = kl_discrete(&[0.0, 1.0], &[0.0, 1.0]).unwrap();
        assert_eq!(kl, 0.0);
        let kl = kl_discrete(&[0.0, 1.0], &[0.5, 0.5]).unwrap();
        assert!((kl - 2f64.ln()).abs() < 1e-15);
        // q = 0 where p > 0: infinite.
        assert_eq!(
            kl_discrete(&[0.5, 0.5], &[1.0, 0.0]).unwrap(),
            f64::INFINITY
        );
    }

    #[test]
    fn kl_discrete_rejects_bad_input() {
        assert!(matches!(
            kl_discrete(&[1.0, 2.0], &[1.0]),
            Err(DivergenceError::LengthMismatch {
                expected: 2,
                found: 1,
                ..
            })
        ));
        assert!(matches!(
            kl_discrete(&[], &[]),
            Err(DivergenceError::Empty { .. })
        ));
        assert!(matches!(
            kl_discrete(&[1.0, -0.5], &[1.0, 1.0]),
            Err(DivergenceError::InvalidValue {
                what: "p",
                index: 1,
                ..
            })
        ));
        assert!(matches!(
            kl_discrete(&[1.0, 1.0], &[f64::NAN, 1.0]),
            Err(DivergenceError::InvalidValue {
                what: "q",
                index: 0,
                ..
            })
        ));
        assert!(matches!(
            kl_discrete(&[1.0, f64::INFINITY], &[1.0, 1.0]),
            Err(DivergenceError::InvalidValue { what: "p", .. })
        ));
        assert!(matches!(
            kl_discrete(&[0.0, 0.0], &[1.0, 1.0]),
            Err(DivergenceError::BadSum { what: "p", .. })
        ));
        let message = kl_discrete(&[1.0, -0.5], &[1.0, 1.0])
            .unwrap_err()
            .to_string();
        assert!(message.contains("p[1] = -0.5"), "{message}");
    }

    #[test]
    fn kl_gaussian_closed_forms() {
        assert_eq!(kl_gaussian_1d(0.3, 2.0, 0.3, 2.0), 0.0);
        // N(0,1) || N(1,2) = 0.5 * (ln 2 + (1 + 1)/2 - 1) = 0.5 ln 2.
        let kl = kl_gaussian_1d(0.0, 1.0, 1.0, 2.0);
        assert!((kl - 0.346_573_6).abs() < 1e-7, "{kl}");
        // The reverse direction: 0.5 * (ln(1/2) + (2 + 1)/1 - 1).
        let kl = kl_gaussian_1d(1.0, 2.0, 0.0, 1.0);
        assert!((kl - 0.653_426_4).abs() < 1e-7, "{kl}");
        // Nearly equal variances keep full relative accuracy:
        // 0.5 (t - ln(1+t)) ≈ t^2/4 for t = 1e-6.
        let kl = kl_gaussian_1d(0.0, 1.0 + 1e-6, 0.0, 1.0);
        assert!((kl / 2.5e-13 - 1.0).abs() < 1e-5, "{kl}");
        assert!(kl_gaussian_1d(0.0, 0.0, 0.0, 1.0).is_nan());
        assert!(kl_gaussian_1d(0.0, 1.0, 0.0, -1.0).is_nan());

        let (mp, vp, mq, vq) = (
            [0.0, 1.5, -2.0],
            [1.0, 0.5, 3.0],
            [1.0, 1.0, 0.0],
            [2.0, 0.25, 3.0],
        );
        assert_eq!(kl_gaussian_diag(&mp, &vp, &mp, &vp).unwrap(), 0.0);
        let diag = kl_gaussian_diag(&mp, &vp, &mq, &vq).unwrap();
        let sum: f64 = (0..3)
            .map(|j| kl_gaussian_1d(mp[j], vp[j], mq[j], vq[j]))
            .sum();
        assert!((diag - sum).abs() < 1e-15);
        // Written out: 0.5 [ln2 + 2/2 - 1] + 0.5 [ln 0.5 + (0.5 + 0.25)/0.25 - 1] + 0.5 [4/3].
        let expected = 0.5 * (2f64.ln()) + 0.5 * (0.5f64.ln() + 2.0) + 0.5 * (4.0 / 3.0);
        assert!((diag - expected).abs() < 1e-14, "{diag} vs {expected}");
    }

    #[test]
    fn kl_gaussian_diag_rejects_bad_input() {
        assert!(matches!(
            kl_gaussian_diag(&[0.0, 1.0], &[1.0, 1.0], &[0.0], &[1.0, 1.0]),
            Err(DivergenceError::LengthMismatch { what: "mu_q", .. })
        ));
        assert!(matches!(
            kl_gaussian_diag(&[0.0], &[0.0], &[0.0], &[1.0]),
            Err(DivergenceError::InvalidValue { what: "var_p", .. })
        ));
        assert!(matches!(
            kl_gaussian_diag(&[0.0], &[1.0], &[0.0], &[-2.0]),
            Err(DivergenceError::InvalidValue { what: "var_q", .. })
        ));
        assert!(matches!(
            kl_gaussian_diag(&[], &[], &[], &[]),
            Err(DivergenceError::Empty { .. })
        ));
    }

    #[test]
    fn kl_gaussian_agrees_with_monte_carlo() {
        // E_{x ~ p}[ln p(x) - ln q(x)] from independent normal draws.
        let (mu_p, var_p, mu_q, var_q): (f64, f64, f64, f64) = (0.5, 0.7, -0.4, 1.9);
        let log_n = |x: f64, mu: f64, var: f64| {
            -0.5 * ((std::f64::consts::TAU * var).ln() + (x - mu).powi(2) / var)
        };
        let mut z = vec![0.0; 100_000];
        fill_standard_normal(&mut rng(11), &mut z);
        let d: Vec<f64> = z
            .iter()
            .map(|z| {
                let x = mu_p + var_p.sqrt() * z;
                log_n(x, mu_p, var_p) - log_n(x, mu_q, var_q)
            })
            .collect();
        let n = d.len() as f64;
        let mean = d.iter().sum::<f64>() / n;
        let se = (d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt();
        let exact = kl_gaussian_1d(mu_p, var_p, mu_q, var_q);
        assert!(
            (mean - exact).abs() < 4.0 * se,
            "MC {mean} ± {se}, exact {exact}"
        );
    }

    fn cloud(n: usize, d: usize, seed: u64) -> DMatrix<f64> {
        let mut z = vec![0.0; n * d];
        fill_standard_normal(&mut rng(seed), &mut z);
        DMatrix::from_vec(n, d, z)
    }

    #[test]
    fn sliced_wasserstein_of_identical_sets_is_zero() {
        let x = cloud(100, 3, 1);
        assert_eq!(sliced_wasserstein(&x, &x, 50, &mut rng(2)).unwrap(), 0.0);
    }

    #[test]
    fn sliced_wasserstein_in_one_dimension_is_exact() {
        let x = cloud(257, 1, 3);
        let c = 0.75;
        let y = x.add_scalar(c);
        for projections in [1, 2, 7, 100] {
            let sw = sliced_wasserstein(&x, &y, projections, &mut rng(4)).unwrap();
            assert!((sw - c * c).abs() < 1e-12, "{projections}: {sw}");
        }
        // Matching needs sorting: sorted [0, 1, 2] vs [-1, 3, 5] gives (1 + 4 + 9)/3.
        let x = DMatrix::from_column_slice(3, 1, &[2.0, 0.0, 1.0]);
        let y = DMatrix::from_column_slice(3, 1, &[5.0, -1.0, 3.0]);
        let sw = sliced_wasserstein(&x, &y, 3, &mut rng(5)).unwrap();
        assert!((sw - 14.0 / 3.0).abs() < 1e-12, "{sw}");
    }

    #[test]
    fn sliced_wasserstein_is_symmetric() {
        let x = cloud(200, 4, 6);
        let y = cloud(200, 4, 7).map(|v| 2.0 * v + 0.5);
        let xy = sliced_wasserstein(&x, &y, 100, &mut rng(8)).unwrap();
        let yx = sliced_wasserstein(&y, &x, 100, &mut rng(8)).unwrap();
        assert!(xy > 0.1);
        assert_eq!(xy, yx);
    }

    #[test]
    fn sliced_wasserstein_of_a_shift_is_its_norm_over_d() {
        // SW^2(x, x + s) = mean over θ of (θ·s)^2 exactly, whose expectation
        // is |s|^2 / D. With |s| = 1, (θ·s)^2 ~ Beta(1/2, (D-1)/2), whose
        // variance is 2 (D-1) / (D^2 (D+2)).
        let d = 3;
        let s = [1.0, -2.0, 0.5];
        let x = cloud(60, d, 9);
        let mut y = x.clone();
        for (j, mut col) in y.column_iter_mut().enumerate() {
            col.add_scalar_mut(s[j]);
        }
        let projections = 4000;
        let sw = sliced_wasserstein(&x, &y, projections, &mut rng(10)).unwrap();
        let s2: f64 = s.iter().map(|v| v * v).sum();
        let df = d as f64;
        let expected = s2 / df;
        let sd = s2 * (2.0 * (df - 1.0) / (df * df * (df + 2.0))).sqrt();
        let se = sd / (projections as f64).sqrt();
        assert!(
            (sw - expected).abs() < 4.0 * se,
            "SW^2 {sw}, expected {expected} ± {se}"
        );
        assert!((sw / expected - 1.0).abs() < 0.05);
    }

    #[test]
    fn sliced_wasserstein_rejects_bad_input() {
        let x = cloud(10, 2, 1);
        assert!(matches!(
            sliced_wasserstein(&x, &cloud(11, 2, 1), 10, &mut rng(0)),
            Err(DivergenceError::ShapeMismatch {
                x: (10, 2),
                y: (11, 2)
            })
        ));
        assert!(matches!(
            sliced_wasserstein(&x, &cloud(10, 3, 1), 10, &mut rng(0)),
            Err(DivergenceError::ShapeMismatch { .. })
        ));
        let empty = DMatrix::<f64>::zeros(0, 2);
        assert!(matches!(
            sliced_wasserstein(&empty, &empty, 10, &mut rng(0)),
            Err(DivergenceError::Empty { .. })
        ));
        assert!(matches!(
            sliced_wasserstein(&x, &x, 0, &mut rng(0)),
            Err(DivergenceError::TooFew { .. })
        ));
        let mut bad = x.clone();
        bad[(3, 1)] = f64::NAN;
        assert!(matches!(
            sliced_wasserstein(&x, &bad, 10, &mut rng(0)),
            Err(DivergenceError::InvalidValue { what: "y", .. })
        ));
    }

    #[test]
    fn kl_monte_carlo_matches_the_diagonal_closed_form() {
        let (mp, vp, mq, vq) = ([0.0, 1.0], [1.0, 0.5], [0.5, 0.0], [2.0, 0.8]);
        let p = mixture(Covariance::Diag, &[1.0], &mp, &vp);
        let q = mixture(Covariance::Diag, &[1.0], &mq, &vq);
        let exact = kl_gaussian_diag(&mp, &vp, &mq, &vq).unwrap();
        let mc = kl_monte_carlo(&p, &q, 50_000, &mut rng(12)).unwrap();
        assert!(mc.std_error > 0.0 && mc.std_error < 0.01, "{mc:?}");
        assert!(
            (mc.value - exact).abs() < 4.0 * mc.std_error,
            "MC {mc:?}, exact {exact}"
        );
    }

    #[test]
    fn kl_monte_carlo_of_a_mixture_with_itself_is_zero() {
        let p = mixture(
            Covariance::Full,
            &[0.3, 0.7],
            &[-1.0, 2.0, 2.0, 0.5],
            &[1.0, 0.6, 0.6, 0.8, 0.5, -0.3, -0.3, 2.0],
        );
        let mc = kl_monte_carlo(&p, &p, 1000, &mut rng(13)).unwrap();
        assert_eq!(mc.value, 0.0);
        assert_eq!(mc.std_error, 0.0);
    }

    #[test]
    fn kl_monte_carlo_matches_quadrature_for_mixtures() {
        // Two 1-D, 2-component mixtures: the exact KL by quadrature on a
        // fine grid, then the Monte Carlo estimate within 4 standard errors.
        let p = mixture(Covariance::Diag, &[0.4, 0.6], &[-1.5, 1.0], &[0.5, 1.0]);
        let q = mixture(
            Covariance::Spherical,
            &[0.7, 0.3],
            &[-0.5, 2.0],
            &[1.5, 0.3],
        );
        let (lo, hi, m) = (-15.0, 15.0, 30_001);
        let h = (hi - lo) / (m - 1) as f64;
        let grid = DMatrix::from_fn(m, 1, |i, _| lo + h * i as f64);
        let (lp, lq) = (p.score_samples(&grid), q.score_samples(&grid));
        let exact: f64 = lp.iter().zip(&lq).map(|(a, b)| a.exp() * (a - b) * h).sum();
        // Cross-checked with an independent quadrature in Python.
        assert!((exact - 0.072_067_77).abs() < 1e-8, "{exact}");
        let mc = kl_monte_carlo(&p, &q, 50_000, &mut rng(14)).unwrap();
        assert!(mc.value > 0.0);
        assert!(
            (mc.value - exact).abs() < 4.0 * mc.std_error,
            "MC {mc:?}, quadrature {exact}"
        );
        // The other direction differs (KL is not symmetric; quadrature in
        // Python gives 0.0768645) and is positive too.
        let back = kl_monte_carlo(&q, &p, 50_000, &mut rng(15)).unwrap();
        assert!(back.value - 4.0 * back.std_error > 0.0, "{back:?}");
        assert!(
            (back.value - 0.076_864_51).abs() < 4.0 * back.std_error,
            "{back:?}"
        );
    }

    #[test]
    fn kl_monte_carlo_rejects_bad_input() {
        let p = mixture(Covariance::Spherical, &[1.0], &[0.0, 0.0], &[1.0]);
        let q = mixture(Covariance::Spherical, &[1.0], &[0.0, 0.0, 0.0], &[1.0]);
        let err = kl_monte_carlo(&p, &q, 100, &mut rng(0)).unwrap_err();
        assert_eq!(err, DivergenceError::DimensionMismatch { p: 2, q: 3 });
        assert!(err.to_string().contains("2-dimensional"), "{err}");
        assert!(matches!(
            kl_monte_carlo(&p, &p, 1, &mut rng(0)),
            Err(DivergenceError::TooFew { .. })
        ));
        let empty = GaussianMixture {
            covariance: Covariance::Spherical,
            weights: vec![],
            means: vec![],
            covariances: vec![],
            precisions_cholesky: vec![],
        };
        assert!(matches!(
            kl_monte_carlo(&empty, &p, 100, &mut rng(0)),
            Err(DivergenceError::InvalidMixture { which: "p", .. })
        ));
    }
}
