//! The default detector density (issue 16: `Ensemble::bagged`) on the
//! bundled Cardio data and its PyOD splits: what the file holds, that the
//! runtime scores it as the average of its members' densities, its size
//! budget, and the novelty protocol.

use std::path::Path;

use nalgebra::DMatrix;
use tinygen::data::Dataset;
use tinygen::density::gmm::GaussianMixture;
use tinygen::density::shrinkage::oas;
use tinygen::density::standardize::Standardizer;
use tinygen::detector::density::{Density, Ensemble, GmmDensity, max_components};
use tinygen::detector::fit::Scorer;
use tinygen::detector::metrics::roc_auc;
use tinygen::detector::protocol::{Protocol, evaluate_with, fit_split, read_splits};
use tinygen::host;
use tinygen_runtime::gmm::Covariance;

fn cardio() -> (Dataset, Vec<Vec<usize>>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let opts = tinygen::data::LoadOptions {
        label_column: Some("label".into()),
        drop_columns: vec![],
    };
    let set = tinygen::data::load(&root.join("data/cardio.csv.gz"), &opts).unwrap();
    let splits = read_splits(&root.join("data/cardio_splits.txt"), set.rows).unwrap();
    (set, splits)
}

fn matrix(set: &Dataset) -> DMatrix<f64> {
    DMatrix::from_row_slice(set.rows, set.cols, &set.values)
}

#[test]
fn the_default_is_the_average_of_eight_robustly_standardized_members() {
    let (set, splits) = cardio();
    let train = matrix(&set.select_rows(&splits[0]));
    let bagged = Ensemble::bagged(0);
    let fitted = bagged.fit_density(&train).unwrap();
    // The standardization is the robust one.
    assert_eq!(fitted.standardizer, Standardizer::fit_robust(&train, 0.25));
    assert_ne!(fitted.standardizer, Standardizer::fit(&train));
    // Eight members of at most 4 components each (pruned at 5 %): 8 x 4 x
    // 0.05 = 1.6 of weight can go, so every member keeps at least one and
    // every component weighs at least 0.05 / 8 of the whole.
    let k = fitted.mixture.components();
    assert!((8..=32).contains(&k), "{k} components");
    assert!(
        fitted
            .mixture
            .weights
            .iter()
            .all(|&w| w >= 0.05 / 8.0 - 1e-12)
    );
    assert!((fitted.mixture.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    // Each member alone (an ensemble of one, with its seed) gives the
    // components of its eighth of the mixture: the density is the average.
    let z = fitted.standardizer.apply(&train);
    let members: Vec<GaussianMixture> = bagged
        .members
        .iter()
        .map(|m| {
            Ensemble {
                members: vec![m.clone()],
                ..bagged.clone()
            }
            .fit_mixture(&z)
            .unwrap()
        })
        .collect();
    assert_eq!(GaussianMixture::average(&members).unwrap(), fitted.mixture);
    // The runtime scores the file as that mixture: -ln p of raw rows equals
    // the trainer's log-density of the standardized rows up to one constant
    // (the Jacobian of the standardization), within f32 rounding.
    let test = set.select_rows(&(0..200).collect::<Vec<_>>());
    let file = fitted.encode().unwrap();
    assert!(file.len() <= 64 * 1024, "{} bytes", file.len());
    let runtime = host::run_file(&file, &test.to_f32()).unwrap();
    let trainer = fitted
        .mixture
        .score_samples(&fitted.standardizer.apply(&matrix(&test)));
    let shift = f64::from(runtime[0]) - trainer[0];
    for (r, t) in runtime.iter().zip(&trainer) {
        assert!(
            (f64::from(*r) - t - shift).abs() < 1e-3 * t.abs().max(1.0),
            "{r} vs {t}"
        );
    }
}

#[test]
fn the_budget_caps_the_file_at_64_kib() {
    // Exact sizes from the runtime's encoder: C components fit, C + 1 not.
    for d in [3usize, 21, 40, 64, 100] {
        let c = max_components(d, Covariance::Full, 64 * 1024);
        let x = DMatrix::from_fn(400, d, |i, j| {
            ((i * 31 + j * 17) % 23) as f64 + (i % 7) as f64 * 0.1 * j as f64
        });
        let fitted = Ensemble::bagged(3).fit_density(&x).unwrap();
        let detector = fitted
            .params()
            .encode_detector(
                fitted.kind,
                tinygen_runtime::detector::Features::Identity,
                1.0,
            )
            .unwrap();
        let expected = Ensemble::bagged(3).within_budget(d);
        if c >= 4 {
            assert!(
                detector.len() <= 64 * 1024,
                "d = {d}: {} bytes",
                detector.len()
            );
            assert_eq!(expected.len(), (c / 4).min(8), "d = {d}");
        } else {
            // Not even one K = 4 member fits: the default fits one OAS-shrunk
            // Gaussian on all the standardized rows; without that rule, one
            // member of max(C, 1) components.
            assert!(Ensemble::bagged(3).is_wide(d));
            let z = fitted.standardizer.apply(&x);
            assert_eq!(fitted.mixture, oas(&z).unwrap().mixture().unwrap());
            assert_eq!(expected.len(), 1);
            let members = Ensemble {
                shrunk_when_wide: false,
                ..Ensemble::bagged(3)
            }
            .fit_mixture(&z)
            .unwrap();
            assert!(members.components() <= c.max(1));
            assert_ne!(members, fitted.mixture);
        }
        assert_eq!(Ensemble::bagged(3).is_wide(d), c < 4);
        assert!(fitted.mixture.components() <= 4 * expected.len());
    }
    // The budget is exact: the runtime encoder's file of C full components
    // in 21 dimensions fits, of C + 1 does not (with the room left for a
    // detector's spec).
    let c = max_components(21, Covariance::Full, 64 * 1024);
    let size = |k: usize| {
        tinygen_runtime::gmm::GmmSpec {
            dim: 21,
            components: k as u32,
            covariance: Covariance::Full,
            standardized: true,
        }
        .stored_values()
        .unwrap()
            * 4
    };
    assert!(size(c) + 256 <= 64 * 1024 && size(c + 1) + 256 > 64 * 1024);
}

#[test]
fn the_novelty_protocol_fits_on_the_normal_train_rows_only() {
    let (set, splits) = cardio();
    let labels = set.labels.clone().unwrap();
    let splits = &splits[..2];
    let density = Density::Gmm(GmmDensity::smoothed(0));
    let report = evaluate_with(&set, splits, &density, None, Protocol::Novelty).unwrap();
    let unsupervised = evaluate_with(&set, splits, &density, None, Protocol::Unsupervised).unwrap();
    for (i, train_idx) in splits.iter().enumerate() {
        let normal: Vec<usize> = train_idx
            .iter()
            .copied()
            .filter(|&r| labels[r] == 0.0)
            .collect();
        assert!(normal.len() < train_idx.len());
        let test_idx: Vec<usize> = (0..set.rows).filter(|r| !train_idx.contains(r)).collect();
        let scorer = Scorer::fit(&density, None, &matrix(&set.select_rows(&normal))).unwrap();
        let (file, scores) = scorer.score(&set.select_rows(&test_idx).to_f32()).unwrap();
        // One split's fit on its own (what `bench-anomaly --m4f` writes out)
        // is the same detector and test part.
        let fitted = fit_split(&set, train_idx, &density, None, Protocol::Novelty).unwrap();
        assert_eq!(fitted.test_idx, test_idx);
        assert_eq!(
            fitted.scorer.score(&fitted.test_x).unwrap(),
            (file, scores.clone())
        );
        let scores: Vec<f64> = scores.iter().map(|&s| f64::from(s)).collect();
        let outlier: Vec<bool> = test_idx.iter().map(|&r| labels[r] != 0.0).collect();
        assert_eq!(
            report.per_split[i].roc_auc,
            roc_auc(&scores, &outlier).unwrap()
        );
        assert_ne!(
            report.per_split[i].roc_auc,
            unsupervised.per_split[i].roc_auc
        );
    }
}
