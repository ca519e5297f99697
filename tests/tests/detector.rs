//! Detector files: the runtime's score equals the trainer's -log p on the
//! window features, the threshold decides, and bad input is an error.

use nalgebra::DMatrix;
use tinygen::density::gmm::{EmOptions, fit_em};
use tinygen::host::AlignedBytes;
use tinygen_runtime::detector::Features;
use tinygen_runtime::features::window_stats;
use tinygen_runtime::{Detector, Error, Gmm, ModelKind};

fn stream(n: usize) -> Vec<f32> {
    (0..n * 2)
        .map(|i| ((i as f32) * 0.37).sin() + (i % 2) as f32)
        .collect()
}

#[test]
fn windowed_detector_scores_like_its_density_and_rejects_bad_windows() {
    let length = 8;
    let s = stream(400);
    let feats: Vec<f64> = s
        .chunks_exact(2 * length)
        .flat_map(|w| {
            let mut out = [0.0f32; 8];
            window_stats(w, 2, &mut out).unwrap();
            out.map(f64::from)
        })
        .collect();
    let x = DMatrix::from_row_slice(feats.len() / 8, 8, &feats);
    let (mixture, _) = fit_em(
        &x,
        &EmOptions {
            reg_covar: 1e-3,
            ..EmOptions::default()
        },
        &mut |_, _, _| {},
    )
    .unwrap();
    let params = mixture.params(None);
    let features = Features::WindowStats {
        channels: 2,
        length: length as u32,
    };
    let detector_file = AlignedBytes::new(
        &params
            .encode_detector(ModelKind::Gmm, features, 5.0)
            .unwrap(),
    );
    let density_file = AlignedBytes::new(&params.encode().unwrap());
    let detector = Detector::from_bytes(detector_file.as_bytes()).unwrap();
    let density = Gmm::from_bytes(density_file.as_bytes()).unwrap();
    assert_eq!(detector.input_len(), 16);

    for w in s.chunks_exact(2 * length) {
        let mut f = [0.0f32; 8];
        window_stats(w, 2, &mut f).unwrap();
        let score = detector.score(w).unwrap();
        assert_eq!(
            score,
            -density.log_density(&f).unwrap(),
            "same code, same bits"
        );
        assert_eq!(detector.is_anomaly(w).unwrap(), score >= 5.0);
    }
    let mut bad = s[..16].to_vec();
    bad[3] = f32::NAN;
    assert_eq!(detector.score(&bad), Err(Error::NonFiniteInput));
    assert_eq!(
        detector.is_anomaly(&s[..15]),
        Err(Error::DimensionMismatch {
            expected: 16,
            found: 15
        })
    );
    assert!(matches!(
        Gmm::from_bytes(detector_file.as_bytes()),
        Err(Error::WrongKind { .. })
    ));
    assert!(matches!(
        Detector::from_bytes(density_file.as_bytes()),
        Err(Error::WrongKind { .. })
    ));
}

#[test]
fn detector_with_inconsistent_window_is_rejected() {
    let x = DMatrix::from_fn(50, 3, |i, j| ((i * 3 + j * 5) % 7) as f64);
    let (mixture, _) = fit_em(&x, &EmOptions::default(), &mut |_, _, _| {}).unwrap();
    // 3 density dimensions cannot be 4 statistics per channel: the writer
    // runs the reader's checks and refuses to write such a file.
    let features = Features::WindowStats {
        channels: 1,
        length: 4,
    };
    assert_eq!(
        mixture
            .params(None)
            .encode_detector(ModelKind::Gmm, features, 1.0)
            .err(),
        Some(Error::InvalidParameters)
    );
    let nan = mixture
        .params(None)
        .encode_detector(ModelKind::Gmm, Features::Identity, f32::NAN);
    assert_eq!(nan.err(), Some(Error::InvalidParameters));
}
