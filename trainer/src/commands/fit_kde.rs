//! `tinygen fit kde`: fit a Gaussian kernel density estimate and write a `.tgm` model.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use nalgebra::DMatrix;
use tinygen_runtime::ModelKind;

use super::DataArgs;
use crate::data::{self, LoadOptions};
use crate::density::kde::{Bandwidth, KdeOptions, Reduce, fit_kde};
use crate::density::standardize::Standardizer;
use crate::io::write_atomic;

/// How `--max-points` picks the kernel centres.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReduceArg {
    /// k-means centroids weighted by cluster mass.
    Kmeans,
    /// A random subset.
    Random,
}

/// Arguments of `tinygen fit kde`.
#[derive(Debug, Clone, Args)]
pub struct FitKdeArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Bandwidth: scott, silverman, or a positive factor (scipy's bw_method).
    #[arg(long, default_value = "scott", allow_negative_numbers = true)]
    pub bandwidth: Bandwidth,
    /// Column of per-point weights (excluded from the features).
    #[arg(long, value_name = "COLUMN")]
    pub weights: Option<String>,
    /// Use only the diagonal of the kernel covariance.
    #[arg(long)]
    pub diagonal: bool,
    /// Use the fixed kernel covariance H² I (scikit-learn KernelDensity's
    /// bandwidth) instead of a --bandwidth rule.
    #[arg(long, value_name = "H", conflicts_with_all = ["bandwidth", "diagonal"])]
    pub isotropic: Option<f64>,
    /// Keep at most M kernel centres (the bandwidth still uses all points);
    /// the cost in log-density is measured and printed.
    #[arg(long, value_name = "M")]
    pub max_points: Option<usize>,
    /// How to choose the centres kept by --max-points.
    #[arg(long, value_enum, default_value_t = ReduceArg::Kmeans)]
    pub reduce: ReduceArg,
    /// Seed of the reduction.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Standardize features first (train mean and population std); the
    /// device then applies the same transform to raw values.
    #[arg(long)]
    pub standardize: bool,
    /// Output model file (.tgm), written atomically.
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `tinygen fit kde`.
pub fn run(args: &FitKdeArgs) -> anyhow::Result<()> {
    crate::io::check_model_out(&args.out)?;
    let (set, weights) = match &args.weights {
        None => (args.data.load()?, None),
        Some(column) => {
            // The weights column is read as the "label"; a real label column is dropped.
            let mut drop = args.data.drop_columns.clone();
            drop.extend(args.data.label_column.clone());
            let opts = LoadOptions {
                label_column: Some(column.clone()),
                drop_columns: drop,
            };
            let set = data::load(&args.data.data, &opts)?;
            let w = set.labels.clone();
            (set, w)
        }
    };
    let raw = DMatrix::from_row_slice(set.rows, set.cols, &set.values);
    let standardizer = args.standardize.then(|| Standardizer::fit(&raw));
    let x = standardizer
        .as_ref()
        .map_or_else(|| raw.clone(), |s| s.apply(&raw));
    let opts = KdeOptions {
        bandwidth: args.bandwidth,
        diagonal: args.diagonal,
        isotropic: args.isotropic,
        max_points: args.max_points,
        reduce: match args.reduce {
            ReduceArg::Kmeans => Reduce::KMeans,
            ReduceArg::Random => Reduce::Random,
        },
        seed: args.seed,
    };
    let kde = fit_kde(&x, weights.as_deref(), &opts)?;
    println!(
        "Gaussian KDE on {} rows x {} features: factor {:.6}, n_eff {:.1}, {} kernel centres, {} bandwidth matrix",
        set.rows,
        set.cols,
        kde.factor,
        kde.n_eff,
        kde.mixture.components(),
        match (args.isotropic, args.diagonal) {
            (Some(_), _) => "isotropic",
            (None, true) => "diagonal",
            (None, false) => "full",
        }
    );
    let scores = kde.mixture.score_samples(&x);
    println!(
        "mean log-density on the data {:.6}",
        scores.iter().sum::<f64>() / scores.len() as f64
    );
    if kde.mixture.components() < set.rows {
        let full = fit_kde(
            &x,
            weights.as_deref(),
            &KdeOptions {
                max_points: None,
                ..opts
            },
        )?;
        let exact = full.mixture.score_samples(&x);
        let err = exact
            .iter()
            .zip(&scores)
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>()
            / scores.len() as f64;
        println!(
            "reduction to {} centres: mean |log p - log p_full| = {err:.4} over the data",
            kde.mixture.components()
        );
    }
    let bytes = kde
        .mixture
        .params(standardizer.as_ref().map(Standardizer::encoded))
        .encode_as(ModelKind::Kde)
        .context("cannot encode the model")?;
    write_atomic(&args.out, &bytes)?;
    println!("wrote {} ({} bytes)", args.out.display(), bytes.len());
    Ok(())
}
