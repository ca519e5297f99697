//! Calibrating a detector: the alarm threshold on held-out normal scores,
//! and the constants that make the terms of a combined score robust
//! z-scores.

use anyhow::ensure;
use tinygen_runtime::detector::{robust_z_constants, threshold_at_rate};

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

/// The constants of a combined score of `N` terms (see
/// `tinygen_runtime::detector`): each term's centre and scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Combination<const N: usize> {
    /// Subtracted from the terms.
    pub center: [f32; N],
    /// Divides the centred terms.
    pub scale: [f32; N],
}

impl<const N: usize> Combination<N> {
    /// The terms as they are (centre 0, scale 1).
    pub const RAW: Self = Self {
        center: [0.0; N],
        scale: [1.0; N],
    };

    /// Each term's robust z-score constants over rows of `N` (`terms`
    /// row-major, as the runtime computed them on the training rows): the
    /// runtime's [`robust_z_constants`] (median, IQR / 1.349, or the
    /// standard deviation for a term that barely varies), so none wins by
    /// its units, and the device that learns a detector measures the same.
    pub fn measure(terms: &[f32]) -> anyhow::Result<Self> {
        ensure!(
            !terms.is_empty() && terms.len().is_multiple_of(N),
            "no whole rows of {N} terms to calibrate the combined score on"
        );
        let mut combination = Self::RAW;
        for i in 0..N {
            let mut t: Vec<f32> = terms.chunks(N).map(|r| r[i]).collect();
            ensure!(
                t.iter().all(|v| v.is_finite()),
                "a term of the combined score is not finite on the training rows"
            );
            (combination.center[i], combination.scale[i]) =
                robust_z_constants(&mut t).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Ok(combination)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combination_constants_are_medians_and_scaled_iqrs() {
        // Column 0: 1..=5 (median 3, IQR 2); column 1: constant 7.
        let terms: Vec<f32> = (1..=5).flat_map(|i| [i as f32, 7.0]).collect();
        let c = Combination::<2>::measure(&terms).unwrap();
        assert_eq!(c.center, [3.0, 7.0]);
        assert_eq!(c.scale, [(2.0 / 1.349) as f32, 1.0]);
        // Few distinct values: no IQR, the standard deviation instead.
        let terms = [0.0f32, 0.0, 0.0, 0.0, 10.0];
        let c = Combination::<1>::measure(&terms).unwrap();
        assert_eq!(c.scale, [4.0]);
        assert!(Combination::<2>::measure(&[1.0, 2.0, 3.0]).is_err());
        assert!(Combination::<1>::measure(&[1.0, f32::NAN]).is_err());
    }

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
