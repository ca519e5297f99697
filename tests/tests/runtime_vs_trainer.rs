//! The runtime (f32, weights in the file's layout) against the trainer
//! (f64, scikit-learn's parametrisation) for every covariance type, with and
//! without standardization, over dimensions that exercise every block shape
//! of the stored triangular factors (D = 1..=9, 16, 17, 33).
//!
//! Bound: f32 rounding of the squared Mahalanobis distance, about 1e-7 of
//! its size per term, so 1e-4 relative to max(1, |log p|).

use tinygen::density::gmm::{EmOptions, fit_em};
use tinygen::density::standardize::Standardizer;
use tinygen::host::AlignedBytes;
use tinygen_runtime::Gmm;
use tinygen_runtime::gmm::Covariance;

#[test]
fn runtime_matches_trainer_across_dimensions_and_covariances() {
    let covariances = [
        Covariance::Full,
        Covariance::Tied,
        Covariance::Diag,
        Covariance::Spherical,
    ];
    for d in (1..=9).chain([16, 17, 33]) {
        let x = xtask::blobs(300, d, 3, d as u64);
        for covariance in covariances {
            for standardize in [false, true] {
                let standardizer = standardize.then(|| Standardizer::fit(&x));
                let fit_on = standardizer
                    .as_ref()
                    .map_or_else(|| x.clone(), |s| s.apply(&x));
                let opts = EmOptions {
                    components: 3,
                    covariance,
                    ..EmOptions::default()
                };
                let (model, _) = fit_em(&fit_on, &opts, &mut |_, _, _| {}).unwrap();
                let expected = model.score_samples(&fit_on);
                let file = AlignedBytes::new(
                    &model
                        .params(standardizer.as_ref().map(Standardizer::encoded))
                        .encode()
                        .unwrap(),
                );
                let gmm = Gmm::from_bytes(file.as_bytes()).unwrap();
                for (i, row) in x.row_iter().enumerate().step_by(7) {
                    let raw: Vec<f32> = row.iter().map(|&v| v as f32).collect();
                    let got = f64::from(gmm.log_density(&raw).unwrap());
                    let tol = 1e-4 * expected[i].abs().max(1.0);
                    assert!(
                        (got - expected[i]).abs() <= tol,
                        "D={d} {covariance:?} standardize={standardize} row {i}: runtime {got}, trainer {}",
                        expected[i]
                    );
                }
            }
        }
    }
}
