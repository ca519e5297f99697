//! The run folder: `config.json`, `checkpoint.safetensors` (parameters plus
//! the training history in its metadata, written atomically after every
//! epoch), `metrics.json`, `latent_gmm.tgm` (AE with `--latent-density`) and
//! the PNG plots.
//!
//! Every file is written atomically ([`crate::io::write_atomic`]): a run
//! killed at any moment keeps the previous checkpoint or the new one, and
//! the temporary file an interrupted write leaves is removed when the run
//! folder is opened again ([`clean_run_folder`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::config::RunConfig;
use super::network::Network;
use crate::io::{remove_stale_temp_files, write_atomic};

/// File name of the configuration.
pub const CONFIG: &str = "config.json";
/// File name of the checkpoint.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// File name of the final metrics.
pub const METRICS: &str = "metrics.json";
/// File name of the latent mixture of an AE (runtime model file).
pub const LATENT_GMM: &str = "latent_gmm.tgm";
/// Metadata key of the training state inside the checkpoint.
const STATE_KEY: &str = "tinygen.state";

/// One finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training objective per row over the epoch (the GAN's
    /// discriminator loss).
    pub train_loss: f64,
    /// Objective per row on the test split after the epoch, if there is one.
    pub test_loss: Option<f64>,
    /// The GAN generator's mean loss over the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_loss: Option<f64>,
    /// The GAN discriminator's mean accuracy over the epoch's steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discriminator_accuracy: Option<f64>,
    /// Wall-clock seconds of the epoch (training steps only).
    pub seconds: f64,
}

/// Where training stands: the epochs done so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Finished epochs, in order.
    pub history: Vec<EpochRecord>,
}

impl TrainState {
    /// Number of finished epochs.
    pub fn epochs_done(&self) -> usize {
        self.history.len()
    }
}

/// Writes the parameters and the training state atomically.
pub fn save_checkpoint(run: &Path, net: &Network, state: &TrainState) -> anyhow::Result<()> {
    let data = net.varmap.data().lock().expect("varmap lock");
    let mut tensors: Vec<(String, Tensor)> = data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    drop(data);
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let meta = HashMap::from([(STATE_KEY.to_string(), serde_json::to_string(state)?)]);
    let bytes = safetensors::serialize(tensors.iter().map(|(k, t)| (k.as_str(), t)), Some(meta))
        .context("cannot serialise the checkpoint")?;
    write_atomic(&run.join(CHECKPOINT), &bytes)
}

/// Reads a checkpoint: the parameters and the training state.
pub fn load_checkpoint(run: &Path) -> anyhow::Result<(HashMap<String, Tensor>, TrainState)> {
    let path = run.join(CHECKPOINT);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .with_context(|| format!("{} is not a safetensors file", path.display()))?;
    let state = match meta.metadata().as_ref().and_then(|m| m.get(STATE_KEY)) {
        Some(s) => serde_json::from_str(s)
            .with_context(|| format!("{}: malformed training state", path.display()))?,
        None => TrainState::default(),
    };
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .with_context(|| format!("cannot load the tensors of {}", path.display()))?;
    Ok((tensors, state))
}

/// Removes the temporary files that interrupted writes (a killed fit)
/// left in a run folder, before a fit or `--resume` writes into it; returns
/// their paths. Only tinygen's own temporary files of processes no longer
/// running are removed (see [`remove_stale_temp_files`]).
pub fn clean_run_folder(run: &Path) -> anyhow::Result<Vec<PathBuf>> {
    remove_stale_temp_files(run).with_context(|| {
        format!(
            "cannot remove the temporary files of an interrupted run from {}",
            run.display()
        )
    })
}

/// Loads a run to continue training it: as [`load_run`], except that a
/// run folder whose `config.json` was written but whose first checkpoint
/// was not (the fit was stopped during its first epoch) starts again from
/// the initial weights of its seed, as the first fit did.
pub fn load_run_to_resume(run: &Path) -> anyhow::Result<(RunConfig, Network, TrainState)> {
    if run.join(CONFIG).is_file() && !run.join(CHECKPOINT).exists() {
        let config = RunConfig::read(run)?;
        let net = Network::new(config.network.clone(), config.train.seed)?;
        return Ok((config, net, TrainState::default()));
    }
    load_run(run)
}

/// Loads a trained run: its configuration, network and training state.
pub fn load_run(run: &Path) -> anyhow::Result<(RunConfig, Network, TrainState)> {
    let config = RunConfig::read(run)?;
    let (tensors, state) = load_checkpoint(run)?;
    let net = Network::with_parameters(config.network.clone(), &tensors)
        .with_context(|| format!("{} does not match its config.json", run.display()))?;
    Ok((config, net, state))
}
