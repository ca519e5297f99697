//! Density models as anomaly detectors, and the PyOD evaluation protocol:
//! for each given train/test split, standardize with the train part's mean
//! and population standard deviation, fit on the (unlabelled) train part,
//! score the test part with the runtime crate (f32, the device's code), and
//! measure ROC-AUC and average precision of the anomaly score (`-log p`, or
//! the combined score with autoencoder terms, see [`crate::neural_scores`])
//! against the labels.

use std::path::Path;

use anyhow::{Context, ensure};
use nalgebra::DMatrix;
use tinygen_runtime::detector::Features;
use tinygen_runtime::features::window_stats;
use tinygen_runtime::{AnyModel, Detector, ModelKind};

use crate::data::Dataset;
use crate::density::gmm::{Components, EmOptions, GaussianMixture, fit_em_select};
use crate::density::kde::{KdeOptions, fit_kde};
use crate::density::standardize::Standardizer;
use crate::eval::{average_precision, roc_auc};
use crate::host::{self, AlignedBytes};
use crate::neural_scores::{NeuralOptions, fit_neural_part};

/// Regularisation added to a detector's covariance diagonal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RegCovar {
    /// This value.
    Fixed(f64),
    /// Scott's rule: `h^2 = n^(-2 / (d + 4))` for n standardized training
    /// rows in d dimensions, the squared bandwidth a Gaussian KDE of the
    /// same data would use: every component is at least as wide as a
    /// kernel, which keeps small or degenerate components from fitting
    /// isolated points (outliers) tightly.
    Scott,
}

impl RegCovar {
    /// The value for `n` rows in `d` dimensions.
    pub fn value(&self, n: usize, d: usize) -> f64 {
        match self {
            Self::Fixed(v) => *v,
            Self::Scott => (n.max(1) as f64).powf(-2.0 / (d as f64 + 4.0)),
        }
    }
}

impl std::str::FromStr for RegCovar {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "scott" {
            return Ok(Self::Scott);
        }
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(Self::Fixed(v)),
            _ => Err(format!(
                "{s:?} is not a regularisation: expected a non-negative number or scott"
            )),
        }
    }
}

impl std::fmt::Display for RegCovar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fixed(v) => write!(f, "{v}"),
            Self::Scott => f.write_str("scott"),
        }
    }
}

/// A Gaussian-mixture density for anomaly scores.
#[derive(Debug, Clone)]
pub struct GmmDensity {
    /// EM options (their `reg_covar` is replaced by `reg`).
    pub em: EmOptions,
    /// Number of components, or a range to choose from by BIC.
    pub components: Components,
    /// Covariance regularisation.
    pub reg: RegCovar,
    /// Components lighter than this are dropped after the fit.
    pub min_weight: f64,
}

impl GmmDensity {
    /// tinygen's default detector density ("smoothed, pruned GMM"): K = 4
    /// full-covariance components with Scott's regularisation, components
    /// under 5 % weight dropped. See BENCHMARKS.md for how it was chosen.
    pub fn smoothed(seed: u64) -> Self {
        Self {
            em: EmOptions {
                seed,
                ..EmOptions::default()
            },
            components: Components::Fixed(4),
            reg: RegCovar::Scott,
            min_weight: 0.05,
        }
    }

    /// PyOD's GMM detector: one full-covariance Gaussian, reg_covar 1e-6.
    pub fn pyod() -> Self {
        Self {
            em: EmOptions::default(),
            components: Components::Fixed(1),
            reg: RegCovar::Fixed(1e-6),
            min_weight: 0.0,
        }
    }
}

/// Which density scores the points.
#[derive(Debug, Clone)]
pub enum Density {
    /// A Gaussian mixture fitted by EM.
    Gmm(GmmDensity),
    /// A Gaussian kernel density estimate.
    Kde(KdeOptions),
}

impl Density {
    /// Standardizes `train` (rows are points) and fits the density on it;
    /// returns the density, the standardization and the density's file kind.
    pub fn fit_density(
        &self,
        train: &DMatrix<f64>,
    ) -> anyhow::Result<(GaussianMixture, Standardizer, ModelKind)> {
        let standardizer = Standardizer::fit(train);
        let x = standardizer.apply(train);
        let (mixture, kind) = match self {
            Density::Gmm(g) => {
                let opts = EmOptions {
                    reg_covar: g.reg.value(x.nrows(), x.ncols()),
                    ..g.em.clone()
                };
                let (mixture, ..) = fit_em_select(&x, g.components, &opts, &mut |_, _, _| {})?;
                (mixture.retain_components(g.min_weight), ModelKind::Gmm)
            }
            Density::Kde(opts) => (fit_kde(&x, None, opts)?.mixture, ModelKind::Kde),
        };
        Ok((mixture, standardizer, kind))
    }

    /// Fits the density (see [`Density::fit_density`]) and returns its
    /// `.tgm` file (standardization folded in, so it scores raw rows).
    pub fn fit(&self, train: &DMatrix<f64>) -> anyhow::Result<Vec<u8>> {
        let (mixture, standardizer, kind) = self.fit_density(train)?;
        Ok(mixture
            .params(Some(standardizer.encoded()))
            .encode_as(kind)?)
    }
}

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

/// Runs the protocol on a labelled data set (label != 0 marks an outlier)
/// with the density `detector`, and the autoencoder terms when `neural` is
/// given.
pub fn evaluate(
    set: &Dataset,
    splits: &[Vec<usize>],
    detector: &Density,
    neural: Option<&NeuralOptions>,
) -> anyhow::Result<Report> {
    let labels = set
        .labels
        .as_ref()
        .context("the data set needs a label column (--label-column)")?;
    let per_split = splits
        .iter()
        .enumerate()
        .map(|(split, train_idx)| {
            let mut is_train = vec![false; set.rows];
            train_idx.iter().for_each(|&i| is_train[i] = true);
            let test_idx: Vec<usize> = (0..set.rows).filter(|&i| !is_train[i]).collect();
            let train = set.select_rows(train_idx);
            let train_x = DMatrix::from_row_slice(train.rows, train.cols, &train.values);
            let test_x = set.select_rows(&test_idx).to_f32();
            let (model, outlier_score): (Vec<u8>, Vec<f64>) = match neural {
                None => {
                    let model = detector
                        .fit(&train_x)
                        .with_context(|| format!("split {split}"))?;
                    let scores = host::run_file(&model, &test_x)?;
                    (model, scores.iter().map(|&s| -f64::from(s)).collect())
                }
                Some(opts) => {
                    let model = fit_neural_detector(
                        detector,
                        opts,
                        &train_x,
                        &train.to_f32(),
                        Features::Identity,
                        f32::MAX,
                    )
                    .with_context(|| format!("split {split}"))?;
                    let scores = host::run_file(&model, &test_x)?;
                    (model, scores.iter().map(|&s| f64::from(s)).collect())
                }
            };
            let is_outlier: Vec<bool> = test_idx.iter().map(|&i| labels[i] != 0.0).collect();
            Ok(SplitResult {
                split,
                roc_auc: roc_auc(&outlier_score, &is_outlier)
                    .context("a test part has only one class")?,
                average_precision: average_precision(&outlier_score, &is_outlier)
                    .context("a test part has no outliers")?,
                model_bytes: model.len(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Report { per_split })
}

/// Fits the density and the neural part on `train_x` (feature rows) and
/// encodes a detector with `features` and `threshold`; `train_f32` is
/// `train_x` as the runtime sees it, for the combination's constants.
fn fit_neural_detector(
    density: &Density,
    opts: &NeuralOptions,
    train_x: &DMatrix<f64>,
    train_f32: &[f32],
    features: Features,
    threshold: f32,
) -> anyhow::Result<Vec<u8>> {
    let (mixture, standardizer, kind) = density.fit_density(train_x)?;
    let params = mixture.params(Some(standardizer.encoded()));
    let part = fit_neural_part(train_x, &standardizer, opts)?;
    let combination = part.calibrate(&params, kind, train_f32)?;
    part.encode(&params, kind, features, threshold, combination)
}

/// Consecutive windows of `length` rows every `stride` rows of a time series
/// (rows = samples, columns = channels), each flattened time-major, with the
/// window's label (the largest label inside it) when the set has labels.
pub fn windows(
    set: &Dataset,
    length: usize,
    stride: usize,
) -> anyhow::Result<(Vec<f32>, Option<Vec<f64>>)> {
    ensure!(
        length > 0 && stride > 0,
        "--window and --stride must be positive"
    );
    ensure!(
        set.rows >= length,
        "the series has {} rows, shorter than one window of {length}",
        set.rows
    );
    let values = set.to_f32();
    let c = set.cols;
    let starts: Vec<usize> = (0..=set.rows - length).step_by(stride).collect();
    let points = starts
        .iter()
        .flat_map(|&s| values[s * c..(s + length) * c].iter().copied())
        .collect();
    let labels = set.labels.as_ref().map(|l| {
        starts
            .iter()
            .map(|&s| {
                l[s..s + length]
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect()
    });
    Ok((points, labels))
}

/// The alarm threshold that `alarm_rate` of `scores` reach: with `k =
/// floor(rate · n)`, the k-th largest score (so about that fraction of
/// these normal points raise an alarm), or just above the largest when k = 0.
pub fn calibrate_threshold(scores: &[f32], alarm_rate: f64) -> anyhow::Result<f32> {
    ensure!(
        !scores.is_empty(),
        "no held-out points to calibrate the threshold on"
    );
    ensure!(
        (0.0..1.0).contains(&alarm_rate),
        "--alarm-rate must be in [0, 1), got {alarm_rate}"
    );
    ensure!(
        scores.iter().all(|s| !s.is_nan()),
        "a held-out score is NaN"
    );
    let mut sorted = scores.to_vec();
    sorted.sort_by(f32::total_cmp);
    let k = (alarm_rate * sorted.len() as f64).floor() as usize;
    Ok(if k == 0 {
        sorted[sorted.len() - 1].next_up()
    } else {
        sorted[sorted.len() - k]
    })
}

/// How to fit a detector.
#[derive(Debug, Clone)]
pub struct DetectorFit {
    /// The density fitted to the standardized features of normal inputs.
    pub density: Density,
    /// Fraction of held-out normal inputs allowed to raise an alarm.
    pub alarm_rate: f64,
    /// Fraction of the normal inputs held out to calibrate the threshold.
    pub holdout: f64,
    /// Seed of the hold-out split.
    pub seed: u64,
    /// Autoencoder scores added to the density's, if any.
    pub neural: Option<NeuralOptions>,
}

/// A fitted detector file and what it does on its own data.
#[derive(Debug, Clone)]
pub struct FittedDetector {
    /// The `.tgm` detector file.
    pub bytes: Vec<u8>,
    /// Its alarm threshold on `-ln p`.
    pub threshold: f32,
    /// Normal inputs it was fitted on.
    pub train: usize,
    /// Normal inputs held out for calibration.
    pub held_out: usize,
    /// Held-out inputs that raise an alarm.
    pub held_alarms: usize,
    /// The runtime's alarm for every input, in order.
    pub flags: Vec<bool>,
}

/// Fits a detector on `inputs` (points, or windows for window features):
/// features, standardization and a mixture on the normal inputs (label 0,
/// or all when unlabelled) minus a held-out part, whose scores set the
/// threshold at `alarm_rate`. Scores are computed by the runtime crate.
pub fn fit_detector(
    features: Features,
    dim: usize,
    inputs: &[f32],
    labels: Option<&[f64]>,
    fit: &DetectorFit,
) -> anyhow::Result<FittedDetector> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;

    ensure!(
        fit.holdout > 0.0 && fit.holdout < 1.0,
        "--holdout must be in (0, 1)"
    );
    let input_len = features
        .window()
        .map_or(dim, |(channels, length)| channels * length);
    ensure!(
        input_len > 0 && inputs.len().is_multiple_of(input_len),
        "inputs are not whole points or windows"
    );
    let rows: Vec<Vec<f32>> = inputs
        .chunks_exact(input_len)
        .map(|x| match features {
            Features::Identity | Features::RawWindow { .. } => Ok(x.to_vec()),
            Features::WindowStats { channels, .. } => {
                let mut out = vec![0.0; dim];
                window_stats(x, channels as usize, &mut out).map(|()| out)
            }
        })
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("window features: {e}"))?;
    let mut normal: Vec<usize> = (0..rows.len())
        .filter(|&i| labels.is_none_or(|l| l[i] == 0.0))
        .collect();
    normal.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(fit.seed));
    let held = ((normal.len() as f64) * fit.holdout).round() as usize;
    ensure!(
        held >= 1 && normal.len() - held >= 2,
        "too few normal points ({}) to fit and hold out",
        normal.len()
    );
    let (calibration, train) = normal.split_at(held);
    let train_x = DMatrix::from_fn(train.len(), dim, |r, j| f64::from(rows[train[r]][j]));
    let (mixture, standardizer, kind) = fit.density.fit_density(&train_x)?;
    let params = mixture.params(Some(standardizer.encoded()));
    let held_points: Vec<f32> = calibration
        .iter()
        .flat_map(|&i| rows[i].iter().copied())
        .collect();
    let bytes = match &fit.neural {
        None => {
            let held_scores: Vec<f32> = host::run_file(&params.encode_as(kind)?, &held_points)?
                .iter()
                .map(|s| -s)
                .collect();
            let threshold = calibrate_threshold(&held_scores, fit.alarm_rate)?;
            params.encode_detector(kind, features, threshold)?
        }
        Some(opts) => {
            // The scores do not depend on the input features or the
            // threshold: calibrate on feature rows, then write the file.
            let part = fit_neural_part(&train_x, &standardizer, opts)?;
            let train_f32: Vec<f32> = train
                .iter()
                .flat_map(|&i| rows[i].iter().copied())
                .collect();
            let combination = part.calibrate(&params, kind, &train_f32)?;
            let on_features =
                part.encode(&params, kind, Features::Identity, f32::MAX, combination)?;
            let held_scores = host::run_file(&on_features, &held_points)?;
            let threshold = calibrate_threshold(&held_scores, fit.alarm_rate)?;
            part.encode(&params, kind, features, threshold, combination)?
        }
    };
    let file = AlignedBytes::new(&bytes);
    let detector = Detector::from_bytes(file.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let threshold = detector.spec().threshold;
    let flags: Vec<bool> = host::run_rows(&AnyModel::Detector(detector), inputs)?
        .into_iter()
        .map(|s| detector.alarm(s))
        .collect();
    let held_alarms = calibration.iter().filter(|&&i| flags[i]).count();
    Ok(FittedDetector {
        bytes,
        threshold,
        train: train.len(),
        held_out: calibration.len(),
        held_alarms,
        flags,
    })
}

/// Windows of `length` steps every `stride` steps inside each series (never
/// across two), flattened time-major, labelled 0 when the series' class is
/// one of `normal` (or when `normal` is empty) and 1 otherwise.
pub fn series_windows(
    set: &crate::data::ts::SeriesSet,
    length: usize,
    stride: usize,
    normal: &[String],
) -> anyhow::Result<(Vec<f32>, Vec<f64>)> {
    ensure!(
        length > 0 && stride > 0,
        "--window and --stride must be positive"
    );
    ensure!(
        length <= set.length,
        "windows of {length} are longer than the series ({})",
        set.length
    );
    let c = set.channels;
    let (mut points, mut labels) = (Vec::new(), Vec::new());
    for (i, class) in set.classes.iter().enumerate() {
        let series = set.series(i);
        let label = if normal.is_empty() || normal.contains(class) {
            0.0
        } else {
            1.0
        };
        for start in (0..=set.length - length).step_by(stride) {
            points.extend_from_slice(&series[start * c..(start + length) * c]);
            labels.push(label);
        }
    }
    Ok((points, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scott_regularisation_is_the_squared_kde_bandwidth() {
        // n^(-1/(d+4)) is scipy's Scott factor; its square is the variance.
        assert!((RegCovar::Scott.value(1000, 6) - 1000f64.powf(-0.2)).abs() < 1e-15);
        assert_eq!(RegCovar::Fixed(0.3).value(10, 2), 0.3);
        assert_eq!("scott".parse::<RegCovar>().unwrap(), RegCovar::Scott);
        assert_eq!("1e-6".parse::<RegCovar>().unwrap(), RegCovar::Fixed(1e-6));
        assert!("-1".parse::<RegCovar>().is_err());
        assert!("nan".parse::<RegCovar>().is_err());
    }

    #[test]
    fn threshold_lets_the_alarm_rate_through() {
        let scores: Vec<f32> = (0..100).map(|i| i as f32).collect();
        let t = calibrate_threshold(&scores, 0.05).unwrap();
        assert_eq!(scores.iter().filter(|&&s| s >= t).count(), 5);
        let none = calibrate_threshold(&scores, 0.0).unwrap();
        assert!(none > 99.0 && scores.iter().all(|&s| s < none));
        assert!(calibrate_threshold(&[], 0.1).is_err());
        assert!(calibrate_threshold(&scores, 1.0).is_err());
    }

    #[test]
    fn windows_are_time_major_with_their_largest_label() {
        let set = Dataset {
            columns: vec!["a".into(), "b".into()],
            rows: 5,
            cols: 2,
            values: (0..10).map(f64::from).collect(),
            labels: Some(vec![0.0, 0.0, 1.0, 0.0, 0.0]),
        };
        let (points, labels) = windows(&set, 2, 2).unwrap();
        assert_eq!(points, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(labels, Some(vec![0.0, 1.0]));
        assert!(windows(&set, 6, 1).is_err());
    }
}
