//! The `tinygen` subcommands, one module each.
pub mod detect;
pub mod eval_anomaly;
pub mod fit_detector;
pub mod fit_gmm;
pub mod fit_kde;
pub mod info;
pub mod score;

use std::path::PathBuf;

use clap::Args;

use crate::data::{self, Dataset, LoadOptions};

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
        Ok(data::load(&self.data, &opts)?)
    }
}
