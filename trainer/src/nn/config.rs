//! What a neural run is: the network's architecture and objective, and how
//! it was trained. Saved as `config.json` in the run folder so a run reloads,
//! evaluates and exports without restating its options.

use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tinygen_runtime::Activation;

use super::prior::Prior;
pub use tinygen_runtime::diffusion::{Sampler, Schedule};

/// The kind of neural network a run trains (not to be confused with
/// `tinygen_runtime::ModelKind`, the kind of a model file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkKind {
    /// Principal component analysis (closed form; a linear encoder/decoder pair).
    Pca,
    /// Autoencoder, optionally with a classifier head on the latent code.
    Ae,
    /// Variational autoencoder (Gaussian encoder, N(0, I) prior).
    Vae,
    /// Sliced-Wasserstein autoencoder (deterministic encoder, any sampled prior).
    Swae,
    /// Generative adversarial network (generator and discriminator, N(0, I) prior).
    Gan,
    /// Denoising diffusion model (an MLP noise predictor and a schedule).
    Diffusion,
}

impl NetworkKind {
    /// The lower-case name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pca => "pca",
            Self::Ae => "ae",
            Self::Vae => "vae",
            Self::Swae => "swae",
            Self::Gan => "gan",
            Self::Diffusion => "diffusion",
        }
    }
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

/// The architecture and objective of a network: the layers every kind
/// shares, and the kind with exactly its own settings.
///
/// `config.json` keeps the flat format of earlier versions (see
/// `NetworkConfigFile`): every setting of every kind, the irrelevant ones
/// at their defaults, and ignored when read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "NetworkConfigFile", try_from = "NetworkConfigFile")]
pub struct NetworkConfig {
    /// Number of input (and output) features.
    pub input_dim: usize,
    /// (height, width) when the rows are images.
    pub image: Option<(usize, usize)>,
    /// Hidden layer widths of the encoder; the decoder mirrors them.
    pub hidden: Vec<usize>,
    /// Latent dimension.
    pub latent: usize,
    /// Activation between hidden layers (any but identity on the command
    /// line).
    pub activation: Activation,
    /// Reconstruction term.
    pub reconstruction: Reconstruction,
    /// The kind of model and its own settings.
    pub objective: Objective,
}

/// The kind of model with the settings only it has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    /// Principal component analysis (closed form).
    Pca,
    /// Autoencoder: reconstruction, optionally plus a classifier's
    /// cross-entropy.
    Ae {
        /// The classifier head on the latent code (class-supervised AE).
        classifier: Option<Classifier>,
        /// Components of the GMM fitted to the training latents after
        /// training, so the AE can generate.
        latent_density: Option<usize>,
    },
    /// Variational autoencoder: the negative ELBO with a weighted KL term
    /// (prior N(0, I)).
    Vae {
        /// Weight of the KL term (1 is the ELBO).
        beta: f64,
    },
    /// Sliced-Wasserstein autoencoder: reconstruction plus the weighted
    /// sliced-Wasserstein distance between the codes and prior draws.
    Swae {
        /// Latent prior.
        prior: Prior,
        /// Weight of the sliced-Wasserstein term.
        lambda: f64,
        /// Random directions per sliced-Wasserstein estimate.
        projections: usize,
        /// Class-conditional prior matching (semi-supervised SWAE).
        semi_supervised: Option<SemiSupervision>,
    },
    /// Generative adversarial network: the non-saturating loss, the
    /// generator is the decoder (prior N(0, I)).
    Gan {
        /// Weight gamma of the R1 gradient penalty `gamma/2 E|grad D(x)|^2`
        /// on real rows (0: none).
        gradient_penalty: f64,
    },
    /// Denoising diffusion model (DDPM): an MLP predicts the noise in
    /// `x_t` from `x_t` and the embedding of `t`; the latent is the data's
    /// own dimension.
    Diffusion(DiffusionSettings),
}

/// A diffusion model's own settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DiffusionSettings {
    /// Training steps T.
    pub steps: u16,
    /// The noise schedule.
    pub schedule: Schedule,
    /// Width of the sinusoidal time embedding (even).
    pub embedding: usize,
    /// The sampler a sample uses by default (`tinygen sample` can choose).
    pub sampler: Sampler,
    /// Whether the noise estimate adds the linear skip of the training
    /// data's mean and variance (see [`super::diffusion`]).
    #[serde(default)]
    pub skip: bool,
}

impl Objective {
    /// The plain autoencoder: no classifier, no latent density.
    pub const AE: Self = Self::Ae {
        classifier: None,
        latent_density: None,
    };
    /// The VAE of the ELBO (beta = 1).
    pub const VAE: Self = Self::Vae { beta: 1.0 };

    /// The objective of `kind` when it needs no settings, with the command
    /// line's defaults: PCA, the plain AE, the VAE at beta = 1, the GAN
    /// without gradient penalty (`None` for the SWAE, which needs a prior).
    pub fn plain(kind: NetworkKind) -> Option<Self> {
        match kind {
            NetworkKind::Pca => Some(Self::Pca),
            NetworkKind::Ae => Some(Self::AE),
            NetworkKind::Vae => Some(Self::VAE),
            NetworkKind::Swae => None,
            NetworkKind::Gan => Some(Self::Gan {
                gradient_penalty: 0.0,
            }),
            NetworkKind::Diffusion => None,
        }
    }

    /// The kind of model.
    pub fn kind(&self) -> NetworkKind {
        match self {
            Self::Pca => NetworkKind::Pca,
            Self::Ae { .. } => NetworkKind::Ae,
            Self::Vae { .. } => NetworkKind::Vae,
            Self::Swae { .. } => NetworkKind::Swae,
            Self::Gan { .. } => NetworkKind::Gan,
            Self::Diffusion(_) => NetworkKind::Diffusion,
        }
    }
}

/// The classifier head of a class-supervised AE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Classifier {
    /// Number of classes.
    pub classes: usize,
    /// Weight of the cross-entropy (per row, beside a reconstruction loss
    /// summed over features).
    pub weight: f64,
}

/// The labels a semi-supervised SWAE uses: labelled rows of class c are
/// matched to component c of its `gmm:K` prior.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SemiSupervision {
    /// Number of classes (the prior's components).
    pub classes: usize,
    /// Fraction of training rows whose label is seen.
    pub labelled_fraction: f64,
}

impl NetworkConfig {
    /// A network with `objective` from `input_dim` features through the
    /// encoder's `hidden` widths to a `latent` code, with the command
    /// line's defaults for the rest: relu, binary cross-entropy, no image
    /// shape.
    pub fn new(objective: Objective, input_dim: usize, hidden: Vec<usize>, latent: usize) -> Self {
        Self {
            input_dim,
            image: None,
            hidden,
            latent,
            activation: Activation::Relu,
            reconstruction: Reconstruction::Bce,
            objective,
        }
    }

    /// The kind of model.
    pub fn kind(&self) -> NetworkKind {
        self.objective.kind()
    }

    /// The latent prior: N(0, I) for the VAE and the GAN, the SWAE's, none
    /// for AE and PCA.
    pub fn prior(&self) -> Option<Prior> {
        match self.objective {
            Objective::Vae { .. } | Objective::Gan { .. } => Some(Prior::Gaussian),
            Objective::Swae { prior, .. } => Some(prior),
            Objective::Pca | Objective::Ae { .. } | Objective::Diffusion(_) => None,
        }
    }

    /// Classes of the classifier head (class-supervised AE) or of the
    /// class-conditional prior (semi-supervised SWAE).
    pub fn classes(&self) -> Option<usize> {
        match self.objective {
            Objective::Ae {
                classifier: Some(c),
                ..
            } => Some(c.classes),
            Objective::Swae {
                semi_supervised: Some(s),
                ..
            } => Some(s.classes),
            _ => None,
        }
    }

    /// Components of the latent GMM fitted after training (AE).
    pub fn latent_density(&self) -> Option<usize> {
        match self.objective {
            Objective::Ae { latent_density, .. } => latent_density,
            _ => None,
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
        match self.objective {
            Objective::Pca if self.latent > self.input_dim => bail!(
                "PCA: {} components requested but the data has {} features",
                self.latent,
                self.input_dim
            ),
            Objective::Vae { beta } if !(beta.is_finite() && beta >= 0.0) => {
                bail!("--beta must be a non-negative number")
            }
            Objective::Swae { lambda, .. } if !(lambda.is_finite() && lambda >= 0.0) => {
                bail!("--lambda must be a non-negative number")
            }
            Objective::Ae {
                classifier: Some(Classifier { weight, .. }),
                ..
            } if !(weight.is_finite() && weight >= 0.0) => {
                bail!("--class-weight must be a non-negative number")
            }
            Objective::Swae { projections: 0, .. } => bail!("--projections must be at least 1"),
            Objective::Gan { gradient_penalty }
                if !(gradient_penalty.is_finite() && gradient_penalty >= 0.0) =>
            {
                bail!("--gradient-penalty must be a non-negative number")
            }
            Objective::Diffusion(d) => d.validate(self)?,
            _ => {}
        }
        if let Some(c) = self.classes()
            && c < 2
        {
            bail!("a classifier needs at least 2 classes, the labels have {c}");
        }
        if let Objective::Swae {
            semi_supervised:
                Some(SemiSupervision {
                    labelled_fraction: f,
                    ..
                }),
            ..
        } = self.objective
            && !(f > 0.0 && f <= 1.0)
        {
            bail!("--labelled-fraction must lie in (0, 1]");
        }
        if let Some(prior) = &self.prior() {
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

/// A [`NetworkConfig`] as `config.json` holds it: the flat format of
/// earlier versions, with every kind's settings (the irrelevant ones at
/// their defaults when written, ignored when read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct NetworkConfigFile {
    kind: NetworkKind,
    input_dim: usize,
    image: Option<(usize, usize)>,
    hidden: Vec<usize>,
    latent: usize,
    activation: Activation,
    reconstruction: Reconstruction,
    classes: Option<usize>,
    class_weight: f64,
    beta: f64,
    lambda: f64,
    projections: usize,
    prior: Option<Prior>,
    labelled_fraction: Option<f64>,
    latent_density: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gradient_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    diffusion: Option<DiffusionSettings>,
}

impl From<NetworkConfig> for NetworkConfigFile {
    fn from(c: NetworkConfig) -> Self {
        let (class_weight, beta, lambda, projections, labelled_fraction) = match c.objective {
            Objective::Ae {
                classifier: Some(Classifier { weight, .. }),
                ..
            } => (weight, 1.0, 0.0, 0, None),
            Objective::Vae { beta } => (1.0, beta, 0.0, 0, None),
            Objective::Swae {
                lambda,
                projections,
                semi_supervised,
                ..
            } => (
                1.0,
                1.0,
                lambda,
                projections,
                semi_supervised.map(|s| s.labelled_fraction),
            ),
            Objective::Pca
            | Objective::Ae { .. }
            | Objective::Gan { .. }
            | Objective::Diffusion(_) => (1.0, 1.0, 0.0, 0, None),
        };
        let diffusion = match c.objective {
            Objective::Diffusion(d) => Some(d),
            _ => None,
        };
        let gradient_penalty = match c.objective {
            Objective::Gan { gradient_penalty } => Some(gradient_penalty),
            _ => None,
        };
        Self {
            kind: c.kind(),
            classes: c.classes(),
            prior: c.prior(),
            latent_density: c.latent_density(),
            input_dim: c.input_dim,
            image: c.image,
            hidden: c.hidden,
            latent: c.latent,
            activation: c.activation,
            reconstruction: c.reconstruction,
            class_weight,
            beta,
            lambda,
            projections,
            labelled_fraction,
            gradient_penalty,
            diffusion,
        }
    }
}

impl TryFrom<NetworkConfigFile> for NetworkConfig {
    type Error = String;

    fn try_from(f: NetworkConfigFile) -> Result<Self, String> {
        let objective = match f.kind {
            NetworkKind::Pca => Objective::Pca,
            NetworkKind::Ae => Objective::Ae {
                classifier: f.classes.map(|classes| Classifier {
                    classes,
                    weight: f.class_weight,
                }),
                latent_density: f.latent_density,
            },
            NetworkKind::Vae => Objective::Vae { beta: f.beta },
            NetworkKind::Gan => Objective::Gan {
                gradient_penalty: f.gradient_penalty.unwrap_or(0.0),
            },
            NetworkKind::Diffusion => {
                Objective::Diffusion(f.diffusion.ok_or("a diffusion run needs its settings")?)
            }
            NetworkKind::Swae => Objective::Swae {
                prior: f.prior.ok_or("the SWAE needs a prior")?,
                lambda: f.lambda,
                projections: f.projections,
                semi_supervised: match (f.classes, f.labelled_fraction) {
                    (Some(classes), Some(labelled_fraction)) => Some(SemiSupervision {
                        classes,
                        labelled_fraction,
                    }),
                    (None, _) => None,
                    (Some(_), None) => {
                        return Err("the semi-supervised SWAE needs a labelled_fraction".into());
                    }
                },
            },
        };
        Ok(Self {
            input_dim: f.input_dim,
            image: f.image,
            hidden: f.hidden,
            latent: f.latent,
            activation: f.activation,
            reconstruction: f.reconstruction,
            objective,
        })
    }
}

impl DiffusionSettings {
    /// `alpha_bar[t]` for `t = 1..=steps`: the runtime's values of the
    /// schedule, the ones the file stores.
    pub fn alpha_bar(&self) -> anyhow::Result<Vec<f32>> {
        self.schedule
            .alpha_bar(self.steps)
            .map_err(|_| anyhow::anyhow!("the noise schedule {:?} is invalid", self.schedule))
    }

    /// Checks the settings against the network `config`.
    fn validate(&self, config: &NetworkConfig) -> anyhow::Result<()> {
        if self.steps == 0 {
            bail!("--steps must be at least 1");
        }
        if self.embedding < 2 || !self.embedding.is_multiple_of(2) {
            bail!("--embedding must be an even number of at least 2");
        }
        if config.latent != config.input_dim {
            bail!(
                "a diffusion model's latent is the data itself ({} values), not {}",
                config.input_dim,
                config.latent
            );
        }
        if self.sampler.steps == 0 || self.sampler.steps > self.steps {
            bail!(
                "--sample-steps must lie in 1..={} (the training steps)",
                self.steps
            );
        }
        self.alpha_bar()?;
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `config.json` of runs written before the configuration had one
    /// variant per kind (`tinygen fit ... --epochs 1` on digits).
    const FIXTURES: [(&str, &str); 6] = [
        ("pca", include_str!("../../tests/fixtures/config/pca.json")),
        ("ae", include_str!("../../tests/fixtures/config/ae.json")),
        (
            "ae_sup",
            include_str!("../../tests/fixtures/config/ae_sup.json"),
        ),
        ("vae", include_str!("../../tests/fixtures/config/vae.json")),
        (
            "swae",
            include_str!("../../tests/fixtures/config/swae.json"),
        ),
        (
            "swae_semi",
            include_str!("../../tests/fixtures/config/swae_semi.json"),
        ),
    ];

    fn fixture(name: &str) -> RunConfig {
        let (_, text) = FIXTURES.iter().find(|(n, _)| *n == name).unwrap();
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn config_json_of_earlier_runs_loads_with_each_kinds_settings() {
        assert_eq!(fixture("pca").network.objective, Objective::Pca);
        assert_eq!(fixture("pca").network.reconstruction, Reconstruction::Mse);
        assert_eq!(fixture("ae").network.objective, Objective::AE);
        assert_eq!(
            fixture("ae_sup").network.objective,
            Objective::Ae {
                classifier: Some(Classifier {
                    classes: 10,
                    weight: 3.0
                }),
                latent_density: Some(2),
            }
        );
        assert_eq!(
            fixture("vae").network.objective,
            Objective::Vae { beta: 0.5 }
        );
        let swae = fixture("swae").network;
        assert_eq!(
            swae.objective,
            Objective::Swae {
                prior: Prior::Ring,
                lambda: 100.0,
                projections: 50,
                semi_supervised: None,
            }
        );
        assert_eq!(swae.activation, Activation::Tanh);
        assert_eq!(swae.reconstruction, Reconstruction::Mse);
        let semi = fixture("swae_semi").network;
        assert_eq!(
            semi.objective,
            Objective::Swae {
                prior: Prior::Gmm(10),
                lambda: 100.0,
                projections: 50,
                semi_supervised: Some(SemiSupervision {
                    classes: 10,
                    labelled_fraction: 0.2
                }),
            }
        );
        assert_eq!(semi.activation, Activation::LeakyRelu);
        assert_eq!((semi.input_dim, semi.image), (64, Some((8, 8))));
        assert_eq!((semi.hidden, semi.latent), (vec![8], 2));
        for (name, _) in FIXTURES {
            fixture(name).network.validate().unwrap();
        }
    }

    /// Written again, every configuration is the same file byte for byte.
    #[test]
    fn config_json_round_trips_byte_for_byte() {
        for (name, text) in FIXTURES {
            let config = fixture(name);
            let written = serde_json::to_string_pretty(&config).unwrap();
            assert_eq!(written, text.trim_end(), "{name}");
            let again: RunConfig = serde_json::from_str(&written).unwrap();
            assert_eq!(again, config, "{name}");
        }
    }

    #[test]
    fn settings_of_other_kinds_are_ignored_and_a_swae_needs_its_own() {
        let text = include_str!("../../tests/fixtures/config/vae.json")
            .replace("\"beta\": 0.5", "\"beta\": 0.25")
            .replace("\"classes\": null", "\"classes\": 3")
            .replace("\"lambda\": 0.0", "\"lambda\": 7.0");
        let vae: RunConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(vae.network.objective, Objective::Vae { beta: 0.25 });
        let text = include_str!("../../tests/fixtures/config/swae.json")
            .replace("\"prior\": \"ring\"", "\"prior\": null");
        let err = serde_json::from_str::<RunConfig>(&text).unwrap_err();
        assert!(err.to_string().contains("needs a prior"), "{err}");
    }
}
