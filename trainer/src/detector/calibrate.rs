//! Calibrating a detector's alarm threshold on held-out normal scores.

use anyhow::ensure;

/// The alarm threshold that `alarm_rate` of `scores` reach: with `k =
/// floor(rate · n)`, the k-th largest score (so about that fraction of
/// these normal points raise an alarm), or just above the largest when k = 0.
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
    let mut sorted = scores.to_vec();
    sorted.sort_by(f32::total_cmp);
    let k = (alarm_rate * sorted.len() as f64).floor() as usize;
    Ok(if k == 0 {
        sorted[sorted.len() - 1].next_up()
    } else {
        sorted[sorted.len() - k]
    })
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
