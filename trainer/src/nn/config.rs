//! What a neural run is: the network's architecture and objective, and how
//! it was trained. Saved as `config.json` in the run folder so a run reloads,
//! evaluates and exports without restating its options.

use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::prior::Prior;

/// The kind of model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Principal component analysis (closed form; a linear encoder/decoder pair).
    Pca,
    /// Autoencoder, optionally with a classifier head on the latent code.
    Ae,
    /// Variational autoencoder (Gaussian encoder, N(0, I) prior).
    Vae,
    /// Sliced-Wasserstein autoencoder (deterministic encoder, any sampled prior).
    Swae,
}

impl ModelKind {
    /// The lower-case name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pca => "pca",
            Self::Ae => "ae",
            Self::Vae => "vae",
            Self::Swae => "swae",
        }
    }
}

/// Activation between hidden layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(0, x).
    Relu,
    /// max(0.01 x, x).
    LeakyRelu,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic function.
    Sigmoid,
}

/// Reconstruction term of the objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Reconstruction {
    /// Binary cross-entropy summed over features, computed from logits; the
    /// decoder's output goes through a sigmoid. Targets must lie in [0, 1].
    Bce,
    /// Squared error summed over features; the decoder's output is linear.
    /// For the VAE this is the Gaussian likelihood with variance 1/2, whose
    /// constant `D/2 ln(pi)` the reported ELBO includes.
    Mse,
}

/// The architecture and objective of a network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Model kind.
    pub kind: ModelKind,
    /// Number of input (and output) features.
    pub input_dim: usize,
    /// (height, width) when the rows are images.
    pub image: Option<(usize, usize)>,
    /// Hidden layer widths of the encoder; the decoder mirrors them.
    pub hidden: Vec<usize>,
    /// Latent dimension.
    pub latent: usize,
    /// Activation between hidden layers.
    pub activation: Activation,
    /// Reconstruction term.
    pub reconstruction: Reconstruction,
    /// Classes of the classifier head on the latent code (class-supervised
    /// AE), or of the class-conditional prior (semi-supervised SWAE).
    pub classes: Option<usize>,
    /// Weight of the classifier's cross-entropy (supervised AE).
    pub class_weight: f64,
    /// Weight of the KL term (VAE; 1 is the ELBO).
    pub beta: f64,
    /// Weight of the sliced-Wasserstein term (SWAE).
    pub lambda: f64,
    /// Random directions per sliced-Wasserstein estimate (SWAE).
    pub projections: usize,
    /// Latent prior (N(0, I) for the VAE; chosen for the SWAE; none for AE and PCA).
    pub prior: Option<Prior>,
    /// Fraction of training rows whose label the semi-supervised SWAE sees.
    pub labelled_fraction: Option<f64>,
    /// Components of the GMM fitted to the training latents after training (AE).
    pub latent_density: Option<usize>,
}

impl NetworkConfig {
    /// A network of `kind` from `input_dim` features through the encoder's
    /// `hidden` widths to a `latent` code, with the command line's
    /// defaults for everything else: relu, binary cross-entropy, no image
    /// shape, no classes, no prior, unit weights, no SW term.
    pub fn new(kind: ModelKind, input_dim: usize, hidden: Vec<usize>, latent: usize) -> Self {
        Self {
            kind,
            input_dim,
            image: None,
            hidden,
            latent,
            activation: Activation::Relu,
            reconstruction: Reconstruction::Bce,
            classes: None,
            class_weight: 1.0,
            beta: 1.0,
            lambda: 0.0,
            projections: 0,
            prior: None,
            labelled_fraction: None,
            latent_density: None,
        }
    }

    /// Checks that the numbers make sense together.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.input_dim == 0 {
            bail!("the data has no features");
        }
        if self.latent == 0 {
            bail!("--latent must be at least 1");
        }
        if let Some(&0) = self.hidden.iter().find(|&&h| h == 0) {
            bail!("hidden layer widths must be at least 1");
        }
        if self.kind == ModelKind::Pca && self.latent > self.input_dim {
            bail!(
                "PCA: {} components requested but the data has {} features",
                self.latent,
                self.input_dim
            );
        }
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            bail!("--beta must be a non-negative number");
        }
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            bail!("--lambda must be a non-negative number");
        }
        if !(self.class_weight.is_finite() && self.class_weight >= 0.0) {
            bail!("--class-weight must be a non-negative number");
        }
        if self.kind == ModelKind::Swae && self.projections == 0 {
            bail!("--projections must be at least 1");
        }
        if let Some(c) = self.classes
            && c < 2
        {
            bail!("a classifier needs at least 2 classes, the labels have {c}");
        }
        if let Some(f) = self.labelled_fraction
            && !(f > 0.0 && f <= 1.0)
        {
            bail!("--labelled-fraction must lie in (0, 1]");
        }
        if let Some(prior) = &self.prior {
            prior.check_dim(self.latent)?;
        }
        Ok(())
    }

    /// Layer widths of the decoder, latent first: `latent, h_k, .., h_1, input`.
    pub fn decoder_widths(&self) -> Vec<usize> {
        let mut w = vec![self.latent];
        w.extend(self.hidden.iter().rev());
        w.push(self.input_dim);
        w
    }
}

/// How the network was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training data.
    pub epochs: usize,
    /// Rows per optimisation step.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Decoupled weight decay (AdamW); 0 is plain Adam.
    pub weight_decay: f64,
    /// Seed of the initial weights, the batch order and every random draw.
    pub seed: u64,
}

impl TrainConfig {
    /// Checks that the numbers make sense.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.batch_size == 0 {
            bail!("--batch-size must be at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            bail!("--lr must be a positive number");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            bail!("--weight-decay must be a non-negative number");
        }
        Ok(())
    }
}

/// Everything about a run: `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The data set it was trained on (a named set or a path), as given.
    pub data: String,
    /// Where the named set's files were (`--data-dir`), if given.
    pub data_dir: Option<String>,
    /// Label column of CSV/NPY data, if any.
    pub label_column: Option<String>,
    /// Architecture and objective.
    pub network: NetworkConfig,
    /// Optimisation.
    pub train: TrainConfig,
}

impl RunConfig {
    /// Reads `config.json` from a run folder.
    pub fn read(run: &Path) -> anyhow::Result<Self> {
        let path = run.join(super::run::CONFIG);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {} (is {} a run folder written by tinygen fit?)",
                path.display(),
                run.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("{} is malformed", path.display()))
    }

    /// Writes `config.json` into a run folder (atomically).
    pub fn write(&self, run: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        crate::io::write_atomic(&run.join(super::run::CONFIG), text.as_bytes())
    }
}
