//! NumPy `.npz` archives (`numpy.savez`, `numpy.savez_compressed`, as
//! ADBench distributes its data sets): the array `X` (n x d, or n values)
//! and, if present, `y` (n values). The columns are named `x0`..`x{d-1}`
//! and `y`, as for MATLAB files, so `--label-column y` splits off the labels.
//!
//! The archive is read with the `zip` crate; each member is an NPY file
//! read by [`super::npy::array`]. A member's sizes are checked against the
//! archive's length (at most about 1100 bytes per byte of it, deflate's
//! limit) before anything is allocated for it.

use std::io::{Cursor, Read};
use std::path::Path;

use zip::ZipArchive;
use zip::result::ZipError;

use super::npy;
use super::{DataError, Dataset, LoadOptions, default_names, from_array};

/// Deflate expands at most about 1032-fold; a member claiming more than
/// this many bytes per compressed byte is malformed.
const MAX_RATIO: u64 = 1100;

/// Parses the bytes of an `.npz` file; `path` is only used in error messages.
pub(super) fn parse(path: &Path, bytes: &[u8], opts: &LoadOptions) -> Result<Dataset, DataError> {
    let malformed = |reason: String| DataError::MalformedNpz {
        path: path.to_path_buf(),
        reason,
    };
    let mut archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| malformed(format!("not a zip archive: {e}")))?;
    let x = member(&mut archive, bytes.len(), "X")
        .map_err(&malformed)?
        .ok_or_else(|| {
            let names: Vec<String> = archive
                .file_names()
                .filter_map(Result::ok)
                .map(|n| n.trim_end_matches(".npy").to_string())
                .collect();
            malformed(format!("no array named X (arrays: {})", names.join(", ")))
        })?;
    let x = npy::array(&x).map_err(|e| malformed(format!("X: {e}")))?;
    if x.rows == 0 {
        // Before naming the columns: with no rows, `cols` is not bounded by the data.
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            reason: "X has no rows".to_string(),
        });
    }
    let y = match member(&mut archive, bytes.len(), "y").map_err(&malformed)? {
        Some(y) => {
            let y = npy::array(&y).map_err(|e| malformed(format!("y: {e}")))?;
            if y.rows != x.rows || y.cols != 1 {
                return Err(malformed(format!(
                    "y has shape {:?} but X has {} rows",
                    y.shape, x.rows
                )));
            }
            Some(y)
        }
        None => None,
    };
    let cols = x.cols;
    let mut names = default_names(cols);
    if y.is_some() {
        names.push("y".into());
    }
    from_array(
        path,
        &names,
        x.rows,
        "X has no rows",
        opts,
        |i, j| match &y {
            Some(y) if j == cols => y.get(i, 0),
            _ => x.get(i, j),
        },
    )
}

/// The bytes of the member `NAME.npy`, or `None` if the archive (of
/// `archive_len` bytes) has none.
fn member(
    archive: &mut ZipArchive<Cursor<&[u8]>>,
    archive_len: usize,
    name: &str,
) -> Result<Option<Vec<u8>>, String> {
    let archive_len = archive_len as u64;
    let file = format!("{name}.npy");
    let mut entry = match archive.by_name(&file) {
        Ok(entry) => entry,
        Err(ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(format!("{file}: {e}")),
    };
    // Both sizes come from the archive's directory: neither is trusted
    // until checked against the archive's length.
    let (size, packed) = (entry.size(), entry.compressed_size());
    if packed > archive_len || size > packed.saturating_mul(MAX_RATIO).saturating_add(1024) {
        return Err(format!(
            "{file} claims {size} bytes from {packed} compressed ones in a {archive_len}-byte archive"
        ));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    (&mut entry)
        .take(size + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{file}: {e}"))?;
    if bytes.len() as u64 != size {
        return Err(format!(
            "{file} holds {} bytes, its header says {size}",
            bytes.len()
        ));
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use zip::write::SimpleFileOptions;

    use super::super::load;
    use super::super::test_files::{fixture, label_y};
    use super::*;

    /// Archives written by NumPy; see tests/fixtures/README.md.
    #[test]
    fn reads_archives_from_numpy() {
        let d = load(&fixture("compressed.npz"), &label_y()).unwrap();
        assert_eq!((d.rows, d.cols), (3, 2));
        assert_eq!(d.values, vec![1.5, -2.0, 0.25, 3.0, 7.0, 8.5]);
        assert_eq!(d.labels, Some(vec![0.0, 1.0, 0.0]));
        let d = load(&fixture("stored_fortran.npz"), &LoadOptions::default()).unwrap();
        assert_eq!((d.rows, d.cols), (2, 3));
        assert_eq!(d.values, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(matches!(
            load(&fixture("stored_fortran.npz"), &label_y()),
            Err(DataError::ColumnNotFound { .. })
        ));
    }

    /// A stored (uncompressed) archive of the given NPY members.
    fn archive(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in members {
            zip.start_file(
                *name,
                SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored),
            )
            .unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    /// A version 1.0 NPY file of little-endian f64 values.
    fn npy(shape: &str, values: &[f64]) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}").into_bytes();
        header.resize((10 + header.len() + 1).next_multiple_of(64) - 10 - 1, b' ');
        header.push(b'\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend(header);
        out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        out
    }

    fn parse_bytes(bytes: &[u8]) -> Result<Dataset, DataError> {
        parse(Path::new("t.npz"), bytes, &LoadOptions::default())
    }

    #[test]
    fn says_what_is_wrong_with_x_and_y() {
        let x = npy("(2, 1)", &[1.0, 2.0]);
        let cases = [
            (vec![("A.npy", x.clone())], "no array named X (arrays: A)"),
            (
                vec![("X.npy", npy("(1, 1, 1)", &[1.0]))],
                "X: expected a 1-D or 2-D array",
            ),
            (
                vec![("X.npy", x.clone()), ("y.npy", npy("(3,)", &[0.0; 3]))],
                "y has shape [3] but X has 2 rows",
            ),
            (
                vec![("X.npy", x.clone()), ("y.npy", npy("(2, 2)", &[0.0; 4]))],
                "y has shape [2, 2] but X has 2 rows",
            ),
            (vec![("X.npy", b"not npy".to_vec())], "X: bad header"),
        ];
        for (members, want) in cases {
            let err = parse_bytes(&archive(&members)).unwrap_err();
            assert!(matches!(err, DataError::MalformedNpz { .. }), "{err:?}");
            assert!(err.to_string().contains(want), "{err}");
        }
        let err = parse_bytes(b"PK not really").unwrap_err();
        assert!(err.to_string().contains("not a zip archive"), "{err}");
        let err = parse_bytes(&archive(&[("X.npy", npy("(0, 1000000000)", &[]))])).unwrap_err();
        assert!(matches!(err, DataError::Empty { .. }), "{err:?}");
    }

    /// A member whose size in the central directory is beyond what its
    /// compressed bytes can hold is rejected before anything is allocated.
    #[test]
    fn rejects_a_member_larger_than_its_bytes_allow() {
        let mut bytes = archive(&[("X.npy", npy("(2, 1)", &[1.0, 2.0]))]);
        let central = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        bytes[central + 24..central + 28].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let err = parse_bytes(&bytes).unwrap_err();
        assert!(err.to_string().contains("claims 4294967280 bytes"), "{err}");
    }
}
