//! Multichannel time-series collections in the sktime/aeon `.ts` text format
//! (optionally gzipped): header lines starting with `@`, then one series per
//! line, channels separated by `:`, values by `,`, the class label last.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail, ensure};

/// Equal-length multichannel series with a class label each.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSet {
    /// Values per time step.
    pub channels: usize,
    /// Time steps per series.
    pub length: usize,
    /// All series, each time-major (`[t * channels + c]`), one after another.
    pub values: Vec<f32>,
    /// The class of each series.
    pub classes: Vec<String>,
}

impl SeriesSet {
    /// Number of series.
    pub fn len(&self) -> usize {
        self.classes.len()
    }

    /// Whether there are no series.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// Series `i`, time-major.
    pub fn series(&self, i: usize) -> &[f32] {
        let n = self.length * self.channels;
        &self.values[i * n..(i + 1) * n]
    }
}

/// Whether a path names a `.ts` or `.ts.gz` file.
pub fn is_ts(path: &Path) -> bool {
    let name = path.to_string_lossy().to_lowercase();
    name.ends_with(".ts") || name.ends_with(".ts.gz")
}

/// Reads a `.ts` file (gunzipped if its name ends in `.gz`) of equal-length
/// series with class labels.
pub fn load_ts(path: &Path) -> anyhow::Result<SeriesSet> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    parse_ts(path, &bytes)
}

/// Parses the contents of a `.ts` file held in memory, as [`load_ts`] reads
/// the file: gunzipped if `path` ends in `.gz`; `path` is otherwise only
/// used in error messages.
pub fn parse_ts(path: &Path, mut bytes: &[u8]) -> anyhow::Result<SeriesSet> {
    let mut text = String::new();
    if path.to_string_lossy().to_lowercase().ends_with(".gz") {
        flate2::read::GzDecoder::new(bytes).read_to_string(&mut text)
    } else {
        bytes.read_to_string(&mut text)
    }
    .with_context(|| format!("cannot read {}", path.display()))?;

    let mut in_data = false;
    let (mut channels, mut length) = (0, 0);
    let (mut values, mut classes) = (Vec::new(), Vec::new());
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        let at = |msg: String| format!("{} line {}: {msg}", path.display(), n + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !in_data {
            in_data = line.eq_ignore_ascii_case("@data");
            continue;
        }
        let mut parts: Vec<&str> = line.split(':').collect();
        let class = parts.pop().unwrap_or_default().trim().to_string();
        ensure!(
            !parts.is_empty(),
            at("no channels before the class label".into())
        );
        let mut series: Vec<Vec<f32>> = Vec::with_capacity(parts.len());
        for (c, part) in parts.iter().enumerate() {
            let channel = part
                .split(',')
                .map(|v| {
                    let x: f32 = v.trim().parse().map_err(|_| {
                        anyhow::anyhow!(at(format!("channel {c}: {v:?} is not a number")))
                    })?;
                    ensure!(x.is_finite(), at(format!("channel {c}: {v} is not finite")));
                    Ok(x)
                })
                .collect::<anyhow::Result<Vec<f32>>>()?;
            series.push(channel);
        }
        if classes.is_empty() {
            (channels, length) = (series.len(), series[0].len());
        }
        ensure!(
            series.len() == channels && series.iter().all(|s| s.len() == length),
            at(format!(
                "expected {channels} channels of {length} values (series must have equal length)"
            ))
        );
        for t in 0..length {
            values.extend(series.iter().map(|s| s[t]));
        }
        classes.push(class);
    }
    if classes.is_empty() {
        bail!("{}: no series after @data", path.display());
    }
    Ok(SeriesSet {
        channels,
        length,
        values,
        classes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_channels_time_major_and_rejects_ragged_series() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.ts");
        std::fs::write(
            &path,
            "# comment\n@problemName x\n@data\n1,2,3:4,5,6:a\n7,8,9:1,1,1:b\n",
        )
        .unwrap();
        let set = load_ts(&path).unwrap();
        assert_eq!((set.channels, set.length, set.len()), (2, 3, 2));
        assert_eq!(set.series(0), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(set.classes, vec!["a", "b"]);
        std::fs::write(&path, "@data\n1,2,3:4,5:a\n").unwrap();
        assert!(
            load_ts(&path)
                .unwrap_err()
                .to_string()
                .contains("equal length")
        );
        std::fs::write(&path, "@data\n1,x:4,5:a\n").unwrap();
        assert!(
            load_ts(&path)
                .unwrap_err()
                .to_string()
                .contains("not a number")
        );
    }
}
