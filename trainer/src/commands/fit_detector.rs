//! `tinygen fit detector`: window features, standardization, a Gaussian
//! mixture and an alarm threshold calibrated on held-out normal data, in one
//! `.tgm` the device runs as `Detector::is_anomaly`.

use std::path::PathBuf;

use anyhow::{Context, bail, ensure};
use clap::Args;
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tinygen_runtime::detector::Features;
use tinygen_runtime::features::{STATS, window_stats};
use tinygen_runtime::{Detector, ModelKind};

use super::DataArgs;
use super::fit_gmm::CovarianceArg;
use crate::anomaly::{calibrate_threshold, log_densities, windows};
use crate::density::gmm::{EmOptions, fit_em};
use crate::density::standardize::Standardizer;
use crate::io::{AlignedBytes, write_atomic};

/// Arguments of `tinygen fit detector`.
#[derive(Debug, Clone, Args)]
pub struct FitDetectorArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Number of mixture components.
    #[arg(long, short = 'k', default_value_t = 1)]
    pub components: usize,
    /// Covariance structure.
    #[arg(long, value_enum, default_value_t = CovarianceArg::Full)]
    pub covariance: CovarianceArg,
    /// Regularisation added to the covariance diagonal.
    #[arg(long, default_value_t = 1e-6)]
    pub reg_covar: f64,
    /// Fraction of held-out normal points that may raise an alarm.
    #[arg(long, default_value_t = 0.01)]
    pub alarm_rate: f64,
    /// Fraction of the normal points held out to calibrate the threshold.
    #[arg(long, default_value_t = 0.2)]
    pub holdout: f64,
    /// Treat rows as a time series and score windows of N rows, summarised
    /// per channel by mean, std, min and max.
    #[arg(long, value_name = "N")]
    pub window: Option<usize>,
    /// Rows between the starts of consecutive windows (default: the window length).
    #[arg(long, value_name = "S", requires = "window")]
    pub stride: Option<usize>,
    /// Seed of the hold-out split and the initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output detector file (.tgm), written atomically.
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `tinygen fit detector`.
pub fn run(args: &FitDetectorArgs) -> anyhow::Result<()> {
    if args.out.extension().is_none_or(|e| e != "tgm") {
        bail!(
            "output file {} should have the .tgm extension",
            args.out.display()
        );
    }
    ensure!(
        args.holdout > 0.0 && args.holdout < 1.0,
        "--holdout must be in (0, 1)"
    );
    let set = args.data.load()?;
    // Points (or windows) and their labels, then the density's input rows.
    let (features, dim, inputs, labels) = match args.window {
        None => (
            Features::Identity,
            set.cols,
            set.to_f32(),
            set.labels.clone(),
        ),
        Some(length) => {
            let (inputs, labels) = windows(&set, length, args.stride.unwrap_or(length))?;
            let channels = u32::try_from(set.cols)?;
            let features = Features::WindowStats {
                channels,
                length: u32::try_from(length)?,
            };
            (features, STATS.len() * set.cols, inputs, labels)
        }
    };
    let input_len = input_width(&features, dim);
    let rows: Vec<Vec<f32>> = inputs
        .chunks_exact(input_len)
        .map(|x| match features {
            Features::Identity => Ok(x.to_vec()),
            Features::WindowStats { channels, .. } => {
                let mut out = vec![0.0; dim];
                window_stats(x, channels as usize, &mut out).map(|()| out)
            }
        })
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("window features: {e}"))?;

    // Fit and calibrate on normal rows only (label 0) when labels are given.
    let mut normal: Vec<usize> = (0..rows.len())
        .filter(|&i| labels.as_ref().is_none_or(|l| l[i] == 0.0))
        .collect();
    normal.shuffle(&mut ChaCha8Rng::seed_from_u64(args.seed));
    let held = ((normal.len() as f64) * args.holdout).round() as usize;
    ensure!(
        held >= 1 && normal.len() - held >= 2,
        "too few normal points ({}) to fit and hold out",
        normal.len()
    );
    let (calibration, train) = normal.split_at(held);
    let matrix =
        |idx: &[usize]| DMatrix::from_fn(idx.len(), dim, |r, j| f64::from(rows[idx[r]][j]));
    let train_x = matrix(train);
    let standardizer = Standardizer::fit(&train_x);
    let opts = EmOptions {
        components: args.components,
        covariance: args.covariance.into(),
        reg_covar: args.reg_covar,
        seed: args.seed,
        ..EmOptions::default()
    };
    let (mixture, _) = fit_em(&standardizer.apply(&train_x), &opts, &mut |_, _, _| {})?;
    let params = mixture.params(Some(standardizer.encoded()));

    let held_points: Vec<f32> = calibration
        .iter()
        .flat_map(|&i| rows[i].iter().copied())
        .collect();
    let held_scores: Vec<f32> = log_densities(&params.encode()?, &held_points)?
        .iter()
        .map(|s| -s)
        .collect();
    let threshold = calibrate_threshold(&held_scores, args.alarm_rate)?;
    let bytes = params.encode_detector(ModelKind::Gmm, features, threshold)?;

    // Report what the device will do, with the device's code.
    let file = AlignedBytes::new(&bytes);
    let detector = Detector::from_bytes(file.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let flags: Vec<bool> = inputs
        .chunks_exact(input_len)
        .map(|x| detector.is_anomaly(x))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("scoring: {e}"))?;
    let held_alarms = calibration.iter().filter(|&&i| flags[i]).count();
    println!(
        "{} {} on {} rows of {} features; threshold {threshold} (score = -log p); \
         {held_alarms} of {} held-out normal points alarm",
        rows.len(),
        if args.window.is_some() {
            "windows"
        } else {
            "points"
        },
        train.len(),
        dim,
        calibration.len()
    );
    if let Some(labels) = &labels {
        let (mut hits, mut anomalies, mut false_alarms) = (0, 0, 0);
        for (flag, &label) in flags.iter().zip(labels) {
            if label != 0.0 {
                anomalies += 1;
                hits += usize::from(*flag);
            } else {
                false_alarms += usize::from(*flag);
            }
        }
        println!(
            "on all labelled rows: {hits} of {anomalies} anomalies flagged, {false_alarms} of {} normal rows flagged",
            flags.len() - anomalies
        );
    }
    write_atomic(&args.out, &bytes).context("cannot write the detector")?;
    println!("wrote {} ({} bytes)", args.out.display(), bytes.len());
    Ok(())
}

/// Values per input: a point, or a whole window.
fn input_width(features: &Features, dim: usize) -> usize {
    match *features {
        Features::Identity => dim,
        Features::WindowStats { channels, length } => channels as usize * length as usize,
    }
}
