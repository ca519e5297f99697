/// The rows stored once where they overlap: one series in which each row
/// starts where its head repeats the series' tail so far (consecutive
/// windows that share samples share storage), and each row's start in it.
/// Shared by the Rust firmware's build script and the C firmware's case
/// writer (`include!`d by both).
pub fn overlapped<T: PartialEq>(rows: &[Vec<T>]) -> (Vec<&T>, Vec<usize>) {
    let mut series: Vec<&T> = Vec::new();
    let mut starts = Vec::with_capacity(rows.len());
    for row in rows {
        let shared = (1..=row.len().min(series.len()))
            .rev()
            .find(|&k| {
                series[series.len() - k..]
                    .iter()
                    .zip(&row[..k])
                    .all(|(a, b)| *a == b)
            })
            .unwrap_or(0);
        starts.push(series.len() - shared);
        series.extend(&row[shared..]);
    }
    (series, starts)
}
