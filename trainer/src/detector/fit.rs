//! Fitting a detector: features, standardization and density on the normal
//! inputs, the autoencoder part if asked for, and the alarm threshold
//! calibrated on a held-out part of the normal inputs.

use anyhow::ensure;
use nalgebra::DMatrix;
use tinygen_runtime::detector::Features;
use tinygen_runtime::features::window_stats;
use tinygen_runtime::{AnyModel, Detector};

use super::calibrate::calibrate_threshold;
use super::density::Density;
use super::neural::{NeuralOptions, fit_neural_part};
use crate::host::{self, AlignedBytes};

/// Fits the density and the neural part on `train_x` (feature rows) and
/// encodes a detector with `features` and `threshold`; `train_f32` is
/// `train_x` as the runtime sees it, for the combination's constants.
pub(crate) fn fit_neural_detector(
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
