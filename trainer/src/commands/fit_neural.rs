//! `tinygen fit ae|vae|swae`: train a neural generative model into a run folder.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Map, Value, json};

use crate::data::images::{Samples, Split, load_samples};
use crate::density::gmm::{EmOptions, GaussianMixture, fit_em};
use crate::io::write_atomic;
use crate::nn::config::{
    Activation, ModelKind, NetworkConfig, Reconstruction, RunConfig, TrainConfig,
};
use crate::nn::export::{LATENT_GMM_JSON, LatentMixture};
use crate::nn::metrics::{EvalOptions, Metrics, evaluate, latents};
use crate::nn::network::Network;
use crate::nn::prior::Prior;
use crate::nn::run::{self, LATENT_GMM, METRICS, TrainState};
use crate::nn::train::{LogMode, train};

/// Named data sets with their own train/test split.
const NAMED_SETS: [&str; 2] = ["digits", "mnist"];

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
    /// Loads the training split and, if there is one, the test split.
    pub fn load(&self) -> anyhow::Result<(Samples, Option<Samples>)> {
        load_split_pair(
            &self.data,
            self.data_dir.as_deref(),
            self.label_column.as_deref(),
            self.test_data.as_deref(),
        )
    }
}

/// Loads `data`'s training split and its test split (named sets) or `test`.
pub fn load_split_pair(
    data: &str,
    data_dir: Option<&Path>,
    label_column: Option<&str>,
    test: Option<&str>,
) -> anyhow::Result<(Samples, Option<Samples>)> {
    let train = load_samples(data, data_dir, Split::Train, label_column)?;
    let test = match test {
        Some(t) => Some(load_samples(t, data_dir, Split::Test, label_column)?),
        None if NAMED_SETS.contains(&data) => {
            Some(load_samples(data, data_dir, Split::Test, label_column)?)
        }
        None => None,
    };
    Ok((train, test))
}

/// Options shared by every neural model.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: NeuralDataArgs,
    /// Run folder for the configuration, checkpoint, metrics and plots
    /// (default: runs/<model>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Hidden layer widths of the encoder (the decoder mirrors them).
    #[arg(long, value_delimiter = ',', default_value = "400")]
    pub hidden: Vec<usize>,
    /// Latent dimension (default: 20 for VAE, 16 for AE, 2 for SWAE).
    #[arg(long)]
    pub latent: Option<usize>,
    /// Activation between hidden layers.
    #[arg(long, value_enum, default_value_t = Activation::Relu)]
    pub activation: Activation,
    /// Reconstruction term: binary cross-entropy (sigmoid output) or squared error.
    #[arg(long, value_enum, default_value_t = Reconstruction::Bce)]
    pub reconstruction: Reconstruction,
    /// Passes over the training data.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Rows per step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
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

fn parse_gmm_spec(spec: &str) -> anyhow::Result<usize> {
    match spec.strip_prefix("gmm:").map(str::parse::<usize>) {
        Some(Ok(k)) if k >= 1 => Ok(k),
        _ => bail!("--latent-density must be gmm:K with K >= 1, not {spec:?}"),
    }
}

fn class_count(samples: &Samples) -> anyhow::Result<usize> {
    let labels = samples.labels.as_ref().with_context(|| {
        format!(
            "{} has no labels (give --label-column for CSV/NPY data)",
            samples.name
        )
    })?;
    Ok(labels.iter().max().map_or(0, |&m| m as usize + 1))
}

fn base_config(kind: ModelKind, a: &TrainArgs, train: &Samples) -> NetworkConfig {
    let latent = a.latent.unwrap_or(match kind {
        ModelKind::Vae => 20,
        ModelKind::Swae => 2,
        _ => 16,
    });
    NetworkConfig {
        image: train.image,
        activation: a.activation,
        reconstruction: a.reconstruction,
        ..NetworkConfig::new(kind, train.dim, a.hidden.clone(), latent)
    }
}

/// Runs `tinygen fit ae`.
pub fn run_ae(args: &FitAeArgs) -> anyhow::Result<()> {
    fit(ModelKind::Ae, &args.train, 0, |train| {
        let mut cfg = base_config(ModelKind::Ae, &args.train, train);
        if args.supervised {
            cfg.classes = Some(class_count(train)?);
            cfg.class_weight = args.class_weight;
        }
        cfg.latent_density = args
            .latent_density
            .as_deref()
            .map(parse_gmm_spec)
            .transpose()?;
        Ok(cfg)
    })
}

/// Runs `tinygen fit vae`.
pub fn run_vae(args: &FitVaeArgs) -> anyhow::Result<()> {
    fit(ModelKind::Vae, &args.train, args.iw_samples, |train| {
        let mut cfg = base_config(ModelKind::Vae, &args.train, train);
        cfg.beta = args.beta;
        cfg.prior = Some(Prior::Gaussian);
        Ok(cfg)
    })
}

/// Runs `tinygen fit swae`.
pub fn run_swae(args: &FitSwaeArgs) -> anyhow::Result<()> {
    fit(ModelKind::Swae, &args.train, 0, |train| {
        let mut cfg = base_config(ModelKind::Swae, &args.train, train);
        cfg.prior = Some(args.prior);
        cfg.lambda = args.lambda;
        cfg.projections = args.projections;
        if args.semi_supervised {
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
            cfg.classes = Some(classes);
            cfg.labelled_fraction = Some(args.labelled_fraction);
        }
        Ok(cfg)
    })
}

/// Trains (or resumes) a run, then writes its metrics and plots.
fn fit(
    kind: ModelKind,
    a: &TrainArgs,
    iw_samples: usize,
    network: impl FnOnce(&Samples) -> anyhow::Result<NetworkConfig>,
) -> anyhow::Result<()> {
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(kind.name()));
    let removed = run::clean_run_folder(&out)?;
    if a.log == LogMode::Bar && !removed.is_empty() {
        eprintln!(
            "removed {} temporary file(s) an interrupted run left in {}",
            removed.len(),
            out.display()
        );
    }
    let (config, net, state, train_set, test_set) = if a.resume {
        let (mut config, net, state) = run::load_run_to_resume(&out)?;
        if config.network.kind != kind {
            bail!(
                "{} holds a {} run, not {}",
                out.display(),
                config.network.kind.name(),
                kind.name()
            );
        }
        config.train.epochs = a.epochs;
        config.train.lr = a.lr;
        config.train.validate()?;
        config.write(&out)?;
        let (train_set, test_set) = load_split_pair(
            &config.data,
            config.data_dir.as_deref().map(Path::new),
            config.label_column.as_deref(),
            None,
        )?;
        (config, net, state, train_set, test_set)
    } else {
        if out.join(run::CHECKPOINT).exists() {
            bail!(
                "{} already holds a run; use --resume to continue it or choose another --out",
                out.display()
            );
        }
        let (train_set, test_set) = a.data.load()?;
        let config = RunConfig {
            data: a.data.data.clone(),
            data_dir: a.data.data_dir.as_ref().map(|p| p.display().to_string()),
            label_column: a.data.label_column.clone(),
            network: network(&train_set)?,
            train: TrainConfig {
                epochs: a.epochs,
                batch_size: a.batch_size,
                lr: a.lr,
                weight_decay: a.weight_decay,
                seed: a.seed,
            },
        };
        config.train.validate()?;
        let net = Network::new(config.network.clone(), config.train.seed)?;
        std::fs::create_dir_all(&out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        config.write(&out)?;
        (config, net, TrainState::default(), train_set, test_set)
    };
    if a.log == LogMode::Bar {
        eprintln!(
            "{}: {} parameters, {} training rows{}; run folder {}",
            kind.name(),
            net.parameter_count(),
            train_set.n,
            test_set
                .as_ref()
                .map(|t| format!(", {} test rows", t.n))
                .unwrap_or_default(),
            out.display()
        );
    }
    let state = train(
        Some(&out),
        &config,
        &net,
        state,
        &train_set,
        test_set.as_ref(),
        a.log,
    )?;
    finish(
        &out,
        &net,
        &state,
        (&train_set, test_set.as_ref()),
        FinishOptions {
            iw_samples,
            plots: !a.no_plots,
            extra: Map::new(),
        },
    )
}

/// What [`finish`] writes besides the metrics.
#[derive(Debug, Clone, Default)]
pub struct FinishOptions {
    /// Importance samples per row for the VAE's log-likelihood (0: skip).
    pub iw_samples: usize,
    /// Whether to write the PNG plots.
    pub plots: bool,
    /// Extra entries for metrics.json (e.g. PCA's explained variance).
    pub extra: Map<String, Value>,
}

/// After training: the latent density (AE), metrics.json and plots.
pub fn finish(
    out: &Path,
    net: &Network,
    state: &TrainState,
    (train_set, test_set): (&Samples, Option<&Samples>),
    opts: FinishOptions,
) -> anyhow::Result<()> {
    let latent_gmm = match net.config.latent_density {
        Some(k) => Some(fit_latent_density(out, net, train_set, k)?),
        None => None,
    };
    let (split, eval_set) = match test_set {
        Some(t) => ("test", t),
        None => ("train", train_set),
    };
    let metrics = evaluate(
        net,
        eval_set,
        EvalOptions {
            iw_samples: opts.iw_samples,
            seed: 1,
        },
    )?;
    let mut json = metrics_json(net, state, split, &metrics);
    if let Value::Object(map) = &mut json {
        map.extend(opts.extra);
    }
    write_atomic(
        &out.join(METRICS),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    println!("{}", serde_json::to_string(&json)?);
    if opts.plots {
        crate::nn::plots::write_all(out, net, state, eval_set, latent_gmm.as_ref())?;
    }
    Ok(())
}

/// Fits a full-covariance GMM with `k` components to the training latents
/// and writes it as a runtime model file into the run folder.
fn fit_latent_density(
    out: &Path,
    net: &Network,
    train: &Samples,
    k: usize,
) -> anyhow::Result<GaussianMixture> {
    let z = latents(net, train)?;
    let d = net.config.latent;
    let x = nalgebra::DMatrix::from_row_iterator(train.n, d, z.iter().map(|&v| v as f64));
    let opts = EmOptions {
        components: k,
        seed: 0,
        ..EmOptions::default()
    };
    let (gmm, report) =
        fit_em(&x, &opts, &mut |_, _, _| {}).context("fitting the latent GMM failed")?;
    let bytes = gmm
        .params(None)
        .encode()
        .context("encoding the latent GMM")?;
    write_atomic(&out.join(LATENT_GMM), &bytes)?;
    let mixture = LatentMixture {
        weights: gmm.weights.clone(),
        means: gmm.means.clone(),
        covariances: gmm.covariances.clone(),
    };
    write_atomic(
        &out.join(LATENT_GMM_JSON),
        serde_json::to_string(&mixture)?.as_bytes(),
    )?;
    eprintln!(
        "latent density: GMM with {k} components, mean log-likelihood {:.4} ({} EM iterations) -> {}",
        report.lower_bound,
        report.n_iter,
        out.join(LATENT_GMM).display()
    );
    Ok(gmm)
}

/// `metrics.json`: the last epoch's training loss per row, the test loss
/// per row (null without a test split), then the model's own metrics on the
/// evaluation split (`eval_split`, the test split when there is one):
/// `{split}_reconstruction`, `{split}_elbo`, `iw_log_likelihood`,
/// `iw_samples`, `sw_distance`, `latent_accuracy` (those that apply), and
/// the per-epoch history.
fn metrics_json(net: &Network, state: &TrainState, split: &str, m: &Metrics) -> Value {
    let mut map = Map::new();
    map.insert("model".into(), json!(net.config.kind.name()));
    map.insert("parameters".into(), json!(net.parameter_count()));
    map.insert("epochs".into(), json!(state.epochs_done()));
    let last = state.history.last();
    map.insert("train_loss".into(), json!(last.map(|r| r.train_loss)));
    map.insert(
        "test_loss".into(),
        json!((split == "test").then_some(m.loss)),
    );
    map.insert("eval_split".into(), json!(split));
    map.insert("eval_rows".into(), json!(m.rows));
    if let Value::Object(fields) = serde_json::to_value(m).expect("metrics serialise") {
        for (k, v) in fields {
            match k.as_str() {
                "rows" | "loss" => {}
                "reconstruction" | "elbo" => {
                    map.insert(format!("{split}_{k}"), v);
                }
                _ => {
                    map.insert(k, v);
                }
            }
        }
    }
    map.insert(
        "history".into(),
        serde_json::to_value(&state.history).expect("history"),
    );
    Value::Object(map)
}
