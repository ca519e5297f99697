//! The `tinygen` command line end to end: a fit/info/score round trip, and a
//! clear error with a non-zero exit for every kind of bad input.

use std::path::{Path, PathBuf};
use std::process::Output;

use tinygen::detector::density::{Density, Ensemble, GmmDensity, Pair};
use tinygen::detector::protocol::{evaluate, read_splits};

mod common;
use common::tinygen;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A small CSV with a header and a label column: two clusters.
fn clusters_csv() -> String {
    let mut s = String::from("a,b,label\n");
    for i in 0..60 {
        let t = (i as f64 * 0.37).sin();
        let (cx, cy) = if i % 2 == 0 { (0.0, 0.0) } else { (5.0, 5.0) };
        s.push_str(&format!(
            "{},{},{}\n",
            cx + t,
            cy + (i as f64 * 0.91).cos(),
            i % 2
        ));
    }
    s
}

/// Asserts a failure whose message contains every one of `needles`.
fn assert_fails(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr:\n{stderr}"
    );
    for n in needles {
        assert!(stderr.contains(n), "stderr lacks {n:?}:\n{stderr}");
    }
}

#[test]
fn fit_info_score_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "d.csv", &clusters_csv());
    let model = dir.path().join("m.tgm");
    let m = model.to_str().unwrap();
    let d = data.to_str().unwrap();
    let fit_to = |out: &str| {
        tinygen(&[
            "fit",
            "gmm",
            "--data",
            d,
            "--label-column",
            "label",
            "-k",
            "2",
            "--covariance",
            "diag",
            "--standardize",
            "--out",
            out,
        ])
    };
    let fit = fit_to(m);
    assert!(
        fit.status.success(),
        "{}",
        String::from_utf8_lossy(&fit.stderr)
    );
    let stdout = String::from_utf8_lossy(&fit.stdout);
    assert!(
        stdout.contains("converged after") && stdout.contains("BIC"),
        "{stdout}"
    );

    let info = tinygen(&["info", m]);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(info.status.success());
    for needle in [
        "kind        gmm",
        "dimensions  2",
        "components  2",
        "covariance  diag",
        "crc32       0x",
        // 2 K D for a diagonal mixture.
        "macs        8 per log_density, plus 2 exp and one ln",
    ] {
        assert!(text.contains(needle), "info lacks {needle:?}:\n{text}");
    }

    let score = tinygen(&[
        "score",
        "--model",
        m,
        "--data",
        d,
        "--label-column",
        "label",
    ]);
    assert!(
        score.status.success(),
        "{}",
        String::from_utf8_lossy(&score.stderr)
    );
    let csv = String::from_utf8_lossy(&score.stdout);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("log_density"));
    let values: Vec<f64> = lines.map(|l| l.parse().unwrap()).collect();
    assert_eq!(values.len(), 60);
    assert!(values.iter().all(|v| v.is_finite()));

    // Deterministic for a seed: refitting gives the same bytes.
    let again = dir.path().join("m2.tgm");
    let fit2 = fit_to(again.to_str().unwrap());
    assert!(fit2.status.success());
    assert_eq!(
        std::fs::read(&model).unwrap(),
        std::fs::read(&again).unwrap()
    );
}

#[test]
fn bad_inputs_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.tgm");
    let o = out.to_str().unwrap();
    let fit = |data: &Path, extra: &[&str]| {
        let mut args = vec!["fit", "gmm", "--data", data.to_str().unwrap(), "--out", o];
        args.extend_from_slice(extra);
        tinygen(&args)
    };

    let nan = write(dir.path(), "nan.csv", "a,b\n1,2\n3,NaN\n");
    assert_fails(&fit(&nan, &[]), &["row 2", "'b'", "NaN"]);
    let inf = write(dir.path(), "inf.csv", "a,b\n1,2\ninf,4\n");
    assert_fails(&fit(&inf, &[]), &["row 2", "'a'", "inf"]);
    let ragged = write(dir.path(), "ragged.csv", "a,b\n1,2\n3\n");
    assert_fails(&fit(&ragged, &[]), &["row 2", "1 fields, expected 2"]);
    let empty = write(dir.path(), "empty.csv", "a,b\n");
    assert_fails(&fit(&empty, &[]), &["no data rows"]);
    let small = write(dir.path(), "small.csv", "a,b\n1,2\n3,4\n");
    assert_fails(&fit(&small, &["-k", "3"]), &["3 components", "2 rows"]);
    let dup = write(dir.path(), "dup.csv", "a,b\n1,1\n2,2\n3,3\n4,4\n");
    assert_fails(
        &fit(&dup, &["--reg-covar", "0"]),
        &["singular", "--reg-covar"],
    );
    assert_fails(&fit(&dir.path().join("missing.csv"), &[]), &["missing.csv"]);
    // An output directory that does not exist fails before the fit.
    let nowhere = dir.path().join("no-such-dir/m.tgm");
    let (s, n) = (small.to_str().unwrap(), nowhere.to_str().unwrap());
    assert_fails(
        &tinygen(&["fit", "gmm", "--data", s, "--out", n]),
        &["no-such-dir", "does not exist"],
    );
    // Too few points for the default detector's ensemble: said in the
    // points the user gave, with the options that help.
    let eight = write(
        dir.path(),
        "eight.csv",
        "a,b\n1,2\n2,1\n3,5\n4,3\n5,8\n6,2\n7,7\n8,4\n",
    );
    let detector = |extra: &[&str]| {
        let mut args = vec![
            "fit",
            "detector",
            "--data",
            eight.to_str().unwrap(),
            "--out",
            o,
        ];
        args.extend_from_slice(extra);
        tinygen(&args)
    };
    assert_fails(
        &detector(&[]),
        &[
            "fitting on 6 of the 8 normal points",
            "random 3 of the 6 rows",
            "fewer components with -k",
            "cannot fit 4 components to 3 rows",
        ],
    );
    assert!(!out.exists(), "no model may be written by a failed fit");
    assert!(detector(&["-k", "2"]).status.success());
    std::fs::remove_file(&out).unwrap();

    // Scoring: a file that is not a model, a model of an unknown kind, wrong dimensions.
    let data = write(dir.path(), "d.csv", &clusters_csv());
    let d = data.to_str().unwrap();
    assert_fails(
        &tinygen(&["score", "--model", d, "--data", d]),
        &["bad magic"],
    );
    assert!(fit(&data, &["--label-column", "label"]).status.success());
    let mut bytes = std::fs::read(&out).unwrap();
    bytes[6] = 99; // a kind code no runtime knows
    let n = bytes.len() - 4;
    let crc = tinygen_runtime::format::checksum(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
    let other = dir.path().join("other.tgm");
    std::fs::write(&other, &bytes).unwrap();
    assert_fails(
        &tinygen(&["score", "--model", other.to_str().unwrap(), "--data", d]),
        &["unknown model kind 99"],
    );
    assert_fails(
        &tinygen(&["score", "--model", o, "--data", d]),
        &[
            "3 feature columns",
            "expects 2",
            "with --label-column or --drop-columns",
        ],
    );
    assert_fails(
        &tinygen(&["info", dir.path().join("nope.tgm").to_str().unwrap()]),
        &["nope.tgm"],
    );
    // A file cut short, or with bytes after it: both lengths.
    let bytes = std::fs::read(&out).unwrap();
    let n = bytes.len();
    std::fs::write(&other, &bytes[..n - 10]).unwrap();
    let cut = other.to_str().unwrap();
    for command in [&["info", cut][..], &["score", "--model", cut, "--data", d]] {
        assert_fails(
            &tinygen(command),
            &[format!(
                "its header says {n} bytes, the file has {}: cut short?",
                n - 10
            )
            .as_str()],
        );
    }
    let mut appended = bytes.clone();
    appended.extend_from_slice(b"\n");
    std::fs::write(&other, &appended).unwrap();
    assert_fails(
        &tinygen(&["score", "--model", cut, "--data", d]),
        &[format!(
            "its header says {n} bytes, the file has {}: something appended?",
            n + 1
        )
        .as_str()],
    );
}

#[test]
fn kde_fit_info_score_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "d.csv", &clusters_csv());
    let d = data.to_str().unwrap();
    let model = dir.path().join("k.tgm");
    let m = model.to_str().unwrap();
    let fit = tinygen(&[
        "fit",
        "kde",
        "--data",
        d,
        "--label-column",
        "label",
        "--bandwidth",
        "silverman",
        "--out",
        m,
    ]);
    assert!(
        fit.status.success(),
        "{}",
        String::from_utf8_lossy(&fit.stderr)
    );
    let info = String::from_utf8_lossy(&tinygen(&["info", m]).stdout).into_owned();
    assert!(
        info.contains("kind        kde") && info.contains("points      60"),
        "{info}"
    );
    let score = tinygen(&[
        "score",
        "--model",
        m,
        "--data",
        d,
        "--label-column",
        "label",
    ]);
    let csv = String::from_utf8_lossy(&score.stdout);
    assert_eq!(csv.lines().next(), Some("log_density"));
    assert_eq!(csv.lines().count(), 61);

    // Weights from a column, with the label dropped; diagonal bandwidth; reduction.
    let with_weights: String = clusters_csv()
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                "a,b,w\n".to_string()
            } else {
                format!("{l}.5\n")
            }
        })
        .collect();
    let weighted = write(dir.path(), "w.csv", &with_weights);
    let fit = tinygen(&[
        "fit",
        "kde",
        "--data",
        weighted.to_str().unwrap(),
        "--weights",
        "w",
        "--diagonal",
        "--max-points",
        "10",
        "--out",
        m,
    ]);
    let out = String::from_utf8_lossy(&fit.stdout);
    assert!(
        fit.status.success()
            && out.contains("10 kernel centres")
            && out.contains("reduction to 10 centres"),
        "{out}"
    );

    let one = write(dir.path(), "one.csv", "a,b\n1,2\n");
    assert_fails(
        &tinygen(&["fit", "kde", "--data", one.to_str().unwrap(), "--out", m]),
        &["at least 2 points"],
    );
    let constant = write(dir.path(), "c.csv", "a,b\n1,5\n2,5\n3,5\n");
    assert_fails(
        &tinygen(&[
            "fit",
            "kde",
            "--data",
            constant.to_str().unwrap(),
            "--out",
            m,
        ]),
        &["feature 1 has zero variance"],
    );
    assert_fails(
        &tinygen(&["fit", "kde", "--data", d, "--bandwidth", "-1", "--out", m]),
        &["positive"],
    );
    assert_fails(
        &tinygen(&["fit", "kde", "--data", d, "--bandwidth", "wide", "--out", m]),
        &["scott, silverman or a positive number"],
    );
}

/// `tinygen eval anomaly --json` on the bundled Cardio data and its PyOD
/// splits, with `extra` options; checks the documented key order.
fn eval_cardio(extra: &[&str]) -> serde_json::Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = root.join("data/cardio.csv.gz");
    let splits = root.join("data/cardio_splits.txt");
    let mut args = vec![
        "eval",
        "anomaly",
        "--data",
        data.to_str().unwrap(),
        "--label-column",
        "label",
        "--splits",
        splits.to_str().unwrap(),
        "--json",
    ];
    args.extend(extra);
    let out = tinygen(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("{\"roc_auc\":"),
        "keys in the documented order: {text}"
    );
    serde_json::from_str(&text).unwrap()
}

/// The first split's model file size in an `eval anomaly --json` report.
fn bytes(report: &serde_json::Value) -> u64 {
    report["per_split"][0]["model_bytes"].as_u64().unwrap()
}

#[test]
fn eval_anomaly_on_the_bundled_cardio_splits() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = root.join("data/cardio.csv.gz");
    let splits = root.join("data/cardio_splits.txt");
    // PyOD's GMM: published 0.898 for Cardio (scikit-learn: 0.8979).
    let json = eval_cardio(&[
        "--single",
        "-k",
        "1",
        "--reg-covar",
        "1e-6",
        "--min-weight",
        "0",
    ]);
    let auc = json["roc_auc"].as_f64().unwrap();
    assert!((auc - 0.8979).abs() < 1e-4, "mean ROC-AUC {auc}");
    assert_eq!(json["per_split"].as_array().unwrap().len(), 10);
    assert!(json["average_precision"].as_f64().unwrap() > 0.3);
    // With no detector options: tinygen's default detector.
    let default = eval_cardio(&[]);
    let set = tinygen::data::load(
        &data,
        &tinygen::data::LoadOptions {
            label_column: Some("label".into()),
            drop_columns: vec![],
        },
    )
    .unwrap();
    let split_rows = read_splits(&splits, set.rows).unwrap();
    let expected = evaluate(
        &set,
        &split_rows,
        &Density::Pair(Box::new(Pair::bagged(0))),
        None,
    )
    .unwrap();
    assert_eq!(default["roc_auc"].as_f64().unwrap(), expected.roc_auc());
    // --one-density: the second default detector.
    let one = eval_cardio(&["--one-density"]);
    let expected = evaluate(
        &set,
        &split_rows,
        &Density::Ensemble(Ensemble::bagged(0)),
        None,
    )
    .unwrap();
    assert_eq!(one["roc_auc"].as_f64().unwrap(), expected.roc_auc());
    assert!(bytes(&default) <= 64 * 1024 && bytes(&one) <= 64 * 1024);
    // --single: the default before issue 16.
    let single = eval_cardio(&["--single"]);
    let expected = evaluate(
        &set,
        &split_rows,
        &Density::Gmm(GmmDensity::smoothed(0)),
        None,
    )
    .unwrap();
    assert_eq!(single["roc_auc"].as_f64().unwrap(), expected.roc_auc());
    // --novelty fits on the normal train rows: another figure.
    let novelty = eval_cardio(&["--novelty"]);
    assert_ne!(novelty["roc_auc"], default["roc_auc"]);
    assert_fails(
        &tinygen(&[
            "eval",
            "anomaly",
            "--data",
            data.to_str().unwrap(),
            "--label-column",
            "label",
            "--splits",
            splits.to_str().unwrap(),
            "--single",
            "--members",
            "2",
        ]),
        &["cannot be used with"],
    );

    let bad = tinygen(&[
        "eval",
        "anomaly",
        "--data",
        data.to_str().unwrap(),
        "--splits",
        splits.to_str().unwrap(),
    ]);
    assert_fails(&bad, &["--label-column is required"]);
}

/// A 2-channel series: smooth oscillation, with a burst of noise in rows 600..640.
fn burst_series_csv() -> String {
    let mut csv = String::from("x,y,label\n");
    for t in 0..800 {
        let (a, b) = ((t as f64 * 0.3).sin(), (t as f64 * 0.17).cos());
        let burst = (600..640).contains(&t);
        let noise = if burst {
            ((t * 7919) % 13) as f64 - 6.0
        } else {
            0.0
        };
        csv.push_str(&format!(
            "{},{},{}\n",
            a + noise,
            b - noise,
            u8::from(burst)
        ));
    }
    csv
}

/// Fits a detector with `extra` options on the burst series `d` (windows
/// of 20, stride 10, 5 % alarm rate) into `m`, and checks that `detect`
/// flags every window over the burst and at most `max_false_alarms`
/// others; returns what `fit` and `info` printed.
fn detect_the_burst(d: &str, m: &str, extra: &[&str], max_false_alarms: usize) -> (String, String) {
    let mut args = vec![
        "fit",
        "detector",
        "--data",
        d,
        "--label-column",
        "label",
        "--window",
        "20",
        "--stride",
        "10",
        "--alarm-rate",
        "0.05",
        "--out",
        m,
    ];
    args.extend(extra);
    let fit = tinygen(&args);
    assert!(
        fit.status.success(),
        "{}",
        String::from_utf8_lossy(&fit.stderr)
    );
    let info = String::from_utf8_lossy(&tinygen(&["info", m]).stdout).into_owned();
    let detect = tinygen(&[
        "detect",
        "--model",
        m,
        "--data",
        d,
        "--label-column",
        "label",
        "--stride",
        "10",
    ]);
    assert!(
        detect.status.success(),
        "{}",
        String::from_utf8_lossy(&detect.stderr)
    );
    let text = String::from_utf8_lossy(&detect.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("score,anomaly"));
    let flags: Vec<bool> = lines.map(|l| l.ends_with(",1")).collect();
    assert_eq!(flags.len(), 79);
    // Windows starting at 590..=630 overlap the burst: all flagged; few others.
    for (w, &flag) in flags.iter().enumerate() {
        if (590..=630).contains(&(w * 10)) {
            assert!(flag, "{extra:?}: window at {} overlaps the burst", w * 10);
        }
    }
    let false_alarms = flags
        .iter()
        .enumerate()
        .filter(|&(w, &f)| f && !(581..640).contains(&(w * 10)))
        .count();
    assert!(
        false_alarms <= max_false_alarms,
        "{extra:?}: {false_alarms} false alarms"
    );
    (String::from_utf8_lossy(&fit.stdout).into_owned(), info)
}

#[test]
fn detector_calibrates_its_alarm_rate_and_flags_a_burst() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "series.csv", &burst_series_csv());
    let d = data.to_str().unwrap();
    let model = dir.path().join("det.tgm");
    let m = model.to_str().unwrap();
    let (out, info) = detect_the_burst(d, m, &[], 6);
    assert!(out.contains("79 windows"), "{out}");
    assert!(
        info.contains("kind        detector")
            && info.contains("windows of 20 samples x 2 channels"),
        "{info}"
    );

    // A detector is not a density, and a density is not a detector.
    assert_fails(
        &tinygen(&[
            "score",
            "--model",
            m,
            "--data",
            d,
            "--label-column",
            "label",
        ]),
        &["wrong model kind", "`tinygen detect` gives its scores"],
    );
    let gmm = dir.path().join("g.tgm");
    assert!(
        tinygen(&[
            "fit",
            "gmm",
            "--data",
            d,
            "--label-column",
            "label",
            "--out",
            gmm.to_str().unwrap()
        ])
        .status
        .success()
    );
    assert_fails(
        &tinygen(&["detect", "--model", gmm.to_str().unwrap(), "--data", d]),
        &["wrong model kind: expected detector, found gmm"],
    );
    // The label column left in: one channel too many, and how to leave it out.
    assert_fails(
        &tinygen(&["detect", "--model", m, "--data", d]),
        &[
            "has 3 channels but the detector expects 2",
            "with --label-column or --drop-columns",
        ],
    );
    assert_fails(
        &tinygen(&[
            "fit",
            "detector",
            "--data",
            d,
            "--holdout",
            "1.5",
            "--out",
            m,
        ]),
        &["--holdout"],
    );
}

#[test]
fn components_by_bic() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "d.csv", &clusters_csv());
    let m = dir.path().join("m.tgm");
    let fit = tinygen(&[
        "fit",
        "gmm",
        "--data",
        data.to_str().unwrap(),
        "--label-column",
        "label",
        "-k",
        "1..3",
        "--out",
        m.to_str().unwrap(),
    ]);
    let out = String::from_utf8_lossy(&fit.stdout);
    assert!(
        fit.status.success() && out.contains("K =  3: BIC") && out.contains("chose K = "),
        "{out}"
    );
    let bad = tinygen(&[
        "fit",
        "gmm",
        "--data",
        data.to_str().unwrap(),
        "-k",
        "3..1",
        "--out",
        m.to_str().unwrap(),
    ]);
    assert_fails(&bad, &["empty range"]);
    let gd = tinygen(&[
        "fit",
        "gmm",
        "--data",
        data.to_str().unwrap(),
        "-k",
        "auto",
        "--method",
        "gd",
        "--covariance",
        "diag",
        "--out",
        m.to_str().unwrap(),
    ]);
    assert_fails(&gd, &["--method gd needs a fixed number of components"]);
}

#[test]
fn raw_window_detector() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("x,y\n");
    for t in 0..600 {
        let burst = if (400..420).contains(&t) { 5.0 } else { 0.0 };
        csv.push_str(&format!(
            "{},{}\n",
            (t as f64 * 0.3).sin() + burst,
            (t as f64 * 0.3).cos()
        ));
    }
    let data = write(dir.path(), "s.csv", &csv);
    let m = dir.path().join("raw.tgm");
    let (d, mo) = (data.to_str().unwrap(), m.to_str().unwrap());
    let fit = tinygen(&[
        "fit",
        "detector",
        "--data",
        d,
        "--window",
        "10",
        "--raw-window",
        "--out",
        mo,
    ]);
    assert!(
        fit.status.success(),
        "{}",
        String::from_utf8_lossy(&fit.stderr)
    );
    let info = String::from_utf8_lossy(&tinygen(&["info", mo]).stdout).into_owned();
    assert!(
        info.contains("windows of 10 samples x 2 channels, scored raw"),
        "{info}"
    );
    let out = tinygen(&["detect", "--model", mo, "--data", d]);
    let text = String::from_utf8_lossy(&out.stdout);
    let flags: Vec<bool> = text.lines().skip(1).map(|l| l.ends_with(",1")).collect();
    assert_eq!(flags.len(), 60);
    assert!(
        flags[40] && flags[41],
        "the burst windows (rows 400..420) alarm"
    );
    assert_fails(
        &tinygen(&["fit", "detector", "--data", d, "--raw-window", "--out", mo]),
        &["--window"],
    );
}

#[test]
fn neural_detector_flags_a_burst_and_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "series.csv", &burst_series_csv());
    let d = data.to_str().unwrap();
    let model = dir.path().join("neural.tgm");
    let m = model.to_str().unwrap();
    for kind in ["ae", "vae"] {
        let (out, info) = detect_the_burst(
            d,
            m,
            &[
                "--neural",
                kind,
                "--neural-hidden",
                "16",
                "--neural-steps",
                "300",
            ],
            8,
        );
        assert!(out.contains("robust z-scores"), "{out}");
        assert!(info.contains("autoencoder"), "{info}");
    }

    // The PyOD protocol with autoencoder scores on the bundled Cardio splits:
    // a working detector (the published GMM column is 0.898 here), and a
    // larger file than its density alone (one: --neural implies it).
    let neural = eval_cardio(&["--neural", "ae", "--neural-steps", "300"]);
    let plain = eval_cardio(&["--one-density"]);
    let auc = neural["roc_auc"].as_f64().unwrap();
    assert!(auc > 0.75, "ROC-AUC {auc}");
    assert!(bytes(&neural) > bytes(&plain));
    // The same with its autoencoder in int8: it still works, reports its
    // error against f32 per split, and its file is smaller.
    let int8 = eval_cardio(&[
        "--neural",
        "ae",
        "--neural-steps",
        "300",
        "--quantize",
        "int8",
    ]);
    let auc8 = int8["roc_auc"].as_f64().unwrap();
    assert!(
        (auc8 - auc).abs() < 0.02,
        "ROC-AUC int8 {auc8} vs f32 {auc}"
    );
    assert!(bytes(&int8) < bytes(&neural) && bytes(&int8) > bytes(&plain));
    let error = &int8["per_split"][0]["int8_error"];
    assert!(error["codes_max"].as_f64().unwrap() > 0.0, "{error}");
    assert!(neural["per_split"][0]["int8_error"].is_null());
    // An int8 detector file: info names its format.
    let fit = tinygen(&[
        "fit",
        "detector",
        "--data",
        d,
        "--label-column",
        "label",
        "--window",
        "20",
        "--neural",
        "ae",
        "--neural-steps",
        "100",
        "--quantize",
        "int8",
        "--out",
        m,
    ]);
    let out = String::from_utf8_lossy(&fit.stdout);
    assert!(
        fit.status.success(),
        "{}",
        String::from_utf8_lossy(&fit.stderr)
    );
    assert!(out.contains("int8 against f32"), "{out}");
    let info = String::from_utf8_lossy(&tinygen(&["info", m]).stdout).into_owned();
    assert!(info.contains("autoencoder int8"), "{info}");
    // --quantize needs --neural, in both commands.
    for command in ["fit", "eval"] {
        let mut args = if command == "fit" {
            vec!["fit", "detector", "--data", d, "--out", m]
        } else {
            vec![
                "eval",
                "anomaly",
                "--data",
                d,
                "--label-column",
                "label",
                "--splits",
                m,
            ]
        };
        args.extend(["--quantize", "int8"]);
        assert_fails(&tinygen(&args), &["--quantize int8", "--neural ae"]);
    }
    // Autoencoder options need --neural.
    assert_fails(
        &tinygen(&[
            "fit",
            "detector",
            "--data",
            d,
            "--neural-steps",
            "5",
            "--out",
            m,
        ]),
        &["--neural"],
    );
}

/// The default detector has a second density: from fit to detect, and in
/// the evaluation protocol.
#[test]
fn pair_detector_flags_a_burst_and_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "series.csv", &burst_series_csv());
    let d = data.to_str().unwrap();
    let model = dir.path().join("pair.tgm");
    let m = model.to_str().unwrap();
    let (out, info) = detect_the_burst(d, m, &[], 8);
    assert!(out.contains("two densities' robust z-scores"), "{out}");
    assert!(info.contains("second      gmm"), "{info}");

    // Cardio (21 features), novelty: a working detector within 64 KiB.
    let pair = eval_cardio(&["--novelty"]);
    let auc = pair["roc_auc"].as_f64().unwrap();
    assert!(auc > 0.85, "{auc}");
    assert!(bytes(&pair) <= 64 * 1024, "{}", bytes(&pair));
    // --one-density and --single keep one density; not with each other.
    for (other, second) in [("--one-density", false), ("--single", false)] {
        let fit = tinygen(&["fit", "detector", "--data", d, other, "--out", m]);
        assert!(fit.status.success());
        let info = String::from_utf8_lossy(&tinygen(&["info", m]).stdout).into_owned();
        assert_eq!(info.contains("second "), second, "{other}: {info}");
    }
    let both = [
        "fit",
        "detector",
        "--data",
        d,
        "--single",
        "--one-density",
        "--out",
        m,
    ];
    assert_fails(&tinygen(&both), &["cannot be used with"]);
}

/// `fit detector --on-device-recipe`: the recipe, the detector the device
/// learns from the data (the bytes the runtime's learner writes), `info` on
/// both, and bad recipes refused.
#[test]
fn detector_learned_on_the_device() {
    use tinygen::detector::on_device::learn_on_host;
    use tinygen::detector::windows::series_windows;
    use tinygen::host::AlignedBytes;
    use tinygen_runtime::learn::Recipe;

    let dir = tempfile::tempdir().unwrap();
    let data =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/basicmotions/BasicMotions_TRAIN.ts.gz");
    let d = data.to_str().unwrap();
    let recipe = dir.path().join("recipe.tgm");
    let learned = dir.path().join("learned.tgm");
    let (r, l) = (recipe.to_str().unwrap(), learned.to_str().unwrap());
    let base = [
        "fit",
        "detector",
        "--data",
        d,
        "--normal-classes",
        "Standing,Walking",
        "--window",
        "20",
        "--stride",
        "10",
        "--on-device-recipe",
    ];
    let args = |extra: &[&'static str]| -> Vec<String> {
        base.iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| tinygen(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut fit_args = args(&[
        "-k",
        "2",
        "--covariance",
        "diag",
        "--learn-iterations",
        "10",
        "--out",
    ]);
    fit_args.extend([r.to_string(), "--learned".into(), l.to_string()]);
    let fit = run(fit_args);
    let out = String::from_utf8_lossy(&fit.stdout);
    assert!(
        fit.status.success(),
        "{}",
        String::from_utf8_lossy(&fit.stderr)
    );
    assert!(
        out.contains("2 diag Gaussian(s) over 24 features, reg-covar")
            && out.contains("and the same with reg-covar 0.01")
            && out.contains("learned from 144 inputs")
            && out.contains("180 inputs taken, 0 refused"),
        "{out}"
    );
    // By default the device learns the pair, as the default detector is.
    // Its buffers: 144 stored inputs of 24 f32 features, 36 calibration
    // inputs of three f32 scores each, and the file the learner wrote.
    let info = String::from_utf8_lossy(&tinygen(&["info", r]).stdout).into_owned();
    let ram = format!(
        "{} of stored features, {} of scores, {} for the learned file",
        144 * 24 * 4,
        36 * 3 * 4,
        std::fs::metadata(&learned).unwrap().len()
    );
    assert!(
        info.contains("kind        recipe")
            && info.contains("2 component(s) over 24 features")
            && info.contains("second      the same with reg-covar 0.01")
            && info.contains(&ram),
        "{info}"
    );
    let info = String::from_utf8_lossy(&tinygen(&["info", l]).stdout).into_owned();
    assert!(
        info.contains("kind        detector")
            && info.contains("2 components, diag")
            && info.contains("second      "),
        "{info}"
    );
    // The same recipe without data: from the windows' shape and the counts.
    let shape_only = dir.path().join("shape-only.tgm");
    let so = shape_only.to_str().unwrap();
    let made = tinygen(&[
        "recipe",
        "--channels",
        "6",
        "--window",
        "20",
        "-k",
        "2",
        "--covariance",
        "diag",
        "--learn-iterations",
        "10",
        "--learn",
        "144",
        "--calibrate",
        "36",
        "--out",
        so,
    ]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert_eq!(
        std::fs::read(&shape_only).unwrap(),
        std::fs::read(&recipe).unwrap()
    );
    // The board program's recipe is what its documented command writes.
    let board = tinygen(&[
        "recipe",
        "--window",
        "32",
        "--channels",
        "3",
        "--learn",
        "600",
        "--calibrate",
        "300",
        "--alarm-rate",
        "0.01",
        "--out",
        so,
    ]);
    assert!(board.status.success());
    let committed = concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware/board/recipe.tgm");
    assert_eq!(
        std::fs::read(&shape_only).unwrap(),
        std::fs::read(committed).unwrap(),
        "firmware/board/recipe.tgm is stale: rewrite it with the command in firmware/src/bin/board.rs"
    );
    // A recipe no microcontroller could learn is written, with a warning.
    let big = tinygen(&[
        "recipe",
        "--inputs",
        "8",
        "--learn",
        "100000",
        "--calibrate",
        "100000",
        "--out",
        so,
    ]);
    assert!(big.status.success());
    assert!(String::from_utf8_lossy(&big.stderr).contains("warning: the learner needs"));
    assert_fails(
        &tinygen(&[
            "recipe",
            "--inputs",
            "4",
            "--learn",
            "30",
            "--calibrate",
            "10",
            "--out",
            "r.bin",
        ]),
        &[".tgm extension"],
    );
    for (extra, needle) in [
        (&["--inputs", "0"][..], "at least 1"),
        (
            &["--inputs", "4", "--alarm-rate", "2"][..],
            "cannot make a recipe",
        ),
        (&["--window", "5"][..], "--channels"),
        (
            &["--inputs", "4", "--window", "5", "--channels", "2"][..],
            "cannot be used",
        ),
    ] {
        let mut a = vec!["recipe", "--learn", "30", "--calibrate", "10", "--out", so];
        a.extend(extra);
        std::fs::remove_file(&shape_only).ok();
        assert_fails(&tinygen(&a), &[needle]);
        assert!(!shape_only.exists());
    }
    // Pulled from the device: a dump of the 4 KiB flash page it was
    // written to, the rest erased. `info` finds it and extracts it.
    let learned_bytes = std::fs::read(&learned).unwrap();
    let mut page = learned_bytes.clone();
    page.resize(4096, 0xFF);
    let dump = dir.path().join("page.bin");
    std::fs::write(&dump, &page).unwrap();
    let extracted = dir.path().join("extracted.tgm");
    let (dp, ex) = (dump.to_str().unwrap(), extracted.to_str().unwrap());
    let info = tinygen(&["info", dp, "--extract", ex]);
    let text = String::from_utf8_lossy(&info.stdout).into_owned();
    assert!(info.status.success(), "{text}");
    let at_start = format!(
        "bytes       {}, at the start of the input's 4096 (the {} after it ignored)",
        learned_bytes.len(),
        4096 - learned_bytes.len()
    );
    assert!(
        text.contains("kind        detector") && text.contains(&at_start),
        "{text}"
    );
    assert_eq!(std::fs::read(&extracted).unwrap(), learned_bytes);
    // An erased page, and a page whose file is corrupted: errors, nothing extracted.
    std::fs::remove_file(&extracted).unwrap();
    std::fs::write(&dump, [0xFF; 4096]).unwrap();
    assert_fails(&tinygen(&["info", dp, "--extract", ex]), &["erased flash"]);
    page[40] ^= 1;
    std::fs::write(&dump, &page).unwrap();
    assert_fails(&tinygen(&["info", dp, "--extract", ex]), &["CRC"]);
    assert!(!extracted.exists());
    // --one-density: one mixture, no second density.
    let (one_recipe, one) = (
        dir.path().join("one-recipe.tgm"),
        dir.path().join("one.tgm"),
    );
    let mut one_args = args(&["--one-density", "--out"]);
    one_args.extend([
        one_recipe.to_str().unwrap().into(),
        "--learned".into(),
        one.to_str().unwrap().into(),
    ]);
    let fit_one = run(one_args);
    assert!(fit_one.status.success());
    let one_info = tinygen(&["info", one_recipe.to_str().unwrap()]).stdout;
    let info = String::from_utf8_lossy(&one_info).into_owned();
    assert!(
        info.contains("kind        recipe") && !info.contains("second"),
        "{info}"
    );
    let one_file = AlignedBytes::read(&one).unwrap();
    let one_detector = tinygen_runtime::Detector::from_bytes(one_file.as_bytes()).unwrap();
    assert!(!one_detector.has_second_density());

    // The learned file is what the device's learner writes from the
    // normal windows in order.
    let recipe_file = AlignedBytes::read(&recipe).unwrap();
    let spec = Recipe::from_bytes(recipe_file.as_bytes()).unwrap().spec();
    let set = tinygen::data::ts::load_ts(&data).unwrap();
    let normal = ["Standing".to_string(), "Walking".to_string()];
    let (windows, labels) = series_windows(&set, 20, 10, &normal).unwrap();
    let normal_windows: Vec<f32> = windows
        .chunks_exact(120)
        .zip(&labels)
        .filter(|(_, l)| **l == 0.0)
        .flat_map(|(w, _)| w.iter().copied())
        .collect();
    let again = learn_on_host(&spec, &normal_windows).unwrap();
    assert_eq!(again.file, std::fs::read(&learned).unwrap());

    // Bad recipes: clear errors, nothing written.
    let bad = dir.path().join("bad.tgm");
    let b = bad.to_str().unwrap().to_string();
    for (extra, needle) in [
        (&["-k", "1..3"][..], "fixed number of components"),
        (&["--learn", "1"][..], "cannot make a recipe"),
        (
            &["--learn", "170", "--calibrate", "20"][..],
            "190 valid inputs needed",
        ),
        (&["--alarm-rate", "1.5"][..], "cannot make a recipe"),
    ] {
        let mut a = args(extra);
        a.extend(["--out".to_string(), b.clone()]);
        assert_fails(&run(a), &[needle]);
        assert!(!bad.exists());
    }
}
