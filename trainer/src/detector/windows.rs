//! A detector's inputs from time series: consecutive windows of a series
//! (a table's rows) or of each series of a `.ts` collection, flattened
//! time-major, with their labels.

use anyhow::ensure;

use crate::data::Dataset;
use crate::data::ts::SeriesSet;

/// Consecutive windows of `length` rows every `stride` rows of a time series
/// (rows = samples, columns = channels), each flattened time-major, with the
/// window's label (the largest label inside it) when the set has labels.
pub fn windows(
    set: &Dataset,
    length: usize,
    stride: usize,
) -> anyhow::Result<(Vec<f32>, Option<Vec<f64>>)> {
    check_window(length, stride)?;
    ensure!(
        set.rows >= length,
        "the series has {} rows, shorter than one window of {length}",
        set.rows
    );
    let values = set.to_f32();
    let c = set.cols;
    let starts: Vec<usize> = (0..=set.rows - length).step_by(stride).collect();
    let points = starts
        .iter()
        .flat_map(|&s| values[s * c..(s + length) * c].iter().copied())
        .collect();
    let labels = set.labels.as_ref().map(|l| {
        starts
            .iter()
            .map(|&s| {
                l[s..s + length]
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect()
    });
    Ok((points, labels))
}

/// Windows of `length` steps every `stride` steps inside each series (never
/// across two), flattened time-major, labelled 0 when the series' class is
/// one of `normal` (or when `normal` is empty) and 1 otherwise.
pub fn series_windows(
    set: &SeriesSet,
    length: usize,
    stride: usize,
    normal: &[String],
) -> anyhow::Result<(Vec<f32>, Vec<f64>)> {
    check_window(length, stride)?;
    ensure!(
        length <= set.length,
        "windows of {length} are longer than the series ({})",
        set.length
    );
    let c = set.channels;
    let (mut points, mut labels) = (Vec::new(), Vec::new());
    for (i, class) in set.classes.iter().enumerate() {
        let series = set.series(i);
        let label = if normal.is_empty() || normal.contains(class) {
            0.0
        } else {
            1.0
        };
        for start in (0..=set.length - length).step_by(stride) {
            points.extend_from_slice(&series[start * c..(start + length) * c]);
            labels.push(label);
        }
    }
    Ok((points, labels))
}

/// Fails unless the window length and the stride are positive.
fn check_window(length: usize, stride: usize) -> anyhow::Result<()> {
    ensure!(
        length > 0 && stride > 0,
        "--window and --stride must be positive"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_time_major_with_their_largest_label() {
        let set = Dataset {
            columns: vec!["a".into(), "b".into()],
            rows: 5,
            cols: 2,
            values: (0..10).map(f64::from).collect(),
            labels: Some(vec![0.0, 0.0, 1.0, 0.0, 0.0]),
        };
        let (points, labels) = windows(&set, 2, 2).unwrap();
        assert_eq!(points, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(labels, Some(vec![0.0, 1.0]));
        assert!(windows(&set, 6, 1).is_err());
    }
}
