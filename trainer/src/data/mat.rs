//! MATLAB v5 `.mat` files (as ODDS distributes its data sets, and as
//! MATLAB's `save -v6`/`-v7`, Octave and `scipy.io.savemat` write them): the
//! numeric matrix `X` (n x d) and, if present, `y` (n values). The columns
//! are named `x0`..`x{d-1}` and `y`, so `--label-column y` splits off the
//! ODDS outlier labels.
//!
//! The reader is ours (MathWorks' "MAT-File Format", level 5): a 128-byte
//! header, then tagged data elements, each variable a `miMATRIX` element,
//! possibly inside a zlib-compressed `miCOMPRESSED` one. Every size is
//! checked against the bytes present before it sizes anything, and only
//! `X` and `y` are decoded. (It replaced the `matfile` crate, which
//! overflowed on sizes in malformed files; FUZZING.md, F2 to F4.)

use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

use super::{DataError, Dataset, LoadOptions, default_names, from_array};

/// Parses the bytes of a MATLAB v5 file; `path` is only used in error messages.
pub(super) fn parse(path: &Path, bytes: &[u8], opts: &LoadOptions) -> Result<Dataset, DataError> {
    let malformed = |reason: String| DataError::MalformedMat {
        path: path.to_path_buf(),
        reason,
    };
    let file = variables(bytes).map_err(malformed)?;
    let x = file.x.as_ref().ok_or_else(|| {
        malformed(format!(
            "no numeric matrix named X (arrays: {})",
            file.names.join(", ")
        ))
    })?;
    let x = x.matrix(file.big_endian).map_err(malformed)?;
    let (rows, cols) = match x.dims.as_slice() {
        [r, c] => (*r, *c),
        dims => return Err(malformed(format!("X has shape {dims:?}, expected 2-D"))),
    };
    let xs = x.values(file.big_endian).map_err(malformed)?;
    if rows == 0 {
        // Before naming the columns: with no rows, `cols` is not bounded by the data.
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            reason: "X has no rows".to_string(),
        });
    }
    let ys = match &file.y {
        Some(y) => {
            let y = y.matrix(file.big_endian).map_err(malformed)?;
            let ys = y.values(file.big_endian).map_err(malformed)?;
            if ys.len() != rows {
                return Err(malformed(format!(
                    "y has shape {:?} but X has {rows} rows",
                    y.dims
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

/// Data element types (`mi*`).
const MI_INT8: u32 = 1;
const MI_UINT32: u32 = 6;
const MI_INT32: u32 = 5;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
/// The array flags' complex bit.
const COMPLEX: u32 = 0x800;

/// What the reader keeps of a file: its byte order, the variables `X` and
/// `y` (undecoded), and every variable's name for error messages.
struct Variables<'a> {
    big_endian: bool,
    x: Option<Variable<'a>>,
    y: Option<Variable<'a>>,
    names: Vec<String>,
}

/// The data of one `miMATRIX` element, borrowed from the file or inflated.
struct Variable<'a>(Cow<'a, [u8]>);

/// A matrix's header, and the bytes of its data after it.
struct Matrix<'a> {
    name: String,
    class: u8,
    complex: bool,
    dims: Vec<usize>,
    data: &'a [u8],
}

/// Reads the header and walks the top-level data elements.
fn variables(bytes: &[u8]) -> Result<Variables<'_>, String> {
    if bytes.starts_with(b"MATLAB 7.3") || bytes.get(512..516) == Some(b"\x89HDF") {
        return Err("a MATLAB 7.3 (HDF5) file; save it with -v7 or -v6".into());
    }
    let big_endian = match bytes.get(126..128) {
        Some(b"IM") => false,
        Some(b"MI") => true,
        _ => return Err("no v5 header (only MATLAB v5 files are supported)".into()),
    };
    let mut file = Variables {
        big_endian,
        x: None,
        y: None,
        names: Vec::new(),
    };
    let mut rest = &bytes[128..];
    while let Some((data_type, data)) = next_element(&mut rest, big_endian)? {
        match data_type {
            MI_MATRIX => file.add(Cow::Borrowed(data))?,
            MI_COMPRESSED => {
                let mut inflated = Vec::new();
                flate2::read::ZlibDecoder::new(data)
                    .read_to_end(&mut inflated)
                    .map_err(|e| format!("a compressed element does not inflate: {e}"))?;
                // MATLAB compresses each variable once, never nested.
                match next_element(&mut inflated.as_slice(), big_endian)? {
                    Some((MI_MATRIX, data)) => file.add(Cow::Owned(data.to_vec()))?,
                    Some((MI_COMPRESSED, _)) => return Err("nested compressed elements".into()),
                    _ => return Err("a compressed element holds no matrix".into()),
                }
            }
            _ => {} // not a variable: skipped, as MATLAB does
        }
    }
    Ok(file)
}

impl<'a> Variables<'a> {
    /// Records a variable's name, and keeps it if it is `X` or `y`.
    fn add(&mut self, data: Cow<'a, [u8]>) -> Result<(), String> {
        let variable = Variable(data);
        if variable.0.is_empty() {
            return Ok(()); // an empty miMATRIX: no array at all
        }
        let name = variable.matrix(self.big_endian)?.name;
        let slot = match name.as_str() {
            "X" => &mut self.x,
            "y" => &mut self.y,
            _ => {
                self.names.push(name);
                return Ok(());
            }
        };
        if slot.is_some() {
            return Err(format!("two arrays named {name}"));
        }
        *slot = Some(variable);
        self.names.push(name);
        Ok(())
    }
}

impl Variable<'_> {
    /// The matrix's flags, dimensions and name.
    fn matrix(&self, big_endian: bool) -> Result<Matrix<'_>, String> {
        let mut rest: &[u8] = &self.0;
        let mut field = |what: &str, want: u32| match next_element(&mut rest, big_endian)? {
            Some((t, data)) if t == want => Ok(data),
            Some((t, _)) => Err(format!("a matrix's {what} has data type {t}, not {want}")),
            None => Err(format!("a matrix ends before its {what}")),
        };
        let flags = field("array flags", MI_UINT32)?;
        let dims = field("dimensions", MI_INT32)?;
        let name = field("name", MI_INT8)?;
        let flags = words(flags, big_endian)
            .next()
            .ok_or("array flags too short")?;
        let dims = words(dims, big_endian)
            .map(|d| {
                usize::try_from(d as i32)
                    .map_err(|_| format!("matrix dimension {} is negative", d as i32))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Matrix {
            name: String::from_utf8_lossy(name).into_owned(),
            class: flags as u8,
            complex: flags & COMPLEX != 0,
            dims,
            data: rest,
        })
    }
}

impl Matrix<'_> {
    /// The real values (column by column), checked against the dimensions.
    fn values(&self, big_endian: bool) -> Result<Vec<f64>, String> {
        let name = &self.name;
        if !(6..=15).contains(&self.class) {
            return Err(format!(
                "{name} is a {} array, not a numeric matrix",
                class_name(self.class)
            ));
        }
        if self.complex {
            return Err(format!("{name} is complex"));
        }
        let count = self.dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        let mut rest = self.data;
        let (data_type, data) =
            next_element(&mut rest, big_endian)?.ok_or_else(|| format!("{name} has no values"))?;
        let width = match data_type {
            1 | 2 => 1,
            3 | 4 => 2,
            5..=7 => 4,
            9 | 12 | 13 => 8,
            t => return Err(format!("{name} has values of data type {t}")),
        };
        if count.and_then(|n| n.checked_mul(width)) != Some(data.len()) {
            return Err(format!(
                "{name} has shape {:?} but holds {} values",
                self.dims,
                data.len() / width
            ));
        }
        Ok(decode(data_type, data, big_endian))
    }
}

/// Values of a numeric data element as f64 (its type and length checked).
fn decode(data_type: u32, data: &[u8], big_endian: bool) -> Vec<f64> {
    macro_rules! each {
        ($t:ty) => {
            data.chunks_exact(size_of::<$t>())
                .map(|b| {
                    let b = b.try_into().unwrap_or_default();
                    (if big_endian {
                        <$t>::from_be_bytes(b)
                    } else {
                        <$t>::from_le_bytes(b)
                    }) as f64
                })
                .collect()
        };
    }
    match data_type {
        1 => each!(i8),
        2 => each!(u8),
        3 => each!(i16),
        4 => each!(u16),
        5 => each!(i32),
        6 => each!(u32),
        7 => each!(f32),
        9 => each!(f64),
        12 => each!(i64),
        _ => each!(u64),
    }
}

/// The `u32` words of a data element.
fn words(data: &[u8], big_endian: bool) -> impl Iterator<Item = u32> + '_ {
    data.chunks_exact(4).map(move |b| {
        let b = b.try_into().unwrap_or_default();
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    })
}

/// Splits the next data element (type and data) off `rest`, skipping its
/// padding to 8 bytes; `None` at the end.
fn next_element<'a>(
    rest: &mut &'a [u8],
    big_endian: bool,
) -> Result<Option<(u32, &'a [u8])>, String> {
    if rest.is_empty() {
        return Ok(None);
    }
    let tag = rest.get(..8).ok_or("a truncated data element tag")?;
    let mut tag = words(tag, big_endian);
    let (first, second) = (tag.next().unwrap_or(0), tag.next().unwrap_or(0));
    let (data_type, size, start) = if first >> 16 != 0 {
        // Small data element: size and type in one word, data in the next.
        (first & 0xFFFF, first >> 16, 4)
    } else {
        (first, second, 8)
    };
    let size = size as usize;
    if start == 4 && size > 4 {
        return Err(format!("a small data element claims {size} bytes"));
    }
    let data = rest.get(start..start + size).ok_or_else(|| {
        format!(
            "a data element claims {size} bytes, {} remain",
            rest.len().saturating_sub(start)
        )
    })?;
    // Compressed elements are not padded; the last element may omit its padding.
    let end = match (start, data_type) {
        (4, _) => 8,
        (_, MI_COMPRESSED) => start + size,
        _ => (start + size).next_multiple_of(8),
    };
    *rest = rest.get(end..).unwrap_or(&[]);
    Ok(Some((data_type, data)))
}

/// MATLAB's name of an array class (`mx*_CLASS`).
fn class_name(class: u8) -> &'static str {
    match class {
        1 => "cell",
        2 => "struct",
        3 => "object",
        4 => "char",
        5 => "sparse",
        16 => "function handle",
        17 => "opaque",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::super::load;
    use super::super::test_files::{fixture, label_y};
    use super::*;

    /// Files written by scipy.io.savemat (format 5); see tests/fixtures/README.md.
    #[test]
    fn reads_x_and_y_in_row_order() {
        let d = load(&fixture("small.mat"), &label_y()).unwrap();
        assert_eq!((d.rows, d.cols), (3, 2));
        assert_eq!(d.values, vec![1.5, -2.0, 0.25, 3.0, 7.0, 8.5]);
        assert_eq!(d.labels, Some(vec![0.0, 1.0, 0.0]));
        let d = load(&fixture("int16_no_labels.mat"), &LoadOptions::default()).unwrap();
        assert_eq!(d.values, vec![1.0, 2.0, 3.0, 4.0]);
        assert!(matches!(
            load(&fixture("int16_no_labels.mat"), &label_y()),
            Err(DataError::ColumnNotFound { .. })
        ));
    }

    /// Compressed variables, a char array and a struct beside them, float32
    /// `X` and logical `y` (scipy.io.savemat with `do_compression=True`).
    #[test]
    fn reads_compressed_files_from_scipy() {
        let d = load(&fixture("compressed_logical.mat"), &label_y()).unwrap();
        assert_eq!((d.rows, d.cols), (2, 3));
        assert_eq!(d.values, vec![0.5, -1.25, 3.0, 2.0, 4.5, -0.125]);
        assert_eq!(d.labels, Some(vec![0.0, 1.0]));
    }

    /// A MATLAB v5 file holding `elements`, in either byte order.
    fn mat_file(elements: &[u8], big_endian: bool) -> Vec<u8> {
        let mut out = b"MATLAB 5.0 MAT-file, written by hand".to_vec();
        out.resize(124, b' ');
        out[116..124].fill(0);
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(if big_endian { b"MI" } else { b"IM" });
        out.extend_from_slice(elements);
        out
    }

    /// A little-endian data element (tag, data, padding to 8 bytes).
    fn element(data_type: u32, data: &[u8]) -> Vec<u8> {
        let mut out = data_type.to_le_bytes().to_vec();
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(8), 0);
        out
    }

    /// A little-endian double matrix `name` with the given dimensions and values.
    fn matrix(name: &str, dims: &[i32], values: &[f64]) -> Vec<u8> {
        let flags: Vec<u8> = [6u32, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let dims: Vec<u8> = dims.iter().flat_map(|v| v.to_le_bytes()).collect();
        let values: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut body = element(MI_UINT32, &flags);
        body.extend(element(MI_INT32, &dims));
        body.extend(element(MI_INT8, name.as_bytes()));
        body.extend(element(9, &values));
        element(MI_MATRIX, &body)
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(data).unwrap();
        z.finish().unwrap()
    }

    /// A compressed element (not padded) holding `element`.
    fn compressed(element: &[u8]) -> Vec<u8> {
        let z = zlib(element);
        let mut out = MI_COMPRESSED.to_le_bytes().to_vec();
        out.extend_from_slice(&(z.len() as u32).to_le_bytes());
        out.extend(z);
        out
    }

    fn parse_bytes(bytes: &[u8]) -> Result<Dataset, DataError> {
        parse(Path::new("t.mat"), bytes, &LoadOptions::default())
    }

    #[test]
    fn reads_a_hand_written_file() {
        let d = parse_bytes(&mat_file(&matrix("X", &[2, 1], &[1.0, 2.0]), false)).unwrap();
        assert_eq!((d.rows, d.cols, d.values), (2, 1, vec![1.0, 2.0]));
    }

    /// A big-endian file (as MATLAB wrote on SPARC and PowerPC), with a small
    /// data element for the name and int16 values in a double matrix
    /// (MATLAB stores values in the smallest type that holds them).
    #[test]
    fn reads_big_endian_files_and_small_elements() {
        let be =
            |words: &[u32]| -> Vec<u8> { words.iter().flat_map(|w| w.to_be_bytes()).collect() };
        let mut body = be(&[MI_UINT32, 8, 6, 0, MI_INT32, 8, 2, 2]);
        body.extend(be(&[(1 << 16) | MI_INT8]));
        body.extend(b"X\0\0\0");
        body.extend(be(&[3, 8]));
        for v in [1i16, -2, 300, 4] {
            body.extend(v.to_be_bytes());
        }
        let mut file = be(&[MI_MATRIX, body.len() as u32]);
        file.extend(body);
        let d = parse_bytes(&mat_file(&file, true)).unwrap();
        assert_eq!((d.rows, d.cols), (2, 2));
        assert_eq!(d.values, vec![1.0, 300.0, -2.0, 4.0]);
    }

    #[test]
    fn reads_compressed_variables_and_skips_others() {
        let mut elements = compressed(&matrix("other", &[1, 1], &[9.0]));
        elements.extend(compressed(&matrix("X", &[1, 2], &[3.0, 4.0])));
        let d = parse_bytes(&mat_file(&elements, false)).unwrap();
        assert_eq!((d.rows, d.cols, d.values), (1, 2, vec![3.0, 4.0]));
    }

    /// Sizes that once overflowed the `matfile` crate (FUZZING.md, F2 and
    /// F3) are checked against the bytes present.
    #[test]
    fn rejects_dimensions_beyond_the_values() {
        // 65536 x 65536 wrapped to 0 elements in matfile's i32 arithmetic.
        let err = parse_bytes(&mat_file(&matrix("X", &[65536, 65536], &[]), false)).unwrap_err();
        assert!(err.to_string().contains("holds 0 values"), "{err}");
        // -1 x -1 multiplied to 1 and converted to sizes of usize::MAX.
        let err = parse_bytes(&mat_file(&matrix("X", &[-1, -1], &[1.0]), false)).unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
    }

    #[test]
    fn rejects_an_element_longer_than_the_file() {
        let mut bytes = mat_file(&element(MI_MATRIX, &[0; 8]), false);
        bytes[132..136].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = parse_bytes(&bytes).unwrap_err();
        assert!(
            err.to_string()
                .contains("claims 4294967295 bytes, 8 remain"),
            "{err}"
        );
    }

    #[test]
    fn rejects_nested_compression() {
        let inner = compressed(&matrix("X", &[1, 1], &[1.0]));
        let bytes = mat_file(&compressed(&inner), false);
        let err = parse_bytes(&bytes).unwrap_err();
        assert!(err.to_string().contains("nested"), "{err}");
    }

    /// No rows: the column count is not bounded by the data, so it must not
    /// size anything (this once named a billion columns).
    #[test]
    fn rejects_no_rows_before_naming_columns() {
        let bytes = mat_file(&matrix("X", &[0, 1_000_000_000], &[]), false);
        let err = parse_bytes(&bytes).unwrap_err();
        assert!(matches!(err, DataError::Empty { .. }), "{err:?}");
    }

    #[test]
    fn says_what_is_wrong_with_x_and_y() {
        let cases: [(Vec<u8>, &str); 5] = [
            (
                matrix("A", &[1, 1], &[1.0]),
                "no numeric matrix named X (arrays: A)",
            ),
            (
                matrix("X", &[1, 1, 1], &[1.0]),
                "X has shape [1, 1, 1], expected 2-D",
            ),
            (
                [matrix("X", &[1, 1], &[1.0]), matrix("X", &[1, 1], &[1.0])].concat(),
                "two arrays named X",
            ),
            (
                [
                    matrix("X", &[2, 1], &[1.0, 2.0]),
                    matrix("y", &[3, 1], &[0.0; 3]),
                ]
                .concat(),
                "y has shape [3, 1] but X has 2 rows",
            ),
            (element(MI_COMPRESSED, b"not zlib"), "does not inflate"),
        ];
        for (elements, want) in cases {
            let err = parse_bytes(&mat_file(&elements, false)).unwrap_err();
            assert!(err.to_string().contains(want), "{err}");
        }
        // A char array named X.
        let mut char_x = matrix("X", &[1, 2], &[]);
        char_x[16] = 4;
        let err = parse_bytes(&mat_file(&char_x, false)).unwrap_err();
        assert!(err.to_string().contains("X is a char array"), "{err}");
    }

    #[test]
    fn rejects_files_that_are_not_matlab_v5() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.mat");
        std::fs::write(&path, b"not a mat file at all").unwrap();
        let err = load(&path, &LoadOptions::default()).unwrap_err();
        assert!(err.to_string().contains("malformed MATLAB file"), "{err}");
        let mut hdf5 = b"MATLAB 7.3 MAT-file".to_vec();
        hdf5.resize(600, 0);
        let err = parse_bytes(&hdf5).unwrap_err();
        assert!(err.to_string().contains("save it with -v7"), "{err}");
    }
}
