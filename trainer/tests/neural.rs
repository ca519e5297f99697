//! Neural models from the command line, on the bundled digits: each model
//! trains and its loss drops, runs are deterministic, resume continues a
//! run, divergence stops with the last checkpoint intact, and bad input
//! gets a clear error.

use std::path::Path;

use serde_json::Value;
use tinygen::nn::run::load_checkpoint;

mod common;
use common::{fails, metrics, ok, tinygen};

fn flat(t: &candle_core::Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn history(m: &Value) -> Vec<f64> {
    m["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["train_loss"].as_f64().unwrap())
        .collect()
}

const SMALL: [&str; 6] = ["--hidden", "64", "--batch-size", "64", "--log", "quiet"];

fn fit(model: &str, run: &Path, epochs: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "fit",
        model,
        "--out",
        run.to_str().unwrap(),
        "--epochs",
        epochs,
    ];
    args.extend(SMALL);
    args.extend(extra);
    ok(&tinygen(&args));
    metrics(run)
}

fn assert_drops(model: &str, m: &Value) {
    let h = history(m);
    assert!(h.len() >= 3, "{model}: {h:?}");
    assert!(
        h[h.len() - 1] < h[0],
        "{model}: the loss did not drop: {h:?}"
    );
    let test = m["test_loss"].as_f64().unwrap();
    assert!(test.is_finite() && test > 0.0, "{model}: test loss {test}");
}

#[test]
fn every_model_trains_on_digits_and_writes_its_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let vae = dir.path().join("vae");
    let m = fit("vae", &vae, "3", &["--iw-samples", "8"]);
    assert_drops("vae", &m);
    // The ELBO is a lower bound on the log-likelihood; the importance-
    // weighted estimate is a tighter one.
    let (elbo, iw) = (
        m["test_elbo"].as_f64().unwrap(),
        m["iw_log_likelihood"].as_f64().unwrap(),
    );
    assert!(iw > elbo, "iw {iw} <= elbo {elbo}");
    for f in [
        "config.json",
        "checkpoint.safetensors",
        "metrics.json",
        "loss.png",
        "latent.png",
        "samples.png",
        "reconstructions.png",
    ] {
        assert!(vae.join(f).exists(), "{f} missing");
    }

    let ae = dir.path().join("ae");
    let m = fit(
        "ae",
        &ae,
        "15",
        &["--supervised", "--latent", "4", "--latent-density", "gmm:3"],
    );
    assert_drops("ae", &m);
    let acc = m["latent_accuracy"].as_f64().unwrap();
    assert!(acc > 0.5, "supervised AE latent accuracy {acc}");
    assert!(ae.join("latent_gmm.tgm").exists());
    assert!(ae.join("samples.png").exists());

    let swae = dir.path().join("swae");
    let m = fit("swae", &swae, "3", &["--prior", "ring"]);
    assert_drops("swae", &m);
    assert!(m["sw_distance"].as_f64().unwrap() >= 0.0);

    let semi = dir.path().join("semi");
    let m = fit(
        "swae",
        &semi,
        "15",
        &[
            "--semi-supervised",
            "--prior",
            "gmm:10",
            "--labelled-fraction",
            "0.5",
        ],
    );
    assert_drops("semi-supervised swae", &m);
    let acc = m["latent_accuracy"].as_f64().unwrap();
    assert!(
        acc > 0.2,
        "semi-supervised latent accuracy {acc} (chance 0.1)"
    );

    // `tinygen eval` recomputes the metrics of a run on any data.
    let out = ok(&tinygen(&[
        "eval",
        vae.to_str().unwrap(),
        "--data",
        "digits",
        "--iw-samples",
        "8",
    ]));
    let e: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(e["rows"], 359);
    assert!((e["reconstruction"].as_f64().unwrap() - m_recon(&vae)).abs() < 1e-6);
}

fn m_recon(run: &Path) -> f64 {
    metrics(run)["test_reconstruction"].as_f64().unwrap()
}

#[test]
fn pca_matches_its_closed_form_on_digits() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("pca");
    ok(&tinygen(&[
        "fit",
        "pca",
        "--out",
        run.to_str().unwrap(),
        "-k",
        "64",
        "--no-plots",
    ]));
    let m = metrics(&run);
    let ratio: f64 = m["explained_variance_ratio"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!(
        (ratio - 1.0).abs() < 1e-9,
        "all 64 components explain {ratio}"
    );
    // With every component the linear autoencoder is the identity (f32).
    let recon = m["test_reconstruction"].as_f64().unwrap();
    assert!(recon < 1e-8, "reconstruction error {recon}");
}

#[test]
fn a_seed_gives_the_same_run_and_resume_continues_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let args = |run: &Path, epochs: &str| {
        vec![
            "fit".to_string(),
            "vae".into(),
            "--out".into(),
            run.display().to_string(),
            "--hidden".into(),
            "32".into(),
            "--epochs".into(),
            epochs.into(),
            "--log".into(),
            "json".into(),
            "--no-plots".into(),
            "--iw-samples".into(),
            "0".into(),
        ]
    };
    let run = |v: Vec<String>| tinygen(&v.iter().map(String::as_str).collect::<Vec<_>>());
    let log_a = ok(&run(args(&a, "2")));
    ok(&run(args(&b, "2")));
    let (wa, _) = load_checkpoint(&a).unwrap();
    let (wb, _) = load_checkpoint(&b).unwrap();
    assert_eq!(wa.len(), wb.len());
    for (name, t) in &wa {
        let (x, y) = (flat(t), flat(&wb[name]));
        assert!(x == y, "same seed, different {name}");
    }
    assert_eq!(history(&metrics(&a)), history(&metrics(&b)));
    // One JSON object per epoch on stdout, then the metrics.
    let lines: Vec<Value> = log_a
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["epoch"], 2);
    // A finished run refuses a second fit into the same folder.
    fails(&run(args(&a, "2")), &["already holds a run", "--resume"]);
    let mut resume = args(&a, "3");
    resume.push("--resume".into());
    ok(&run(resume));
    let h = history(&metrics(&a));
    assert_eq!(h.len(), 3);
}

#[test]
fn divergence_stops_training_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let base = [
        "fit",
        "ae",
        "--out",
        run.to_str().unwrap(),
        "--hidden",
        "16",
        "--reconstruction",
        "mse",
        "--log",
        "quiet",
        "--no-plots",
    ];
    ok(&tinygen(&[&base[..], &["--epochs", "1"]].concat()));
    let before = std::fs::read(run.join("checkpoint.safetensors")).unwrap();
    let out = tinygen(&[&base[..], &["--epochs", "2", "--lr", "1e30", "--resume"]].concat());
    fails(
        &out,
        &["training diverged", "checkpoint of epoch 1", "--lr"],
    );
    assert_eq!(
        std::fs::read(run.join("checkpoint.safetensors")).unwrap(),
        before,
        "the last good checkpoint changed"
    );
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("r");
    let r = run.to_str().unwrap();
    fails(
        &tinygen(&["fit", "vae", "--out", r, "--latent", "0"]),
        &["--latent must be at least 1"],
    );
    let unlabelled = dir.path().join("x.csv");
    std::fs::write(&unlabelled, "a,b\n0.1,0.2\n0.3,0.4\n").unwrap();
    let u = unlabelled.to_str().unwrap();
    fails(
        &tinygen(&["fit", "ae", "--out", r, "--data", u, "--supervised"]),
        &["has no labels", "--label-column"],
    );
    // Values whose squares overflow f32: the first loss is infinite, and
    // the error blames the data's scale, not the learning rate.
    let huge = dir.path().join("huge.csv");
    std::fs::write(&huge, "a,b\n1e30,2\n-3e30,4\n2e30,1\n").unwrap();
    let h = huge.to_str().unwrap();
    let mse = ["--reconstruction", "mse", "--epochs", "1", "--log", "quiet"];
    fails(
        &tinygen(&[&["fit", "ae", "--out", r, "--data", h][..], &mse[..]].concat()),
        &["training diverged", "before any update", "scale"],
    );
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "a,b\n").unwrap();
    fails(
        &tinygen(&["fit", "ae", "--out", r, "--data", empty.to_str().unwrap()]),
        &["empty.csv"],
    );
    let big = dir.path().join("big.csv");
    std::fs::write(&big, "a,b\n0.1,2.5\n").unwrap();
    fails(
        &tinygen(&["fit", "ae", "--out", r, "--data", big.to_str().unwrap()]),
        &["[0, 1]", "--reconstruction mse"],
    );
    fails(
        &tinygen(&[
            "fit", "swae", "--out", r, "--prior", "ring", "--latent", "3",
        ]),
        &["two-dimensional"],
    );
    // A run evaluated on data of the wrong size.
    ok(&tinygen(&[
        "fit",
        "ae",
        "--out",
        r,
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--log",
        "quiet",
        "--no-plots",
    ]));
    fails(
        &tinygen(&["eval", r, "--data", u]),
        &["2 features per row", "network takes 64"],
    );
}

#[test]
fn exported_decoders_run_in_the_runtime_like_candle() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("ae");
    ok(&tinygen(&[
        "fit",
        "ae",
        "--out",
        run.to_str().unwrap(),
        "--hidden",
        "32",
        "--latent",
        "3",
        "--latent-density",
        "gmm:2",
        "--epochs",
        "2",
        "--log",
        "quiet",
        "--no-plots",
    ]));
    let dec = dir.path().join("dec.tgm");
    let report = ok(&tinygen(&[
        "export",
        run.to_str().unwrap(),
        "--out",
        dec.to_str().unwrap(),
    ]));
    assert!(report.contains("matches candle"), "{report}");
    // `tinygen decode` (runtime) against candle on given latents.
    let z = dir.path().join("z.csv");
    std::fs::write(&z, "a,b,c\n0.5,-1,2\n0,0,0\n3,1,-0.25\n").unwrap();
    let csv = ok(&tinygen(&[
        "decode",
        "--model",
        dec.to_str().unwrap(),
        "--data",
        z.to_str().unwrap(),
    ]));
    let rows: Vec<Vec<f32>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(csv.lines().next().unwrap().split(',').count(), 64);
    let (_, net, _) = tinygen::nn::run::load_run(&run).unwrap();
    let zt = candle_core::Tensor::new(
        &[[0.5f32, -1.0, 2.0], [0.0, 0.0, 0.0], [3.0, 1.0, -0.25]],
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let expected = net.decode(&zt).unwrap().to_vec2::<f32>().unwrap();
    for (r, e) in rows.iter().zip(&expected) {
        for (a, b) in r.iter().zip(e) {
            assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
        }
    }
    // Seeded sampling from the latent mixture is reproducible.
    let sample = |seed: &str, name: &str| {
        let out = dir.path().join(name);
        ok(&tinygen(&[
            "sample",
            "--model",
            dec.to_str().unwrap(),
            "-n",
            "5",
            "--seed",
            seed,
            "--out",
            out.to_str().unwrap(),
        ]));
        std::fs::read_to_string(out).unwrap()
    };
    assert_eq!(sample("3", "a.csv"), sample("3", "b.csv"));
    assert_ne!(sample("3", "a.csv"), sample("4", "c.csv"));
    // Wrong latent length, and a corrupted file: clear errors.
    std::fs::write(&z, "a,b\n0.5,-1\n").unwrap();
    fails(
        &tinygen(&[
            "decode",
            "--model",
            dec.to_str().unwrap(),
            "--data",
            z.to_str().unwrap(),
        ]),
        &["2 columns", "takes 3"],
    );
    let mut bytes = std::fs::read(&dec).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&dec, bytes).unwrap();
    fails(
        &tinygen(&["sample", "--model", dec.to_str().unwrap(), "--out", "x.csv"]),
        &["dec.tgm"],
    );
}

/// `export --quantize int8`: a file about four times smaller than the f32
/// export whose outputs, run by the runtime, stay close to candle's; it
/// decodes, samples and describes itself like an f32 file.
#[test]
fn int8_exports_are_smaller_and_close_to_f32() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("vae");
    ok(&tinygen(&[
        "fit",
        "vae",
        "--out",
        run.to_str().unwrap(),
        "--hidden",
        "64",
        "--latent",
        "4",
        "--epochs",
        "3",
        "--log",
        "quiet",
        "--no-plots",
    ]));
    let f32_file = dir.path().join("dec.tgm");
    let int8_file = dir.path().join("dec8.tgm");
    ok(&tinygen(&[
        "export",
        run.to_str().unwrap(),
        "--out",
        f32_file.to_str().unwrap(),
    ]));
    let report = ok(&tinygen(&[
        "export",
        run.to_str().unwrap(),
        "--quantize",
        "int8",
        "--out",
        int8_file.to_str().unwrap(),
    ]));
    assert!(
        report.contains("calibrated") && report.contains("max abs error"),
        "{report}"
    );
    // `--per-tensor`: one multiplier and shift per layer instead of per
    // output (64 and 64 outputs here), a file that still decodes.
    let per_tensor = dir.path().join("dec8t.tgm");
    let report = ok(&tinygen(&[
        "export",
        run.to_str().unwrap(),
        "--quantize",
        "int8",
        "--per-tensor",
        "--out",
        per_tensor.to_str().unwrap(),
    ]));
    assert!(report.contains("weight scales per layer"), "{report}");
    let len = |p: &Path| std::fs::metadata(p).unwrap().len();
    assert_eq!(len(&int8_file) - len(&per_tensor), 8 * (63 + 63));
    // `--format c`: the same bytes as a C array (named after the file, or
    // by --name), for the f32 and the int8 export.
    let array = |header: &Path| -> Vec<u8> {
        let text = std::fs::read_to_string(header).unwrap();
        let body = text
            .split_once("= {")
            .unwrap()
            .1
            .split_once("};")
            .unwrap()
            .0;
        body.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| u8::from_str_radix(t.trim_start_matches("0x"), 16).unwrap())
            .collect()
    };
    for (file, extra, name) in [
        (&f32_file, vec![], "dec_f32"),
        (
            &int8_file,
            vec!["--quantize", "int8", "--name", "decoder8"],
            "decoder8",
        ),
    ] {
        let header = dir.path().join("dec-f32.h");
        let mut args = vec!["export", run.to_str().unwrap(), "--format", "c"];
        args.extend(extra);
        args.extend(["--out", header.to_str().unwrap()]);
        ok(&tinygen(&args));
        assert_eq!(array(&header), std::fs::read(file).unwrap(), "{name}");
        let text = std::fs::read_to_string(&header).unwrap();
        assert!(
            text.contains(&format!("static const uint8_t {name}["))
                && text.contains(&format!("#define {name}_LEN "))
                && text.contains("tg_sample"),
            "{text}"
        );
    }
    let (small, big) = (
        std::fs::metadata(&int8_file).unwrap().len(),
        std::fs::metadata(&f32_file).unwrap().len(),
    );
    // Weights take a quarter; per-channel biases, multipliers and shifts
    // (12 bytes per output) the rest.
    assert!(small * 5 / 2 < big, "int8 {small} bytes, f32 {big}");
    // Decoding the same latents: sigmoid outputs in steps of 1/256, so a
    // few steps from f32 at most.
    let z = dir.path().join("z.csv");
    std::fs::write(&z, "a,b,c,d\n0.5,-1,2,0\n0,0,0,0\n1,1,-0.25,0.3\n").unwrap();
    let decode = |model: &Path| -> Vec<f32> {
        ok(&tinygen(&[
            "decode",
            "--model",
            model.to_str().unwrap(),
            "--data",
            z.to_str().unwrap(),
        ]))
        .lines()
        .skip(1)
        .flat_map(|l| {
            l.split(',')
                .map(|v| v.parse::<f32>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
    };
    let (a, b) = (decode(&f32_file), decode(&int8_file));
    assert_eq!(a.len(), 3 * 64);
    let worst = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(worst < 0.05, "int8 decodes differ from f32 by {worst}");
    assert!(
        worst > 0.0,
        "int8 and f32 decodes are identical: not quantized?"
    );
    int8_in_and_out_is_the_quantized_pass(dir.path(), &int8_file, &f32_file);
    let samples = dir.path().join("s.csv");
    ok(&tinygen(&[
        "sample",
        "--model",
        int8_file.to_str().unwrap(),
        "-n",
        "3",
        "--out",
        samples.to_str().unwrap(),
    ]));
    assert_eq!(
        std::fs::read_to_string(&samples).unwrap().lines().count(),
        4
    );
    let info = ok(&tinygen(&["info", int8_file.to_str().unwrap()]));
    assert!(
        info.contains("int8") && info.contains("zero point"),
        "{info}"
    );
    // `eval --decoder`: the f32 file reproduces candle's reconstruction loss
    // (the same network run by the runtime); int8 stays within a few per cent.
    let eval = |file: &Path| -> serde_json::Value {
        let out = ok(&tinygen(&[
            "eval",
            run.to_str().unwrap(),
            "--iw-samples",
            "0",
            "--decoder",
            file.to_str().unwrap(),
        ]));
        serde_json::from_str(out.trim()).unwrap()
    };
    let (e32, e8) = (eval(&f32_file), eval(&int8_file));
    let candle = e32["reconstruction"].as_f64().unwrap();
    let (r32, r8) = (
        e32["file_reconstruction"].as_f64().unwrap(),
        e8["file_reconstruction"].as_f64().unwrap(),
    );
    assert!(
        (r32 - candle).abs() < 1e-4 * candle,
        "{r32} vs candle {candle}"
    );
    assert!(
        r8 != r32 && (r8 - r32).abs() < 0.05 * r32,
        "int8 {r8} vs f32 {r32}"
    );
    // The int8 file also reports what its output grid alone costs (f32
    // outputs rounded to steps of 1/256); an f32 file has no grid.
    assert!(e32.get("output_grid_reconstruction").is_none(), "{e32}");
    let grid = e8["output_grid_reconstruction"].as_f64().unwrap();
    assert!(
        grid != r32 && (grid - r32).abs() < 0.05 * r32,
        "grid {grid} vs f32 {r32}"
    );
    // ONNX output cannot be quantized (yet): a clear error.
    fails(
        &tinygen(&[
            "export",
            run.to_str().unwrap(),
            "--quantize",
            "int8",
            "--format",
            "onnx",
            "--out",
            dir.path().join("x.onnx").to_str().unwrap(),
        ]),
        &["--quantize"],
    );
}

/// `decode --int8` on quantized latents gives the int8 tensor whose
/// dequantized values (sigmoid's fixed scale 1/256, zero point -128) are
/// exactly what `decode` prints for the same latents as reals; bad values
/// and f32 files are clear errors.
fn int8_in_and_out_is_the_quantized_pass(dir: &Path, int8_file: &Path, f32_file: &Path) {
    let info = ok(&tinygen(&["info", int8_file.to_str().unwrap()]));
    let line = info.lines().find(|l| l.starts_with("input")).unwrap();
    let number = |after: &str| -> f64 {
        let rest = &line[line.find(after).unwrap() + after.len()..];
        rest.split(|c: char| c == ',' || c.is_whitespace())
            .find(|t| !t.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    let (scale, zero_point) = (number("scale "), number("zero point "));
    let q = [[-128i32, -3, 0, 127], [5, 17, -40, 64], [0, 0, 0, 0]];
    let ints: Vec<String> = q
        .iter()
        .map(|r| r.map(|v| v.to_string()).join(","))
        .collect();
    let reals: Vec<String> = q
        .iter()
        .map(|r| {
            r.map(|v| (scale * (f64::from(v) - zero_point)).to_string())
                .join(",")
        })
        .collect();
    let qz = dir.join("qz.csv");
    std::fs::write(&qz, format!("a,b,c,d\n{}\n", ints.join("\n"))).unwrap();
    let z = dir.join("z.csv");
    std::fs::write(&z, format!("a,b,c,d\n{}\n", reals.join("\n"))).unwrap();
    let decode = |data: &Path, int8: &[&str]| -> Vec<f32> {
        let (model, data) = (int8_file.to_str().unwrap(), data.to_str().unwrap());
        let out = ok(&tinygen(
            &[&["decode", "--model", model, "--data", data], int8].concat(),
        ));
        out.lines()
            .skip(1)
            .flat_map(|l| {
                l.split(',')
                    .map(|v| v.parse::<f32>().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let q_out = decode(&qz, &["--int8"]);
    assert_eq!(q_out.len(), 3 * 64);
    assert!(
        q_out
            .iter()
            .all(|&v| v.fract() == 0.0 && (-128.0..=127.0).contains(&v))
    );
    let real_out = decode(&z, &[]);
    for (k, (&qv, &rv)) in q_out.iter().zip(&real_out).enumerate() {
        assert_eq!((qv + 128.0) / 256.0, rv, "value {k}");
    }
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "a,b,c,d\n0,1.5,0,0\n").unwrap();
    fails(
        &tinygen(&[
            "decode",
            "--model",
            int8_file.to_str().unwrap(),
            "--data",
            bad.to_str().unwrap(),
            "--int8",
        ]),
        &["row 1, column 2", "not an int8 value"],
    );
    fails(
        &tinygen(&[
            "decode",
            "--model",
            f32_file.to_str().unwrap(),
            "--data",
            qz.to_str().unwrap(),
            "--int8",
        ]),
        &["f32 network"],
    );
    // A label column left in: one value too many, and how to leave it out.
    let wide = dir.join("wide.csv");
    std::fs::write(&wide, "a,b,c,d,label\n0,0,0,0,1\n").unwrap();
    for (file, int8) in [(&f32_file, &[][..]), (&int8_file, &["--int8"][..])] {
        let (model, data) = (file.to_str().unwrap(), wide.to_str().unwrap());
        fails(
            &tinygen(&[&["decode", "--model", model, "--data", data], int8].concat()),
            &[
                "has 5 columns but the model takes 4 values per row",
                "with --label-column or --drop-columns",
            ],
        );
    }
}
