//! Per-feature standardization `x' = (x - mean) / scale`, fitted on train data.

use nalgebra::DMatrix;
use tinygen_runtime::gmm::Standardizer as EncodedStandardizer;

/// Mean and population standard deviation of each feature (as scikit-learn's
/// `StandardScaler`: a constant feature gets scale 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    /// Per-feature mean.
    pub mean: Vec<f64>,
    /// Per-feature scale (population standard deviation, or 1 if it is 0).
    pub scale: Vec<f64>,
}

impl Standardizer {
    /// Fits mean and scale to the rows of `x`.
    pub fn fit(x: &DMatrix<f64>) -> Self {
        let n = x.nrows() as f64;
        let (mean, scale) = x
            .column_iter()
            .map(|col| {
                let m = col.sum() / n;
                let var = col.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n;
                let s = var.sqrt();
                (m, if s > 0.0 && s.is_finite() { s } else { 1.0 })
            })
            .unzip();
        Self { mean, scale }
    }

    /// Robust centre and scale of the rows of `x`: per feature the median
    /// and the interquartile range / 1.349 (the standard deviation of a
    /// normal feature), at least `min_fraction` times the standard
    /// deviation; where the IQR is 0, [`Standardizer::fit`]'s mean and
    /// scale. Quantiles interpolate linearly (numpy's default). Outliers
    /// among the rows barely move the median and IQR.
    pub fn fit_robust(x: &DMatrix<f64>, min_fraction: f64) -> Self {
        let plain = Self::fit(x);
        let (mean, scale) = x
            .column_iter()
            .enumerate()
            .map(|(j, col)| {
                let mut v: Vec<f64> = col.iter().copied().collect();
                v.sort_by(f64::total_cmp);
                let q = |p: f64| {
                    let pos = p * (v.len() - 1) as f64;
                    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
                    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
                };
                let iqr = (q(0.75) - q(0.25)) / 1.349;
                if iqr > 0.0 && iqr.is_finite() {
                    (q(0.5), iqr.max(min_fraction * plain.scale[j]))
                } else {
                    (plain.mean[j], plain.scale[j])
                }
            })
            .unzip();
        Self { mean, scale }
    }

    /// `(x - mean) / scale`, row by row.
    pub fn apply(&self, x: &DMatrix<f64>) -> DMatrix<f64> {
        DMatrix::from_fn(x.nrows(), x.ncols(), |i, j| {
            (x[(i, j)] - self.mean[j]) / self.scale[j]
        })
    }

    /// The form the model encoder takes.
    pub fn encoded(&self) -> EncodedStandardizer<'_> {
        EncodedStandardizer {
            mean: &self.mean,
            scale: &self.scale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robust_standardizer_uses_median_and_iqr_with_its_floors() {
        // Column 0: 1..=9 and an outlier at 100; median 5.5, quartiles (numpy's
        // linear interpolation) 3.25 and 7.75. Column 1: constant IQR 0 -> mean
        // and std. Column 2: IQR 1 but std ~ 30, floored at a tenth of it.
        let rows: Vec<[f64; 3]> = (0..10)
            .map(|i| {
                let a = if i == 9 { 100.0 } else { (i + 1) as f64 };
                let c = if i == 0 { 100.0 } else { (i % 2) as f64 };
                [a, if i < 8 { 2.0 } else { 4.0 }, c]
            })
            .collect();
        let x = DMatrix::from_fn(10, 3, |i, j| rows[i][j]);
        let plain = Standardizer::fit(&x);
        let s = Standardizer::fit_robust(&x, 0.0);
        assert_eq!(s.mean[0], 5.5);
        assert!((s.scale[0] - 4.5 / 1.349).abs() < 1e-12);
        assert_eq!((s.mean[1], s.scale[1]), (plain.mean[1], plain.scale[1]));
        assert!((s.scale[2] - 1.0 / 1.349).abs() < 1e-12);
        let floored = Standardizer::fit_robust(&x, 0.1);
        assert_eq!(floored.scale[0], s.scale[0], "above the floor");
        assert_eq!(floored.scale[2], 0.1 * plain.scale[2]);
    }

    #[test]
    fn standardized_columns_have_zero_mean_unit_variance() {
        let x = DMatrix::from_row_slice(4, 2, &[1.0, 5.0, 2.0, 5.0, 3.0, 5.0, 6.0, 5.0]);
        let s = Standardizer::fit(&x);
        assert_eq!(s.mean, vec![3.0, 5.0]);
        assert_eq!(s.scale[1], 1.0, "constant column keeps scale 1");
        let z = s.apply(&x);
        let col = z.column(0);
        assert!(col.sum().abs() < 1e-12);
        assert!((col.iter().map(|v| v * v).sum::<f64>() / 4.0 - 1.0).abs() < 1e-12);
    }
}
