//! The `tinygen` subcommands, one module each.
pub mod data;
pub mod detect;
pub mod eval_anomaly;
pub mod eval_run;
pub mod fit_detector;
pub mod fit_gmm;
pub mod fit_kde;
pub mod fit_neural;
pub mod fit_pca;
pub mod info;
pub mod score;

use std::path::PathBuf;

use clap::Args;

use crate::data::{Dataset, LoadOptions};
use crate::density::gmm::{Components, EmOptions};
use fit_gmm::CovarianceArg;

/// Where the data comes from and which columns to use.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Data file: CSV (optionally gzipped, with or without a header) or NPY.
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
    /// Loads and checks the data set.
    pub fn load(&self) -> anyhow::Result<Dataset> {
        let opts = LoadOptions {
            label_column: self.label_column.clone(),
            drop_columns: self.drop_columns.clone(),
        };
        Ok(crate::data::load(&self.data, &opts)?)
    }
}

/// The mixture options shared by every command that fits one.
#[derive(Debug, Clone, Args)]
pub struct MixtureArgs {
    /// Number of mixture components K: a number, a range A..B, or auto
    /// (1..8); for a range, EM fits each count and keeps the lowest BIC.
    #[arg(long, short = 'k', default_value = "1")]
    pub components: Components,
    /// Covariance structure.
    #[arg(long, value_enum, default_value_t = CovarianceArg::Full)]
    pub covariance: CovarianceArg,
    /// Non-negative regularisation added to the covariance diagonal.
    #[arg(long, default_value_t = 1e-6)]
    pub reg_covar: f64,
}

impl MixtureArgs {
    /// EM options with these settings (scikit-learn's defaults otherwise).
    pub fn em_options(&self, seed: u64) -> EmOptions {
        EmOptions {
            covariance: self.covariance.into(),
            reg_covar: self.reg_covar,
            seed,
            ..EmOptions::default()
        }
    }
}
