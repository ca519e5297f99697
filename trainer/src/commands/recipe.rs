//! `tinygen recipe`: a recipe for a detector that learns "normal" on the
//! device, written from its input shape and settings alone, with no data
//! (`fit detector --on-device-recipe` writes the same from data, and also
//! runs the device's learner over it).

use std::path::PathBuf;

use anyhow::{Context, bail, ensure};
use clap::Args;
use tinygen_runtime::detector::Features;
use tinygen_runtime::learn::RecipeSpec;

use super::fit_gmm::CovarianceArg;
use crate::detector::density::{RegCovar, SECOND_REG_COVAR};
use crate::detector::inputs::window_features;
use crate::io::write_atomic;

/// RAM beyond which a recipe is flagged: the nRF52840's 256 KiB, the
/// largest of the boards tinygen is built for.
const DEVICE_RAM: usize = 256 * 1024;

/// Arguments of `tinygen recipe`.
#[derive(Debug, Clone, Args)]
pub struct RecipeArgs {
    /// Inputs are points of D values, the density's own input.
    #[arg(
        long,
        value_name = "D",
        required_unless_present = "window",
        conflicts_with = "window"
    )]
    pub inputs: Option<usize>,
    /// Inputs are windows of L samples (time-major), summarised per
    /// channel by mean, std, min and max (needs --channels).
    #[arg(long, value_name = "L", requires = "channels")]
    pub window: Option<usize>,
    /// Channels of a window.
    #[arg(long, value_name = "C", requires = "window")]
    pub channels: Option<usize>,
    /// Score the raw window values (channels x length dimensions) instead
    /// of their per-channel statistics.
    #[arg(long, requires = "window")]
    pub raw_window: bool,
    #[command(flatten)]
    pub density: LearnedDensity,
    #[command(flatten)]
    pub learning: LearningArgs,
    /// Normal inputs the device learns its density from.
    #[arg(long, value_name = "N")]
    pub learn: u32,
    /// Normal inputs after those that set the device's threshold.
    #[arg(long, value_name = "M")]
    pub calibrate: u32,
    /// Output recipe file (.tgm), written atomically.
    #[arg(long)]
    pub out: PathBuf,
}

/// The mixture the device learns (`fit detector --on-device-recipe`
/// takes it from its mixture options).
#[derive(Debug, Clone, Args)]
pub struct LearnedDensity {
    /// Mixture components K (K > 1: EM passes over stored features).
    #[arg(long, short = 'k', default_value_t = 1)]
    pub components: u32,
    /// Covariance structure (tied is full when K = 1).
    #[arg(long, value_enum, default_value_t = CovarianceArg::Full)]
    pub covariance: CovarianceArg,
    /// Regularisation added to the covariance diagonal: a non-negative
    /// number, or scott (n^(-2/(d+4)) for the n learning inputs, for
    /// standardized data).
    #[arg(long, default_value_t = RegCovar::Scott)]
    pub reg_covar: RegCovar,
}

/// How the device learns and calibrates (`fit detector
/// --on-device-recipe` takes these from its own options).
#[derive(Debug, Clone, Args)]
pub struct LearningArgs {
    /// Fraction of the calibration inputs that may raise an alarm.
    #[arg(long, default_value_t = 0.01)]
    pub alarm_rate: f64,
    /// EM passes the device makes over its stored features when K > 1.
    #[arg(long, default_value_t = 100)]
    pub learn_iterations: u32,
    /// Seed of the device's k-means++ start when K > 1.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The device learns one mixture, not the pair (about half the memory).
    #[arg(long)]
    pub one_density: bool,
}

/// Runs `tinygen recipe`.
pub fn run(args: &RecipeArgs) -> anyhow::Result<()> {
    crate::io::check_model_out(&args.out)?;
    ensure!(
        [args.inputs, args.window, args.channels]
            .iter()
            .all(|n| n.is_none_or(|n| n > 0)),
        "--inputs, --window and --channels must be at least 1"
    );
    let (features, dim) = match (args.inputs, args.window, args.channels) {
        (Some(d), _, _) => (Features::Identity, d),
        (None, Some(length), Some(channels)) => window_features(channels, length, args.raw_window)?,
        _ => bail!("give --inputs D, or --window L with --channels C"),
    };
    let (_, bytes) = make(
        &args.density,
        &args.learning,
        features,
        dim,
        args.learn,
        args.calibrate,
    )?;
    write_atomic(&args.out, &bytes).context("cannot write the recipe")?;
    println!("wrote {} ({} bytes)", args.out.display(), bytes.len());
    Ok(())
}

/// The recipe for `features` of dimension `dim`, learned from `learn`
/// inputs and calibrated on `calibrate`: checked, encoded, and described
/// on standard output.
pub fn make(
    density: &LearnedDensity,
    learning: &LearningArgs,
    features: Features,
    dim: usize,
    learn: u32,
    calibrate: u32,
) -> anyhow::Result<(RecipeSpec, Vec<u8>)> {
    let components = density.components;
    let recipe = RecipeSpec {
        features,
        dim: u32::try_from(dim)?,
        covariance: density.covariance.into(),
        components,
        iterations: learning.learn_iterations,
        seed: learning.seed,
        reg_covar: density.reg_covar.value(learn as usize, dim),
        alarm_rate: learning.alarm_rate,
        learn,
        calibrate,
        second_reg_covar: (!learning.one_density).then_some(SECOND_REG_COVAR),
    };
    recipe.check().map_err(|e| {
        anyhow::anyhow!(
            "cannot make a recipe (learn {learn}, calibrate {calibrate}, alarm rate {}, \
             reg-covar {}): {e}",
            learning.alarm_rate,
            recipe.reg_covar
        )
    })?;
    let bytes = recipe
        .encode()
        .map_err(|e| anyhow::anyhow!("cannot encode the recipe: {e}"))?;
    // `check` passed, so every length is known.
    let memory = recipe
        .memory()
        .context("the recipe's buffers overflow this machine's sizes")?;
    let second = recipe.second_reg_covar.map_or(String::new(), |r| {
        format!(" and the same with reg-covar {r} (score: the sum of their robust z-scores)")
    });
    println!(
        "recipe: {components} {} Gaussian(s) over {dim} features, reg-covar {}{second}, learned \
         from {learn} inputs, threshold at alarm rate {} of the next {calibrate}; the device \
         needs {} bytes of state and stored features, {} for scores and {} for the learned \
         file",
        recipe.covariance.name(),
        recipe.reg_covar,
        recipe.alarm_rate,
        memory.state.saturating_add(memory.features),
        memory.scores,
        memory.file,
    );
    let ram = memory.total();
    if ram > DEVICE_RAM {
        eprintln!(
            "warning: the learner needs {ram} bytes, more than the {} KiB of RAM of the largest \
             microcontrollers tinygen targets (fewer --learn or --calibrate inputs, fewer \
             components or --one-density need less)",
            DEVICE_RAM / 1024
        );
    }
    Ok((recipe, bytes))
}
