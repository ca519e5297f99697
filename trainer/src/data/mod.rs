//! Loading numeric training data from files.
//!
//! Supported formats, chosen by file extension (case-insensitive):
//!
//! * `.csv`, `.tsv` — values separated by commas, tabs or semicolons (the
//!   separator is found from the first records), with an optional header row,
//! * `.csv.gz`, `.tsv.gz` — the same, gzip-compressed,
//! * `.npy` — a NumPy array (1-D or 2-D; `f32`, `f64` or any 8–64-bit integer type),
//! * `.mat` — a MATLAB v5 file with a numeric matrix `X` (rows are points)
//!   and optionally a column `y` (the ODDS convention), whose columns are
//!   named `x0`..`x{d-1}` and `y`,
//! * `.npz` — a NumPy archive with the same `X` and optional `y` (as
//!   ADBench distributes its sets), named the same way.
//!
//! Every value must be a finite number; a label column can be split off and
//! columns can be dropped (see [`LoadOptions`]).

mod csv;
pub mod fetch;
pub mod idx;
pub mod images;
mod mat;
mod npy;
mod npz;
pub mod ts;

use std::fmt;
use std::path::{Path, PathBuf};

/// A numeric table loaded from a file: row-major `f64` values.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Feature column names (`x0`..`x{d-1}` when the file has no header, and for NPY).
    pub columns: Vec<String>,
    /// Number of rows (samples).
    pub rows: usize,
    /// Number of feature columns.
    pub cols: usize,
    /// `rows * cols` values, row-major.
    pub values: Vec<f64>,
    /// Values of the label column, if [`LoadOptions::label_column`] was given.
    pub labels: Option<Vec<f64>>,
}

impl Dataset {
    /// The feature values of row `i`.
    ///
    /// # Panics
    /// If `i >= self.rows`.
    pub fn row(&self, i: usize) -> &[f64] {
        assert!(i < self.rows, "row {i} out of range ({} rows)", self.rows);
        &self.values[i * self.cols..(i + 1) * self.cols]
    }

    /// All feature values converted to `f32`, row-major.
    pub fn to_f32(&self) -> Vec<f32> {
        self.values.iter().map(|&v| v as f32).collect()
    }

    /// A new dataset with only the rows `idx` (in that order; repeats allowed),
    /// labels included.
    ///
    /// # Panics
    /// If an index is `>= self.rows`.
    pub fn select_rows(&self, idx: &[usize]) -> Dataset {
        let mut values = Vec::with_capacity(idx.len() * self.cols);
        for &i in idx {
            values.extend_from_slice(self.row(i));
        }
        Dataset {
            columns: self.columns.clone(),
            rows: idx.len(),
            cols: self.cols,
            values,
            labels: self
                .labels
                .as_ref()
                .map(|l| idx.iter().map(|&i| l[i]).collect()),
        }
    }
}

/// Options for [`load`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Column returned as [`Dataset::labels`] and excluded from the features.
    pub label_column: Option<String>,
    /// Columns excluded from the features (their contents are not parsed).
    ///
    /// Columns are named by their header name; when the file has no header
    /// (and for NPY) by `x0`, `x1`, ... or by a 0-based index such as `"3"`.
    pub drop_columns: Vec<String>,
}

/// Why a data file could not be loaded.
///
/// Row numbers are 1-based and count data rows only (a header is not a data
/// row); CSV errors also give the 1-based line number in the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file extension is not one of the supported formats.
    #[error(
        "unsupported data format for {}: expected a file ending in .csv, .tsv (optionally .gz), .npy, .npz or .mat",
        path.display()
    )]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
    },
    /// There are no data rows, or no feature columns are left.
    #[error("{}: {reason}", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A CSV row has a different number of fields than the first row.
    #[error(
        "{}: data row {row} (line {line}) has {found} fields, expected {expected}",
        path.display()
    )]
    RaggedRow {
        /// The file.
        path: PathBuf,
        /// 1-based data row.
        row: usize,
        /// 1-based line in the file.
        line: u64,
        /// Number of fields in this row.
        found: usize,
        /// Number of fields in the first row.
        expected: usize,
    },
    /// A CSV field is not a number.
    #[error(
        "{}: data row {row} (line {line}), column '{column}': {text:?} is not a number{}",
        path.display(),
        DecimalCommaHint(text)
    )]
    NotANumber {
        /// The file.
        path: PathBuf,
        /// 1-based data row.
        row: usize,
        /// 1-based line in the file.
        line: u64,
        /// Column name.
        column: String,
        /// The offending text (trimmed).
        text: String,
    },
    /// A value is NaN or infinite.
    #[error(
        "{}: data row {row}{}, column '{column}': value {value} is not finite (NaN and Inf are not allowed)",
        path.display(),
        LineSuffix(*line)
    )]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// 1-based data row.
        row: usize,
        /// 1-based line in the file (CSV only).
        line: Option<u64>,
        /// Column name.
        column: String,
        /// The value.
        value: f64,
    },
    /// A label or drop column does not exist.
    #[error(
        "{}: {role} column '{name}' not found; available columns: {}",
        path.display(),
        available.join(", ")
    )]
    ColumnNotFound {
        /// The file.
        path: PathBuf,
        /// `"label"` or `"drop"`.
        role: &'static str,
        /// The requested column.
        name: String,
        /// The columns the file has.
        available: Vec<String>,
    },
    /// The CSV could not be parsed (other than the cases above).
    #[error("{}: malformed CSV: {reason}", path.display())]
    MalformedCsv {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The NPY file is invalid or holds an unsupported array.
    #[error("{}: malformed NPY file: {reason}", path.display())]
    MalformedNpy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The NPZ archive is invalid or lacks the expected arrays.
    #[error("{}: malformed NPZ file: {reason}", path.display())]
    MalformedNpz {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The MATLAB file is invalid or lacks the expected arrays.
    #[error("{}: malformed MATLAB file: {reason}", path.display())]
    MalformedMat {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The IDX file is invalid or holds an unsupported array.
    #[error("{}: malformed IDX file: {reason}", path.display())]
    MalformedIdx {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An images file and its labels file disagree (number of rows).
    #[error("{} and {} do not match: {reason}", path.display(), other.display())]
    Mismatch {
        /// The first file (images).
        path: PathBuf,
        /// The second file (labels).
        other: PathBuf,
        /// What differs.
        reason: String,
    },
    /// A class label is not an integer in `0..=u32::MAX`.
    #[error(
        "{}: data row {row}: label {value} is not a whole number in 0..={max}",
        path.display(),
        max = u32::MAX
    )]
    BadLabel {
        /// The file.
        path: PathBuf,
        /// 1-based data row.
        row: usize,
        /// The value.
        value: f64,
    },
    /// The MNIST files are not in the data directory.
    #[error(
        "MNIST is not in {}: {} missing; run `tinygen data mnist{dir_arg}` to download it, \
         or `tinygen data mnist --from DIR{dir_arg}` to import a local copy",
        dir.display(),
        missing.join(", ")
    )]
    MnistMissing {
        /// The directory searched.
        dir: PathBuf,
        /// The absent files (gzipped names; the raw names are accepted too).
        missing: Vec<String>,
        /// ` --dir DIR` when `dir` is not the default, else empty.
        dir_arg: String,
    },
    /// A data set spec is neither a known name nor an existing file.
    #[error(
        "unknown data set '{spec}': expected digits, mnist, or the path of an IDX \
         (…-idx3-ubyte[.gz]), CSV, CSV.gz or NPY file"
    )]
    UnknownDataset {
        /// What was asked for.
        spec: String,
    },
}

/// Formats `Some(line)` as `" (line N)"`.
struct LineSuffix(Option<u64>);

impl fmt::Display for LineSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, " (line {line})"),
            None => Ok(()),
        }
    }
}

/// After a field that would be a number with a point for its comma, says
/// that the decimal separator is the point.
struct DecimalCommaHint<'a>(&'a str);

impl fmt::Display for DecimalCommaHint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.contains(',') && self.0.replacen(',', ".", 1).parse::<f64>().is_ok() {
            write!(f, " (the decimal separator must be '.')")
        } else {
            Ok(())
        }
    }
}

/// Loads a numeric table from `path`; the format is chosen by extension
/// (`.csv`, `.tsv`, either gzipped, `.npy`, `.npz`, `.mat`). CSV is streamed; the binary formats
/// are read whole, then parsed as by [`parse`].
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    match Format::of(path)? {
        Format::Csv => csv::load(path, false, opts),
        Format::CsvGz => csv::load(path, true, opts),
        Format::Npy | Format::Npz | Format::Mat => {
            let bytes = std::fs::read(path).map_err(|source| DataError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            parse(path, &bytes, opts)
        }
    }
}

/// Parses the contents of a data file held in memory, exactly as [`load`]
/// reads the file: the format is chosen by `path`'s extension, and `path`
/// is otherwise only used in error messages.
pub fn parse(path: &Path, bytes: &[u8], opts: &LoadOptions) -> Result<Dataset, DataError> {
    match Format::of(path)? {
        Format::Csv => csv::parse(path, bytes, opts),
        Format::CsvGz => csv::parse(path, flate2::read::MultiGzDecoder::new(bytes), opts),
        Format::Npy => npy::parse(path, bytes, opts),
        Format::Npz => npz::parse(path, bytes, opts),
        Format::Mat => mat::parse(path, bytes, opts),
    }
}

/// The data formats [`load`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    CsvGz,
    Npy,
    Npz,
    Mat,
}

impl Format {
    /// The format a file name's extension (case-insensitive) names.
    fn of(path: &Path) -> Result<Self, DataError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if name.ends_with(".csv") || name.ends_with(".tsv") {
            Ok(Format::Csv)
        } else if name.ends_with(".csv.gz") || name.ends_with(".tsv.gz") {
            Ok(Format::CsvGz)
        } else if name.ends_with(".npy") {
            Ok(Format::Npy)
        } else if name.ends_with(".npz") {
            Ok(Format::Npz)
        } else if name.ends_with(".mat") {
            Ok(Format::Mat)
        } else {
            Err(DataError::UnsupportedFormat {
                path: path.to_path_buf(),
            })
        }
    }
}

/// What happens to one column of the source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Feature,
    Label,
    Drop,
}

/// Decides the [`Role`] of each source column and returns it together with the
/// feature column names.
///
/// With `by_index`, a name that matches no column may be a 0-based index.
fn assign_roles(
    path: &Path,
    names: &[String],
    by_index: bool,
    opts: &LoadOptions,
) -> Result<(Vec<Role>, Vec<String>), DataError> {
    let find = |wanted: &str, role: &'static str| {
        let wanted = wanted.trim();
        names
            .iter()
            .position(|n| n == wanted)
            .or_else(|| {
                wanted
                    .parse::<usize>()
                    .ok()
                    .filter(|&i| by_index && i < names.len())
            })
            .ok_or_else(|| DataError::ColumnNotFound {
                path: path.to_path_buf(),
                role,
                name: wanted.to_string(),
                available: names.to_vec(),
            })
    };
    let mut roles = vec![Role::Feature; names.len()];
    for d in &opts.drop_columns {
        roles[find(d, "drop")?] = Role::Drop;
    }
    if let Some(label) = &opts.label_column {
        roles[find(label, "label")?] = Role::Label;
    }
    let features: Vec<String> = names
        .iter()
        .zip(&roles)
        .filter(|(_, r)| **r == Role::Feature)
        .map(|(n, _)| n.clone())
        .collect();
    if features.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            reason: format!(
                "no feature columns left after removing label/dropped columns (file has: {})",
                names.join(", ")
            ),
        });
    }
    Ok((roles, features))
}

/// Builds a dataset from an in-memory numeric array (NPY, MATLAB): the
/// columns `names`, `rows` rows, `value(i, j)` the entry of row `i` and
/// column `j`. Applies the label/drop options and rejects non-finite values.
fn from_array(
    path: &Path,
    names: &[String],
    rows: usize,
    empty_reason: &str,
    opts: &LoadOptions,
    value: impl Fn(usize, usize) -> f64,
) -> Result<Dataset, DataError> {
    let (roles, columns) = assign_roles(path, names, true, opts)?;
    if rows == 0 {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            reason: empty_reason.to_string(),
        });
    }
    let mut values = Vec::with_capacity(rows * columns.len());
    let mut labels = roles
        .contains(&Role::Label)
        .then(|| Vec::with_capacity(rows));
    for i in 0..rows {
        for (j, role) in roles.iter().enumerate() {
            if *role == Role::Drop {
                continue;
            }
            let value = value(i, j);
            if !value.is_finite() {
                return Err(DataError::NonFinite {
                    path: path.to_path_buf(),
                    row: i + 1,
                    line: None,
                    column: names[j].clone(),
                    value,
                });
            }
            match (role, &mut labels) {
                (Role::Label, Some(labels)) => labels.push(value),
                _ => values.push(value),
            }
        }
    }
    Ok(Dataset {
        rows,
        cols: columns.len(),
        columns,
        values,
        labels,
    })
}

/// Default column names `x0`..`x{n-1}`.
fn default_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("x{i}")).collect()
}

/// What the readers' tests share.
#[cfg(test)]
mod test_files {
    use std::path::{Path, PathBuf};

    use super::LoadOptions;

    /// A file of `trainer/tests/fixtures/`.
    pub(super) fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    /// `y` as the label column (the ODDS and ADBench convention).
    pub(super) fn label_y() -> LoadOptions {
        LoadOptions {
            label_column: Some("y".into()),
            drop_columns: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Dataset {
        Dataset {
            columns: vec!["a".into(), "b".into()],
            rows: 3,
            cols: 2,
            values: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            labels: Some(vec![10.0, 20.0, 30.0]),
        }
    }

    #[test]
    fn row_and_to_f32() {
        let d = sample();
        assert_eq!(d.row(1), &[3.0, 4.0]);
        assert_eq!(d.to_f32(), vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn select_rows_keeps_order_and_labels() {
        let s = sample().select_rows(&[2, 0, 2]);
        assert_eq!(s.rows, 3);
        assert_eq!(s.cols, 2);
        assert_eq!(s.values, vec![5.0, 6.0, 1.0, 2.0, 5.0, 6.0]);
        assert_eq!(s.labels, Some(vec![30.0, 10.0, 30.0]));
        assert_eq!(s.columns, sample().columns);
    }

    #[test]
    fn unsupported_extension() {
        let err = load(Path::new("data/train.parquet"), &LoadOptions::default()).unwrap_err();
        assert!(
            matches!(err, DataError::UnsupportedFormat { .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("train.parquet"), "{msg}");
        assert!(msg.contains(".tsv") && msg.contains(".npy"), "{msg}");
    }

    #[test]
    fn missing_file_is_io_error() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["missing.csv", "missing.csv.gz", "missing.npy"] {
            let path = dir.path().join(name);
            let err = load(&path, &LoadOptions::default()).unwrap_err();
            assert!(matches!(err, DataError::Io { .. }), "{err:?}");
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn extension_is_case_insensitive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("UPPER.CSV");
        std::fs::write(&path, "1,2\n").unwrap();
        let d = load(&path, &LoadOptions::default()).unwrap();
        assert_eq!(d.values, vec![1.0, 2.0]);
    }
}
