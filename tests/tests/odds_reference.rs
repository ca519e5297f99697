//! Real data: a single full-covariance Gaussian on standardized train data,
//! scored by the runtime (f32, standardization folded into the model file),
//! reproduces scikit-learn's ROC-AUC on every ODDS split of the published
//! PyOD protocol (`../shared/data/odds-pyod/splits/reference_gmm_k1_full.tsv`).
//!
//! The data are not shipped with tinygen: the test skips, saying so, when
//! `../shared` is absent (set TINYGEN_SHARED to point elsewhere).

use std::collections::BTreeMap;
use std::path::PathBuf;

use tinygen::data::{self, LoadOptions};
use tinygen::detector::density::{Density, GmmDensity};
use tinygen::detector::protocol::{evaluate, read_splits};

fn odds_dir() -> Option<PathBuf> {
    let base = std::env::var_os("TINYGEN_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let dir = base.join("data/odds-pyod");
    dir.join("splits/reference_gmm_k1_full.tsv")
        .is_file()
        .then_some(dir)
}

#[test]
fn single_gaussian_reproduces_the_published_gmm_column() {
    let Some(dir) = odds_dir() else {
        eprintln!(
            "SKIPPED: ../shared/data/odds-pyod (ODDS splits and reference ROC-AUCs) is absent; \
             set TINYGEN_SHARED to the shared directory to run this test"
        );
        return;
    };
    let reference = std::fs::read_to_string(dir.join("splits/reference_gmm_k1_full.tsv")).unwrap();
    let mut by_set: BTreeMap<String, Vec<(usize, f64)>> = BTreeMap::new();
    for line in reference.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        by_set
            .entry(f[0].to_string())
            .or_default()
            .push((f[1].parse().unwrap(), f[2].parse().unwrap()));
    }
    let detector = Density::Gmm(GmmDensity::pyod());
    let (mut checked, mut worst, mut mean_of_means) = (0, 0.0f64, 0.0);
    for (name, rows) in &by_set {
        let opts = LoadOptions {
            label_column: Some("label".into()),
            drop_columns: vec![],
        };
        let set = data::load(&dir.join(format!("csv/{name}.csv")), &opts).unwrap();
        let splits = read_splits(&dir.join(format!("splits/{name}.txt")), set.rows).unwrap();
        let report = evaluate(&set, &splits, &detector, None).unwrap();
        for &(split, expected) in rows {
            let auc = report.per_split[split].roc_auc;
            worst = worst.max((auc - expected).abs());
            assert!(
                (auc - expected).abs() <= 1e-4,
                "{name} split {split}: ROC-AUC {auc:.6}, reference {expected:.6}"
            );
            checked += 1;
        }
        eprintln!(
            "{name}: mean ROC-AUC {:.4} over {} splits",
            report.roc_auc(),
            rows.len()
        );
        mean_of_means += report.roc_auc() / by_set.len() as f64;
    }
    eprintln!(
        "{checked} splits checked, largest |ROC-AUC - reference| = {worst:.2e}; \
         mean over the {} sets {mean_of_means:.4} (published GMM column: 0.8031)",
        by_set.len()
    );
    assert!(
        checked >= 170,
        "expected the full reference table, got {checked} rows"
    );
    assert!((mean_of_means - 0.8031).abs() < 5e-4);
}

/// The `.mat` files ODDS distributes load to the same table as their CSV
/// conversions, for every set (the label column is `y` in MATLAB files).
#[test]
fn matlab_files_equal_their_csv_conversions() {
    let Some(dir) = odds_dir() else {
        eprintln!("SKIPPED: ../shared/data/odds-pyod (ODDS .mat and CSV files) is absent");
        return;
    };
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "mat") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let label = |column: &str| LoadOptions {
            label_column: Some(column.into()),
            drop_columns: vec![],
        };
        let mat = data::load(&path, &label("y")).unwrap();
        let csv = data::load(&dir.join(format!("csv/{name}.csv")), &label("label")).unwrap();
        assert_eq!((mat.rows, mat.cols), (csv.rows, csv.cols), "{name}");
        assert_eq!(mat.labels, csv.labels, "{name}");
        let worst = mat
            .values
            .iter()
            .zip(&csv.values)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            .fold(0.0, f64::max);
        assert!(worst < 1e-12, "{name}: values differ by {worst}");
        checked += 1;
    }
    assert_eq!(checked, 17);
}
