//! Parity of tinygen's KDE with `scipy.stats.gaussian_kde` (f64, 1e-9
//! relative) and of the runtime's f32 scoring of the `.tgm` file with the
//! trainer (1e-4 relative to max(1, |log p|), as for mixtures).
//!
//! Fixtures come from `scripts/scipy_kde_fixtures.py`; the committed ones are
//! in `tests/fixtures/scipy`, and `TINYGEN_SCIPY_FIXTURES=DIR` points the test
//! at freshly generated ones (CI does this with a fresh scipy).

use nalgebra::DMatrix;
use serde_json::Value;
use tinygen::density::kde::{Bandwidth, KdeOptions, fit_kde};
use tinygen::host::AlignedBytes;
use tinygen_runtime::{Gmm, ModelKind};

fn fixtures() -> Vec<(String, Value)> {
    tinygen_tests::json_fixtures("TINYGEN_SCIPY_FIXTURES", "scipy", 4)
}

fn matrix(v: &Value) -> DMatrix<f64> {
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).unwrap();
    DMatrix::from_fn(rows.len(), rows[0].len(), |i, j| rows[i][j])
}

fn numbers(v: &Value) -> Vec<f64> {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn kde_matches_scipy_and_the_runtime_matches_the_trainer() {
    for (name, f) in fixtures() {
        let x = matrix(&f["x"]);
        let weights: Option<Vec<f64>> = serde_json::from_value(f["weights"].clone()).unwrap();
        let bandwidth = match &f["bandwidth"] {
            Value::String(s) => s.parse().unwrap(),
            v => Bandwidth::Factor(v.as_f64().unwrap()),
        };
        let opts = KdeOptions {
            bandwidth,
            ..KdeOptions::default()
        };
        let kde = fit_kde(&x, weights.as_deref(), &opts).unwrap();
        let close = |what: &str, ours: f64, theirs: f64| {
            assert!(
                (ours - theirs).abs() <= 1e-9 * ours.abs().max(theirs.abs()) + 1e-300,
                "{name} {what}: ours {ours}, scipy {theirs}"
            );
        };
        close("factor", kde.factor, f["factor"].as_f64().unwrap());
        close("n_eff", kde.n_eff, f["n_eff"].as_f64().unwrap());
        for (a, b) in kde
            .covariance
            .transpose()
            .iter()
            .zip(numbers(&f["covariance"]))
        {
            close("covariance", *a, b);
        }
        let queries = matrix(&f["queries"]);
        let ours = kde.mixture.score_samples(&queries);
        for (a, b) in ours.iter().zip(numbers(&f["logpdf"])) {
            close("logpdf", *a, b);
        }

        let file = AlignedBytes::new(&kde.mixture.params(None).encode_as(ModelKind::Kde).unwrap());
        let model = Gmm::from_bytes(file.as_bytes()).unwrap();
        assert_eq!(model.kind(), ModelKind::Kde);
        for (i, row) in queries.row_iter().enumerate() {
            let point: Vec<f32> = row.iter().map(|&v| v as f32).collect();
            let got = f64::from(model.log_density(&point).unwrap());
            assert!(
                (got - ours[i]).abs() <= 1e-4 * ours[i].abs().max(1.0),
                "{name} query {i}: runtime {got}, trainer {}",
                ours[i]
            );
        }
    }
}
