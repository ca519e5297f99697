//! Calibrating a detector's alarm threshold on held-out normal scores.

use anyhow::ensure;
use tinygen_runtime::detector::threshold_at_rate;

/// The alarm threshold that `alarm_rate` of `scores` reach: the
/// runtime's rule ([`threshold_at_rate`]: with `k = floor(rate · n)`, the
/// k-th largest score, or just above the largest when k = 0), the one the
/// device applies when it learns its own threshold.
pub fn calibrate_threshold(scores: &[f32], alarm_rate: f64) -> anyhow::Result<f32> {
    ensure!(
        !scores.is_empty(),
        "no held-out points to calibrate the threshold on"
    );
    ensure!(
        (0.0..1.0).contains(&alarm_rate),
        "--alarm-rate must be in [0, 1), got {alarm_rate}"
    );
    ensure!(
        scores.iter().all(|s| !s.is_nan()),
        "a held-out score is NaN"
    );
    threshold_at_rate(&mut scores.to_vec(), alarm_rate).map_err(|e| anyhow::anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_lets_the_alarm_rate_through() {
        let scores: Vec<f32> = (0..100).map(|i| i as f32).collect();
        let t = calibrate_threshold(&scores, 0.05).unwrap();
        assert_eq!(scores.iter().filter(|&&s| s >= t).count(), 5);
        let none = calibrate_threshold(&scores, 0.0).unwrap();
        assert!(none > 99.0 && scores.iter().all(|&s| s < none));
        assert!(calibrate_threshold(&[], 0.1).is_err());
        assert!(calibrate_threshold(&scores, 1.0).is_err());
    }
}
