//! `tinygen fit classifier` (the feature network of the quality measure)
//! and `tinygen eval quality` (generated rows against a data set's test
//! split).

use std::path::PathBuf;

use anyhow::{Context, ensure};
use clap::Args;

use super::fit_neural::NeuralDataArgs;
use crate::data::images::Split;
use crate::io::write_atomic;
use crate::nn::quality::{FeatureExtractor, quality, train_classifier};

/// Arguments of `tinygen fit classifier`.
#[derive(Debug, Clone, Args)]
pub struct FitClassifierArgs {
    #[command(flatten)]
    pub data: NeuralDataArgs,
    /// Width of the hidden layer (relu), whose values are the features.
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// Passes over the training data.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Seed of the initial weights and the batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Model file to write (an encoder: rows in, class logits out).
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `tinygen fit classifier`: trains, writes the file, prints the
/// accuracy on the test split (JSON).
pub fn run_fit(args: &FitClassifierArgs) -> anyhow::Result<()> {
    let (train, test) = args.data.source().load()?;
    let bytes = train_classifier(&train, args.hidden, args.epochs, args.seed)?;
    write_atomic(&args.out, &bytes)?;
    let extractor = FeatureExtractor::from_file(&bytes)?;
    let eval = test.as_ref().unwrap_or(&train);
    let labels = eval
        .labels
        .as_ref()
        .context("the evaluation rows have no labels")?;
    let predicted = extractor.classify(&eval.x)?;
    let right = predicted
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p == **l as usize)
        .count();
    println!(
        "{}",
        serde_json::json!({
            "model": args.out.display().to_string(),
            "bytes": bytes.len(),
            "accuracy": right as f64 / eval.n as f64,
            "eval_rows": eval.n,
            "eval_split": if test.is_some() { "test" } else { "train" },
        })
    );
    Ok(())
}

/// Arguments of `tinygen eval quality`.
#[derive(Debug, Clone, Args)]
pub struct EvalQualityArgs {
    /// Generated rows: CSV with a header (`tinygen sample`'s output).
    #[arg(long)]
    pub samples: PathBuf,
    #[command(flatten)]
    pub data: NeuralDataArgs,
    /// The classifier whose hidden layer gives the features (default:
    /// models/mnist-classifier/model.tgm).
    #[arg(long)]
    pub classifier: Option<PathBuf>,
    /// Seed of the sliced Wasserstein directions.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs `tinygen eval quality`: the Fréchet distance of the classifier's
/// features and the sliced Wasserstein distance between the samples and as
/// many rows of the test split (JSON).
pub fn run_eval(args: &EvalQualityArgs) -> anyhow::Result<()> {
    let path = args
        .classifier
        .clone()
        .unwrap_or_else(|| PathBuf::from("models/mnist-classifier/model.tgm"));
    let bytes = std::fs::read(&path)
        .with_context(|| format!("cannot read the classifier {}", path.display()))?;
    let extractor = FeatureExtractor::from_file(&bytes)?;
    let real = args.data.source().load_split(Split::Test)?;
    let generated = crate::data::load(&args.samples, &Default::default())?;
    ensure!(
        generated.cols == real.dim && generated.cols == extractor.input_dim(),
        "{} has {} values per row; the data have {} and the classifier takes {}",
        args.samples.display(),
        generated.cols,
        real.dim,
        extractor.input_dim()
    );
    let n = generated.rows.min(real.n);
    let g = generated.to_f32();
    let q = quality(
        &extractor,
        &g[..n * real.dim],
        &real.x[..n * real.dim],
        args.seed,
    )?;
    println!("{}", serde_json::to_string(&q)?);
    Ok(())
}
