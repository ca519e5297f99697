//! `cargo xtask bench-neural`: VAE training speed against PyTorch, and
//! with `--quality` one sample-quality table for every generative model.

use std::process::Command;

use anyhow::{Context, ensure};
use xtask::root;

use crate::models::mnist_dir;
use crate::process::tinygen_output;

/// VAE training speed against PyTorch (and, with `quality`, the MNIST
/// quality figures of the VAE and the ring-prior SWAE).
pub(crate) fn bench_neural(quality: bool) -> anyhow::Result<()> {
    let mnist = mnist_dir()?;
    let mnist_s = mnist.to_str().context("non-UTF-8 path")?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let python = std::env::var("TINYGEN_TORCH_PYTHON")
        .or_else(|_| std::env::var("TINYGEN_PYTHON"))
        .unwrap_or_else(|_| "python3".into());
    let dir = xtask::target_dir().join("bench-neural");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    // tinygen: one epoch of 469 steps; the JSON log gives its seconds.
    let run = dir.join("speed");
    let log = tinygen_output(&[
        "fit",
        "vae",
        "--data",
        "mnist",
        "--data-dir",
        mnist_s,
        "--epochs",
        "1",
        "--log",
        "json",
        "--no-plots",
        "--iw-samples",
        "0",
        "--out",
        run.to_str().context("path")?,
    ])?;
    let epoch: serde_json::Value = serde_json::from_str(log.lines().next().context("no log")?)?;
    let steps = 60_000usize.div_ceil(128) as f64;
    let ours = steps / epoch["seconds"].as_f64().context("seconds")?;
    let out = Command::new(&python)
        .arg(root().join("scripts/bench_vae_torch.py"))
        .args([
            "--data-dir",
            mnist_s,
            "--steps",
            "300",
            "--threads",
            &threads.to_string(),
        ])
        .output()
        .with_context(|| format!("cannot run {python}"))?;
    ensure!(
        out.status.success(),
        "scripts/bench_vae_torch.py failed (needs torch and numpy; set TINYGEN_TORCH_PYTHON):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let torch: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let theirs = torch["steps_per_second"]
        .as_f64()
        .context("steps_per_second")?;
    println!(
        "VAE 784-400-20, batch 128, MNIST, {threads} threads; PyTorch {}",
        torch["torch"]
    );
    println!("| trainer | steps/s | ratio to PyTorch |");
    println!("|---|---|---|");
    println!(
        "| tinygen (hand-written step) | {ours:.1} | {:.2} |",
        ours / theirs
    );
    println!("| PyTorch | {theirs:.1} | 1.00 |");
    if !quality {
        return Ok(());
    }
    let vae = dir.join("vae");
    // Seed 1 is pytorch/examples' default; other seeds spread over about
    // 0.5 nats (BENCHMARKS.md), for PyTorch as for tinygen.
    let m = tinygen_output(&[
        "fit",
        "vae",
        "--data",
        "mnist",
        "--data-dir",
        mnist_s,
        "--seed",
        "1",
        "--epochs",
        "10",
        "--log",
        "quiet",
        "--iw-samples",
        "1000",
        "--out",
        vae.to_str().context("path")?,
    ])?;
    let m: serde_json::Value = serde_json::from_str(m.trim())?;
    println!(
        "VAE 10 epochs: test loss per sample {:.2} (bar 105.6), test ELBO {:.2}, IW log-likelihood (k = 1000) {:.2}",
        m["test_loss"].as_f64().unwrap_or(f64::NAN),
        m["test_elbo"].as_f64().unwrap_or(f64::NAN),
        m["iw_log_likelihood"].as_f64().unwrap_or(f64::NAN)
    );
    let swae = dir.join("swae-ring");
    let m = tinygen_output(&[
        "fit",
        "swae",
        "--data",
        "mnist",
        "--data-dir",
        mnist_s,
        "--prior",
        "ring",
        "--latent",
        "2",
        "--lambda",
        "10000",
        "--epochs",
        "10",
        "--log",
        "quiet",
        "--out",
        swae.to_str().context("path")?,
    ])?;
    let m: serde_json::Value = serde_json::from_str(m.trim())?;
    println!(
        "SWAE ring prior, 2-D latent, lambda 10000, 10 epochs: test reconstruction {:.2}, test loss {:.2}, SW distance to the prior {:.4} (plots in {})",
        m["test_reconstruction"].as_f64().unwrap_or(f64::NAN),
        m["test_loss"].as_f64().unwrap_or(f64::NAN),
        m["sw_distance"].as_f64().unwrap_or(f64::NAN),
        swae.display()
    );
    quality_table(&mnist, &dir.join("quality"))
}

/// Samples each model draws for the quality table (the same for every row).
const QUALITY_SAMPLES: usize = 2000;

/// The lecture's generative models on MNIST, each trained by one command
/// and sampled by the runtime from its exported file (the board's
/// samples), compared by the Fréchet distance of `models/mnist-classifier`'s
/// features and the sliced Wasserstein distance against the first
/// [`QUALITY_SAMPLES`] test images; a grid of 64 samples per model.
fn quality_table(mnist: &std::path::Path, dir: &std::path::Path) -> anyhow::Result<()> {
    use tinygen::data::images::{Split, load_samples};
    use tinygen::nn::quality::{FeatureExtractor, quality};

    std::fs::create_dir_all(dir)?;
    let mnist_s = mnist.to_str().context("non-UTF-8 path")?;
    let classifier = std::fs::read(root().join("models/mnist-classifier/model.tgm"))?;
    let extractor = FeatureExtractor::from_file(&classifier)?;
    let test = load_samples("mnist", Some(mnist), Split::Test, None)?;
    let n = QUALITY_SAMPLES;
    let real = &test.x[..n * test.dim];
    // The floor: the next test images against the first ones.
    let floor = quality(&extractor, &test.x[n * test.dim..2 * n * test.dim], real, 0)?;
    let rows: [(&str, &[&str]); 6] = [
        ("pca", &["fit", "pca", "-k", "16"]),
        (
            "ae",
            &[
                "fit",
                "ae",
                "--latent",
                "16",
                "--latent-density",
                "gmm:10",
                "--epochs",
                "10",
            ],
        ),
        (
            "vae",
            &[
                "fit",
                "vae",
                "--latent",
                "20",
                "--epochs",
                "10",
                "--iw-samples",
                "100",
            ],
        ),
        (
            "swae",
            &[
                "fit", "swae", "--prior", "ring", "--latent", "2", "--lambda", "10000", "--epochs",
                "10",
            ],
        ),
        (
            "gan",
            &[
                "fit", "gan", "--hidden", "256", "--latent", "64", "--epochs", "20",
            ],
        ),
        (
            "diffusion",
            &["fit", "diffusion", "--hidden", "512,512", "--epochs", "20"],
        ),
    ];
    println!(
        "\nSample quality on MNIST: {n} samples per model by the runtime from its exported file, \
         against the first {n} test images; Fréchet distance of models/mnist-classifier's 128 \
         features (FD) and sliced 2-Wasserstein distance in pixel space (SW); the next {n} test \
         images score FD {:.2}, SW {:.4}.\n",
        floor.frechet, floor.sliced_wasserstein
    );
    println!(
        "| model | command (on `--data mnist`) | fit (s) | parameters | file (B) | MACs per sample | FD | SW | log-likelihood |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, command) in rows {
        let run = dir.join(name);
        let _ = std::fs::remove_dir_all(&run);
        let mut args: Vec<&str> = command.to_vec();
        let run_s = run.to_str().context("path")?;
        args.extend(["--data", "mnist", "--data-dir", mnist_s, "--out", run_s]);
        if name != "pca" {
            args.extend(["--log", "quiet"]);
        }
        let started = std::time::Instant::now();
        let metrics = tinygen_output(&args)?;
        let seconds = started.elapsed().as_secs_f64();
        let metrics: serde_json::Value = serde_json::from_str(metrics.trim())?;
        let file = run.join("model.tgm");
        write_sampler_file(&run, &file, mnist)?;
        let samples = tinygen::host::sample_file(&file, n, 0, None)?;
        let q = quality(&extractor, &samples.values, real, 0)?;
        tinygen::nn::plots::square_image_grid(
            &dir.join(format!("{name}.png")),
            &samples.values[..64 * test.dim],
            test.dim,
        )?;
        let bytes = std::fs::read(&file)?;
        let aligned = tinygen::host::AlignedBytes::new(&bytes);
        let macs = match tinygen_runtime::AnyModel::from_bytes(aligned.as_bytes())
            .map_err(|e| anyhow::anyhow!("{e}"))?
        {
            tinygen_runtime::AnyModel::Diffusion(d) => {
                d.macs_per_step() * usize::from(d.spec().sampler.steps)
            }
            model => model.macs(),
        };
        let likelihood = metrics["iw_log_likelihood"]
            .as_f64()
            .map_or("-".to_string(), |v| format!("{v:.1} (IW, k = 100)"));
        println!(
            "| {name} | `tinygen {}` | {seconds:.0} | {} | {} | {macs} | {:.2} | {:.4} | {likelihood} |",
            command.join(" "),
            metrics["parameters"],
            bytes.len(),
            q.frechet,
            q.sliced_wasserstein,
        );
    }
    println!("\nSample grids: {}/<model>.png", dir.display());
    Ok(())
}

/// Writes the run's sampling model file: the decoder with its prior (PCA
/// gets a full Gaussian fitted to its training codes, the AE its latent
/// mixture), or the diffusion model.
fn write_sampler_file(
    run: &std::path::Path,
    file: &std::path::Path,
    mnist: &std::path::Path,
) -> anyhow::Result<()> {
    use tinygen::nn::export::{LatentMixture, Part, export_tgm, read_latent_mixture};

    let (_, net, _) = tinygen::nn::run::load_run(run)?;
    let bytes = if tinygen::nn::diffusion::settings(&net).is_ok() {
        tinygen::nn::diffusion::export(&net)?
    } else {
        let mut latent = read_latent_mixture(run)?;
        if net.config.prior().is_none() && latent.is_none() {
            let train = tinygen::data::images::load_samples(
                "mnist",
                Some(mnist),
                tinygen::data::images::Split::Train,
                None,
            )?;
            let codes = tinygen::nn::metrics::latents(&net, &train)?;
            let d = net.config.latent;
            let x = nalgebra::DMatrix::from_row_iterator(
                train.n,
                d,
                codes.iter().map(|&v| f64::from(v)),
            );
            let mean = x.row_mean();
            let mut centred = x.clone();
            for mut row in centred.row_iter_mut() {
                row -= &mean;
            }
            let cov = centred.transpose() * &centred / train.n as f64;
            latent = Some(LatentMixture {
                weights: vec![1.0],
                means: mean.iter().copied().collect(),
                covariances: cov.transpose().iter().copied().collect(),
            });
        }
        export_tgm(&net, Part::Decoder, latent.as_ref())?
    };
    std::fs::write(file, bytes)?;
    Ok(())
}
