//! A detector whose autoencoder is int8 (`--neural ae --quantize int8`)
//! against the same detector in f32, on the bundled Cardio data and the
//! first of its PyOD splits: the same training (same seed), so the two
//! differ only by the quantization of the encoder and the decoder.

use std::path::Path;

use nalgebra::DMatrix;
use tinygen::detector::density::{Density, GmmDensity};
use tinygen::detector::fit::Scorer;
use tinygen::detector::metrics::roc_auc;
use tinygen::detector::neural::NeuralOptions;
use tinygen::detector::protocol::read_splits;
use tinygen::host::{self, AlignedBytes};
use tinygen_runtime::Detector;

fn quantile(mut v: Vec<f32>, p: f64) -> f32 {
    v.sort_by(f32::total_cmp);
    let pos = p * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    (f64::from(v[lo]) + f64::from(v[hi] - v[lo]) * (pos - lo as f64)) as f32
}

#[test]
fn an_int8_autoencoder_scores_close_to_the_f32_one_and_is_calibrated_on_itself() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let opts = tinygen::data::LoadOptions {
        label_column: Some("label".into()),
        drop_columns: vec![],
    };
    let set = tinygen::data::load(&root.join("data/cardio.csv.gz"), &opts).unwrap();
    let labels = set.labels.clone().unwrap();
    let splits = read_splits(&root.join("data/cardio_splits.txt"), set.rows).unwrap();
    let train_idx = &splits[0];
    let mut is_train = vec![false; set.rows];
    train_idx.iter().for_each(|&i| is_train[i] = true);
    let test_idx: Vec<usize> = (0..set.rows).filter(|&i| !is_train[i]).collect();
    let train = set.select_rows(train_idx);
    let train_x = DMatrix::from_row_slice(train.rows, train.cols, &train.values);
    let test_x = set.select_rows(&test_idx).to_f32();
    let density = Density::Gmm(GmmDensity::smoothed(0));
    let f32_opts = NeuralOptions {
        steps: 500,
        ..NeuralOptions::default()
    };
    let int8_opts = NeuralOptions {
        int8: true,
        ..f32_opts.clone()
    };
    let f32_scorer = Scorer::fit(&density, Some(&f32_opts), &train_x).unwrap();
    let int8_scorer = Scorer::fit(&density, Some(&int8_opts), &train_x).unwrap();
    assert!(f32_scorer.int8_error().is_none());
    let error = int8_scorer.int8_error().unwrap();
    assert_eq!(error.rows, train.rows);
    // Codes and reconstructions are in standardized units: int8 steps of
    // about range / 255 each, a few accumulated over two layers (measured
    // mean errors 0.034 and 0.025).
    assert!(
        error.codes.1 < 0.15 && error.reconstructions.1 < 0.15,
        "{error}"
    );

    let (f32_file, f32_scores) = f32_scorer.score(&test_x).unwrap();
    let (int8_file, int8_scores) = int8_scorer.score(&test_x).unwrap();
    // The file: the int8 networks take about a quarter of the f32 ones'
    // bytes (the density and the latent mixture stay f32): 8,400 bytes
    // against 12,636 here.
    assert!(
        int8_file.len() * 10 < f32_file.len() * 7,
        "{} vs {} bytes",
        int8_file.len(),
        f32_file.len()
    );
    let aligned = AlignedBytes::new(&int8_file);
    let detector = Detector::from_bytes(aligned.as_bytes()).unwrap();
    assert!(detector.has_int8_neural());

    // Scores: the combined score is a sum of three robust z-scores; on the
    // test rows the int8 one stays within 0.15 of the f32 one for the
    // median row and 0.5 for nine rows in ten (measured: 0.046 and 0.13),
    // and the ranking of anomalies barely moves (ROC-AUC 0.8413 and 0.8411).
    let diffs: Vec<f32> = f32_scores
        .iter()
        .zip(&int8_scores)
        .map(|(a, b)| (a - b).abs())
        .collect();
    let median = quantile(diffs.clone(), 0.5);
    let p90 = quantile(diffs, 0.9);
    assert!(median < 0.15 && p90 < 0.5, "median {median}, p90 {p90}");
    let is_outlier: Vec<bool> = test_idx.iter().map(|&i| labels[i] != 0.0).collect();
    let auc = |s: &[f32]| {
        let s: Vec<f64> = s.iter().map(|&v| f64::from(v)).collect();
        roc_auc(&s, &is_outlier).unwrap()
    };
    let (a, b) = (auc(&f32_scores), auc(&int8_scores));
    assert!((a - b).abs() < 0.01, "ROC-AUC f32 {a} int8 {b}");

    // The combination's constants are the medians of the int8 detector's
    // own terms on the training rows (not the f32 detector's).
    let train_f32: Vec<f32> = train.values.iter().map(|&v| v as f32).collect();
    let terms = host::detector_terms(&detector, &train_f32).unwrap();
    let center = detector.spec().neural.unwrap().center;
    let f32_aligned = AlignedBytes::new(&f32_file);
    let f32_center = Detector::from_bytes(f32_aligned.as_bytes())
        .unwrap()
        .spec()
        .neural
        .unwrap()
        .center;
    for i in 0..3 {
        let median = quantile(terms.chunks(3).map(|t| t[i]).collect(), 0.5);
        assert!(
            (median - center[i]).abs() <= 1e-5 * center[i].abs().max(1.0),
            "term {i}: median {median} vs center {}",
            center[i]
        );
    }
    // The reconstruction term moves under int8: its own median differs.
    assert_ne!(center[1], f32_center[1]);
}
