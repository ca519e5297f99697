//! `tinygen fit detector`: window features, standardization, a Gaussian
//! mixture and an alarm threshold calibrated on held-out normal data, in one
//! `.tgm` the device runs as `Detector::is_anomaly`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;

use super::{DataArgs, EnsembleArgs, MixtureArgs, NeuralArgs};
use crate::detector::fit::{DetectorFit, fit_detector};
use crate::detector::inputs::{DetectorInputs, detector_inputs};
use crate::io::write_atomic;

/// Arguments of `tinygen fit detector`.
#[derive(Debug, Clone, Args)]
pub struct FitDetectorArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub mixture: MixtureArgs,
    #[command(flatten)]
    pub ensemble: EnsembleArgs,
    #[command(flatten)]
    pub neural: NeuralArgs,
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
    /// Score the raw window values (channels x length dimensions) instead
    /// of their per-channel statistics.
    #[arg(long, requires = "window")]
    pub raw_window: bool,
    /// Rows between the starts of consecutive windows (default: the window length).
    #[arg(long, value_name = "S", requires = "window")]
    pub stride: Option<usize>,
    /// For `.ts` series collections: the classes that are normal (the
    /// detector is fitted on their windows; other classes count as anomalies
    /// in the report).
    #[arg(long, value_name = "A,B,..", value_delimiter = ',')]
    pub normal_classes: Vec<String>,
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
    let DetectorInputs {
        features,
        dim,
        inputs,
        labels,
    } = detector_inputs(
        &args.data.data,
        &args.data.load_options(),
        args.window,
        args.stride,
        &args.normal_classes,
        args.raw_window,
    )?;
    let fit = DetectorFit {
        density: args.ensemble.density(&args.mixture, args.seed),
        alarm_rate: args.alarm_rate,
        holdout: args.holdout,
        seed: args.seed,
        neural: args.neural.options(args.seed)?,
    };
    let fitted = fit_detector(features, dim, &inputs, labels.as_deref(), &fit)?;
    println!(
        "{} {} of {} features; fitted on {}; threshold {} (score = {}); \
         {} of {} held-out normal points alarm",
        fitted.flags.len(),
        if args.window.is_some() {
            "windows"
        } else {
            "points"
        },
        dim,
        fitted.train,
        fitted.threshold,
        if args.neural.neural.is_some() {
            "sum of robust z-scores of -log p, reconstruction error, latent -log q"
        } else {
            "-log p"
        },
        fitted.held_alarms,
        fitted.held_out
    );
    if let Some(error) = fitted.int8_error {
        println!("{error}");
    }
    if let Some(labels) = &labels {
        let counts = fitted.alarm_counts(labels);
        println!(
            "on all labelled rows: {} of {} anomalies flagged, {} of {} normal rows flagged",
            counts.flagged_anomalies, counts.anomalies, counts.flagged_normal, counts.normal
        );
    }
    let bytes = fitted.bytes;
    write_atomic(&args.out, &bytes).context("cannot write the detector")?;
    println!("wrote {} ({} bytes)", args.out.display(), bytes.len());
    Ok(())
}
