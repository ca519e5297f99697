//! `tinygen detect`: anomaly scores and alarms of a detector file, computed
//! by the runtime crate exactly as on the device.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use tinygen_runtime::{AnyModel, Detector};

use tinygen_runtime::detector::Features;

use super::DataArgs;
use crate::detector::inputs::{DetectorInputs, detector_inputs};
use crate::host::{self, AlignedBytes};
use crate::io::write_output;

/// Arguments of `tinygen detect`.
#[derive(Debug, Clone, Args)]
pub struct DetectArgs {
    /// Detector file (.tgm) from `tinygen fit detector`.
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// For windowed detectors: rows between window starts (default: the window length).
    #[arg(long, value_name = "S")]
    pub stride: Option<usize>,
    /// Output CSV (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs `tinygen detect`: writes `score,anomaly` (1 or 0) per point or window, in order.
pub fn run(args: &DetectArgs) -> anyhow::Result<()> {
    let file = AlignedBytes::read(&args.model)?;
    let detector = Detector::from_bytes(file.as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.model.display()))?;
    let spec_features = detector.spec().features;
    let (window, channels) = match spec_features.window() {
        None => (None, detector.input_len()),
        Some((channels, length)) => (Some(length), channels),
    };
    let DetectorInputs {
        features,
        dim,
        inputs,
        ..
    } = detector_inputs(
        &args.data.data,
        &args.data.load_options(),
        window,
        args.stride,
        &[],
        matches!(spec_features, Features::RawWindow { .. }),
    )?;
    let given = features.window().map_or(dim, |(channels, _)| channels);
    if given != channels {
        bail!(
            "{} has {given} {} but the detector expects {channels}",
            args.data.data.display(),
            if window.is_some() {
                "channels"
            } else {
                "feature columns"
            }
        );
    }
    let mut csv = String::from("score,anomaly\n");
    let scores =
        host::run_rows(&AnyModel::Detector(detector), &inputs).context("scoring failed")?;
    for score in scores {
        csv.push_str(&format!("{score},{}\n", u8::from(detector.alarm(score))));
    }
    write_output(args.out.as_deref(), csv.as_bytes())
}
