//! NPY loading: 1-D (one column) or 2-D arrays of `f32`, `f64` or integers,
//! in C or Fortran order, any byte order. Columns are named `x0`, `x1`, ...

use std::path::Path;

use npyz::{DType, NpyFile, NpyHeader, Order, TypeChar};

use super::{DataError, Dataset, LoadOptions, default_names, from_array};

/// Parses the bytes of a `.npy` file; `path` is only used in error messages.
pub(super) fn parse(path: &Path, bytes: &[u8], opts: &LoadOptions) -> Result<Dataset, DataError> {
    let array = array(bytes).map_err(|reason| DataError::MalformedNpy {
        path: path.to_path_buf(),
        reason,
    })?;
    if array.rows == 0 {
        // Before naming the columns: with no rows, `cols` is not bounded by the data.
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            reason: NO_ROWS.to_string(),
        });
    }
    from_array(
        path,
        &default_names(array.cols),
        array.rows,
        NO_ROWS,
        opts,
        |i, j| array.get(i, j),
    )
}

/// Why an array with no rows gives no dataset.
const NO_ROWS: &str = "no data rows (array has 0 rows)";

/// A 1-D (one column) or 2-D numeric array, its values as f64 in file order.
pub(super) struct Array {
    /// Rows (the length of a 1-D array).
    pub rows: usize,
    /// Columns (1 for a 1-D array).
    pub cols: usize,
    /// Dimensions as the header gives them (1 or 2 of them).
    pub shape: Vec<u64>,
    flat: Vec<f64>,
    order: Order,
}

impl Array {
    /// The value in row `i` and column `j`.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        match self.order {
            Order::C => self.flat[i * self.cols + j],
            Order::Fortran => self.flat[j * self.rows + i],
        }
    }
}

/// Reads the array of a `.npy` file's bytes (also an `.npz` archive's
/// members); the size of the data is checked against the shape before
/// anything is read.
pub(super) fn array(bytes: &[u8]) -> Result<Array, String> {
    if let Some((claimed, present)) = header_overruns(bytes) {
        return Err(format!(
            "header claims {claimed} bytes, only {present} follow"
        ));
    }
    if header_nesting(bytes) > MAX_HEADER_NESTING {
        return Err(format!(
            "header nests brackets more than {MAX_HEADER_NESTING} deep"
        ));
    }
    if shape_overflows(bytes) {
        return Err("array shape is too large".to_string());
    }
    let mut data: &[u8] = bytes;
    let header = NpyHeader::from_reader(&mut data).map_err(|e| format!("bad header: {e}"))?;
    let shape = header.shape().to_vec();
    let (rows, cols) = match *shape {
        [n] => (n, 1),
        [r, c] => (r, c),
        ref shape => {
            return Err(format!(
                "expected a 1-D or 2-D array, got {}-D array of shape {shape:?}",
                shape.len()
            ));
        }
    };
    let DType::Plain(ty) = header.dtype() else {
        return Err(format!(
            "unsupported dtype {}; expected f32, f64 or an integer type",
            header.dtype().descr()
        ));
    };
    let item_size = match (ty.type_char(), ty.size_field()) {
        (TypeChar::Float, 4 | 8) | (TypeChar::Int | TypeChar::Uint, 1 | 2 | 4 | 8) => {
            ty.size_field()
        }
        _ => {
            return Err(format!(
                "unsupported dtype '{ty}'; expected f32, f64 or an integer type"
            ));
        }
    };

    // Check the size before reading, so a bogus shape cannot trigger a huge allocation.
    let expected_bytes = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(item_size))
        .ok_or_else(|| format!("shape ({rows}, {cols}) is too large"))?;
    if data.len() as u64 != expected_bytes {
        return Err(format!(
            "shape ({rows}, {cols}) of '{ty}' needs {expected_bytes} data bytes, file has {}",
            data.len()
        ));
    }
    let (rows, cols) = (rows as usize, cols as usize); // fits: the data is in memory
    let order = header.order();
    let file = NpyFile::with_header(header, data);
    let flat = match (ty.type_char(), item_size) {
        (TypeChar::Float, 4) => read(file, |v: f32| v as f64),
        (TypeChar::Float, _) => read(file, |v: f64| v),
        (TypeChar::Int, 1) => read(file, |v: i8| v as f64),
        (TypeChar::Int, 2) => read(file, |v: i16| v as f64),
        (TypeChar::Int, 4) => read(file, |v: i32| v as f64),
        (TypeChar::Int, _) => read(file, |v: i64| v as f64),
        (TypeChar::Uint, 1) => read(file, |v: u8| v as f64),
        (TypeChar::Uint, 2) => read(file, |v: u16| v as f64),
        (TypeChar::Uint, 4) => read(file, |v: u32| v as f64),
        (_, _) => read(file, |v: u64| v as f64),
    }?;
    Ok(Array {
        rows,
        cols,
        shape,
        flat,
        order,
    })
}

/// The header length a file claims and the bytes after the length field,
/// if the claim is larger: npyz allocates the claimed length (up to 4 GiB
/// in format versions 2 and 3) before reading, so such headers are rejected
/// first. Anything else unexpected is left to npyz to report.
fn header_overruns(bytes: &[u8]) -> Option<(usize, usize)> {
    let (claimed, start) = match bytes.get(6..8)? {
        [1, _] => (
            usize::from(u16::from_le_bytes(bytes.get(8..10)?.try_into().ok()?)),
            10,
        ),
        [2 | 3, _] => (
            u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?) as usize,
            12,
        ),
        _ => return None,
    };
    let present = bytes.len().saturating_sub(start);
    (claimed > present).then_some((claimed, present))
}

/// Deepest bracket nesting accepted in a header (a structured dtype's
/// `descr` nests about three deep).
const MAX_HEADER_NESTING: usize = 8;

/// How deep `(`, `[` and `{` nest in the header (the first 64 KiB): npyz
/// parses the header with py_literal, whose backtracking takes seconds
/// for a few hundred nested brackets, so deeper headers are rejected first.
fn header_nesting(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0);
    for &b in bytes.iter().skip(8).take(1 << 16) {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'\n' => break,
            _ => {}
        }
    }
    deepest
}

/// Whether the header's `shape` has dimensions whose product overflows `u64`.
///
/// npyz multiplies the dimensions unchecked (and panics in debug builds), so such
/// headers are rejected first. Anything unexpected is left to npyz to report.
fn shape_overflows(bytes: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1 << 16)]);
    let Some(pos) = head.find("'shape'").or_else(|| head.find("\"shape\"")) else {
        return false;
    };
    let tuple = head[pos + 7..].split(')').next().unwrap_or("");
    tuple
        .split(|c: char| !c.is_ascii_digit())
        .filter(|d| !d.is_empty())
        .try_fold(1u64, |acc, d| match d.parse::<u64>() {
            Ok(0) => Some(acc),
            Ok(n) => acc.checked_mul(n),
            Err(_) => None,
        })
        .is_none()
}

/// Reads every element as `T` (in file order) and converts it to `f64`.
fn read<T: npyz::Deserialize>(
    file: NpyFile<&[u8]>,
    conv: fn(T) -> f64,
) -> Result<Vec<f64>, String> {
    let reader = file.data::<T>().map_err(|e| e.to_string())?;
    reader
        .map(|v| v.map(conv))
        .collect::<std::io::Result<_>>()
        .map_err(|e| format!("cannot read data: {e}"))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use npyz::WriterBuilder;

    use super::super::load;
    use super::*;

    /// Writes `data` (already in file order) as an NPY file via npyz's writer.
    fn write_npy<T: npyz::Serialize + npyz::AutoSerialize + Copy>(
        dir: &Path,
        name: &str,
        shape: &[u64],
        order: Order,
        data: &[T],
    ) -> PathBuf {
        let path = dir.join(name);
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(shape)
            .order(order)
            .writer(std::io::BufWriter::new(
                std::fs::File::create(&path).unwrap(),
            ))
            .begin_nd()
            .unwrap();
        w.extend(data.iter().copied()).unwrap();
        w.finish().unwrap();
        path
    }

    /// Writes an NPY (version 1.0) file by hand.
    fn write_raw(dir: &Path, name: &str, dict: &str, data: &[u8]) -> PathBuf {
        let mut text = format!("{dict}\n");
        while (10 + text.len()) % 64 != 0 {
            text.insert(text.len() - 1, ' ');
        }
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(text.len() as u16).to_le_bytes());
        bytes.extend_from_slice(text.as_bytes());
        bytes.extend_from_slice(data);
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// The 2x3 matrix [[1,2,3],[4,5,6]] in C and Fortran element order.
    const C_ORDER: [f64; 6] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    const F_ORDER: [f64; 6] = [1.0, 4.0, 2.0, 5.0, 3.0, 6.0];

    fn check_2x3(d: &Dataset) {
        assert_eq!(d.columns, vec!["x0", "x1", "x2"]);
        assert_eq!((d.rows, d.cols), (2, 3));
        assert_eq!(d.values, C_ORDER.to_vec());
        assert_eq!(d.labels, None);
    }

    fn default() -> LoadOptions {
        LoadOptions::default()
    }

    #[test]
    fn f64_c_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_npy(dir.path(), "a.npy", &[2, 3], Order::C, &C_ORDER);
        check_2x3(&load(&p, &default()).unwrap());
    }

    #[test]
    fn f64_fortran_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_npy(dir.path(), "a.npy", &[2, 3], Order::Fortran, &F_ORDER);
        check_2x3(&load(&p, &default()).unwrap());
    }

    #[test]
    fn f32_c_order() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<f32> = C_ORDER.iter().map(|&v| v as f32).collect();
        let p = write_npy(dir.path(), "a.npy", &[2, 3], Order::C, &data);
        check_2x3(&load(&p, &default()).unwrap());
    }

    #[test]
    fn f32_fortran_order() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<f32> = F_ORDER.iter().map(|&v| v as f32).collect();
        let p = write_npy(dir.path(), "a.npy", &[2, 3], Order::Fortran, &data);
        check_2x3(&load(&p, &default()).unwrap());
    }

    #[test]
    fn hand_written_fortran_big_endian() {
        // Independent of npyz's writer: '>f8', fortran_order True.
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = F_ORDER.iter().flat_map(|v| v.to_be_bytes()).collect();
        let p = write_raw(
            dir.path(),
            "a.npy",
            "{'descr': '>f8', 'fortran_order': True, 'shape': (2, 3), }",
            &data,
        );
        check_2x3(&load(&p, &default()).unwrap());
    }

    #[test]
    fn integer_dtypes() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_npy(
            dir.path(),
            "i32.npy",
            &[2, 3],
            Order::C,
            &[1i32, 2, 3, 4, 5, 6],
        );
        check_2x3(&load(&p, &default()).unwrap());
        let p = write_npy(
            dir.path(),
            "u8.npy",
            &[2, 3],
            Order::Fortran,
            &[1u8, 4, 2, 5, 3, 6],
        );
        check_2x3(&load(&p, &default()).unwrap());
        let p = write_npy(dir.path(), "i64.npy", &[3], Order::C, &[-1i64, 0, 7]);
        let d = load(&p, &default()).unwrap();
        assert_eq!((d.rows, d.cols), (3, 1));
        assert_eq!(d.values, vec![-1.0, 0.0, 7.0]);
    }

    #[test]
    fn one_dimensional_is_one_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_npy(
            dir.path(),
            "a.npy",
            &[4],
            Order::C,
            &[1.5f64, 2.5, 3.5, 4.5],
        );
        let d = load(&p, &default()).unwrap();
        assert_eq!(d.columns, vec!["x0"]);
        assert_eq!((d.rows, d.cols), (4, 1));
        assert_eq!(d.values, vec![1.5, 2.5, 3.5, 4.5]);
    }

    #[test]
    fn label_and_drop_columns() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_npy(dir.path(), "a.npy", &[2, 3], Order::Fortran, &F_ORDER);
        let opts = LoadOptions {
            label_column: Some("2".into()),
            drop_columns: vec!["x0".into()],
        };
        let d = load(&p, &opts).unwrap();
        assert_eq!(d.columns, vec!["x1"]);
        assert_eq!((d.rows, d.cols), (2, 1));
        assert_eq!(d.values, vec![2.0, 5.0]);
        assert_eq!(d.labels, Some(vec![3.0, 6.0]));

        let opts = LoadOptions {
            label_column: Some("x0".into()),
            drop_columns: vec!["1".into()],
        };
        let d = load(&p, &opts).unwrap();
        assert_eq!(d.columns, vec!["x2"]);
        assert_eq!(d.values, vec![3.0, 6.0]);
        assert_eq!(d.labels, Some(vec![1.0, 4.0]));
    }

    #[test]
    fn error_column_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_npy(dir.path(), "a.npy", &[2, 3], Order::C, &C_ORDER);
        let opts = LoadOptions {
            label_column: Some("3".into()),
            drop_columns: vec![],
        };
        let err = load(&p, &opts).unwrap_err();
        assert!(
            matches!(err, DataError::ColumnNotFound { role: "label", .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("x0, x1, x2"), "{err}");
    }

    #[test]
    fn error_non_finite() {
        let dir = tempfile::tempdir().unwrap();
        // C order: NaN at row 2, column x1.
        let p = write_npy(
            dir.path(),
            "c.npy",
            &[2, 3],
            Order::C,
            &[1.0, 2.0, 3.0, 4.0, f64::NAN, 6.0],
        );
        let err = load(&p, &default()).unwrap_err();
        assert!(
            matches!(&err, DataError::NonFinite { row: 2, line: None, column, .. } if column == "x1"),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("row 2") && msg.contains("'x1'"), "{msg}");
        // Fortran order: +Inf at row 1, column x2 (element 4 in file order).
        let data = [1.0f32, 4.0, 2.0, 5.0, f32::INFINITY, 6.0];
        let p = write_npy(dir.path(), "f.npy", &[2, 3], Order::Fortran, &data);
        let err = load(&p, &default()).unwrap_err();
        assert!(
            matches!(&err, DataError::NonFinite { row: 1, column, .. } if column == "x2"),
            "{err:?}"
        );
    }

    #[test]
    fn error_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_npy::<f64>(dir.path(), "rows.npy", &[0, 3], Order::C, &[]);
        let err = load(&p, &default()).unwrap_err();
        assert!(matches!(err, DataError::Empty { .. }), "{err:?}");
        let p = write_npy::<f64>(dir.path(), "cols.npy", &[2, 0], Order::C, &[]);
        let err = load(&p, &default()).unwrap_err();
        assert!(matches!(err, DataError::Empty { .. }), "{err:?}");
        let p = write_npy(dir.path(), "drop.npy", &[2], Order::C, &[1.0f64, 2.0]);
        let opts = LoadOptions {
            label_column: None,
            drop_columns: vec!["x0".into()],
        };
        let err = load(&p, &opts).unwrap_err();
        assert!(matches!(err, DataError::Empty { .. }), "{err:?}");
    }

    fn assert_malformed(path: &Path, needle: &str) {
        let err = load(path, &default()).unwrap_err();
        assert!(matches!(err, DataError::MalformedNpy { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(needle), "{msg}");
        assert!(msg.contains(&*path.to_string_lossy()), "{msg}");
    }

    #[test]
    fn error_three_dimensional() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_npy(dir.path(), "a.npy", &[1, 2, 3], Order::C, &C_ORDER);
        assert_malformed(&p, "3-D");
        let p = write_raw(
            dir.path(),
            "s.npy",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
            &[0; 8],
        );
        assert_malformed(&p, "0-D");
    }

    #[test]
    fn error_wrong_dtype() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_raw(
            dir.path(),
            "u.npy",
            "{'descr': '<U2', 'fortran_order': False, 'shape': (2,), }",
            &[0; 16],
        );
        assert_malformed(&p, "unsupported dtype");
        let p = write_raw(
            dir.path(),
            "b.npy",
            "{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }",
            &[0, 1],
        );
        assert_malformed(&p, "unsupported dtype");
        let p = write_raw(
            dir.path(),
            "h.npy",
            "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }",
            &[0; 4],
        );
        assert_malformed(&p, "unsupported dtype");
        let p = write_raw(
            dir.path(),
            "r.npy",
            "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2,), }",
            &[0; 16],
        );
        assert_malformed(&p, "unsupported dtype");
    }

    #[test]
    fn error_bad_header() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("text.npy");
        std::fs::write(&p, "x0,x1\n1,2\n").unwrap();
        assert_malformed(&p, "bad header");
        let p = write_raw(
            dir.path(),
            "k.npy",
            "{'descr': '<f8', 'shape': (2,), }",
            &[0; 16],
        );
        assert_malformed(&p, "bad header");
    }

    #[test]
    fn error_truncated_or_oversized_data() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_raw(
            dir.path(),
            "t.npy",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }",
            &[0; 40],
        );
        assert_malformed(&p, "needs 48 data bytes, file has 40");
        let p = write_raw(
            dir.path(),
            "huge.npy",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (4000000000000, 4000000000000), }",
            &[0; 8],
        );
        assert_malformed(&p, "too large");
        let p = write_raw(
            dir.path(),
            "huge3.npy",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 4000000000000, 4000000000000), }",
            &[],
        );
        assert_malformed(&p, "too large");
        let p = write_raw(
            dir.path(),
            "big_dim.npy",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999, 1), }",
            &[0; 8],
        );
        let err = load(&p, &default()).unwrap_err();
        assert!(matches!(err, DataError::MalformedNpy { .. }), "{err:?}");
    }

    /// Fuzzer finding (see FUZZING.md): a version 2 header whose u32 length
    /// field claims 662 MB made npyz allocate that much before reading.
    #[test]
    fn rejects_a_header_longer_than_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
        bytes.extend_from_slice(&662_372_470u32.to_le_bytes());
        bytes.extend_from_slice(b"{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n");
        let p = dir.path().join("long_header.npy");
        std::fs::write(&p, &bytes).unwrap();
        assert_malformed(&p, "header claims 662372470 bytes, only 58 follow");
        bytes[6] = 1; // version 1: a u16 length
        bytes.drain(10..12);
        bytes[8..10].copy_from_slice(&1000u16.to_le_bytes());
        std::fs::write(&p, &bytes).unwrap();
        assert_malformed(&p, "header claims 1000 bytes, only 58 follow");
    }

    /// No rows: the column count is not bounded by the data, so it must not
    /// size anything (this once named 4e12 columns).
    #[test]
    fn rejects_no_rows_before_naming_columns() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_raw(
            dir.path(),
            "no_rows.npy",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 4000000000000), }",
            &[],
        );
        let err = load(&p, &default()).unwrap_err();
        assert!(matches!(err, DataError::Empty { .. }), "{err:?}");
    }

    /// Fuzzer finding (see FUZZING.md): a 253-byte header with a few hundred
    /// nested brackets took py_literal's parser over 2 seconds.
    #[test]
    fn rejects_deeply_nested_headers_quickly() {
        let dir = tempfile::tempdir().unwrap();
        let dict = format!(
            "{{'descr': {}0{}, 'fortran_order': False, 'shape': (1,), }}",
            "[".repeat(300),
            "]".repeat(300)
        );
        let p = write_raw(dir.path(), "nested.npy", &dict, &[0; 8]);
        let start = std::time::Instant::now();
        assert_malformed(&p, "nests brackets more than 8 deep");
        assert!(start.elapsed() < std::time::Duration::from_millis(100));
    }
}
