//! `tinygen eval anomaly`: the PyOD protocol (given splits, standardize on
//! train, fit unsupervised, ROC-AUC and average precision on test), or its
//! novelty variant (fit on the train part's normal rows).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{DataArgs, EnsembleArgs, MixtureArgs, NeuralArgs};
use crate::density::kde::{Bandwidth, KdeOptions};
use crate::detector::density::Density;
use crate::detector::protocol::{Protocol, evaluate_with, read_splits};

/// The density that scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DetectorKind {
    /// Gaussian mixture (EM).
    Gmm,
    /// Gaussian kernel density estimate.
    Kde,
}

/// Arguments of `tinygen eval anomaly`.
#[derive(Debug, Clone, Args)]
pub struct EvalAnomalyArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Splits file: one line per split, the 0-based row indices of the train part.
    #[arg(long)]
    pub splits: PathBuf,
    /// Density used as the anomaly score (-log p).
    #[arg(long, value_enum, default_value_t = DetectorKind::Gmm)]
    pub detector: DetectorKind,
    #[command(flatten)]
    pub mixture: MixtureArgs,
    #[command(flatten)]
    pub ensemble: EnsembleArgs,
    #[command(flatten)]
    pub neural: NeuralArgs,
    /// GMM: seed of the initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// KDE: scott, silverman, or a factor.
    #[arg(long, default_value = "scott", allow_negative_numbers = true)]
    pub bandwidth: Bandwidth,
    /// KDE: diagonal bandwidth matrix.
    #[arg(long)]
    pub diagonal: bool,
    /// KDE: fixed kernel covariance H² I (PyOD's KDE detector uses H = 1).
    #[arg(long, value_name = "H")]
    pub isotropic: Option<f64>,
    /// KDE: keep at most M kernel centres (k-means).
    #[arg(long, value_name = "M")]
    pub max_points: Option<usize>,
    /// Fit on the train part's normal rows only (novelty detection), not on
    /// all of them.
    #[arg(long)]
    pub novelty: bool,
    /// Print `{"roc_auc": ..., "average_precision": ..., "per_split": [...]}`.
    #[arg(long)]
    pub json: bool,
}

/// Runs `tinygen eval anomaly`.
pub fn run(args: &EvalAnomalyArgs) -> anyhow::Result<()> {
    if args.data.label_column.is_none() {
        anyhow::bail!(
            "--label-column is required: it names the column that marks outliers (non-zero)"
        );
    }
    let neural = args.neural.options(args.seed)?;
    let set = args.data.load()?;
    let splits = read_splits(&args.splits, set.rows)?;
    let detector = match args.detector {
        DetectorKind::Gmm => args
            .ensemble
            .density(&args.mixture, args.seed, neural.is_some()),
        DetectorKind::Kde => Density::Kde(KdeOptions {
            bandwidth: args.bandwidth,
            diagonal: args.diagonal,
            isotropic: args.isotropic,
            max_points: args.max_points,
            seed: args.seed,
            ..KdeOptions::default()
        }),
    };
    let protocol = if args.novelty {
        Protocol::Novelty
    } else {
        Protocol::Unsupervised
    };
    let report = evaluate_with(&set, &splits, &detector, neural.as_ref(), protocol)?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("split  roc_auc  average_precision  model_bytes");
        for s in &report.per_split {
            println!(
                "{:>5}  {:.4}   {:.4}             {}",
                s.split, s.roc_auc, s.average_precision, s.model_bytes
            );
            if let Some(error) = s.int8_error {
                println!("       {error}");
            }
        }
        println!(
            "mean   {:.4}   {:.4}",
            report.roc_auc(),
            report.average_precision()
        );
    }
    Ok(())
}
