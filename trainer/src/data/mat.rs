//! MATLAB v5 `.mat` files (as ODDS distributes its data sets): the numeric
//! matrix `X` (n x d) and, if present, the column `y` (n x 1), read with the
//! `matfile` crate. The columns are named `x0`..`x{d-1}` and `y`, so
//! `--label-column y` splits off the ODDS outlier labels.

use std::path::Path;

use matfile::{MatFile, NumericData};

use super::{DataError, Dataset, LoadOptions, default_names, from_array};

/// Real parts as f64, or `None` for complex data.
fn real_values(data: &NumericData) -> Option<Vec<f64>> {
    macro_rules! real {
        ($real:expr, $imag:expr) => {
            $imag
                .is_none()
                .then(|| $real.iter().map(|&v| v as f64).collect())
        };
    }
    match data {
        NumericData::Int8 { real, imag } => real!(real, imag),
        NumericData::UInt8 { real, imag } => real!(real, imag),
        NumericData::Int16 { real, imag } => real!(real, imag),
        NumericData::UInt16 { real, imag } => real!(real, imag),
        NumericData::Int32 { real, imag } => real!(real, imag),
        NumericData::UInt32 { real, imag } => real!(real, imag),
        NumericData::Int64 { real, imag } => real!(real, imag),
        NumericData::UInt64 { real, imag } => real!(real, imag),
        NumericData::Single { real, imag } => real!(real, imag),
        NumericData::Double { real, imag } => real!(real, imag),
    }
}

/// Loads a MATLAB v5 `.mat` file.
pub(super) fn load(path: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &bytes, opts)
}

/// Parses the bytes of a MATLAB v5 file; `path` is only used in error messages.
pub(super) fn parse(path: &Path, bytes: &[u8], opts: &LoadOptions) -> Result<Dataset, DataError> {
    let malformed = |reason: String| DataError::MalformedMat {
        path: path.to_path_buf(),
        reason,
    };
    let mat = MatFile::parse(bytes)
        .map_err(|e| malformed(format!("{e} (only MATLAB v5 files are supported)")))?;
    let names: Vec<&str> = mat.arrays().iter().map(|a| a.name()).collect();
    let x = mat.find_by_name("X").ok_or_else(|| {
        malformed(format!(
            "no numeric matrix named X (arrays: {})",
            names.join(", ")
        ))
    })?;
    let (rows, cols) = match x.size().as_slice() {
        [r, c] => (*r, *c),
        size => return Err(malformed(format!("X has shape {size:?}, expected 2-D"))),
    };
    let xs = real_values(x.data()).ok_or_else(|| malformed("X is complex".into()))?;
    let ys = match mat.find_by_name("y") {
        Some(y) => {
            if y.size().iter().product::<usize>() != rows {
                return Err(malformed(format!(
                    "y has shape {:?} but X has {rows} rows",
                    y.size()
                )));
            }
            Some(real_values(y.data()).ok_or_else(|| malformed("y is complex".into()))?)
        }
        None => None,
    };
    let mut names = default_names(cols);
    if ys.is_some() {
        names.push("y".into());
    }
    // MATLAB stores matrices column by column.
    from_array(
        path,
        &names,
        rows,
        "X has no rows",
        opts,
        |i, j| match &ys {
            Some(y) if j == cols => y[i],
            _ => xs[j * rows + i],
        },
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    /// Files written by scipy.io.savemat (format 5); see tests/fixtures/README.md.
    #[test]
    fn reads_x_and_y_in_row_order() {
        let opts = LoadOptions {
            label_column: Some("y".into()),
            drop_columns: vec![],
        };
        let d = load(&fixture("small.mat"), &opts).unwrap();
        assert_eq!((d.rows, d.cols), (3, 2));
        assert_eq!(d.values, vec![1.5, -2.0, 0.25, 3.0, 7.0, 8.5]);
        assert_eq!(d.labels, Some(vec![0.0, 1.0, 0.0]));
        let d = load(&fixture("int16_no_labels.mat"), &LoadOptions::default()).unwrap();
        assert_eq!(d.values, vec![1.0, 2.0, 3.0, 4.0]);
        let missing = LoadOptions {
            label_column: Some("y".into()),
            drop_columns: vec![],
        };
        assert!(matches!(
            load(&fixture("int16_no_labels.mat"), &missing),
            Err(DataError::ColumnNotFound { .. })
        ));
    }

    #[test]
    fn rejects_files_that_are_not_matlab() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.mat");
        std::fs::write(&path, b"not a mat file at all").unwrap();
        let err = load(&path, &LoadOptions::default()).unwrap_err();
        assert!(err.to_string().contains("malformed MATLAB file"), "{err}");
    }
}
