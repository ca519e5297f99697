//! The `tinygen` subcommands, one module each.
pub mod data;
pub mod detect;
pub mod eval_anomaly;
pub mod eval_run;
pub mod export;
pub mod fit_detector;
pub mod fit_gmm;
pub mod fit_kde;
pub mod fit_neural;
pub mod fit_pca;
pub mod import;
pub mod info;
pub mod quality;
pub mod recipe;
pub mod score;

use std::path::PathBuf;

use clap::Args;

use crate::data::{Dataset, LoadOptions};
use crate::density::gmm::{Components, EmOptions};
use crate::detector::density::{Density, Ensemble, GmmDensity, Pair, RegCovar};
use crate::detector::neural::NeuralOptions;
use fit_gmm::CovarianceArg;

/// An f32 for people: as `{}` between 1e-4 and 1e7 in magnitude (and 0),
/// in exponent form (`{:e}`) outside, both the shortest form that reads
/// back as the same value. `{}` alone writes 1e-45 with 45 decimals.
pub(crate) struct Readable(pub f32);

impl std::fmt::Display for Readable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = self.0.abs();
        if a == 0.0 || !a.is_finite() || (1e-4..1e7).contains(&a) {
            write!(f, "{}", self.0)
        } else {
            write!(f, "{:e}", self.0)
        }
    }
}

/// Where the data comes from and which columns to use.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Data file: CSV or TSV (comma, tab or semicolon separated, found from
    /// the first lines; with or without a header; optionally gzipped), NPY,
    /// or MATLAB v5 `.mat` or NumPy `.npz` (matrix `X`, labels `y`).
    #[arg(long)]
    pub data: PathBuf,
    /// Column holding labels; it is excluded from the features.
    #[arg(long, value_name = "NAME")]
    pub label_column: Option<String>,
    /// Columns to exclude from the features (names, or 0-based indices).
    #[arg(long, value_name = "A,B,..", value_delimiter = ',')]
    pub drop_columns: Vec<String>,
}

impl DataArgs {
    /// How tables are loaded: the label column and the dropped columns.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            label_column: self.label_column.clone(),
            drop_columns: self.drop_columns.clone(),
        }
    }

    /// Loads and checks the data set.
    pub fn load(&self) -> anyhow::Result<Dataset> {
        Ok(crate::data::load(&self.data, &self.load_options())?)
    }
}

/// The mixture options shared by every command that fits one. Their
/// defaults differ: `fit gmm` defaults to scikit-learn's (K = 1, reg-covar
/// 1e-6, no pruning); `fit detector` and `eval anomaly` to the members of
/// tinygen's detector (K = 4, reg-covar scott, min-weight 0.05; see
/// [`GmmDensity::smoothed`] and [`EnsembleArgs`]).
#[derive(Debug, Clone, Args)]
pub struct MixtureArgs {
    /// Number of mixture components K: a number, a range A..B, or auto
    /// (1..8); for a range, EM fits each count and keeps the lowest BIC
    /// [default: 1 for fit gmm, 4 for detectors].
    #[arg(long, short = 'k')]
    pub components: Option<Components>,
    /// Covariance structure.
    #[arg(long, value_enum, default_value_t = CovarianceArg::Full)]
    pub covariance: CovarianceArg,
    /// Regularisation added to the covariance diagonal: a non-negative
    /// number, or scott (n^(-2/(d+4)), for standardized data)
    /// [default: 1e-6 for fit gmm, scott for detectors].
    #[arg(long)]
    pub reg_covar: Option<RegCovar>,
    /// Drop components lighter than this after the fit (weights are
    /// renormalised) [default: 0 for fit gmm, 0.05 for detectors].
    #[arg(long)]
    pub min_weight: Option<f64>,
}

impl MixtureArgs {
    /// The mixture of `fit gmm` (scikit-learn's defaults).
    pub fn gmm(&self, seed: u64) -> GmmDensity {
        self.resolve(GmmDensity {
            em: EmOptions {
                seed,
                ..EmOptions::default()
            },
            ..GmmDensity::pyod()
        })
    }

    /// The mixture of a detector (tinygen's default detector).
    pub fn detector(&self, seed: u64) -> GmmDensity {
        self.resolve(GmmDensity::smoothed(seed))
    }

    fn resolve(&self, defaults: GmmDensity) -> GmmDensity {
        GmmDensity {
            em: EmOptions {
                covariance: self.covariance.into(),
                ..defaults.em
            },
            components: self.components.unwrap_or(defaults.components),
            reg: self.reg_covar.unwrap_or(defaults.reg),
            min_weight: self.min_weight.unwrap_or(defaults.min_weight),
        }
    }
}

/// How a detector's density is built from mixtures (`fit detector`, `eval
/// anomaly`): by default two bagged ensembles ([`Pair::bagged`]: the
/// ensemble of [`Ensemble::bagged`] and the same with reg-covar 0.01, in
/// half the budget each), whose members take the mixture options (given any
/// of -k, --reg-covar and --min-weight, also on data too wide for the
/// budget, where the default fits one OAS-shrunk Gaussian; --reg-covar sets
/// the first ensemble's).
#[derive(Debug, Clone, Args)]
pub struct EnsembleArgs {
    /// One mixture on rows standardized by mean and standard deviation,
    /// without a size budget: tinygen's first default detector
    /// (BENCHMARKS.md compares the defaults).
    #[arg(long, conflicts_with_all = ["members", "subsample", "one_density"])]
    pub single: bool,
    /// One bagged ensemble in the whole 64 KiB budget, not two in half of
    /// it each: tinygen's second default detector (also what --neural adds
    /// its scores to). With --on-device-recipe: the device
    /// learns one mixture, not the pair.
    #[arg(long)]
    pub one_density: bool,
    /// Mixtures averaged into each density, each fitted on its own random
    /// subsample of the rows [default: 8].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub members: Option<u16>,
    /// Fraction of the training rows each member is fitted on, in (0, 1]
    /// [default: 0.5].
    #[arg(long)]
    pub subsample: Option<f64>,
}

impl EnsembleArgs {
    /// The detector density with these options and the members' `mixture`
    /// options: two ensembles, or one with `neural` (an autoencoder's
    /// scores are added to one density).
    pub fn density(&self, mixture: &MixtureArgs, seed: u64, neural: bool) -> Density {
        if self.single {
            return Density::Gmm(mixture.detector(seed));
        }
        let defaults = Ensemble::bagged(seed);
        let members = self.members.map_or(defaults.members.len(), usize::from);
        // Members the user described are fitted as described, wide data too.
        let described = mixture.components.is_some()
            || mixture.reg_covar.is_some()
            || mixture.min_weight.is_some();
        let ensemble = Ensemble {
            members: (0..members as u64)
                .map(|i| mixture.detector(seed.wrapping_add(i)))
                .collect(),
            subsample: self.subsample.unwrap_or(defaults.subsample),
            shrunk_when_wide: defaults.shrunk_when_wide && !described,
            ..defaults
        };
        if self.one_density || neural {
            Density::Ensemble(ensemble)
        } else {
            Density::Pair(Box::new(Pair::halves(ensemble)))
        }
    }
}

/// Which autoencoder adds its scores to a detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NeuralKind {
    /// A plain autoencoder.
    Ae,
    /// A variational autoencoder (its mean code is used).
    Vae,
}

/// Options of a detector's autoencoder scores (reconstruction error and
/// latent log-density, combined with the density's score as robust
/// z-scores; see `tinygen_runtime::detector`).
#[derive(Debug, Clone, Args)]
pub struct NeuralArgs {
    /// Add an autoencoder's scores to the density's: ae or vae.
    #[arg(long, value_enum)]
    pub neural: Option<NeuralKind>,
    /// Autoencoder: encoder hidden widths (the decoder mirrors them).
    #[arg(long, value_delimiter = ',', default_value = "32", requires = "neural")]
    pub neural_hidden: Vec<usize>,
    /// Autoencoder: latent dimension (default: D / 4, between 2 and 16).
    #[arg(long, requires = "neural")]
    pub neural_latent: Option<usize>,
    /// Autoencoder: optimisation steps (rounded up to whole epochs).
    #[arg(long, default_value_t = 2000, requires = "neural")]
    pub neural_steps: usize,
    /// Autoencoder: Adam learning rate.
    #[arg(long, default_value_t = 1e-3, requires = "neural")]
    pub neural_lr: f64,
    /// Autoencoder: components of the latent-code mixture.
    #[arg(long, default_value_t = 1, requires = "neural")]
    pub neural_components: usize,
    /// Quantize the autoencoder: int8 (TensorFlow Lite's scheme; activation
    /// ranges by min/max over the standardized training rows and their
    /// codes; the score's medians and IQRs measured on the int8 detector).
    /// Only with --neural.
    #[arg(long, value_enum)]
    pub quantize: Option<export::Quantize>,
}

impl NeuralArgs {
    /// The options, if `--neural` was given; an error for `--quantize`
    /// without `--neural`.
    pub fn options(&self, seed: u64) -> anyhow::Result<Option<NeuralOptions>> {
        use crate::nn::config::NetworkKind;
        if self.quantize.is_some() && self.neural.is_none() {
            anyhow::bail!(
                "--quantize int8 quantizes the detector's autoencoder, and there is none: \
                 add --neural ae or --neural vae (the density itself stays f32)"
            );
        }
        Ok(self.neural.map(|kind| NeuralOptions {
            kind: match kind {
                NeuralKind::Ae => NetworkKind::Ae,
                NeuralKind::Vae => NetworkKind::Vae,
            },
            hidden: self.neural_hidden.clone(),
            latent: self.neural_latent,
            steps: self.neural_steps,
            lr: self.neural_lr,
            latent_components: self.neural_components,
            seed,
            int8: self.quantize == Some(export::Quantize::Int8),
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_floats_are_short_and_read_back() {
        for (x, want) in [
            (f32::from_bits(1), "1e-45"),
            (-2.5e9, "-2.5e9"),
            (1e-5, "1e-5"),
            (3.25, "3.25"),
            (1e-4, "0.0001"),
            (-0.0, "-0"),
            (f32::INFINITY, "inf"),
        ] {
            let text = Readable(x).to_string();
            assert_eq!(text, want);
            assert_eq!(text.parse::<f32>().unwrap().to_bits(), x.to_bits());
        }
        assert_eq!(Readable(f32::NAN).to_string(), "NaN");
    }

    #[test]
    fn described_members_are_fitted_on_wide_data_too() {
        let ensemble = EnsembleArgs {
            single: false,
            one_density: true,
            members: None,
            subsample: None,
        };
        let mut mixture = MixtureArgs {
            components: None,
            covariance: CovarianceArg::Full,
            reg_covar: None,
            min_weight: None,
        };
        let shrunk = |m: &MixtureArgs| match ensemble.density(m, 0, false) {
            Density::Ensemble(e) => e.shrunk_when_wide,
            other => panic!("not an ensemble: {other:?}"),
        };
        assert!(shrunk(&mixture));
        mixture.reg_covar = Some(RegCovar::Fixed(0.01));
        assert!(!shrunk(&mixture));
    }

    #[test]
    fn the_default_is_a_pair_and_one_density_carries_an_autoencoder() {
        let mixture = MixtureArgs {
            components: None,
            covariance: CovarianceArg::Full,
            reg_covar: None,
            min_weight: None,
        };
        let args = |one_density| EnsembleArgs {
            single: false,
            one_density,
            members: None,
            subsample: None,
        };
        match args(false).density(&mixture, 0, false) {
            Density::Pair(pair) => {
                assert_eq!(pair.first.max_bytes, Some(32 * 1024));
                assert_eq!(pair.second.members[0].reg, RegCovar::Fixed(0.01));
                assert_eq!(pair.first.members[0].reg, RegCovar::Scott);
            }
            other => panic!("not a pair: {other:?}"),
        }
        for (one_density, neural) in [(true, false), (false, true)] {
            let density = args(one_density).density(&mixture, 0, neural);
            assert!(matches!(density, Density::Ensemble(_)), "{density:?}");
        }
    }
}
