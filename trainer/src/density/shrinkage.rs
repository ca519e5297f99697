//! One Gaussian with a shrunk covariance, for data too wide for mixtures.
//!
//! The Oracle Approximating Shrinkage estimate of Chen, Wiesel, Eldar and
//! Hero ("Shrinkage algorithms for MMSE covariance estimation", IEEE
//! Trans. Signal Processing 58(10), 2010), in scikit-learn's form
//! (`sklearn.covariance.OAS`): the sample covariance `S` (divided by n)
//! pulled towards `mu I`, `mu = tr(S) / p`, by a weight the data set:
//!
//! ```text
//! a = mean of S's squared entries
//! s = min((a + mu^2) / ((n + 1) (a - mu^2 / p)), 1)   (1 when the denominator is 0)
//! Sigma = (1 - s) S + s mu I
//! ```
//!
//! Unlike a fixed `reg_covar`, the weight falls as n grows against p and
//! rises to 1 when n < p, where `S` is singular.

use nalgebra::DMatrix;

use super::gmm::{FitError, GaussianMixture};
use crate::linalg::gram;

/// The OAS estimate of `x`'s rows (n x p): mean, covariance and shrinkage.
#[derive(Debug, Clone, PartialEq)]
pub struct Oas {
    /// The rows' mean (p).
    pub mean: Vec<f64>,
    /// The shrunk covariance (p x p).
    pub covariance: DMatrix<f64>,
    /// The weight of `mu I`, in [0, 1].
    pub shrinkage: f64,
}

/// The OAS estimate of the rows of `x`; an error for fewer than 2 rows or
/// when every feature is constant (the target `mu I` is then 0).
pub fn oas(x: &DMatrix<f64>) -> Result<Oas, FitError> {
    let (n, p) = x.shape();
    if n < 2 || p == 0 {
        return Err(FitError::Invalid(format!(
            "a shrunk covariance needs at least 2 rows and 1 feature, not {n} x {p}"
        )));
    }
    let mean: Vec<f64> = x.column_iter().map(|c| c.mean()).collect();
    let mut centred = x.clone();
    for (mut col, m) in centred.column_iter_mut().zip(&mean) {
        col.add_scalar_mut(-m);
    }
    let mut covariance = gram(&centred, &centred) / n as f64;
    let mu = covariance.trace() / p as f64;
    if !(mu > 0.0 && mu.is_finite()) {
        return Err(FitError::Invalid(
            "every feature is constant (or not finite): no covariance to shrink".into(),
        ));
    }
    let alpha = covariance.iter().map(|v| v * v).sum::<f64>() / (p * p) as f64;
    let den = (n as f64 + 1.0) * (alpha - mu * mu / p as f64);
    let shrinkage = if den == 0.0 {
        1.0
    } else {
        ((alpha + mu * mu) / den).min(1.0)
    };
    covariance *= 1.0 - shrinkage;
    for j in 0..p {
        covariance[(j, j)] += shrinkage * mu;
    }
    Ok(Oas {
        mean,
        covariance,
        shrinkage,
    })
}

impl Oas {
    /// The estimate as a one-component full-covariance mixture.
    pub fn mixture(&self) -> Result<GaussianMixture, FitError> {
        GaussianMixture::gaussian(&self.mean, &self.covariance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isotropic_target_and_limits() {
        // Two features, one a multiple of the other: S is singular, the
        // estimate is not, and it keeps S's trace.
        let x = DMatrix::from_row_slice(4, 2, &[0.0, 0.0, 1.0, 2.0, 2.0, 4.0, 3.0, 6.0]);
        let e = oas(&x).unwrap();
        assert!(e.shrinkage > 0.0 && e.shrinkage <= 1.0);
        let s = gram(
            &(x.clone() - DMatrix::from_fn(4, 2, |_, j| e.mean[j])),
            &(x - DMatrix::from_fn(4, 2, |_, j| e.mean[j])),
        ) / 4.0;
        assert!((e.covariance.trace() - s.trace()).abs() < 1e-12);
        assert!(e.covariance.clone().cholesky().is_some());
        assert!(s.cholesky().is_none());
        // Fewer rows than features: S is singular, the estimate is not.
        let wide = DMatrix::from_fn(3, 8, |i, j| ((i * 7 + j * 3) % 5) as f64);
        assert!(oas(&wide).unwrap().covariance.cholesky().is_some());
        // Nothing to shrink, and too few rows.
        assert!(oas(&DMatrix::from_element(5, 3, 2.0)).is_err());
        assert!(oas(&DMatrix::from_element(1, 3, 2.0)).is_err());
    }
}
