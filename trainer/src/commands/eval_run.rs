//! `tinygen eval RUN`: recompute a run's metrics on any data set.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::data::images::Split;
use crate::nn::fit::DataSource;
use crate::nn::metrics::{EvalOptions, evaluate, file_reconstruction, output_grid_reconstruction};
use crate::nn::run::load_run;

/// Arguments of `tinygen eval RUN`.
#[derive(Debug, Clone, Args)]
pub struct EvalRunArgs {
    /// Run folder written by `tinygen fit pca|ae|vae|swae|gan`.
    pub run: PathBuf,
    /// Data: a named set (`digits`, `mnist`) or a file (default: the run's
    /// training data set).
    #[arg(long)]
    pub data: Option<String>,
    /// Folder holding the MNIST IDX files.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Split of a named set.
    #[arg(long, value_enum, default_value_t = SplitArg::Test)]
    pub split: SplitArg,
    /// Label column of CSV/NPY data.
    #[arg(long, value_name = "NAME")]
    pub label_column: Option<String>,
    /// Importance samples per row for the VAE's log-likelihood (0: skip).
    #[arg(long, default_value_t = 64)]
    pub iw_samples: usize,
    /// Seed of the random draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also report `file_reconstruction`: the reconstruction loss when the
    /// run's encoder codes go through this decoder file, run by the runtime
    /// (for example the run's `--quantize int8` export); for an int8 file
    /// also `output_grid_reconstruction`, the run's f32 decoder with only
    /// its outputs rounded to the file's output grid.
    #[arg(long, value_name = "FILE")]
    pub decoder: Option<PathBuf>,
}

/// A split of a named data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitArg {
    /// The training split.
    Train,
    /// The test split.
    Test,
}

/// Runs `tinygen eval RUN`: prints the metrics as one JSON object.
pub fn run(args: &EvalRunArgs) -> anyhow::Result<()> {
    let (config, net, _) = load_run(&args.run)?;
    let run_data = DataSource::of_run(&config);
    let source = DataSource {
        data: args.data.clone().unwrap_or(run_data.data),
        data_dir: args.data_dir.clone().or(run_data.data_dir),
        label_column: args.label_column.clone().or(run_data.label_column),
        test_data: None,
    };
    let samples = source.load_split(match args.split {
        SplitArg::Train => Split::Train,
        SplitArg::Test => Split::Test,
    })?;
    let metrics = evaluate(
        &net,
        &samples,
        EvalOptions {
            iw_samples: args.iw_samples,
            seed: args.seed,
            samples: true,
        },
    )?;
    let mut json = serde_json::to_value(&metrics)?;
    if let Some(path) = &args.decoder {
        let file = crate::host::AlignedBytes::read(path)?;
        let loss = file_reconstruction(&net, &samples, file.as_bytes())
            .with_context(|| format!("decoding with {}", path.display()))?;
        json["file_reconstruction"] = loss.into();
        if let Some(grid) = output_grid_reconstruction(&net, &samples, file.as_bytes())? {
            json["output_grid_reconstruction"] = grid.into();
        }
        json["decoder_file"] = path.display().to_string().into();
    }
    println!("{json}");
    Ok(())
}
