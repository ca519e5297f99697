//! `tinygen data mnist`: get MNIST into a data directory (see
//! [`crate::data::fetch`]).

use std::path::PathBuf;

use clap::Args;

use crate::data::fetch::{self, Obtained};
use crate::data::images::DEFAULT_MNIST_DIR;

/// Arguments of `tinygen data mnist`.
#[derive(Debug, Clone, Args)]
pub struct MnistArgs {
    /// Directory to store the files in (created if needed).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_MNIST_DIR)]
    pub dir: PathBuf,
    /// Import the files from this directory (gzipped or raw) instead of downloading them.
    #[arg(long, value_name = "DIR", conflicts_with = "mirror")]
    pub from: Option<PathBuf>,
    /// Base URL serving the four .gz files, instead of the default mirrors;
    /// repeat to try several in order.
    #[arg(long, value_name = "URL")]
    pub mirror: Vec<String>,
}

/// Runs `tinygen data mnist`.
pub fn run_mnist(args: &MnistArgs) -> anyhow::Result<()> {
    let mirrors: Vec<&str> = args.mirror.iter().map(String::as_str).collect();
    let results = fetch::mnist(&args.dir, args.from.as_deref(), &mirrors)?;
    let fresh = results
        .iter()
        .filter(|r| r.how != Obtained::AlreadyPresent)
        .count();
    println!(
        "MNIST is in {} ({} of {} files new, all MD5-verified)",
        args.dir.display(),
        fresh,
        results.len()
    );
    Ok(())
}
