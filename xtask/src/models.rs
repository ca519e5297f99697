//! `cargo xtask models`: regenerate the example models in `models/`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use xtask::{root, write_case};

use crate::demo::{first_rows, fit_cardio};
use crate::process::{cargo, run, tinygen, tinygen_output};

pub(crate) fn models(only: Option<&str>) -> anyhow::Result<()> {
    let wanted = |name: &str| only.is_none_or(|o| o == name);
    anyhow::ensure!(
        only.is_none_or(|o| ["cardio-gmm", "mnist-vae-decoder", "mnist-classifier"].contains(&o)),
        "no example model {only:?}"
    );
    if wanted("cardio-gmm") {
        let dir = root().join("models").join("cardio-gmm");
        std::fs::create_dir_all(&dir)?;
        let model = dir.join("model.tgm");
        fit_cardio(&model.to_string_lossy())?;
        let points = first_rows(&root().join("data/cardio.csv.gz"), "label", 32)?;
        write_case(&dir, &std::fs::read(&model)?, &points)?;
    }
    if only == Some("cardio-gmm") {
        return Ok(());
    }
    match mnist_dir() {
        Ok(mnist) => {
            if wanted("mnist-vae-decoder") {
                mnist_decoder(&mnist)?;
            }
            if wanted("mnist-classifier") {
                mnist_classifier(&mnist)?;
            }
            Ok(())
        }
        Err(e) => {
            eprintln!("models/mnist-vae-decoder and mnist-classifier not regenerated: {e}");
            Ok(())
        }
    }
}

/// The classifier whose hidden layer gives the features of the sample
/// quality measure (`tinygen eval quality`): 784 -> 128 relu -> 10, 10
/// epochs, seed 0; the first 4 test images and their logits as test
/// vectors.
pub(crate) fn mnist_classifier(mnist: &Path) -> anyhow::Result<()> {
    let dir = root().join("models").join("mnist-classifier");
    std::fs::create_dir_all(&dir)?;
    let model = dir.join("model.tgm");
    let report = tinygen_output(&[
        "fit",
        "classifier",
        "--data",
        "mnist",
        "--data-dir",
        &mnist.to_string_lossy(),
        "--hidden",
        "128",
        "--epochs",
        "10",
        "--seed",
        "0",
        "--out",
        &model.to_string_lossy(),
    ])?;
    let test = tinygen::data::images::load_samples(
        "mnist",
        Some(mnist),
        tinygen::data::images::Split::Test,
        None,
    )?;
    write_case(&dir, &std::fs::read(&model)?, &test.x[..4 * test.dim])?;
    let mut metrics: serde_json::Value = serde_json::from_str(report.trim())?;
    metrics["model"] = "models/mnist-classifier/model.tgm".into();
    std::fs::write(
        dir.join("metrics.json"),
        serde_json::to_string_pretty(&metrics)? + "\n",
    )?;
    Ok(())
}

/// The example MNIST decoder: a VAE with a 16-dimensional latent and one
/// hidden layer of 128, trained for 10 epochs; its decoder as `.tgm` and
/// ONNX, with 4 fixed latents from the prior (seeded) as test vectors.
pub(crate) fn mnist_decoder(mnist: &Path) -> anyhow::Result<()> {
    use rand::SeedableRng;

    let run = xtask::target_dir().join("models-mnist-vae");
    let _ = std::fs::remove_dir_all(&run);
    let (run_s, mnist_s) = (run.to_string_lossy(), mnist.to_string_lossy());
    tinygen(&[
        "fit",
        "vae",
        "--data",
        "mnist",
        "--data-dir",
        &mnist_s,
        "--latent",
        "16",
        "--hidden",
        "128",
        "--epochs",
        "10",
        "--seed",
        "0",
        "--iw-samples",
        "100",
        "--log",
        "quiet",
        "--out",
        &run_s,
    ])?;
    let dir = root().join("models").join("mnist-vae-decoder");
    std::fs::create_dir_all(&dir)?;
    let model = dir.join("model.tgm");
    tinygen(&[
        "export",
        &run_s,
        "--part",
        "decoder",
        "--out",
        &model.to_string_lossy(),
    ])?;
    // The same decoder as ONNX (the `onnx` feature of the binary).
    self::run(
        cargo()
            .args([
                "run",
                "--quiet",
                "--release",
                "-p",
                "tinygen",
                "--features",
                "onnx",
                "--",
            ])
            .args([
                "export", &run_s, "--part", "decoder", "--format", "onnx", "--out",
            ])
            .arg(dir.join("model.onnx")),
    )?;
    std::fs::copy(run.join("metrics.json"), dir.join("metrics.json"))?;
    std::fs::copy(run.join("samples.png"), dir.join("samples.png"))?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
    let latents = tinygen::nn::prior::Prior::Gaussian.sample(4, 16, None, &mut rng);
    write_case(&dir, &std::fs::read(&model)?, &latents)?;
    int8_decoder(&run_s, &mnist_s, &model, &latents)
}

/// The same decoder quantized to int8 (`--quantize int8 --per-tensor
/// --f32-output`, calibrated on the default 1,000 training rows: one weight
/// scale per layer keeps the file under 110 KB, and the output sigmoid runs
/// in f32 on the int8 pre-activation, so the int8 output grid costs
/// nothing), with the same test latents; the MNIST test reconstruction loss
/// through the run's encoder and each decoder file (also, not kept, the
/// per-channel export and the export whose sigmoid is TFLite's int8 table,
/// with the f32 decoder's loss on that table's output grid:
/// `quality.json`); 64 samples of each from the same prior draws.
fn int8_decoder(run: &str, mnist: &str, f32_model: &Path, latents: &[f32]) -> anyhow::Result<()> {
    let dir = root().join("models").join("mnist-vae-int8-decoder");
    std::fs::create_dir_all(&dir)?;
    let model = dir.join("model.tgm");
    let model_s = model.to_string_lossy();
    let f32_s = f32_model.to_string_lossy();
    let export = |out: &str, extra: &[&str]| {
        let args = [
            "export",
            run,
            "--part",
            "decoder",
            "--quantize",
            "int8",
            "--out",
            out,
        ];
        tinygen_output(&[&args[..], extra].concat())
    };
    let report = export(&model_s, &["--per-tensor", "--f32-output"])?;
    std::fs::write(dir.join("export.txt"), &report)?;
    let per_channel = xtask::target_dir().join("models-mnist-int8-per-channel.tgm");
    let per_channel_s = per_channel.to_string_lossy();
    export(&per_channel_s, &["--f32-output"])?;
    let table = xtask::target_dir().join("models-mnist-int8-output-table.tgm");
    let table_s = table.to_string_lossy();
    export(&table_s, &["--per-tensor"])?;
    let eval = |file: &str| -> anyhow::Result<serde_json::Value> {
        let out = tinygen_output(&[
            "eval",
            run,
            "--data",
            "mnist",
            "--data-dir",
            mnist,
            "--split",
            "test",
            "--iw-samples",
            "0",
            "--decoder",
            file,
        ])?;
        Ok(serde_json::from_str(out.trim())?)
    };
    let (f32_eval, int8_eval) = (eval(&f32_s)?, eval(&model_s)?);
    let (channel_eval, table_eval) = (eval(&per_channel_s)?, eval(&table_s)?);
    let get = |v: &serde_json::Value, key: &str| v[key].as_f64().unwrap_or(f64::NAN);
    let (f32_loss, int8_loss) = (
        get(&f32_eval, "file_reconstruction"),
        get(&int8_eval, "file_reconstruction"),
    );
    let table_loss = get(&table_eval, "file_reconstruction");
    let grid = get(&table_eval, "output_grid_reconstruction");
    let quality = serde_json::json!({
        "split": "test",
        "f32_decoder_reconstruction": f32_loss,
        "int8_decoder_reconstruction": int8_loss,
        "relative_change": int8_loss / f32_loss - 1.0,
        "per_channel_reconstruction": get(&channel_eval, "file_reconstruction"),
        "output_table_reconstruction": table_loss,
        "output_table_relative_change": table_loss / f32_loss - 1.0,
        "output_grid_reconstruction": grid,
        "output_grid_relative_change": grid / f32_loss - 1.0,
        "per_channel_bytes": std::fs::metadata(&per_channel)?.len(),
        "bytes": std::fs::metadata(&model)?.len(),
        "candle_reconstruction": f32_eval["reconstruction"],
    });
    std::fs::write(
        dir.join("quality.json"),
        serde_json::to_string_pretty(&quality)? + "\n",
    )?;
    for (file, png) in [(&*model_s, "samples.png"), (&*f32_s, "samples-f32.png")] {
        let out = dir.join(png);
        tinygen(&[
            "sample",
            "--model",
            file,
            "-n",
            "64",
            "--seed",
            "0",
            "--out",
            &out.to_string_lossy(),
        ])?;
    }
    write_case(&dir, &std::fs::read(&model)?, latents)
}

/// The folder holding the MNIST IDX files: data/mnist, or ../shared/data/mnist.
pub(crate) fn mnist_dir() -> anyhow::Result<PathBuf> {
    let shared =
        std::env::var_os("TINYGEN_SHARED").map_or_else(|| root().join("../shared"), PathBuf::from);
    [root().join("data/mnist"), shared.join("data/mnist")]
        .into_iter()
        .find(|d| d.join("train-images-idx3-ubyte.gz").exists())
        .context(
            "MNIST not found: run `tinygen data mnist` (writes data/mnist) or set TINYGEN_SHARED",
        )
}
