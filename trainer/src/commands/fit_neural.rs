//! `tinygen fit ae|vae|swae|gan`: train a neural generative model into a run folder.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use serde_json::Value;
use tinygen_runtime::Activation;

use crate::commands::export::SamplerKind;
use crate::data::images::Samples;
use crate::nn::config::{
    Classifier, DiffusionSettings, NetworkConfig, NetworkKind, Objective, Reconstruction, Sampler,
    Schedule, SemiSupervision, TrainConfig,
};
use crate::nn::fit::{
    DataSource, FinishOptions, FitOptions, class_count, default_run_folder, fit as fit_run,
};
use crate::nn::prior::Prior;
use crate::nn::train::LogMode;

/// Where the training (and test) data come from.
#[derive(Debug, Clone, Args)]
pub struct NeuralDataArgs {
    /// Training data: `digits` (bundled 8x8 digits), `mnist`, or a file
    /// (IDX images, CSV, CSV.gz or NPY with values in [0, 1] for BCE).
    #[arg(long, default_value = "digits")]
    pub data: String,
    /// Folder holding the MNIST IDX files (default: data/mnist).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Label column of CSV/NPY data.
    #[arg(long, value_name = "NAME")]
    pub label_column: Option<String>,
    /// Test data for a file given as --data (named sets use their test split).
    #[arg(long, value_name = "FILE")]
    pub test_data: Option<String>,
}

impl NeuralDataArgs {
    /// The data source these arguments name.
    pub fn source(&self) -> DataSource {
        DataSource {
            data: self.data.clone(),
            data_dir: self.data_dir.clone(),
            label_column: self.label_column.clone(),
            test_data: self.test_data.clone(),
        }
    }
}

/// Options shared by every neural model.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: NeuralDataArgs,
    /// Run folder for the configuration, checkpoint, metrics and plots
    /// (default: `runs/<model>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Hidden layer widths of the encoder, or the GAN's discriminator (the
    /// decoder or generator mirrors them).
    #[arg(long, value_delimiter = ',', default_value = "400")]
    pub hidden: Vec<usize>,
    /// Latent dimension (default: 20 for VAE, 16 for AE, 2 for SWAE, 64 for
    /// GAN; a diffusion model's is the data's).
    #[arg(long)]
    pub latent: Option<usize>,
    /// Activation between hidden layers.
    #[arg(long, value_parser = hidden_activation(), default_value = "relu")]
    pub activation: Activation,
    /// Reconstruction term: binary cross-entropy (sigmoid output) or squared
    /// error (linear output); for the GAN only the generator's output.
    #[arg(long, value_enum, default_value_t = Reconstruction::Bce)]
    pub reconstruction: Reconstruction,
    /// Passes over the training data.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Rows per step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Adam learning rate [default: 1e-3, 2e-4 for GAN].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Decoupled weight decay (AdamW); 0 is plain Adam.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Seed of the initial weights, batch order and random draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Continue the run in --out from its last checkpoint, with its stored
    /// configuration; only --epochs and --lr apply (the new values are stored).
    #[arg(long)]
    pub resume: bool,
    /// Progress output.
    #[arg(long, value_enum, default_value_t = LogMode::Bar)]
    pub log: LogMode,
    /// Do not write PNG plots.
    #[arg(long)]
    pub no_plots: bool,
}

/// Arguments of `tinygen fit ae`.
#[derive(Debug, Clone, Args)]
pub struct FitAeArgs {
    #[command(flatten)]
    pub train: TrainArgs,
    /// Class-supervised: a classifier head on the latent code trained with
    /// cross-entropy beside the reconstruction (needs labels).
    #[arg(long)]
    pub supervised: bool,
    /// Weight of the classifier's cross-entropy (per row, beside a
    /// reconstruction loss summed over features).
    #[arg(long, default_value_t = 10.0)]
    pub class_weight: f64,
    /// Fit a latent density after training so the AE can generate: gmm:K.
    #[arg(long, value_name = "gmm:K")]
    pub latent_density: Option<String>,
}

/// Arguments of `tinygen fit vae`.
#[derive(Debug, Clone, Args)]
pub struct FitVaeArgs {
    #[command(flatten)]
    pub train: TrainArgs,
    /// Weight of the KL term (1: the ELBO).
    #[arg(long, default_value_t = 1.0)]
    pub beta: f64,
    /// Importance samples per test row for the log-likelihood estimate (0: skip).
    #[arg(long, default_value_t = 64)]
    pub iw_samples: usize,
}

/// Arguments of `tinygen fit swae`.
#[derive(Debug, Clone, Args)]
pub struct FitSwaeArgs {
    #[command(flatten)]
    pub train: TrainArgs,
    /// Latent prior: gaussian, uniform, circle, ring (2-D) or gmm:K.
    #[arg(long, default_value = "gaussian")]
    pub prior: Prior,
    /// Random directions per sliced-Wasserstein estimate.
    #[arg(long, default_value_t = 50)]
    pub projections: usize,
    /// Weight of the sliced-Wasserstein term.
    #[arg(long, default_value_t = 100.0)]
    pub lambda: f64,
    /// Class-conditional prior: labelled rows are matched to their class's
    /// component of a gmm:K prior (K = number of classes), the others to
    /// the whole mixture.
    #[arg(long)]
    pub semi_supervised: bool,
    /// Fraction of training rows whose labels are used (semi-supervised).
    #[arg(long, default_value_t = 0.1)]
    pub labelled_fraction: f64,
}

/// Arguments of `tinygen fit gan`.
#[derive(Debug, Clone, Args)]
pub struct FitGanArgs {
    #[command(flatten)]
    pub train: TrainArgs,
    /// Weight gamma of the R1 gradient penalty on real rows,
    /// `gamma/2 E|grad D(x)|^2` (0: none).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub gradient_penalty: f64,
}

/// A noise schedule on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScheduleKind {
    /// Betas linear from --beta-start to --beta-end (Ho et al., 2020).
    Linear,
    /// Nichol and Dhariwal's cosine schedule (offset 0.008, betas at most 0.999).
    Cosine,
}

/// Arguments of `tinygen fit diffusion`.
#[derive(Debug, Clone, Args)]
pub struct FitDiffusionArgs {
    #[command(flatten)]
    pub train: TrainArgs,
    /// Diffusion (training) steps T.
    #[arg(long, default_value_t = 1000)]
    pub steps: u16,
    /// Noise schedule.
    #[arg(long, value_enum, default_value_t = ScheduleKind::Linear)]
    pub schedule: ScheduleKind,
    /// First beta of the linear schedule [default: 1e-4 x 1000 / T].
    #[arg(long)]
    pub beta_start: Option<f32>,
    /// Last beta of the linear schedule [default: 0.02 x 1000 / T, at most 0.999].
    #[arg(long)]
    pub beta_end: Option<f32>,
    /// Width of the sinusoidal time embedding fed to the noise predictor (even).
    #[arg(long, default_value_t = 32)]
    pub embedding: usize,
    /// Default sampler of the model file: deterministic DDIM or ancestral DDPM.
    #[arg(long, value_enum, default_value_t = SamplerKind::Ddim)]
    pub sampler: SamplerKind,
    /// Denoising steps of the default sampler [default: 50 for ddim (at most
    /// T), T for ddpm].
    #[arg(long)]
    pub sample_steps: Option<u16>,
    /// No linear skip: the network alone estimates the noise (by default
    /// the estimate adds the best linear one for Gaussian data of the
    /// training rows' mean and variance).
    #[arg(long)]
    pub no_skip: bool,
}

/// The activations `--activation` offers (the runtime's but identity),
/// with their help.
const HIDDEN_ACTIVATIONS: [(Activation, &str); 4] = [
    (Activation::Relu, "max(0, x)"),
    (Activation::LeakyRelu, "max(0.01 x, x)"),
    (Activation::Tanh, "Hyperbolic tangent"),
    (Activation::Sigmoid, "Logistic function"),
];

/// Parses `--activation` by the runtime's names (`relu`, `leaky-relu`, ..).
fn hidden_activation() -> impl TypedValueParser<Value = Activation> {
    PossibleValuesParser::new(
        HIDDEN_ACTIVATIONS.map(|(a, help)| PossibleValue::new(a.name()).help(help)),
    )
    .map(|name| {
        HIDDEN_ACTIVATIONS
            .iter()
            .find(|(a, _)| a.name() == name)
            .expect("a possible value")
            .0
    })
}

fn parse_gmm_spec(spec: &str) -> anyhow::Result<usize> {
    match spec.strip_prefix("gmm:").map(str::parse::<usize>) {
        Some(Ok(k)) if k >= 1 => Ok(k),
        _ => bail!("--latent-density must be gmm:K with K >= 1, not {spec:?}"),
    }
}

/// The network of `objective` for the training data `train`.
fn network(a: &TrainArgs, train: &Samples, objective: Objective) -> NetworkConfig {
    let latent = a.latent.unwrap_or(match objective.kind() {
        NetworkKind::Vae => 20,
        NetworkKind::Swae => 2,
        NetworkKind::Gan => 64,
        // The latent of a diffusion model is the data itself.
        NetworkKind::Diffusion => train.dim,
        _ => 16,
    });
    NetworkConfig {
        image: train.image,
        activation: a.activation,
        reconstruction: a.reconstruction,
        ..NetworkConfig::new(objective, train.dim, a.hidden.clone(), latent)
    }
}

/// Runs `tinygen fit ae`.
pub fn run_ae(args: &FitAeArgs) -> anyhow::Result<()> {
    fit(NetworkKind::Ae, &args.train, 0, |train| {
        let classifier = if args.supervised {
            Some(Classifier {
                classes: class_count(train)?,
                weight: args.class_weight,
            })
        } else {
            None
        };
        let latent_density = args
            .latent_density
            .as_deref()
            .map(parse_gmm_spec)
            .transpose()?;
        let objective = Objective::Ae {
            classifier,
            latent_density,
        };
        Ok(network(&args.train, train, objective))
    })
}

/// Runs `tinygen fit vae`.
pub fn run_vae(args: &FitVaeArgs) -> anyhow::Result<()> {
    fit(NetworkKind::Vae, &args.train, args.iw_samples, |train| {
        let objective = Objective::Vae { beta: args.beta };
        Ok(network(&args.train, train, objective))
    })
}

/// Runs `tinygen fit swae`.
pub fn run_swae(args: &FitSwaeArgs) -> anyhow::Result<()> {
    fit(NetworkKind::Swae, &args.train, 0, |train| {
        let semi_supervised = if args.semi_supervised {
            let classes = class_count(train)?;
            match args.prior {
                Prior::Gmm(k) if k == classes => {}
                Prior::Gmm(k) => bail!(
                    "the semi-supervised SWAE needs one prior component per class: --prior gmm:{classes}, not gmm:{k}"
                ),
                _ => bail!(
                    "the semi-supervised SWAE needs a class-conditional prior: --prior gmm:{classes}"
                ),
            }
            Some(SemiSupervision {
                classes,
                labelled_fraction: args.labelled_fraction,
            })
        } else {
            None
        };
        let objective = Objective::Swae {
            prior: args.prior,
            lambda: args.lambda,
            projections: args.projections,
            semi_supervised,
        };
        Ok(network(&args.train, train, objective))
    })
}

/// Runs `tinygen fit gan`.
pub fn run_gan(args: &FitGanArgs) -> anyhow::Result<()> {
    fit(NetworkKind::Gan, &args.train, 0, |train| {
        let objective = Objective::Gan {
            gradient_penalty: args.gradient_penalty,
        };
        Ok(network(&args.train, train, objective))
    })
}

/// Runs `tinygen fit diffusion`.
pub fn run_diffusion(args: &FitDiffusionArgs) -> anyhow::Result<()> {
    fit(NetworkKind::Diffusion, &args.train, 0, |train| {
        // Ho et al.'s betas for T = 1000, scaled to other T as Nichol and
        // Dhariwal do, so that the last step is noise for any T.
        let scale = 1000.0 / f64::from(args.steps.max(1));
        let schedule = match args.schedule {
            ScheduleKind::Linear => Schedule::Linear {
                beta_start: args.beta_start.unwrap_or((1e-4 * scale).min(0.999) as f32),
                beta_end: args.beta_end.unwrap_or((0.02 * scale).min(0.999) as f32),
            },
            ScheduleKind::Cosine => Schedule::Cosine { offset: 0.008 },
        };
        let sampler = match args.sampler {
            SamplerKind::Ddim => Sampler::ddim(args.sample_steps.unwrap_or(args.steps.min(50))),
            SamplerKind::Ddpm => Sampler::ddpm(args.sample_steps.unwrap_or(args.steps)),
        };
        let objective = Objective::Diffusion(DiffusionSettings {
            steps: args.steps,
            schedule,
            embedding: args.embedding,
            sampler,
            skip: !args.no_skip,
        });
        Ok(network(&args.train, train, objective))
    })
}

/// The learning rate a new run of `kind` uses unless told otherwise.
fn default_lr(kind: NetworkKind) -> f64 {
    match kind {
        NetworkKind::Gan => 2e-4,
        _ => 1e-3,
    }
}

/// Trains (or resumes) a run and prints its metrics.
fn fit(
    kind: NetworkKind,
    a: &TrainArgs,
    iw_samples: usize,
    network: impl FnOnce(&Samples) -> anyhow::Result<NetworkConfig>,
) -> anyhow::Result<()> {
    let opts = FitOptions {
        kind,
        out: a.out.clone().unwrap_or_else(|| default_run_folder(kind)),
        data: a.data.source(),
        train: TrainConfig {
            epochs: a.epochs,
            batch_size: a.batch_size,
            lr: a.lr.unwrap_or(default_lr(kind)),
            weight_decay: a.weight_decay,
            seed: a.seed,
        },
        resume: a.resume,
        log: a.log,
        finish: FinishOptions {
            iw_samples,
            plots: !a.no_plots,
            ..FinishOptions::default()
        },
    };
    print_metrics(&fit_run(opts, network)?)
}

/// Prints a run's metrics as one line of JSON.
pub fn print_metrics(metrics: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(metrics)?);
    Ok(())
}
