//! MATLAB v5 `.mat` files (as ODDS distributes its data sets): the numeric
//! matrix `X` (n x d) and, if present, the column `y` (n x 1), read with the
//! `matfile` crate. The columns are named `x0`..`x{d-1}` and `y`, so
//! `--label-column y` splits off the ODDS outlier labels.

use std::io::Read;
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

/// Parses the bytes of a MATLAB v5 file; `path` is only used in error messages.
pub(super) fn parse(path: &Path, bytes: &[u8], opts: &LoadOptions) -> Result<Dataset, DataError> {
    let malformed = |reason: String| DataError::MalformedMat {
        path: path.to_path_buf(),
        reason,
    };
    check_sizes(bytes).map_err(malformed)?;
    // matfile 0.5 does unchecked arithmetic on sizes that `check_sizes`
    // cannot all foresee (fuzzing finding F4): a panic inside it is a
    // malformed file, not a crash.
    let mat = std::panic::catch_unwind(|| MatFile::parse(bytes))
        .map_err(|_| malformed("its sizes overflow the MATLAB parser".into()))?
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
    // The shape must match the values present before anything is sized by it.
    if rows.checked_mul(cols) != Some(xs.len()) {
        return Err(malformed(format!(
            "X has shape {rows}x{cols} but holds {} values",
            xs.len()
        )));
    }
    if rows == 0 {
        // Before naming the columns: with no rows, `cols` is not bounded by the data.
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            reason: "X has no rows".to_string(),
        });
    }
    let ys = match mat.find_by_name("y") {
        Some(y) => {
            let ys = real_values(y.data()).ok_or_else(|| malformed("y is complex".into()))?;
            let size = y.size().iter().try_fold(1usize, |n, &d| n.checked_mul(d));
            if size != Some(rows) || ys.len() != rows {
                return Err(malformed(format!(
                    "y has shape {:?} but X has {rows} rows",
                    y.size()
                )));
            }
            Some(ys)
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

/// Largest data element size matfile 0.5 can round up to a multiple of 8
/// in `u32` arithmetic.
const MAX_ELEMENT_BYTES: u32 = u32::MAX - 7;
/// `miMATRIX` and `miCOMPRESSED`, the data types of top-level elements.
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;

/// Checks the sizes that matfile 0.5 does unchecked arithmetic on, before
/// it parses the file: it rounds every data element's byte size up to a
/// multiple of 8 in `u32`, and multiplies a matrix's `i32` dimensions (and
/// converts negative ones to huge sizes). With overflow checks (debug
/// builds) those panic; without, the wrapped values mislead the checks
/// after them. Only what could overflow is checked here; anything else
/// malformed is left to matfile to report.
fn check_sizes(bytes: &[u8]) -> Result<(), String> {
    let big_endian = match bytes.get(126..128) {
        Some(b"MI") => true,
        Some(b"IM") => false,
        _ => return Ok(()),
    };
    check_elements(&bytes[128..], big_endian, true)
}

/// Checks a sequence of data elements; `top` if they are a file's (or a
/// compressed element's) top-level elements, where matrices are parsed.
fn check_elements(mut rest: &[u8], big_endian: bool, top: bool) -> Result<(), String> {
    while let Some((data_type, body, after)) = next_element(rest, big_endian)? {
        match data_type {
            MI_MATRIX if top => check_matrix(body, big_endian)?,
            MI_COMPRESSED if top => {
                // MATLAB compresses each variable once; never nested.
                let mut inflated = Vec::new();
                if flate2::read::ZlibDecoder::new(body)
                    .read_to_end(&mut inflated)
                    .is_ok()
                {
                    if let Some((MI_COMPRESSED, _, _)) = next_element(&inflated, big_endian)? {
                        return Err("nested compressed data elements".to_string());
                    }
                    check_elements(&inflated, big_endian, true)?;
                }
            }
            _ => {}
        }
        rest = after;
    }
    Ok(())
}

/// A data element: its type, its data, and the bytes after its padding.
type Element<'a> = (u32, &'a [u8], &'a [u8]);

/// Splits off the next data element. `None` at the end or for a truncated
/// element (which matfile reports).
fn next_element(rest: &[u8], big_endian: bool) -> Result<Option<Element<'_>>, String> {
    let word = |at: usize| {
        let b: [u8; 4] = rest.get(at..at + 4)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let Some(first) = word(0) else {
        return Ok(None);
    };
    if first >> 16 != 0 {
        // Small data element: type and size in one word, data in the next.
        let size = (first >> 16) as usize;
        let body = rest.get(4..4 + size.min(4)).unwrap_or(&[]);
        return Ok(Some((first & 0xFFFF, body, rest.get(8..).unwrap_or(&[]))));
    }
    let Some(size) = word(4) else {
        return Ok(None);
    };
    if size > MAX_ELEMENT_BYTES {
        return Err(format!("a data element claims {size} bytes"));
    }
    let Some(body) = rest.get(8..8 + size as usize) else {
        return Ok(None);
    };
    let padded = if first == MI_COMPRESSED {
        size as usize
    } else {
        (size as usize).next_multiple_of(8)
    };
    Ok(Some((first, body, rest.get(8 + padded..).unwrap_or(&[]))))
}

/// Checks a matrix's subelements: every size, and the dimensions (the
/// second subelement, `i32` values) for being non-negative with a product
/// that fits an `i32`.
fn check_matrix(body: &[u8], big_endian: bool) -> Result<(), String> {
    let Some((_, _, rest)) = next_element(body, big_endian)? else {
        return Ok(()); // array flags
    };
    let Some((_, dims, rest)) = next_element(rest, big_endian)? else {
        return Ok(());
    };
    let mut product: i32 = 1;
    for d in dims.chunks_exact(4) {
        let d: [u8; 4] = d.try_into().unwrap_or_default();
        let d = if big_endian {
            i32::from_be_bytes(d)
        } else {
            i32::from_le_bytes(d)
        };
        product = product
            .checked_mul(d)
            .filter(|_| d >= 0)
            .ok_or_else(|| format!("matrix dimension {d} is negative or too large"))?;
    }
    check_elements(rest, big_endian, false)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::load;
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

    /// A little-endian MATLAB v5 file holding `elements`.
    fn mat_file(elements: &[u8]) -> Vec<u8> {
        let mut out = b"MATLAB 5.0 MAT-file, written by hand".to_vec();
        out.resize(124, b' ');
        out[116..124].fill(0);
        out.extend_from_slice(&0x0100u16.to_le_bytes());
        out.extend_from_slice(b"IM");
        out.extend_from_slice(elements);
        out
    }

    /// A data element (tag, data, padding to 8 bytes).
    fn element(data_type: u32, data: &[u8]) -> Vec<u8> {
        let mut out = data_type.to_le_bytes().to_vec();
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(8), 0);
        out
    }

    /// A double matrix `name` with the given dimensions and values.
    fn matrix(name: &str, dims: &[i32], values: &[f64]) -> Vec<u8> {
        let flags: Vec<u8> = [6u32, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let dims: Vec<u8> = dims.iter().flat_map(|v| v.to_le_bytes()).collect();
        let values: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut body = element(6, &flags);
        body.extend(element(5, &dims));
        body.extend(element(1, name.as_bytes()));
        body.extend(element(9, &values));
        element(MI_MATRIX, &body)
    }

    fn parse_bytes(bytes: &[u8]) -> Result<Dataset, DataError> {
        parse(Path::new("t.mat"), bytes, &LoadOptions::default())
    }

    #[test]
    fn reads_a_hand_written_file() {
        let d = parse_bytes(&mat_file(&matrix("X", &[2, 1], &[1.0, 2.0]))).unwrap();
        assert_eq!((d.rows, d.cols, d.values), (2, 1, vec![1.0, 2.0]));
    }

    /// Fuzzer findings (see FUZZING.md): sizes that matfile 0.5 computes
    /// with overflowing arithmetic are rejected before it parses the file.
    #[test]
    fn rejects_dimensions_whose_product_overflows() {
        // 65536 x 65536 wraps to 0 elements in i32, so matfile would accept
        // no values for 2^32 of them.
        let err = parse_bytes(&mat_file(&matrix("X", &[65536, 65536], &[]))).unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
        // -1 x -1 multiplies to 1 and converts to a size of usize::MAX.
        let err = parse_bytes(&mat_file(&matrix("X", &[-1, -1], &[1.0]))).unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
    }

    #[test]
    fn rejects_an_element_size_that_cannot_be_padded() {
        let mut bytes = mat_file(&element(MI_MATRIX, &[0; 8]));
        bytes[132..136].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = parse_bytes(&bytes).unwrap_err();
        assert!(err.to_string().contains("claims 4294967295 bytes"), "{err}");
    }

    #[test]
    fn rejects_nested_compression() {
        let zlib = |data: &[u8]| {
            use std::io::Write;
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(data).unwrap();
            z.finish().unwrap()
        };
        let inner = element(MI_COMPRESSED, &zlib(&matrix("X", &[1, 1], &[1.0])));
        let bytes = mat_file(&element(MI_COMPRESSED, &zlib(&inner)));
        let err = parse_bytes(&bytes).unwrap_err();
        assert!(err.to_string().contains("nested"), "{err}");
    }

    /// No rows: the column count is not bounded by the data, so it must not
    /// size anything (this once named a billion columns).
    #[test]
    fn rejects_no_rows_before_naming_columns() {
        let bytes = mat_file(&matrix("X", &[0, 1_000_000_000], &[]));
        let err = parse_bytes(&bytes).unwrap_err();
        assert!(matches!(err, DataError::Empty { .. }), "{err:?}");
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
