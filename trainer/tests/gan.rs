//! `tinygen fit gan` from the command line, on the bundled digits: the
//! generator learns (its samples come closer to the test rows), the run
//! folder holds what the other neural runs hold, a seed gives the same run,
//! resume continues it, divergence keeps the last good checkpoint, bad
//! input gets a clear error, and the generator deploys as a decoder.

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use tinygen::nn::run::{load_checkpoint, load_run};

mod common;
use common::{fails, metrics, ok, tinygen};

/// `tinygen fit gan` on the digits with a small network.
fn fit_gan(run: &Path, epochs: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "fit",
        "gan",
        "--out",
        run.to_str().unwrap(),
        "--hidden",
        "64",
        "--latent",
        "8",
        "--batch-size",
        "32",
        "--epochs",
        epochs,
        "--log",
        "quiet",
    ];
    args.extend(extra);
    tinygen(&args)
}

#[test]
fn a_gan_learns_the_digits_and_writes_its_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let untrained = dir.path().join("untrained");
    ok(&fit_gan(&untrained, "0", &["--no-plots"]));
    let run = dir.path().join("gan");
    ok(&fit_gan(&run, "30", &[]));
    let (before, m) = (metrics(&untrained), metrics(&run));
    assert_eq!(m["model"], "gan");
    let sw = |m: &Value| m["sample_sw_distance"].as_f64().unwrap();
    assert!(
        sw(&m) < 0.7 * sw(&before),
        "the samples did not come closer to the test rows: {} -> {}",
        sw(&before),
        sw(&m)
    );
    let accuracy = m["discriminator_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy), "{accuracy}");
    let history = m["history"].as_array().unwrap();
    assert_eq!(history.len(), 30);
    for r in history {
        for key in ["train_loss", "test_loss", "generator_loss"] {
            let v = r[key].as_f64().unwrap();
            assert!(v.is_finite() && v > 0.0, "{key} {v}");
        }
    }
    for f in [
        "config.json",
        "checkpoint.safetensors",
        "metrics.json",
        "loss.png",
        "samples.png",
    ] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    // No encoder: no latent codes to draw, nothing to reconstruct.
    assert!(!run.join("latent.png").exists());
    assert!(!run.join("reconstructions.png").exists());
    // `tinygen eval` recomputes the metrics with the same draws.
    let e: Value = serde_json::from_str(&ok(&tinygen(&["eval", run.to_str().unwrap()]))).unwrap();
    assert_eq!(e["sample_sw_distance"], m["sample_sw_distance"]);
    assert_eq!(e["loss"], m["test_loss"]);
}

#[test]
fn the_generator_deploys_as_a_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("gan");
    ok(&fit_gan(&run, "2", &["--no-plots"]));
    let r = run.to_str().unwrap();
    let dec = dir.path().join("generator.tgm");
    let report = ok(&tinygen(&["export", r, "--out", dec.to_str().unwrap()]));
    assert!(report.contains("matches candle"), "{report}");
    let info = ok(&tinygen(&["info", dec.to_str().unwrap()]));
    assert!(info.to_lowercase().contains("gaussian"), "{info}");
    // The runtime decodes given latents as candle does.
    let z = dir.path().join("z.csv");
    let latents = [[0.5f32, -1.0, 2.0, 0.0, 0.1, -0.3, 1.2, 0.7], [0.0; 8]];
    let csv: String = std::iter::once("a,b,c,d,e,f,g,h".to_string())
        .chain(latents.iter().map(|row| {
            row.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",")
        }))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&z, csv).unwrap();
    let decoded = ok(&tinygen(&[
        "decode",
        "--model",
        dec.to_str().unwrap(),
        "--data",
        z.to_str().unwrap(),
    ]));
    let rows: Vec<Vec<f32>> = decoded
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    let (_, net, _) = load_run(&run).unwrap();
    let zt = candle_core::Tensor::new(&latents, &candle_core::Device::Cpu).unwrap();
    let expected = net.decode(&zt).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(rows.len(), 2);
    for (row, e) in rows.iter().zip(&expected) {
        assert_eq!(row.len(), 64);
        for (a, b) in row.iter().zip(e) {
            assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
        }
    }
    // Seeded samples from the prior, in the sigmoid's range.
    let samples = dir.path().join("s.csv");
    ok(&tinygen(&[
        "sample",
        "--model",
        dec.to_str().unwrap(),
        "-n",
        "4",
        "--seed",
        "3",
        "--out",
        samples.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&samples).unwrap();
    let values: Vec<f32> = text
        .lines()
        .skip(1)
        .flat_map(|l| {
            l.split(',')
                .map(|v| v.parse::<f32>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(values.len(), 4 * 64);
    assert!(values.iter().all(|v| (0.0..=1.0).contains(v)));
    // int8, calibrated on prior draws only.
    let int8 = dir.path().join("generator-int8.tgm");
    let report = ok(&tinygen(&[
        "export",
        r,
        "--quantize",
        "int8",
        "--out",
        int8.to_str().unwrap(),
    ]));
    assert!(report.contains("prior draws"), "{report}");
    // There is no encoder to export.
    let enc = dir.path().join("enc.tgm");
    fails(
        &tinygen(&[
            "export",
            r,
            "--part",
            "encoder",
            "--out",
            enc.to_str().unwrap(),
        ]),
        &["has no encoder", "--part decoder"],
    );
    assert!(!enc.exists());
}

/// Every epoch's losses and accuracy (not its time).
fn losses(m: &Value) -> Vec<[f64; 4]> {
    m["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            [
                "train_loss",
                "test_loss",
                "generator_loss",
                "discriminator_accuracy",
            ]
            .map(|k| r[k].as_f64().unwrap())
        })
        .collect()
}

#[test]
fn a_seed_gives_the_same_gan_and_resume_continues_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(&fit_gan(
        &a,
        "2",
        &["--no-plots", "--gradient-penalty", "1"],
    ));
    ok(&fit_gan(
        &b,
        "2",
        &["--no-plots", "--gradient-penalty", "1"],
    ));
    let (wa, _) = load_checkpoint(&a).unwrap();
    let (wb, _) = load_checkpoint(&b).unwrap();
    assert!(wa.keys().any(|k| k.starts_with("discriminator.")));
    assert!(wa.keys().any(|k| k.starts_with("decoder.")));
    for (name, t) in &wa {
        let flat = |t: &candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(flat(t) == flat(&wb[name]), "same seed, different {name}");
    }
    assert_eq!(losses(&metrics(&a)), losses(&metrics(&b)));
    ok(&fit_gan(&a, "3", &["--no-plots", "--resume"]));
    let resumed = losses(&metrics(&a));
    assert_eq!(resumed.len(), 3);
    assert_eq!(resumed[..2], losses(&metrics(&b))[..]);
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["network"]["gradient_penalty"], 1.0);
}

#[test]
fn divergence_stops_the_gan_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    ok(&fit_gan(
        &run,
        "1",
        &["--no-plots", "--reconstruction", "mse"],
    ));
    let before = std::fs::read(run.join("checkpoint.safetensors")).unwrap();
    let out = fit_gan(&run, "3", &["--no-plots", "--resume", "--lr", "1e30"]);
    fails(&out, &["training diverged", "checkpoint of epoch 1"]);
    assert_eq!(
        std::fs::read(run.join("checkpoint.safetensors")).unwrap(),
        before,
        "the last good checkpoint changed"
    );
}

#[test]
fn bad_gan_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("r");
    let r = run.to_str().unwrap();
    fails(
        &tinygen(&["fit", "gan", "--out", r, "--latent", "0"]),
        &["--latent must be at least 1"],
    );
    fails(
        &fit_gan(&run, "1", &["--gradient-penalty", "-1"]),
        &["--gradient-penalty must be a non-negative number"],
    );
    let big = dir.path().join("big.csv");
    std::fs::write(&big, "a,b\n0.1,2.5\n").unwrap();
    fails(
        &fit_gan(&run, "1", &["--data", big.to_str().unwrap()]),
        &["[0, 1]", "--reconstruction mse"],
    );
    assert!(!run.join("checkpoint.safetensors").exists());
}
