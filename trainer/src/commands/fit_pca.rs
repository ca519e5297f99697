//! `tinygen fit pca`: principal components in closed form, written as a run
//! folder holding a linear encoder/decoder pair.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Map, json};

use super::fit_neural::{FinishOptions, NeuralDataArgs, finish};
use crate::nn::config::{RunConfig, TrainConfig};
use crate::nn::pca::fit_pca;
use crate::nn::run::{self, TrainState, save_checkpoint};

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
        .unwrap_or_else(|| PathBuf::from("runs/pca"));
    if out.join(run::CHECKPOINT).exists() {
        bail!(
            "{} already holds a run; choose another --out",
            out.display()
        );
    }
    let (train, test) = args.data.load()?;
    let pca = fit_pca(&train, args.components)?;
    let network = pca.network_config(&train);
    let config = RunConfig {
        data: args.data.data.clone(),
        data_dir: args.data.data_dir.as_ref().map(|p| p.display().to_string()),
        label_column: args.data.label_column.clone(),
        network: network.clone(),
        train: TrainConfig {
            epochs: 0,
            batch_size: 1,
            lr: 1.0,
            weight_decay: 0.0,
            seed: 0,
        },
    };
    let net = pca.network(network)?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    run::clean_run_folder(&out)?;
    config.write(&out)?;
    let state = TrainState::default();
    save_checkpoint(&out, &net, &state)?;
    let mut extra = Map::new();
    extra.insert("explained_variance".into(), json!(pca.explained_variance));
    extra.insert(
        "explained_variance_ratio".into(),
        json!(pca.explained_variance_ratio),
    );
    finish(
        &out,
        &net,
        &state,
        (&train, test.as_ref()),
        FinishOptions {
            iw_samples: 0,
            plots: !args.no_plots,
            extra,
        },
    )
}
