//! `cargo xtask bench-anomaly`: the ODDS anomaly benchmark.

use std::path::PathBuf;

use anyhow::Context;
use xtask::root;

/// Mean ROC-AUC over PyOD's 10 splits for every ODDS set, per detector,
/// next to the published GMM and KDE columns; the autoencoder detector in
/// f32 and with its networks in int8 (`--neural ae --quantize int8`).
pub(crate) fn bench_anomaly() -> anyhow::Result<()> {
    use tinygen::density::kde::KdeOptions;
    use tinygen::detector::density::{Density, GmmDensity};
    use tinygen::detector::protocol::{evaluate, read_splits};

    let shared = std::env::var_os("TINYGEN_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared"));
    let odds = shared.join("data/odds-pyod");
    let published = std::fs::read_to_string(odds.join("pyod_benchmark_roc.csv"))
        .with_context(|| format!("{} is missing: set TINYGEN_SHARED", odds.display()))?;
    let header: Vec<&str> = published
        .lines()
        .next()
        .context("empty table")?
        .split(',')
        .collect();
    let column = |name: &str| header.iter().position(|h| h.trim() == name);
    let (gmm_col, kde_col) = (
        column("GMM").context("no GMM column")?,
        column("KDE").context("no KDE column")?,
    );
    let ae = tinygen::detector::neural::NeuralOptions::default();
    let ae_int8 = tinygen::detector::neural::NeuralOptions {
        int8: true,
        ..ae.clone()
    };
    let detectors = [
        ("GMM K=1 full", Density::Gmm(GmmDensity::pyod()), None),
        (
            "KDE isotropic h=1",
            Density::Kde(KdeOptions {
                isotropic: Some(1.0),
                ..KdeOptions::default()
            }),
            None,
        ),
        (
            "tinygen default",
            Density::Gmm(GmmDensity::smoothed(0)),
            None,
        ),
        (
            "tinygen default + AE scores",
            Density::Gmm(GmmDensity::smoothed(0)),
            Some(&ae),
        ),
        (
            "tinygen default + AE scores, int8",
            Density::Gmm(GmmDensity::smoothed(0)),
            Some(&ae_int8),
        ),
    ];
    let inne_col = column("INNE").context("no INNE column")?;
    println!(
        "| data | features | published GMM | {} | published KDE | {} | published INNE | {} | {} | {} | model bytes (max over splits) | with AE | with AE int8 |",
        detectors[0].0, detectors[1].0, detectors[2].0, detectors[3].0, detectors[4].0
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut sums = [0.0f64; 8];
    let mut n = 0;
    for line in published.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let name = fields[0];
        let csv = odds.join(format!("csv/{name}.csv"));
        if !csv.is_file() {
            continue;
        }
        let opts = tinygen::data::LoadOptions {
            label_column: Some("label".into()),
            drop_columns: vec![],
        };
        let set = tinygen::data::load(&csv, &opts)?;
        let splits = read_splits(&odds.join(format!("splits/{name}.txt")), set.rows)?;
        let reports: Vec<_> = detectors
            .iter()
            .map(|(_, d, neural)| evaluate(&set, &splits, d, *neural))
            .collect::<anyhow::Result<_>>()?;
        let ours: Vec<f64> = reports.iter().map(|r| r.roc_auc()).collect();
        let bytes = |r: &tinygen::detector::protocol::Report| {
            r.per_split.iter().map(|s| s.model_bytes).max().unwrap_or(0)
        };
        let published: Vec<f64> = [gmm_col, kde_col, inne_col]
            .iter()
            .map(|&c| fields[c].parse())
            .collect::<Result<_, _>>()?;
        println!(
            "| {name} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {} | {} | {} |",
            set.cols,
            published[0],
            ours[0],
            published[1],
            ours[1],
            published[2],
            ours[2],
            ours[3],
            ours[4],
            bytes(&reports[2]),
            bytes(&reports[3]),
            bytes(&reports[4])
        );
        let row = [
            published[0],
            ours[0],
            published[1],
            ours[1],
            published[2],
            ours[2],
            ours[3],
            ours[4],
        ];
        for (s, v) in sums.iter_mut().zip(row) {
            *s += v;
        }
        n += 1;
    }
    let m: Vec<f64> = sums.iter().map(|s| s / n as f64).collect();
    println!(
        "| **mean of {n}** | | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | **{:.4}** | {:.4} | {:.4} | | | |",
        m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]
    );
    println!("\nint8 AE minus f32 AE, mean ROC-AUC: {:+.4}", m[7] - m[6]);
    Ok(())
}
