//! `tinygen info`: describe a model file.

use std::path::PathBuf;

use clap::Args;
use tinygen_runtime::Gmm;
use tinygen_runtime::format::{self, ModelKind};

use crate::io::AlignedBytes;

/// Arguments of `tinygen info`.
#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    /// Model file (.tgm).
    pub model: PathBuf,
}

/// Runs `tinygen info`: checks the file as the runtime does and prints its summary.
pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    let file = AlignedBytes::read(&args.model)?;
    let bytes = file.as_bytes();
    let header =
        format::read_header(bytes).map_err(|e| anyhow::anyhow!("{}: {e}", args.model.display()))?;
    println!("file        {}", args.model.display());
    println!("kind        {}", header.kind);
    println!(
        "format      v{} (schema {:#010x})",
        header.version, header.schema
    );
    println!("bytes       {}", bytes.len());
    println!("crc32       {:#010x}", header.crc);
    match header.kind {
        ModelKind::Gmm => {
            let gmm = Gmm::from_bytes(bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.model.display()))?;
            let spec = gmm.spec();
            println!("dimensions  {}", spec.dim);
            println!("components  {}", spec.components);
            println!("covariance  {}", spec.covariance.name());
            println!(
                "standardize {}",
                if spec.standardized {
                    "yes (folded into the weights)"
                } else {
                    "no"
                }
            );
            println!(
                "parameters  {} f32 values ({} bytes)",
                gmm.stored_values(),
                4 * gmm.stored_values()
            );
            println!(
                "ram         no buffers (weights are read in place); stack only, under 300 bytes \
                 per call on a Cortex-M4F (measured by cargo xtask bench-mcu); \
                 log_responsibilities also takes a caller buffer of {} bytes",
                4 * spec.components
            );
        }
    }
    Ok(())
}
