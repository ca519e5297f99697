//! The life of a run folder: creating it (or resuming it), training the
//! network in it, and finishing it: the AE's latent density, `metrics.json`
//! and the plots. `tinygen fit pca|ae|vae|swae|gan` turn their arguments into
//! these calls.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use super::config::{NetworkConfig, NetworkKind, RunConfig, TrainConfig};
use super::export::{LATENT_GMM_JSON, LatentMixture};
use super::metrics::{EvalOptions, Metrics, evaluate, latents};
use super::network::Network;
use super::pca::fit_pca;
use super::run::{self, LATENT_GMM, METRICS, TrainState};
use super::train::{LogMode, train};
use crate::data::images::{Samples, Split, load_samples};
use crate::density::gmm::{EmOptions, GaussianMixture, fit_em};
use crate::io::write_atomic;

/// Named data sets with their own train/test split.
const NAMED_SETS: [&str; 2] = ["digits", "mnist"];

/// Where a run's data come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSource {
    /// A named set (`digits`, `mnist`) or a file.
    pub data: String,
    /// Folder holding the named set's files.
    pub data_dir: Option<PathBuf>,
    /// Label column of CSV/NPY data.
    pub label_column: Option<String>,
    /// Test data for a file given as `data` (named sets use their test split).
    pub test_data: Option<String>,
}

impl DataSource {
    /// The data `config.json` says a run was trained on.
    pub fn of_run(config: &RunConfig) -> Self {
        Self {
            data: config.data.clone(),
            data_dir: config.data_dir.as_ref().map(PathBuf::from),
            label_column: config.label_column.clone(),
            test_data: None,
        }
    }

    /// One split of `data`.
    pub fn load_split(&self, split: Split) -> anyhow::Result<Samples> {
        Ok(load_samples(
            &self.data,
            self.data_dir.as_deref(),
            split,
            self.label_column.as_deref(),
        )?)
    }

    /// The training split and the test split (a named set's, or `test_data`).
    pub fn load(&self) -> anyhow::Result<(Samples, Option<Samples>)> {
        let train = self.load_split(Split::Train)?;
        let test = match &self.test_data {
            Some(t) => Some(load_samples(
                t,
                self.data_dir.as_deref(),
                Split::Test,
                self.label_column.as_deref(),
            )?),
            None if NAMED_SETS.contains(&self.data.as_str()) => Some(self.load_split(Split::Test)?),
            None => None,
        };
        Ok((train, test))
    }

    /// The run configuration of a network trained on these data.
    fn run_config(&self, network: NetworkConfig, train: TrainConfig) -> RunConfig {
        RunConfig {
            data: self.data.clone(),
            data_dir: self.data_dir.as_ref().map(|p| p.display().to_string()),
            label_column: self.label_column.clone(),
            network,
            train,
        }
    }
}

/// Number of classes of labelled samples (largest label + 1); an error
/// naming the data if they have no labels.
pub fn class_count(samples: &Samples) -> anyhow::Result<usize> {
    let labels = samples.labels.as_ref().with_context(|| {
        format!(
            "{} has no labels (give --label-column for CSV/NPY data)",
            samples.name
        )
    })?;
    Ok(labels.iter().max().map_or(0, |&m| m as usize + 1))
}

/// The run folder a fit of `kind` writes unless told otherwise: `runs/<kind>`.
pub fn default_run_folder(kind: NetworkKind) -> PathBuf {
    PathBuf::from("runs").join(kind.name())
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

/// A neural fit: a new run, or `resume` of the run in `out`.
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// The model the run holds.
    pub kind: NetworkKind,
    /// Run folder.
    pub out: PathBuf,
    /// Training (and test) data of a new run.
    pub data: DataSource,
    /// Optimisation of a new run; on `resume` only `epochs` and `lr` apply.
    pub train: TrainConfig,
    /// Continue the run in `out` from its last checkpoint, with its stored
    /// configuration (the new `epochs` and `lr` are stored).
    pub resume: bool,
    /// Progress output.
    pub log: LogMode,
    /// What to write after training.
    pub finish: FinishOptions,
}

/// Trains a new run (its network built by `network` from the training
/// split) or resumes one, checkpointing after every epoch, then
/// [`finish`]es it. Returns the contents of `metrics.json`.
pub fn fit(
    opts: FitOptions,
    network: impl FnOnce(&Samples) -> anyhow::Result<NetworkConfig>,
) -> anyhow::Result<Value> {
    let (kind, out) = (opts.kind, &opts.out);
    let removed = run::clean_run_folder(out)?;
    if opts.log == LogMode::Bar && !removed.is_empty() {
        eprintln!(
            "removed {} temporary file(s) an interrupted run left in {}",
            removed.len(),
            out.display()
        );
    }
    let (config, net, state, train_set, test_set) = if opts.resume {
        let (mut config, net, state) = run::load_run_to_resume(out)?;
        if config.network.kind() != kind {
            bail!(
                "{} holds a {} run, not {}",
                out.display(),
                config.network.kind().name(),
                kind.name()
            );
        }
        config.train.epochs = opts.train.epochs;
        config.train.lr = opts.train.lr;
        config.train.validate()?;
        config.write(out)?;
        let (train_set, test_set) = DataSource::of_run(&config).load()?;
        if state.epochs_done() == 0 {
            // Stopped before its first checkpoint: the fresh network needs
            // its data statistics again.
            super::diffusion::set_data_statistics(&net, &train_set)?;
        }
        (config, net, state, train_set, test_set)
    } else {
        if out.join(run::CHECKPOINT).exists() {
            bail!(
                "{} already holds a run; use --resume to continue it or choose another --out",
                out.display()
            );
        }
        let (train_set, test_set) = opts.data.load()?;
        let config = opts
            .data
            .run_config(network(&train_set)?, opts.train.clone());
        config.train.validate()?;
        let net = Network::new(config.network.clone(), config.train.seed)?;
        super::diffusion::set_data_statistics(&net, &train_set)?;
        create_run_folder(out)?;
        config.write(out)?;
        (config, net, TrainState::default(), train_set, test_set)
    };
    if opts.log == LogMode::Bar {
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
        Some(out),
        &config,
        &net,
        state,
        &train_set,
        test_set.as_ref(),
        opts.log,
    )?;
    finish(
        out,
        &net,
        &state,
        (&train_set, test_set.as_ref()),
        opts.finish,
    )
}

/// Fits PCA with `components` components in closed form and writes it as a
/// run folder `out` holding a linear encoder/decoder pair, then
/// [`finish`]es it (with the explained variances in the metrics). Returns
/// the contents of `metrics.json`.
pub fn fit_pca_run(
    data: &DataSource,
    components: usize,
    out: &Path,
    plots: bool,
) -> anyhow::Result<Value> {
    if out.join(run::CHECKPOINT).exists() {
        bail!(
            "{} already holds a run; choose another --out",
            out.display()
        );
    }
    let (train_set, test_set) = data.load()?;
    let pca = fit_pca(&train_set, components)?;
    let network = pca.network_config(&train_set);
    let config = data.run_config(
        network.clone(),
        TrainConfig {
            epochs: 0,
            batch_size: 1,
            lr: 1.0,
            weight_decay: 0.0,
            seed: 0,
        },
    );
    let net = pca.network(network)?;
    create_run_folder(out)?;
    run::clean_run_folder(out)?;
    config.write(out)?;
    let state = TrainState::default();
    run::save_checkpoint(out, &net, &state)?;
    let mut extra = Map::new();
    extra.insert("explained_variance".into(), json!(pca.explained_variance));
    extra.insert(
        "explained_variance_ratio".into(),
        json!(pca.explained_variance_ratio),
    );
    finish(
        out,
        &net,
        &state,
        (&train_set, test_set.as_ref()),
        FinishOptions {
            iw_samples: 0,
            plots,
            extra,
        },
    )
}

fn create_run_folder(out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))
}

/// After training: the latent density (AE), metrics.json and plots.
/// Returns the contents of `metrics.json`.
pub fn finish(
    out: &Path,
    net: &Network,
    state: &TrainState,
    (train_set, test_set): (&Samples, Option<&Samples>),
    opts: FinishOptions,
) -> anyhow::Result<Value> {
    let latent_gmm = match net.config.latent_density() {
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
            samples: true,
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
    if opts.plots {
        super::plots::write_all(out, net, state, eval_set, latent_gmm.as_ref())?;
    }
    Ok(json)
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
    map.insert("model".into(), json!(net.config.kind().name()));
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
