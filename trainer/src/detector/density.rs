//! The density part of a detector: which density model scores the
//! standardized features (a Gaussian mixture or a KDE), its regularisation,
//! and fitting it to a detector's training rows.

use nalgebra::DMatrix;
use tinygen_runtime::ModelKind;
use tinygen_runtime::gmm::GmmParams;

use crate::density::gmm::{Components, EmOptions, GaussianMixture, fit_em_select};
use crate::density::kde::{KdeOptions, fit_kde};
use crate::density::standardize::Standardizer;

/// Regularisation added to a detector's covariance diagonal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RegCovar {
    /// This value.
    Fixed(f64),
    /// Scott's rule: `h^2 = n^(-2 / (d + 4))` for n standardized training
    /// rows in d dimensions, the squared bandwidth a Gaussian KDE of the
    /// same data would use: every component is at least as wide as a
    /// kernel, which keeps small or degenerate components from fitting
    /// isolated points (outliers) tightly.
    Scott,
}

impl RegCovar {
    /// The value for `n` rows in `d` dimensions.
    pub fn value(&self, n: usize, d: usize) -> f64 {
        match self {
            Self::Fixed(v) => *v,
            Self::Scott => (n.max(1) as f64).powf(-2.0 / (d as f64 + 4.0)),
        }
    }
}

impl std::str::FromStr for RegCovar {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "scott" {
            return Ok(Self::Scott);
        }
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(Self::Fixed(v)),
            _ => Err(format!(
                "{s:?} is not a regularisation: expected a non-negative number or scott"
            )),
        }
    }
}

impl std::fmt::Display for RegCovar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fixed(v) => write!(f, "{v}"),
            Self::Scott => f.write_str("scott"),
        }
    }
}

/// A Gaussian-mixture density for anomaly scores.
#[derive(Debug, Clone)]
pub struct GmmDensity {
    /// EM options (their `reg_covar` is replaced by `reg`).
    pub em: EmOptions,
    /// Number of components, or a range to choose from by BIC.
    pub components: Components,
    /// Covariance regularisation.
    pub reg: RegCovar,
    /// Components lighter than this are dropped after the fit.
    pub min_weight: f64,
}

impl GmmDensity {
    /// tinygen's default detector density ("smoothed, pruned GMM"): K = 4
    /// full-covariance components with Scott's regularisation, components
    /// under 5 % weight dropped. See BENCHMARKS.md for how it was chosen.
    pub fn smoothed(seed: u64) -> Self {
        Self {
            em: EmOptions {
                seed,
                ..EmOptions::default()
            },
            components: Components::Fixed(4),
            reg: RegCovar::Scott,
            min_weight: 0.05,
        }
    }

    /// PyOD's GMM detector: one full-covariance Gaussian, reg_covar 1e-6.
    pub fn pyod() -> Self {
        Self {
            em: EmOptions::default(),
            components: Components::Fixed(1),
            reg: RegCovar::Fixed(1e-6),
            min_weight: 0.0,
        }
    }
}

/// Which density scores the points.
#[derive(Debug, Clone)]
pub enum Density {
    /// A Gaussian mixture fitted by EM.
    Gmm(GmmDensity),
    /// A Gaussian kernel density estimate.
    Kde(KdeOptions),
}

impl Density {
    /// Standardizes `train` (rows are points) and fits the density on it.
    pub fn fit_density(&self, train: &DMatrix<f64>) -> anyhow::Result<FittedDensity> {
        let standardizer = Standardizer::fit(train);
        let x = standardizer.apply(train);
        let (mixture, kind) = match self {
            Density::Gmm(g) => {
                let opts = EmOptions {
                    reg_covar: g.reg.value(x.nrows(), x.ncols()),
                    ..g.em.clone()
                };
                let (mixture, ..) = fit_em_select(&x, g.components, &opts, &mut |_, _, _| {})?;
                (mixture.retain_components(g.min_weight), ModelKind::Gmm)
            }
            Density::Kde(opts) => (fit_kde(&x, None, opts)?.mixture, ModelKind::Kde),
        };
        Ok(FittedDensity {
            mixture,
            standardizer,
            kind,
        })
    }

    /// Fits the density (see [`Density::fit_density`]) and returns its
    /// `.tgm` file (see [`FittedDensity::encode`]).
    pub fn fit(&self, train: &DMatrix<f64>) -> anyhow::Result<Vec<u8>> {
        self.fit_density(train)?.encode()
    }
}

/// A density fitted on standardized training rows.
#[derive(Debug, Clone)]
pub struct FittedDensity {
    /// The density of the standardized rows.
    pub mixture: GaussianMixture,
    /// The standardization of the training rows.
    pub standardizer: Standardizer,
    /// The density's file kind (`Gmm` or `Kde`).
    pub kind: ModelKind,
}

impl FittedDensity {
    /// The density's parameters with the standardization folded in, so
    /// they score raw rows.
    pub fn params(&self) -> GmmParams<'_> {
        self.mixture.params(Some(self.standardizer.encoded()))
    }

    /// The `.tgm` density file (scores `ln p` of raw rows).
    pub fn encode(&self) -> anyhow::Result<Vec<u8>> {
        Ok(self.params().encode_as(self.kind)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scott_regularisation_is_the_squared_kde_bandwidth() {
        // n^(-1/(d+4)) is scipy's Scott factor; its square is the variance.
        assert!((RegCovar::Scott.value(1000, 6) - 1000f64.powf(-0.2)).abs() < 1e-15);
        assert_eq!(RegCovar::Fixed(0.3).value(10, 2), 0.3);
        assert_eq!("scott".parse::<RegCovar>().unwrap(), RegCovar::Scott);
        assert_eq!("1e-6".parse::<RegCovar>().unwrap(), RegCovar::Fixed(1e-6));
        assert!("-1".parse::<RegCovar>().is_err());
        assert!("nan".parse::<RegCovar>().is_err());
    }
}
