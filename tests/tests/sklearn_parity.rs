//! Parity of tinygen's EM with scikit-learn's GaussianMixture and of its
//! shrunk covariance with scikit-learn's OAS, and of the runtime's f32
//! scoring with the trainer's f64 scoring.
//!
//! Fixtures come from `scripts/sklearn_fixtures.py`; the committed ones are in
//! `tests/fixtures/sklearn`, and `TINYGEN_SKLEARN_FIXTURES=DIR` points the test
//! at freshly generated ones (CI does this with a fresh scikit-learn).

use nalgebra::DMatrix;
use serde_json::Value;
use tinygen::density::gmm::{EmOptions, em_from_responsibilities};
use tinygen::host::AlignedBytes;
use tinygen_runtime::Gmm;
use tinygen_runtime::gmm::Covariance;

/// The fixtures whose file name starts with `prefix` (`gmm_`, `oas_`).
fn fixtures_of(prefix: &str, min: usize) -> Vec<(String, Value)> {
    let all = tinygen_tests::json_fixtures("TINYGEN_SKLEARN_FIXTURES", "sklearn", 1);
    let some: Vec<_> = all
        .into_iter()
        .filter(|(path, _)| {
            std::path::Path::new(path)
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect();
    assert!(
        some.len() >= min,
        "expected at least {min} {prefix}* fixtures"
    );
    some
}

fn fixtures() -> Vec<(String, Value)> {
    fixtures_of("gmm_", 5)
}

#[test]
fn oas_matches_scikit_learn() {
    for (name, f) in fixtures_of("oas_", 3) {
        let x = matrix(&f["x"]);
        let ours = tinygen::density::shrinkage::oas(&x).unwrap();
        assert_close(
            &format!("{name}: location"),
            &ours.mean,
            &flat(&f["location"]),
            1e-12,
            1e-12,
        );
        assert_close(
            &format!("{name}: covariance"),
            ours.covariance.as_slice(),
            &flat(&f["covariance"]),
            1e-10,
            1e-12,
        );
        // scikit-learn reports 0 for one feature, where every weight gives
        // the same covariance.
        if x.ncols() > 1 {
            let theirs = f["shrinkage"].as_f64().unwrap();
            assert!(
                (ours.shrinkage - theirs).abs() < 1e-12,
                "{name}: shrinkage {} against {theirs}",
                ours.shrinkage
            );
        }
        assert!(ours.mixture().unwrap().components() == 1);
    }
}

fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(flat).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("not a number array: {other}"),
    }
}

fn matrix(v: &Value) -> DMatrix<f64> {
    let rows = v.as_array().unwrap().len();
    let values = flat(v);
    DMatrix::from_row_slice(rows, values.len() / rows, &values)
}

fn covariance(name: &str) -> Covariance {
    match name {
        "full" => Covariance::Full,
        "tied" => Covariance::Tied,
        "diag" => Covariance::Diag,
        "spherical" => Covariance::Spherical,
        other => panic!("unknown covariance type {other}"),
    }
}

/// Relative agreement, with an absolute floor for values that are exactly 0
/// in one implementation and round-off in the other.
fn assert_close(what: &str, ours: &[f64], theirs: &[f64], rel: f64, abs: f64) {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let tol = rel * a.abs().max(b.abs()) + abs;
        assert!(
            (a - b).abs() <= tol,
            "{what}[{i}]: ours {a}, sklearn {b}, |diff| {} > {tol}",
            (a - b).abs()
        );
    }
}

#[test]
fn em_matches_scikit_learn_for_every_covariance_type() {
    let mut seen = std::collections::BTreeSet::new();
    for (name, f) in fixtures() {
        let cov = covariance(f["covariance_type"].as_str().unwrap());
        seen.insert(cov.name());
        let x = matrix(&f["x"]);
        let resp = matrix(&f["resp_init"]);
        let opts = EmOptions {
            components: f["n_components"].as_u64().unwrap() as usize,
            covariance: cov,
            max_iter: f["max_iter"].as_u64().unwrap() as usize,
            tol: f["tol"].as_f64().unwrap(),
            reg_covar: f["reg_covar"].as_f64().unwrap(),
            ..EmOptions::default()
        };
        let (model, report) =
            em_from_responsibilities(&x, &resp, &opts, &mut |_, _, _| {}).unwrap();
        assert_eq!(
            report.n_iter as u64,
            f["n_iter"].as_u64().unwrap(),
            "{name}: n_iter"
        );
        assert_eq!(
            report.converged,
            f["converged"].as_bool().unwrap(),
            "{name}: converged"
        );
        let rel = 1e-6;
        let abs = 1e-12;
        assert_close(
            &format!("{name} lower_bound"),
            &[report.lower_bound],
            &[f["lower_bound"].as_f64().unwrap()],
            rel,
            abs,
        );
        assert_close(
            &format!("{name} weights"),
            &model.weights,
            &flat(&f["weights"]),
            rel,
            abs,
        );
        assert_close(
            &format!("{name} means"),
            &model.means,
            &flat(&f["means"]),
            rel,
            abs,
        );
        assert_close(
            &format!("{name} covariances"),
            &model.covariances,
            &flat(&f["covariances"]),
            rel,
            abs,
        );
        assert_close(
            &format!("{name} precisions_cholesky"),
            &model.precisions_cholesky,
            &flat(&f["precisions_cholesky"]),
            rel,
            abs,
        );
        assert_close(
            &format!("{name} score_samples"),
            &model.score_samples(&x),
            &flat(&f["score_samples"]),
            rel,
            abs,
        );
        assert_close(
            &format!("{name} bic"),
            &[model.bic(&x)],
            &[f["bic"].as_f64().unwrap()],
            rel,
            abs,
        );
        assert_close(
            &format!("{name} aic"),
            &[model.aic(&x)],
            &[f["aic"].as_f64().unwrap()],
            rel,
            abs,
        );
    }
    assert_eq!(
        seen.len(),
        4,
        "fixtures must cover full, tied, diag and spherical: {seen:?}"
    );
}

/// The runtime scores in f32 what the trainer scores in f64. Each term of
/// the log-density carries a rounding error of about 1e-7 times the size of
/// the squared Mahalanobis distance, so the bound is relative to
/// max(1, |log p|): 1e-4 relative for ordinary values, 1e-4 absolute near 0.
#[test]
fn runtime_f32_scores_match_trainer_f64() {
    for (name, f) in fixtures() {
        let cov = covariance(f["covariance_type"].as_str().unwrap());
        let x = matrix(&f["x"]);
        let opts = EmOptions {
            components: f["n_components"].as_u64().unwrap() as usize,
            covariance: cov,
            ..EmOptions::default()
        };
        let (model, _) =
            em_from_responsibilities(&x, &matrix(&f["resp_init"]), &opts, &mut |_, _, _| {})
                .unwrap();
        let file = AlignedBytes::new(&model.params(None).encode().unwrap());
        let gmm = Gmm::from_bytes(file.as_bytes()).unwrap();
        let expected = model.score_samples(&x);
        let mut resp = vec![0f32; model.components()];
        for (i, row) in x.row_iter().enumerate() {
            let point: Vec<f32> = row.iter().map(|&v| v as f32).collect();
            let got = gmm.log_density(&point).unwrap() as f64;
            let tol = 1e-4 * expected[i].abs().max(1.0);
            assert!(
                (got - expected[i]).abs() <= tol,
                "{name} row {i}: runtime {got}, trainer {}",
                expected[i]
            );
            let total = gmm.log_responsibilities(&point, &mut resp).unwrap() as f64;
            assert!((total - got).abs() <= 1e-5 * got.abs().max(1.0));
            let sum: f32 = resp.iter().map(|r| r.exp()).sum();
            assert!(
                (sum - 1.0).abs() < 1e-5,
                "{name} row {i}: responsibilities sum to {sum}"
            );
        }
    }
}
