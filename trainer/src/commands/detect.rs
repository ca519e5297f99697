//! `tinygen detect`: anomaly scores and alarms of a detector file, computed
//! by the runtime crate exactly as on the device.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tinygen_runtime::{AnyModel, Detector};

use super::DataArgs;
use crate::detector::inputs::inputs_for;
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
        .map_err(|e| crate::host::open_error(&args.model, file.as_bytes(), e))?;
    let inputs = inputs_for(
        &detector,
        &args.data.data,
        &args.data.load_options(),
        args.stride,
    )?;
    let mut csv = String::from("score,anomaly\n");
    let scores =
        host::run_rows(&AnyModel::Detector(detector), &inputs).context("scoring failed")?;
    for score in scores {
        csv.push_str(&format!("{score},{}\n", u8::from(detector.alarm(score))));
    }
    write_output(args.out.as_deref(), csv.as_bytes())
}
