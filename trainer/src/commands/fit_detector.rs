//! `tinygen fit detector`: window features, standardization, a Gaussian
//! mixture and an alarm threshold calibrated on held-out normal data, in one
//! `.tgm` the device runs as `Detector::is_anomaly`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;

use super::recipe::{self, LearnedDensity, LearningArgs};
use super::{DataArgs, EnsembleArgs, MixtureArgs, NeuralArgs, Readable};
use tinygen_runtime::detector::Features;

use crate::density::gmm::Components;
use crate::detector::density::RegCovar;
use crate::detector::fit::{AlarmCounts, DetectorFit, fit_detector};
use crate::detector::inputs::{DetectorInputs, detector_inputs};
use crate::detector::on_device::learn_on_host;
use crate::host::AlignedBytes;
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
    /// Write a recipe for a detector that learns on the device instead of
    /// a fitted one: a Gaussian mixture (-k, default 1; --covariance,
    /// --reg-covar) over the features and, as the default detector, a
    /// second one with reg-covar 0.01 (the sum of their robust z-scores;
    /// --one-density: the first alone), learned from the first --learn
    /// normal inputs the device sees (K > 1: --learn-iterations EM passes
    /// from a k-means++ start drawn with --seed) and with its threshold at
    /// --alarm-rate of the next --calibrate (default: the normal inputs
    /// split by --holdout, in order). The device's learner also runs here
    /// over the data's normal inputs.
    #[arg(
        long,
        conflicts_with_all = ["neural", "members", "subsample", "single", "min_weight"]
    )]
    pub on_device_recipe: bool,
    /// Normal inputs the device learns its density from.
    #[arg(long, value_name = "N", requires = "on_device_recipe")]
    pub learn: Option<u32>,
    /// Normal inputs after those that set the device's threshold.
    #[arg(long, value_name = "M", requires = "on_device_recipe")]
    pub calibrate: Option<u32>,
    /// EM passes the device makes over its stored features when K > 1.
    #[arg(long, default_value_t = 100, requires = "on_device_recipe")]
    pub learn_iterations: u32,
    /// Also write the detector the device learns from the data's normal
    /// inputs (the same bytes; see `tinygen info`).
    #[arg(long, value_name = "FILE", requires = "on_device_recipe")]
    pub learned: Option<PathBuf>,
    /// Output detector file (.tgm), written atomically.
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `tinygen fit detector`.
pub fn run(args: &FitDetectorArgs) -> anyhow::Result<()> {
    crate::io::check_model_out(&args.out)?;
    if let Some(learned) = &args.learned {
        crate::io::check_model_out(learned)?;
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
    if args.on_device_recipe {
        return on_device(args, features, dim, &inputs, labels.as_deref());
    }
    let neural = args.neural.options(args.seed)?;
    let fit = DetectorFit {
        density: args
            .ensemble
            .density(&args.mixture, args.seed, neural.is_some()),
        alarm_rate: args.alarm_rate,
        holdout: args.holdout,
        seed: args.seed,
        neural,
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
        Readable(fitted.threshold),
        score_name(&fitted.bytes),
        fitted.held_alarms,
        fitted.held_out
    );
    if let Some(error) = fitted.int8_error {
        println!("{error}");
    }
    if let Some(labels) = &labels {
        print_alarm_counts(&fitted.alarm_counts(labels));
    }
    let bytes = fitted.bytes;
    write_atomic(&args.out, &bytes).context("cannot write the detector")?;
    println!("wrote {} ({} bytes)", args.out.display(), bytes.len());
    Ok(())
}

/// What the detector file's score is.
fn score_name(bytes: &[u8]) -> &'static str {
    let file = AlignedBytes::new(bytes);
    match tinygen_runtime::Detector::from_bytes(file.as_bytes()) {
        Ok(d) if d.has_neural() => {
            "sum of robust z-scores of -log p, reconstruction error, latent -log q"
        }
        Ok(d) if d.has_second_density() => "sum of the two densities' robust z-scores of -log p",
        _ => "-log p",
    }
}

fn print_alarm_counts(counts: &AlarmCounts) {
    println!(
        "on all labelled rows: {} of {} anomalies flagged, {} of {} normal rows flagged",
        counts.flagged_anomalies, counts.anomalies, counts.flagged_normal, counts.normal
    );
}

/// `--on-device-recipe`: the recipe, and what the device learns from the
/// data's normal inputs in order.
fn on_device(
    args: &FitDetectorArgs,
    features: Features,
    dim: usize,
    inputs: &[f32],
    labels: Option<&[f64]>,
) -> anyhow::Result<()> {
    let input_len = features.window().map_or(dim, |(c, l)| c * l);
    let normal: Vec<f32> = inputs
        .chunks_exact(input_len)
        .enumerate()
        .filter(|(i, _)| labels.is_none_or(|l| l[*i] == 0.0))
        .flat_map(|(_, x)| x.iter().copied())
        .collect();
    let available = normal.len() / input_len;
    let default_learn = ((available as f64) * (1.0 - args.holdout)).round() as u32;
    let learn = args.learn.unwrap_or(default_learn);
    let calibrate = args
        .calibrate
        .unwrap_or((available as u32).saturating_sub(learn));
    let components = match args.mixture.components {
        None => 1,
        Some(Components::Fixed(k)) => u32::try_from(k)?,
        Some(_) => {
            bail!("a detector learned on the device has a fixed number of components (-k N)")
        }
    };
    let density = LearnedDensity {
        components,
        covariance: args.mixture.covariance,
        reg_covar: args.mixture.reg_covar.unwrap_or(RegCovar::Scott),
    };
    let learning = LearningArgs {
        alarm_rate: args.alarm_rate,
        learn_iterations: args.learn_iterations,
        seed: args.seed,
        one_density: args.ensemble.one_density,
    };
    let (recipe, bytes) = recipe::make(&density, &learning, features, dim, learn, calibrate)?;
    let learned = learn_on_host(&recipe, &normal)?;
    let aligned = AlignedBytes::new(&learned.file);
    let detector = learned.detector(&aligned)?;
    println!(
        "on this data's {available} normal inputs in order, the device learns threshold {} \
         ({} inputs taken, {} refused)",
        Readable(detector.threshold()),
        learned.taken,
        learned.refused
    );
    if let Some(labels) = labels {
        let flags: Vec<bool> = inputs
            .chunks_exact(input_len)
            .map(|x| detector.is_anomaly(x).unwrap_or(true))
            .collect();
        print_alarm_counts(&AlarmCounts::of(&flags, labels));
    }
    write_atomic(&args.out, &bytes).context("cannot write the recipe")?;
    println!("wrote {} ({} bytes)", args.out.display(), bytes.len());
    if let Some(path) = &args.learned {
        write_atomic(path, &learned.file).context("cannot write the learned detector")?;
        println!("wrote {} ({} bytes)", path.display(), learned.file.len());
    }
    Ok(())
}
