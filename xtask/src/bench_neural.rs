//! `cargo xtask bench-neural`: VAE training speed (and quality) against PyTorch.

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
    println!("| tinygen (candle) | {ours:.1} | {:.2} |", ours / theirs);
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
    Ok(())
}
