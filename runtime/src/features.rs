//! Features of a window of a multichannel stream, computed identically on
//! the host (to fit) and on the device (to score).

use crate::Error;

/// Statistics per channel, in this order.
pub const STATS: [&str; 4] = ["mean", "std", "min", "max"];

/// Summarises a window (`length` samples of `channels` values, time-major:
/// `window[t * channels + c]`) into `out[4c..4c + 4]` = mean, population
/// standard deviation, min and max of channel `c`.
///
/// ```
/// use tinygen_runtime::features::window_stats;
/// let window = [1.0, 10.0, 3.0, 30.0]; // two samples of two channels
/// let mut out = [0.0; 8];
/// window_stats(&window, 2, &mut out).unwrap();
/// assert_eq!(out, [2.0, 1.0, 1.0, 3.0, 20.0, 10.0, 10.0, 30.0]);
/// ```
pub fn window_stats(window: &[f32], channels: usize, out: &mut [f32]) -> Result<(), Error> {
    if channels == 0 || window.is_empty() || !window.len().is_multiple_of(channels) {
        return Err(Error::DimensionMismatch {
            expected: channels.max(1),
            found: window.len(),
        });
    }
    if out.len() != STATS.len() * channels {
        return Err(Error::DimensionMismatch {
            expected: STATS.len() * channels,
            found: out.len(),
        });
    }
    if window.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFiniteInput);
    }
    let n = (window.len() / channels) as f32;
    for (c, stats) in out.chunks_exact_mut(STATS.len()).enumerate() {
        let samples = window.iter().skip(c).step_by(channels);
        let (mut sum, mut min, mut max) = (0.0f32, f32::INFINITY, f32::NEG_INFINITY);
        for &v in samples.clone() {
            sum += v;
            // Comparisons, not `f32::min` and `max`: the values are finite,
            // and a core without FPv5's `vminnm` (the Cortex-M4F) calls
            // libm's `fminf` and `fmaxf` for those.
            if v < min {
                min = v;
            }
            if v > max {
                max = v;
            }
        }
        let mean = sum / n;
        let var = samples.map(|&v| (v - mean) * (v - mean)).sum::<f32>() / n;
        stats.copy_from_slice(&[mean, crate::math::sqrt(var), min, max]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_match_a_direct_computation() {
        let window: [f32; 12] = [
            0.5, -2.0, 1.5, 4.0, -0.25, 3.0, 2.0, 1.0, 0.0, 8.0, 1.0, -1.0,
        ];
        let mut out = [0.0f32; 12];
        window_stats(&window, 3, &mut out).unwrap();
        for c in 0..3 {
            let v: [f64; 4] = core::array::from_fn(|t| f64::from(window[t * 3 + c]));
            let mean = v.iter().sum::<f64>() / 4.0;
            let std = (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 4.0).sqrt();
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            for (got, want) in out[4 * c..4 * c + 4].iter().zip([mean, std, min, max]) {
                assert!(
                    (f64::from(*got) - want).abs() < 1e-6,
                    "channel {c}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn bad_windows_are_errors() {
        let mut out = [0.0f32; 8];
        assert!(window_stats(&[1.0, 2.0, 3.0], 2, &mut out).is_err());
        assert!(window_stats(&[1.0, f32::NAN], 2, &mut out) == Err(Error::NonFiniteInput));
        assert!(window_stats(&[1.0, 2.0], 2, &mut out[..4]).is_err());
        assert!(window_stats(&[], 2, &mut out).is_err());
    }
}
