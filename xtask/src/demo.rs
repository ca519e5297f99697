//! `cargo xtask demo`: the main job, end to end, on bundled data.

use std::path::Path;

use anyhow::Context;
use xtask::{root, write_case};

use crate::process::tinygen;
use crate::qemu::qemu;

/// The example model: one full-covariance Gaussian on the standardized
/// bundled Cardio data (the PyOD GMM detector; more components also fit
/// the outliers and flag them less well, see models/README.md).
pub(crate) fn fit_cardio(out: &str) -> anyhow::Result<()> {
    tinygen(&[
        "fit",
        "gmm",
        "--data",
        "data/cardio.csv.gz",
        "--label-column",
        "label",
        "--components",
        "1",
        "--covariance",
        "full",
        "--standardize",
        "--quiet",
        "--out",
        out,
    ])
}

/// The first `rows` feature rows of a data file, as f32.
pub(crate) fn first_rows(data: &Path, label: &str, rows: usize) -> anyhow::Result<Vec<f32>> {
    let opts = tinygen::data::LoadOptions {
        label_column: Some(label.into()),
        drop_columns: vec![],
    };
    let set = tinygen::data::load(data, &opts)?;
    let idx: Vec<usize> = (0..rows.min(set.rows)).collect();
    Ok(set.select_rows(&idx).to_f32())
}

pub(crate) fn demo() -> anyhow::Result<()> {
    let out = root().join("out").join("demo");
    std::fs::create_dir_all(&out)?;
    let model = out.join("cardio.tgm");
    let model_s = model.to_string_lossy().into_owned();
    let scores = out.join("cardio_scores.csv");
    fit_cardio(&model_s)?;
    tinygen(&["info", &model_s])?;
    tinygen(&[
        "score",
        "--model",
        &model_s,
        "--data",
        "data/cardio.csv.gz",
        "--label-column",
        "label",
        "--out",
        &scores.to_string_lossy(),
    ])?;
    eprintln!("wrote {}", scores.display());
    let auc = roc_auc_of_scores(&scores, &root().join("data/cardio.csv.gz"))?;
    println!("ROC-AUC of -log-density against the outlier labels (all rows, in-sample): {auc:.4}");

    // A stream detector: smartwatch windows, Standing and Walking are normal.
    let detector = out.join("basicmotions.tgm");
    let detector_s = detector.to_string_lossy().into_owned();
    let (length, stride) = xtask::BASICMOTIONS_WINDOW;
    let (length, stride) = (length.to_string(), stride.to_string());
    tinygen(&[
        "fit",
        "detector",
        "--data",
        "data/basicmotions/BasicMotions_TRAIN.ts.gz",
        "--normal-classes",
        &xtask::BASICMOTIONS_NORMAL.join(","),
        "--window",
        &length,
        "--stride",
        &stride,
        "--alarm-rate",
        "0.01",
        "--out",
        &detector_s,
    ])?;
    tinygen(&["info", &detector_s])?;

    // A generative model: a VAE on the bundled 8x8 digits, its decoder
    // exported for the device and sampled on the host like the board does.
    let vae = out.join("digits-vae");
    std::fs::remove_dir_all(&vae).ok();
    let (vae_s, decoder) = (
        vae.to_string_lossy().to_string(),
        out.join("digits-decoder.tgm"),
    );
    let decoder_s = decoder.to_string_lossy().to_string();
    tinygen(&[
        "fit",
        "vae",
        "--data",
        "digits",
        "--hidden",
        "128",
        "--latent",
        "8",
        "--epochs",
        "60",
        "--batch-size",
        "64",
        "--log",
        "quiet",
        "--out",
        &vae_s,
    ])?;
    tinygen(&["export", &vae_s, "--part", "decoder", "--out", &decoder_s])?;
    let grid = out.join("digits-samples.png");
    tinygen(&[
        "sample",
        "--model",
        &decoder_s,
        "-n",
        "64",
        "--seed",
        "0",
        "--out",
        &grid.to_string_lossy(),
    ])?;
    println!(
        "plots of the run in {}; host samples in {}",
        vae.display(),
        grid.display()
    );

    xtask::install_prerequisites()?;
    let cases = out.join("cases");
    std::fs::remove_dir_all(&cases).ok();
    let points = first_rows(&root().join("data/cardio.csv.gz"), "label", 64)?;
    write_case(&cases.join("cardio"), &std::fs::read(&model)?, &points)?;
    xtask::basicmotions_stream_case(
        &cases.join("basicmotions_stream"),
        &std::fs::read(&detector)?,
    )?;
    let latents = tinygen::nn::prior::Prior::Gaussian.sample(
        4,
        8,
        None,
        &mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1),
    );
    write_case(
        &cases.join("digits_decoder"),
        &std::fs::read(&decoder)?,
        &latents,
    )?;
    // The same cases on every class of core, bit for bit.
    qemu(&cases, &xtask::Core::ALL)
}

/// ROC-AUC of `-log_density` (from a `tinygen score` CSV) against a data
/// file's `label` column (1 = outlier).
pub(crate) fn roc_auc_of_scores(scores: &Path, data: &Path) -> anyhow::Result<f64> {
    let text = std::fs::read_to_string(scores)?;
    let outlier_score: Vec<f64> = text
        .lines()
        .skip(1)
        .map(|l| l.parse::<f64>().map(|v| -v))
        .collect::<Result<_, _>>()?;
    let opts = tinygen::data::LoadOptions {
        label_column: Some("label".into()),
        drop_columns: vec![],
    };
    let labels = tinygen::data::load(data, &opts)?
        .labels
        .context("no labels")?;
    let is_outlier: Vec<bool> = labels.iter().map(|&l| l == 1.0).collect();
    tinygen::detector::metrics::roc_auc(&outlier_score, &is_outlier).context("ROC-AUC undefined")
}
