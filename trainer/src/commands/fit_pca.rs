//! `tinygen fit pca`: principal components in closed form, written as a run
//! folder holding a linear encoder/decoder pair.

use std::path::PathBuf;

use clap::Args;

use super::fit_neural::{NeuralDataArgs, print_metrics};
use crate::nn::config::NetworkKind;
use crate::nn::fit::{default_run_folder, fit_pca_run};

/// Arguments of `tinygen fit pca`.
#[derive(Debug, Clone, Args)]
pub struct FitPcaArgs {
    #[command(flatten)]
    pub data: NeuralDataArgs,
    /// Number of components k.
    #[arg(long, short = 'k', default_value_t = 2)]
    pub components: usize,
    /// Run folder (default: runs/pca).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Do not write PNG plots.
    #[arg(long)]
    pub no_plots: bool,
}

/// Runs `tinygen fit pca`.
pub fn run(args: &FitPcaArgs) -> anyhow::Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_run_folder(NetworkKind::Pca));
    let metrics = fit_pca_run(&args.data.source(), args.components, &out, !args.no_plots)?;
    print_metrics(&metrics)
}
