//! The training loop shared by every neural model: Adam(W) over shuffled
//! mini-batches (the VAE through its hand-written step, see
//! [`super::vae_step`]; for the GAN one step of each player per batch, see
//! [`super::gan`]), a progress bar or JSON-lines log, test loss after every
//! epoch, an atomic checkpoint after every epoch, and a clear stop on a
//! non-finite loss (the last good checkpoint stays).
//!
//! The optimiser steps on the objective summed over the batch (the
//! reported losses are per row).
//!
//! Determinism: the batch order and every random draw of epoch `e` come
//! from generators seeded by (seed, e), so a seed gives the same run on one
//! machine. `--resume` continues from the last checkpoint with the same
//! batches, but Adam's moment estimates start again from zero (they are
//! not checkpointed).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::{Device, Tensor};
use candle_nn::ParamsAdamW;
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::adam::Adam;
use super::config::{Objective, RunConfig};
use super::gan;
use super::metrics::{EvalOptions, check_data, evaluate, samples_tensor};
use super::network::{Batch, Draws, Network};
use super::run::{EpochRecord, TrainState, save_checkpoint};
use super::vae_step::VaeStep;
use crate::data::images::Samples;

/// How training reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogMode {
    /// A progress bar with the running loss (standard error), and one
    /// summary line per epoch.
    Bar,
    /// Nothing but errors.
    Quiet,
    /// One JSON object per epoch on standard output.
    Json,
}

/// Generator of stream `stream` for seed `seed`.
fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Which training rows' labels the semi-supervised SWAE sees: each row
/// independently with probability `fraction` (fixed by the seed).
pub fn labelled_rows(rows: usize, fraction: f64, seed: u64) -> Vec<bool> {
    let mut rng = stream_rng(seed, u64::MAX);
    (0..rows).map(|_| rng.random::<f64>() < fraction).collect()
}

/// Trains `net` from the state `state` up to `config.train.epochs` epochs,
/// checkpointing into `run` after every epoch (when given).
pub fn train(
    run: Option<&Path>,
    config: &RunConfig,
    net: &Network,
    mut state: TrainState,
    train: &Samples,
    test: Option<&Samples>,
    log: LogMode,
) -> anyhow::Result<TrainState> {
    let cfg = &config.train;
    cfg.validate()?;
    check_data(net, train)?;
    if let Some(t) = test {
        check_data(net, t)?;
    }
    let labelled = match net.config.objective {
        Objective::Swae {
            semi_supervised: Some(s),
            ..
        } => Some(labelled_rows(train.n, s.labelled_fraction, cfg.seed)),
        _ => None,
    };
    let adam = ParamsAdamW {
        lr: cfg.lr,
        weight_decay: cfg.weight_decay,
        ..ParamsAdamW::default()
    };
    let mut optimiser = match net.config.objective {
        Objective::Gan { gradient_penalty } => Optimiser::Gan(gan::Trainer::new(
            net,
            cfg.lr,
            cfg.weight_decay,
            gradient_penalty,
        )),
        Objective::Vae { .. } => Optimiser::Vae(Box::new(
            VaeStep::new(net, adam)?.context("a VAE's training step")?,
        )),
        _ => Optimiser::One(Adam::new(net.trainable_vars(), adam)),
    };
    // The data as a tensor, for the steps through candle.
    let x = match optimiser {
        Optimiser::Vae(_) => None,
        _ => Some(samples_tensor(train)?),
    };
    let steps = train.n.div_ceil(cfg.batch_size);
    for epoch in state.epochs_done() + 1..=cfg.epochs {
        let bar = progress_bar(log, steps as u64, epoch, cfg.epochs);
        let mut order: Vec<u32> = (0..train.n as u32).collect();
        order.shuffle(&mut stream_rng(cfg.seed, 2 * epoch as u64));
        let mut draws = Draws::new(0);
        *draws.rng() = stream_rng(cfg.seed, 2 * epoch as u64 + 1);
        let started = Instant::now();
        let mut total = 0.0;
        let mut players = PlayerTotals::default();
        for (step, idx) in order.chunks(cfg.batch_size).enumerate() {
            let batch = || -> candle_core::Result<Batch> {
                Ok(Batch {
                    x: x.as_ref()
                        .ok_or_else(|| candle_core::Error::Msg("no data tensor".into()))?
                        .index_select(&Tensor::new(idx, &Device::Cpu)?, 0)?,
                    labels: train.labels.as_ref().map(|v| pick(v, idx)),
                    labelled: labelled.as_ref().map(|v| pick(v, idx)),
                })
            };
            let value = match &mut optimiser {
                Optimiser::Vae(vae) => {
                    let mut rows = Vec::with_capacity(idx.len() * train.dim);
                    idx.iter()
                        .for_each(|&i| rows.extend_from_slice(train.row(i as usize)));
                    // The draws `Network::objective` takes for a VAE.
                    let eps = draws.normal_values(idx.len(), net.config.latent);
                    vae.step(&rows, &eps)
                }
                Optimiser::One(adam) => {
                    let loss = net.objective(&batch()?, &mut draws)?;
                    let value = loss.to_scalar::<f32>()? as f64;
                    if value.is_finite() {
                        // Step on the batch's sum, as pytorch/examples does:
                        // Adam is invariant to the scale of the loss except
                        // through its epsilon, which this keeps relatively
                        // as small as theirs.
                        adam.backward_step(&(loss * idx.len() as f64)?)?;
                    }
                    value
                }
                Optimiser::Gan(trainer) => {
                    let stats = trainer.step(net, &batch()?.x, &mut draws)?;
                    players.add(&stats, idx.len());
                    if stats.is_finite() {
                        stats.discriminator_loss
                    } else {
                        f64::NAN
                    }
                }
            };
            if !value.is_finite() {
                bar.abandon();
                // Before any update the learning rate is not the cause.
                let hint = if state.epochs_done() == 0 && step == 0 {
                    "the first batch's loss, before any update: check the data's scale (f32 \
                     squares overflow past 1.8e19; standardize or rescale the columns)"
                } else {
                    "try a smaller --lr"
                };
                bail!(
                    "training diverged: the loss is {value} at epoch {epoch}, step {}; {} ({hint})",
                    step + 1,
                    match (state.epochs_done(), run) {
                        (0, _) | (_, None) => "no checkpoint was written".to_string(),
                        (e, Some(run)) =>
                            format!("the checkpoint of epoch {e} in {} is kept", run.display()),
                    }
                );
            }
            total += value * idx.len() as f64;
            bar.inc(1);
            if step % 10 == 0 {
                bar.set_message(format!(
                    "{:.4}",
                    total / ((step * cfg.batch_size + idx.len()) as f64)
                ));
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        if let Optimiser::Vae(vae) = &optimiser {
            vae.write_back()?;
        }
        let test_loss = match test {
            Some(t) => Some(
                evaluate(
                    net,
                    t,
                    EvalOptions {
                        iw_samples: 0,
                        seed: cfg.seed,
                        samples: false,
                    },
                )?
                .loss,
            ),
            None => None,
        };
        let gan = matches!(optimiser, Optimiser::Gan(_));
        let record = EpochRecord {
            epoch,
            train_loss: total / train.n as f64,
            test_loss,
            seconds,
            generator_loss: gan.then(|| players.generator / train.n as f64),
            discriminator_accuracy: gan.then(|| players.accuracy / train.n as f64),
        };
        report(log, &record, cfg.epochs)?;
        state.history.push(record);
        if let Some(run) = run {
            save_checkpoint(run, net, &state)?;
        }
    }
    Ok(state)
}

/// How the parameters step: one Adam over all of them, or the GAN's two
/// players.
enum Optimiser {
    One(Adam),
    Gan(gan::Trainer),
    /// The VAE's hand-written step ([`super::vae_step`]).
    Vae(Box<VaeStep>),
}

/// The GAN's epoch sums, each step weighted by its rows.
#[derive(Default)]
struct PlayerTotals {
    generator: f64,
    accuracy: f64,
}

impl PlayerTotals {
    fn add(&mut self, stats: &gan::StepStats, rows: usize) {
        self.generator += stats.generator_loss * rows as f64;
        self.accuracy += stats.discriminator_accuracy * rows as f64;
    }
}

/// The entries of `v` at the indices `idx`.
fn pick<T: Copy>(v: &[T], idx: &[u32]) -> Vec<T> {
    idx.iter().map(|&i| v[i as usize]).collect()
}

fn progress_bar(log: LogMode, steps: u64, epoch: usize, epochs: usize) -> ProgressBar {
    if log != LogMode::Bar {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} loss {msg} ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}

fn report(log: LogMode, r: &EpochRecord, epochs: usize) -> anyhow::Result<()> {
    match log {
        LogMode::Quiet => {}
        LogMode::Json => {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer(&mut out, r)?;
            writeln!(out)?;
        }
        LogMode::Bar => {
            let test = r
                .test_loss
                .map(|t| format!(", test loss {t:.4}"))
                .unwrap_or_default();
            let players = match (r.generator_loss, r.discriminator_accuracy) {
                (Some(g), Some(a)) => {
                    format!(", generator loss {g:.4}, discriminator accuracy {a:.3}")
                }
                _ => String::new(),
            };
            let loss = if players.is_empty() {
                "train loss"
            } else {
                "discriminator loss"
            };
            eprintln!(
                "epoch {}/{epochs}: {loss} {:.4}{test}{players} ({:.1} s)",
                r.epoch, r.train_loss, r.seconds
            );
        }
    }
    Ok(())
}
