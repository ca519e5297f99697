//! `tinygen fit classifier` and `tinygen eval quality` on the bundled
//! digits: the classifier learns them, and the quality measure ranks real
//! digits far above noise; bad input gets a clear error.

use serde_json::Value;

mod common;
use common::{ok, tinygen};

/// Rows as CSV with a header.
fn csv(rows: &[Vec<f32>]) -> String {
    let header: Vec<String> = (0..rows[0].len()).map(|j| format!("x{j}")).collect();
    let mut text = header.join(",") + "\n";
    for row in rows {
        let line: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        text += &(line.join(",") + "\n");
    }
    text
}

#[test]
fn the_quality_measure_ranks_digits_above_noise() {
    let dir = tempfile::tempdir().unwrap();
    let classifier = dir.path().join("classifier.tgm");
    let c = classifier.to_str().unwrap();
    let report: Value = serde_json::from_str(&ok(&tinygen(&[
        "fit",
        "classifier",
        "--hidden",
        "32",
        "--epochs",
        "60",
        "--out",
        c,
    ])))
    .unwrap();
    assert!(report["accuracy"].as_f64().unwrap() > 0.9, "{report}");
    let eval = |rows: &[Vec<f32>], name: &str| -> Value {
        let path = dir.path().join(name);
        std::fs::write(&path, csv(rows)).unwrap();
        let out = ok(&tinygen(&[
            "eval",
            "quality",
            "--samples",
            path.to_str().unwrap(),
            "--classifier",
            c,
        ]));
        serde_json::from_str(&out).unwrap()
    };
    let train = tinygen::data::images::load_samples(
        "digits",
        None,
        tinygen::data::images::Split::Train,
        None,
    )
    .unwrap();
    let real: Vec<Vec<f32>> = train.x.chunks(64).take(359).map(<[f32]>::to_vec).collect();
    let noise: Vec<Vec<f32>> = (0..359)
        .map(|i| {
            (0..64)
                .map(|j| ((i * 64 + j) * 7919 % 1000) as f32 / 1000.0)
                .collect()
        })
        .collect();
    let good = eval(&real, "real.csv");
    let bad = eval(&noise, "noise.csv");
    assert_eq!(good["rows"], 359);
    let fd = |v: &Value| v["frechet"].as_f64().unwrap();
    let sw = |v: &Value| v["sliced_wasserstein"].as_f64().unwrap();
    assert!(fd(&good) < 0.2 * fd(&bad), "{good} vs {bad}");
    assert!(sw(&good) < sw(&bad), "{good} vs {bad}");
    // Wrong width, missing classifier: clear errors.
    let narrow = dir.path().join("narrow.csv");
    std::fs::write(&narrow, "a,b\n0.1,0.2\n0.3,0.4\n").unwrap();
    let out = tinygen(&[
        "eval",
        "quality",
        "--samples",
        narrow.to_str().unwrap(),
        "--classifier",
        c,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 values per row"));
    let out = tinygen(&[
        "eval",
        "quality",
        "--samples",
        narrow.to_str().unwrap(),
        "--classifier",
        "missing.tgm",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the classifier"));
}
