//! Real data: a single full-covariance Gaussian on standardized train data,
//! scored by the runtime (f32, standardization folded into the model file),
//! reproduces scikit-learn's ROC-AUC on every ODDS split of the published
//! PyOD protocol (`../shared/data/odds-pyod/splits/reference_gmm_k1_full.tsv`).
//!
//! The data are not shipped with tinygen: the test skips, saying so, when
//! `../shared` is absent (set TINYGEN_SHARED to point elsewhere).

use std::collections::BTreeMap;
use std::path::PathBuf;

use nalgebra::DMatrix;
use tinygen::data::{self, LoadOptions};
use tinygen::density::gmm::{EmOptions, fit_em};
use tinygen::density::standardize::Standardizer;
use tinygen::eval::roc_auc;
use tinygen::io::AlignedBytes;
use tinygen_runtime::Gmm;

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
    let mut checked = 0;
    let mut worst: f64 = 0.0;
    for (name, rows) in &by_set {
        let opts = LoadOptions {
            label_column: Some("label".into()),
            drop_columns: vec![],
        };
        let set = data::load(&dir.join(format!("csv/{name}.csv")), &opts).unwrap();
        let labels = set.labels.clone().unwrap();
        let splits = std::fs::read_to_string(dir.join(format!("splits/{name}.txt"))).unwrap();
        let splits: Vec<Vec<usize>> = splits
            .lines()
            .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
            .collect();
        let mut means = Vec::new();
        for &(split, expected) in rows {
            let train_idx = &splits[split];
            let mut is_train = vec![false; set.rows];
            train_idx.iter().for_each(|&i| is_train[i] = true);
            let test_idx: Vec<usize> = (0..set.rows).filter(|&i| !is_train[i]).collect();
            let train = set.select_rows(train_idx);
            let raw = DMatrix::from_row_slice(train.rows, train.cols, &train.values);
            let standardizer = Standardizer::fit(&raw);
            let em = EmOptions {
                components: 1,
                reg_covar: 1e-6,
                ..EmOptions::default()
            };
            let (model, _) = fit_em(&standardizer.apply(&raw), &em, &mut |_, _, _| {}).unwrap();
            let file =
                AlignedBytes::new(&model.params(Some(standardizer.encoded())).encode().unwrap());
            let gmm = Gmm::from_bytes(file.as_bytes()).unwrap();
            let test = set.select_rows(&test_idx);
            let mut scores = vec![0f32; test.rows];
            gmm.log_density_batch(&test.to_f32(), &mut scores).unwrap();
            let outlier_score: Vec<f64> = scores.iter().map(|&s| -f64::from(s)).collect();
            let is_outlier: Vec<bool> = test_idx.iter().map(|&i| labels[i] == 1.0).collect();
            let auc = roc_auc(&outlier_score, &is_outlier).unwrap();
            worst = worst.max((auc - expected).abs());
            assert!(
                (auc - expected).abs() <= 1e-4,
                "{name} split {split}: ROC-AUC {auc:.6}, reference {expected:.6}"
            );
            means.push(auc);
            checked += 1;
        }
        eprintln!(
            "{name}: mean ROC-AUC {:.4} over {} splits",
            means.iter().sum::<f64>() / means.len() as f64,
            means.len()
        );
    }
    eprintln!("{checked} splits checked, largest |ROC-AUC - reference| = {worst:.2e}");
    assert!(
        checked >= 100,
        "expected the full reference table, got {checked} rows"
    );
}
