//! `tinygen fit diffusion` from the command line, on the bundled digits:
//! the noise prediction loss drops, the run folder holds its files, a seed
//! gives the same run, resume continues it, divergence keeps the last good
//! checkpoint, bad input gets a clear error, and the exported file samples
//! with the runtime as `tinygen sample` and `tinygen info` say.

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use tinygen::nn::run::load_checkpoint;

mod common;
use common::{fails, metrics, ok, tinygen};

/// Every epoch's training and test loss.
fn losses(m: &Value) -> Vec<(f64, f64)> {
    m["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["train_loss"].as_f64().unwrap(),
                r["test_loss"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// `tinygen fit diffusion` on the digits with a small network.
fn fit(run: &Path, epochs: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "fit",
        "diffusion",
        "--out",
        run.to_str().unwrap(),
        "--hidden",
        "64",
        "--steps",
        "50",
        "--embedding",
        "8",
        "--batch-size",
        "64",
        "--epochs",
        epochs,
        "--log",
        "quiet",
    ];
    args.extend(extra);
    tinygen(&args)
}

#[test]
fn a_diffusion_model_learns_the_digits_and_samples_on_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("diffusion");
    ok(&fit(&run, "20", &[]));
    let m = metrics(&run);
    assert_eq!(m["model"], "diffusion");
    let l = losses(&m);
    assert_eq!(l.len(), 20);
    // Predicting zero costs the noise's energy, 64 per row; the linear
    // skip alone takes most of it, and training the network lowers the
    // rest.
    assert!(l[0].0 < 32.0 && l[19].0 < 0.9 * l[0].0, "{l:?}");
    assert!(l[19].1 < l[0].1, "{l:?}");
    let sw = m["sample_sw_distance"].as_f64().unwrap();
    assert!(sw.is_finite() && sw > 0.0, "{sw}");
    for f in [
        "config.json",
        "checkpoint.safetensors",
        "metrics.json",
        "loss.png",
        "samples.png",
    ] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    let r = run.to_str().unwrap();
    let file = dir.path().join("digits-diffusion.tgm");
    let f = file.to_str().unwrap();
    let report = ok(&tinygen(&["export", r, "--out", f]));
    assert!(report.contains("matches candle"), "{report}");
    let info = ok(&tinygen(&["info", f]));
    for needle in ["diffusion", "50 steps", "per step", "sampler"] {
        assert!(info.contains(needle), "{needle:?} not in: {info}");
    }
    // Seeded samples: reproducible, in the data's range, different by
    // sampler; a step count outside 1..=T is refused.
    let sample = |extra: &[&str], name: &str| {
        let out = dir.path().join(name);
        let mut args = vec!["sample", "--model", f, "-n", "6", "--seed", "5", "--out"];
        args.push(out.to_str().unwrap());
        args.extend(extra);
        ok(&tinygen(&args));
        let text = std::fs::read_to_string(out).unwrap();
        text.lines()
            .skip(1)
            .flat_map(|l| {
                l.split(',')
                    .map(|v| v.parse::<f32>().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<f32>>()
    };
    let ddim = sample(&[], "a.csv");
    assert_eq!(ddim.len(), 6 * 64);
    assert!(ddim.iter().all(|v| (0.0..=1.0).contains(v)));
    assert_eq!(ddim, sample(&["--sampler", "ddim"], "b.csv"));
    let ddpm = sample(&["--sampler", "ddpm"], "c.csv");
    assert_ne!(ddim, ddpm);
    assert_eq!(
        ddpm,
        sample(&["--sampler", "ddpm", "--steps", "50"], "d.csv")
    );
    fails(
        &tinygen(&["sample", "--model", f, "--steps", "51", "--out", "x.csv"]),
        &["--steps must lie in 1..=50"],
    );
    // A diffusion model has no encoder.
    fails(
        &tinygen(&["export", r, "--part", "encoder", "--out", f]),
        &["no encoder"],
    );
}

#[test]
fn a_seed_gives_the_same_diffusion_run_and_resume_continues_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(&fit(&a, "2", &["--no-plots", "--schedule", "cosine"]));
    ok(&fit(&b, "2", &["--no-plots", "--schedule", "cosine"]));
    let (wa, _) = load_checkpoint(&a).unwrap();
    let (wb, _) = load_checkpoint(&b).unwrap();
    assert!(
        wa.keys()
            .all(|k| k.starts_with("predictor.") || k.starts_with("data.")),
        "{:?}",
        wa.keys()
    );
    assert!(wa.contains_key("data.mean") && wa.contains_key("data.variance"));
    for (name, t) in &wa {
        let flat = |t: &candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(flat(t) == flat(&wb[name]), "same seed, different {name}");
    }
    assert_eq!(losses(&metrics(&a)), losses(&metrics(&b)));
    ok(&fit(&a, "3", &["--no-plots", "--resume"]));
    let resumed = losses(&metrics(&a));
    assert_eq!(resumed.len(), 3);
    assert_eq!(resumed[..2], losses(&metrics(&b))[..]);
}

#[test]
fn divergence_stops_the_diffusion_run_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    ok(&fit(&run, "1", &["--no-plots"]));
    let before = std::fs::read(run.join("checkpoint.safetensors")).unwrap();
    let out = fit(&run, "3", &["--no-plots", "--resume", "--lr", "1e30"]);
    fails(&out, &["training diverged", "checkpoint of epoch 1"]);
    assert_eq!(
        std::fs::read(run.join("checkpoint.safetensors")).unwrap(),
        before
    );
}

#[test]
fn bad_diffusion_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("r");
    let r = run.to_str().unwrap();
    for (extra, needle) in [
        (&["--steps", "0"][..], "--steps must be at least 1"),
        (
            &["--embedding", "7"][..],
            "--embedding must be an even number",
        ),
        (
            &["--sample-steps", "60"][..],
            "--sample-steps must lie in 1..=50",
        ),
        (&["--latent", "3"][..], "latent is the data itself"),
        (&["--beta-end", "1.5"][..], "noise schedule"),
    ] {
        let mut args = vec!["fit", "diffusion", "--out", r, "--epochs", "1"];
        if extra[0] != "--steps" {
            args.extend(["--steps", "50"]);
        }
        args.extend(extra);
        fails(&tinygen(&args), &[needle]);
    }
    let big = dir.path().join("big.csv");
    std::fs::write(&big, "a,b\n0.1,2.5\n").unwrap();
    fails(
        &fit(&run, "1", &["--data", big.to_str().unwrap()]),
        &["[0, 1]", "--reconstruction mse"],
    );
    assert!(!run.join("checkpoint.safetensors").exists());
}
