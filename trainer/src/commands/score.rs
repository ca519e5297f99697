//! `tinygen score`: log-densities of data under a model, computed by the runtime crate.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use tinygen_runtime::Gmm;

use super::DataArgs;
use crate::host::{AlignedBytes, open_error, surplus_columns_hint};
use crate::io::write_output;

/// Arguments of `tinygen score`.
#[derive(Debug, Clone, Args)]
pub struct ScoreArgs {
    /// Model file (.tgm) holding a Gaussian mixture.
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Output CSV (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs `tinygen score`: writes `log_density` and one value per input row, in order.
pub fn run(args: &ScoreArgs) -> anyhow::Result<()> {
    let file = AlignedBytes::read(&args.model)?;
    let gmm = Gmm::from_bytes(file.as_bytes())
        .map_err(|e| open_error(&args.model, file.as_bytes(), e))?;
    let data = args.data.load()?;
    if data.cols != gmm.dim() {
        bail!(
            "{} has {} feature columns but the model expects {}{}",
            args.data.data.display(),
            data.cols,
            gmm.dim(),
            surplus_columns_hint(data.cols, gmm.dim())
        );
    }
    let points = data.to_f32();
    let mut scores = vec![0f32; data.rows];
    gmm.log_density_batch(&points, &mut scores)
        .context("scoring failed")?;
    let mut csv = String::with_capacity(12 * (scores.len() + 1));
    csv.push_str("log_density\n");
    for s in &scores {
        csv.push_str(&format!("{s}\n"));
    }
    write_output(args.out.as_deref(), csv.as_bytes())
}
