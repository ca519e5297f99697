//! Fitting a detector: features, standardization and density on the normal
//! inputs, the second density or the autoencoder part if asked for
//! (together a [`Scorer`]), and the alarm threshold calibrated on a
//! held-out part of the normal inputs.

use anyhow::{Context, ensure};
use nalgebra::DMatrix;
use tinygen_runtime::detector::{Features, SecondDensityParams};
use tinygen_runtime::features::window_stats;
use tinygen_runtime::{AnyModel, Detector};

use super::calibrate::{Combination, calibrate_threshold};
use super::density::{Density, FittedDensity};
use super::neural::{Int8Error, NeuralOptions, NeuralPart, fit_neural_part};
use crate::host::{self, AlignedBytes};

/// The scoring part of a detector fitted on feature rows: the density, and
/// a second density or the autoencoder part with the calibrated constants
/// of the combined score when asked for.
#[derive(Debug, Clone)]
pub struct Scorer {
    /// The density and its standardization.
    pub density: FittedDensity,
    /// The neural part and the constants of the combined score, if any.
    pub neural: Option<(NeuralPart, Combination<3>)>,
    /// The second density and the constants of the combined score, if any.
    pub second: Option<(FittedDensity, Combination<2>)>,
}

impl Scorer {
    /// Fits `density` (for a pair both), and the neural part when `neural`
    /// is given, on `train_x` (feature rows); the combination's constants
    /// come from the runtime's terms on the same rows.
    pub fn fit(
        density: &Density,
        neural: Option<&NeuralOptions>,
        train_x: &DMatrix<f64>,
    ) -> anyhow::Result<Self> {
        ensure!(
            neural.is_none() || !matches!(density, Density::Pair(_)),
            "a detector has a second density or a neural part, not both"
        );
        let (density, second) = density.fit_densities(train_x)?;
        let train_f32: Vec<f32> = (0..train_x.nrows())
            .flat_map(|i| (0..train_x.ncols()).map(move |j| train_x[(i, j)] as f32))
            .collect();
        let neural = neural
            .map(|opts| {
                let part = fit_neural_part(train_x, &density.standardizer, opts)?;
                let combination = part.calibrate(&density.params(), density.kind, &train_f32)?;
                anyhow::Ok((part, combination))
            })
            .transpose()?;
        let second = second
            .map(|second| {
                let raw = pair_params(&second, Combination::RAW);
                let file = density.params().encode_pair_detector(
                    density.kind,
                    Features::Identity,
                    f32::MAX,
                    &raw,
                )?;
                let file = AlignedBytes::new(&file);
                let detector =
                    Detector::from_bytes(file.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
                let terms = host::detector_terms(&detector, &train_f32)?;
                anyhow::Ok((second, Combination::measure(&terms)?))
            })
            .transpose()?;
        Ok(Self {
            density,
            neural,
            second,
        })
    }

    /// How far the int8 autoencoder is from the f32 one, if quantized.
    pub fn int8_error(&self) -> Option<Int8Error> {
        self.neural
            .as_ref()
            .and_then(|(part, _)| part.int8())
            .map(|q| q.error)
    }

    /// A file that scores feature rows (the density file, or a detector on
    /// identity features without threshold) and the anomaly scores it
    /// gives `rows` (feature rows, row-major; higher = more anomalous:
    /// `-ln p` or the combined score), computed by the runtime crate.
    pub fn score(&self, rows: &[f32]) -> anyhow::Result<(Vec<u8>, Vec<f32>)> {
        Ok(match (&self.neural, &self.second) {
            (None, None) => {
                let file = self.density.encode()?;
                let scores = host::run_file(&file, rows)?.iter().map(|s| -s).collect();
                (file, scores)
            }
            _ => {
                let file = self.encode(Features::Identity, f32::MAX)?;
                let scores = host::run_file(&file, rows)?;
                (file, scores)
            }
        })
    }

    /// The detector file with input `features` and alarm `threshold`.
    pub fn encode(&self, features: Features, threshold: f32) -> anyhow::Result<Vec<u8>> {
        let (params, kind) = (self.density.params(), self.density.kind);
        match (&self.neural, &self.second) {
            (Some((part, combination)), _) => {
                part.encode(&params, kind, features, threshold, *combination)
            }
            (None, Some((second, combination))) => {
                let second = pair_params(second, *combination);
                Ok(params.encode_pair_detector(kind, features, threshold, &second)?)
            }
            (None, None) => Ok(params.encode_detector(kind, features, threshold)?),
        }
    }
}

/// A second density as the runtime's writer takes it.
fn pair_params(second: &FittedDensity, combination: Combination<2>) -> SecondDensityParams<'_> {
    SecondDensityParams {
        kind: second.kind,
        density: second.params(),
        center: combination.center,
        scale: combination.scale,
    }
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
    /// How far the int8 autoencoder is from the f32 one, if quantized.
    pub int8_error: Option<Int8Error>,
}

impl FittedDetector {
    /// How its alarms fall on `labels` (one per input, 0 = normal).
    pub fn alarm_counts(&self, labels: &[f64]) -> AlarmCounts {
        AlarmCounts::of(&self.flags, labels)
    }
}

impl AlarmCounts {
    /// How `flags` (one per input) fall on `labels` (0 = normal).
    pub fn of(flags: &[bool], labels: &[f64]) -> Self {
        let mut counts = Self::default();
        for (&flag, &label) in flags.iter().zip(labels) {
            let (inputs, flagged) = if label != 0.0 {
                (&mut counts.anomalies, &mut counts.flagged_anomalies)
            } else {
                (&mut counts.normal, &mut counts.flagged_normal)
            };
            *inputs += 1;
            *flagged += usize::from(flag);
        }
        counts
    }
}

/// A detector's alarms on labelled inputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlarmCounts {
    /// Anomalous inputs (label != 0).
    pub anomalies: usize,
    /// Anomalous inputs that raise an alarm.
    pub flagged_anomalies: usize,
    /// Normal inputs (label 0).
    pub normal: usize,
    /// Normal inputs that raise an alarm (false alarms).
    pub flagged_normal: usize,
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
    let scorer = Scorer::fit(&fit.density, fit.neural.as_ref(), &train_x).with_context(|| {
        format!(
            "fitting on {} of the {} normal points (the other {held} set the threshold)",
            train.len(),
            normal.len()
        )
    })?;
    let held_points: Vec<f32> = calibration
        .iter()
        .flat_map(|&i| rows[i].iter().copied())
        .collect();
    // The scores do not depend on the input features or the threshold:
    // calibrate on feature rows, then write the file.
    let (_, held_scores) = scorer.score(&held_points)?;
    let threshold = calibrate_threshold(&held_scores, fit.alarm_rate)?;
    let bytes = scorer.encode(features, threshold)?;
    let file = AlignedBytes::new(&bytes);
    let detector = Detector::from_bytes(file.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let threshold = detector.threshold();
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
        int8_error: scorer.int8_error(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::density::{Ensemble, Pair};

    /// Rows of two Gaussian clusters in `d` dimensions.
    fn clusters(n: usize, d: usize) -> DMatrix<f64> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        DMatrix::from_fn(n, d, |i, j| {
            // Box-Muller: one standard normal from two uniforms.
            let (u, v) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
            let z = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
            z + if i % 3 == 0 { 4.0 } else { 0.0 } + j as f64
        })
    }

    fn row_major(x: &DMatrix<f64>) -> Vec<f32> {
        (0..x.nrows())
            .flat_map(|i| (0..x.ncols()).map(move |j| x[(i, j)] as f32))
            .collect()
    }

    #[test]
    fn a_pair_scores_the_robust_z_scores_of_its_standalone_densities() {
        let x = clusters(400, 4);
        let pair = Density::Pair(Box::new(Pair::halves(Ensemble::bagged(0))));
        let scorer = Scorer::fit(&pair, None, &x).unwrap();
        let (second, combination) = scorer.second.as_ref().expect("a second density");
        let rows = row_major(&x);
        // Each half on its own, as a plain density file.
        let nll = |d: &FittedDensity| -> Vec<f64> {
            let file = d.encode().unwrap();
            assert!(file.len() <= 32 * 1024, "{} bytes", file.len());
            host::run_file(&file, &rows)
                .unwrap()
                .iter()
                .map(|&v| -f64::from(v))
                .collect()
        };
        let (first, other) = (nll(&scorer.density), nll(second));
        // The constants are the medians (and IQR / 1.349) over the training rows.
        for (terms, (&c, &s)) in [&first, &other]
            .into_iter()
            .zip(combination.center.iter().zip(&combination.scale))
        {
            let mut t = terms.clone();
            t.sort_by(f64::total_cmp);
            let median = (t[199] + t[200]) / 2.0;
            assert!((f64::from(c) - median).abs() < 1e-4 * median.abs().max(1.0));
            assert!(s > 0.0);
        }
        let (file, scores) = scorer.score(&rows).unwrap();
        assert!(file.len() <= 64 * 1024);
        for (i, &score) in scores.iter().enumerate() {
            let want = (first[i] - f64::from(combination.center[0]))
                / f64::from(combination.scale[0])
                + (other[i] - f64::from(combination.center[1])) / f64::from(combination.scale[1]);
            assert!(
                (f64::from(score) - want).abs() < 1e-4 * want.abs().max(1.0),
                "row {i}: {score} vs {want}"
            );
        }
        // The second density is regularised more: it is not the first.
        assert_ne!(first, other);
    }

    #[test]
    fn a_pair_on_data_too_wide_for_a_half_is_the_default_detector() {
        // 70 features: a K = 4 member fits 64 KiB (up to 88), not 32 (up to 60).
        let x = clusters(300, 70);
        let pair = Pair::halves(Ensemble::bagged(0));
        assert!(pair.first.is_wide(70) && !Ensemble::bagged(0).is_wide(70));
        let scorer = Scorer::fit(&Density::Pair(Box::new(pair)), None, &x).unwrap();
        assert!(scorer.second.is_none());
        let default = Scorer::fit(&Density::Ensemble(Ensemble::bagged(0)), None, &x).unwrap();
        let rows = row_major(&x);
        assert_eq!(scorer.score(&rows).unwrap(), default.score(&rows).unwrap());
        // A pair and a neural part do not go together.
        let neural = super::super::neural::NeuralOptions::default();
        let pair = Density::Pair(Box::new(Pair::halves(Ensemble::bagged(0))));
        assert!(Scorer::fit(&pair, Some(&neural), &x).is_err());
    }
}
