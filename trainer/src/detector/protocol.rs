//! The PyOD evaluation protocol: for each given train/test split,
//! standardize with the train part's mean and population standard
//! deviation, fit on the (unlabelled) train part (or, in the novelty
//! protocol, on its normal rows only), score the test part with
//! the runtime crate (f32, the device's code), and measure ROC-AUC and
//! average precision of the anomaly score (`-log p`, or the combined score
//! with autoencoder terms, see [`super::neural`]) against the labels.

use std::path::Path;

use anyhow::{Context, ensure};
use nalgebra::DMatrix;

use super::density::Density;
use super::fit::Scorer;
use super::metrics::{average_precision, roc_auc};
use super::neural::{Int8Error, NeuralOptions};
use crate::data::Dataset;

/// One split's result.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitResult {
    /// Index of the split in the splits file.
    pub split: usize,
    /// ROC-AUC of the anomaly score on the test part.
    pub roc_auc: f64,
    /// Average precision of the anomaly score on the test part.
    pub average_precision: f64,
    /// Size of the fitted model file in bytes.
    pub model_bytes: usize,
    /// Multiply-accumulates of one score by the runtime (`AnyModel::macs`).
    pub model_macs: usize,
    /// How far the int8 autoencoder is from the f32 one, if quantized.
    pub int8_error: Option<Int8Error>,
}

/// Results over all splits.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Per split, in file order.
    pub per_split: Vec<SplitResult>,
}

impl Report {
    /// Mean ROC-AUC over the splits.
    pub fn roc_auc(&self) -> f64 {
        self.per_split.iter().map(|s| s.roc_auc).sum::<f64>() / self.per_split.len() as f64
    }

    /// Mean average precision over the splits.
    pub fn average_precision(&self) -> f64 {
        self.per_split
            .iter()
            .map(|s| s.average_precision)
            .sum::<f64>()
            / self.per_split.len() as f64
    }

    /// `{"roc_auc": mean, "average_precision": mean, "per_split": [...]}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "roc_auc": self.roc_auc(),
            "average_precision": self.average_precision(),
            "per_split": self.per_split.iter().map(|s| serde_json::json!({
                "split": s.split,
                "roc_auc": s.roc_auc,
                "average_precision": s.average_precision,
                "model_bytes": s.model_bytes,
                "model_macs": s.model_macs,
                "int8_error": s.int8_error.map(|e| serde_json::json!({
                    "rows": e.rows,
                    "codes_max": e.codes.0,
                    "codes_mean": e.codes.1,
                    "reconstructions_max": e.reconstructions.0,
                    "reconstructions_mean": e.reconstructions.1,
                })),
            })).collect::<Vec<_>>(),
        })
    }
}

/// Reads a splits file: one line per split, the 0-based train row indices.
pub fn read_splits(path: &Path, rows: usize) -> anyhow::Result<Vec<Vec<usize>>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read splits file {}", path.display()))?;
    let splits: Vec<Vec<usize>> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            l.split_whitespace()
                .map(|v| {
                    let i: usize = v.parse().with_context(|| {
                        format!(
                            "{} line {}: {v:?} is not a row index",
                            path.display(),
                            n + 1
                        )
                    })?;
                    ensure!(
                        i < rows,
                        "{} line {}: row {i} out of range (data has {rows} rows)",
                        path.display(),
                        n + 1
                    );
                    Ok(i)
                })
                .collect()
        })
        .collect::<anyhow::Result<_>>()?;
    ensure!(!splits.is_empty(), "{} holds no splits", path.display());
    Ok(splits)
}

/// Which train rows a detector is fitted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// All of them, outliers included (PyOD's protocol).
    #[default]
    Unsupervised,
    /// The normal ones only (label 0), as a detector calibrated on a
    /// healthy machine is.
    Novelty,
}

/// A detector fitted on one split, and the split's test part.
pub struct FittedSplit {
    /// The fitted detector.
    pub scorer: Scorer,
    /// The test rows' indices in the data set.
    pub test_idx: Vec<usize>,
    /// The test rows, row-major, f32 (as the runtime reads them).
    pub test_x: Vec<f32>,
}

/// Fits `detector` (and `neural`) on the split whose train rows are
/// `train_idx` as `protocol` says (all of them, or the normal ones).
pub fn fit_split(
    set: &Dataset,
    train_idx: &[usize],
    detector: &Density,
    neural: Option<&NeuralOptions>,
    protocol: Protocol,
) -> anyhow::Result<FittedSplit> {
    let labels = set
        .labels
        .as_ref()
        .context("the data set needs a label column (--label-column)")?;
    let mut is_train = vec![false; set.rows];
    train_idx.iter().for_each(|&i| is_train[i] = true);
    let test_idx: Vec<usize> = (0..set.rows).filter(|&i| !is_train[i]).collect();
    let fit_idx: Vec<usize> = match protocol {
        Protocol::Unsupervised => train_idx.to_vec(),
        Protocol::Novelty => train_idx
            .iter()
            .copied()
            .filter(|&i| labels[i] == 0.0)
            .collect(),
    };
    ensure!(!fit_idx.is_empty(), "no row to fit on");
    let train = set.select_rows(&fit_idx);
    let train_x = DMatrix::from_row_slice(train.rows, train.cols, &train.values);
    let test_x = set.select_rows(&test_idx).to_f32();
    Ok(FittedSplit {
        scorer: Scorer::fit(detector, neural, &train_x)?,
        test_idx,
        test_x,
    })
}

/// Runs the unsupervised protocol (see [`evaluate_with`]).
pub fn evaluate(
    set: &Dataset,
    splits: &[Vec<usize>],
    detector: &Density,
    neural: Option<&NeuralOptions>,
) -> anyhow::Result<Report> {
    evaluate_with(set, splits, detector, neural, Protocol::Unsupervised)
}

/// Runs `protocol` on a labelled data set (label != 0 marks an outlier)
/// with the density `detector`, and the autoencoder terms when `neural` is
/// given.
pub fn evaluate_with(
    set: &Dataset,
    splits: &[Vec<usize>],
    detector: &Density,
    neural: Option<&NeuralOptions>,
    protocol: Protocol,
) -> anyhow::Result<Report> {
    let labels = set
        .labels
        .as_ref()
        .context("the data set needs a label column (--label-column)")?;
    let per_split = splits
        .iter()
        .enumerate()
        .map(|(split, train_idx)| {
            let FittedSplit {
                scorer,
                test_idx,
                test_x,
            } = fit_split(set, train_idx, detector, neural, protocol)
                .with_context(|| format!("split {split}"))?;
            let (model, scores) = scorer
                .score(&test_x)
                .with_context(|| format!("split {split}"))?;
            let aligned = crate::host::AlignedBytes::new(&model);
            let model_macs = tinygen_runtime::AnyModel::from_bytes(aligned.as_bytes())
                .map_err(|e| anyhow::anyhow!("split {split}: {e}"))?
                .macs();
            let outlier_score: Vec<f64> = scores.iter().map(|&s| f64::from(s)).collect();
            let is_outlier: Vec<bool> = test_idx.iter().map(|&i| labels[i] != 0.0).collect();
            Ok(SplitResult {
                split,
                roc_auc: roc_auc(&outlier_score, &is_outlier)
                    .context("a test part has only one class")?,
                average_precision: average_precision(&outlier_score, &is_outlier)
                    .context("a test part has no outliers")?,
                model_bytes: model.len(),
                model_macs,
                int8_error: scorer.int8_error(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Report { per_split })
}
