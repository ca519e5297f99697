//! IDX files, the format of MNIST: raw or gzip-compressed.
//!
//! An IDX file is a 4-byte magic number (two zero bytes, the element type
//! code, the number of dimensions), one big-endian `u32` per dimension, then
//! the elements in row-major order. Gzip compression is recognised by the
//! gzip magic bytes `1f 8b`, whatever the file is called. Only unsigned-byte
//! elements (type code `0x08`, what MNIST uses) are supported.

use std::io::Read;
use std::path::Path;

use super::DataError;

/// The element type code of unsigned bytes.
pub const TYPE_U8: u8 = 0x08;

/// The first two bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first (MNIST images: count, height, width).
    pub dims: Vec<usize>,
    /// The `dims.iter().product()` elements, row-major.
    pub data: Vec<u8>,
}

/// Reads an IDX file (raw or gzipped).
pub fn read(path: &Path) -> Result<IdxArray, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &bytes)
}

/// Parses the bytes of an IDX file (raw or gzipped); `path` is only used in
/// error messages.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<IdxArray, DataError> {
    if is_gzip(bytes) {
        parse_stream(path, flate2::read::MultiGzDecoder::new(bytes), true)
    } else {
        parse_stream(path, bytes, false)
    }
}

/// Whether `bytes` start with the gzip magic bytes.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// The name of an element type code, for messages.
fn type_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "i16",
        0x0C => "i32",
        0x0D => "f32",
        0x0E => "f64",
        _ => return None,
    })
}

fn gzip_error(path: &Path, err: &std::io::Error) -> DataError {
    DataError::MalformedIdx {
        path: path.to_path_buf(),
        reason: format!("corrupt or truncated gzip data: {err}"),
    }
}

/// Parses an IDX stream. The payload is read up to one byte past the size the
/// header declares, so a bogus header cannot make it allocate more than the
/// data holds.
fn parse_stream(path: &Path, mut input: impl Read, gzip: bool) -> Result<IdxArray, DataError> {
    let malformed = |reason: String| DataError::MalformedIdx {
        path: path.to_path_buf(),
        reason,
    };
    // Fills `buf`; returns how many bytes were read before the end.
    let mut fill = |buf: &mut [u8]| -> Result<usize, DataError> {
        let mut got = 0;
        while got < buf.len() {
            match input.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if gzip => return Err(gzip_error(path, &e)),
                Err(e) => {
                    return Err(DataError::Io {
                        path: path.to_path_buf(),
                        source: e,
                    });
                }
            }
        }
        Ok(got)
    };

    let mut magic = [0u8; 4];
    let got = fill(&mut magic)?;
    if got < 4 {
        return Err(malformed(format!(
            "truncated: {got} bytes, too short for the 4-byte IDX magic number"
        )));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(malformed(format!(
            "bad magic number {:02x} {:02x} {:02x} {:02x}: an IDX file starts with two zero \
             bytes, the element type and the number of dimensions (MNIST images: 00 00 08 03)",
            magic[0], magic[1], magic[2], magic[3]
        )));
    }
    let code = magic[2];
    match type_name(code) {
        Some(_) if code == TYPE_U8 => {}
        Some(name) => {
            return Err(malformed(format!(
                "element type 0x{code:02x} ({name}) is not supported; only 0x08 (unsigned byte)"
            )));
        }
        None => {
            return Err(malformed(format!(
                "unknown element type 0x{code:02x}; only 0x08 (unsigned byte) is supported"
            )));
        }
    }
    let ndims = usize::from(magic[3]);
    if ndims == 0 {
        return Err(malformed("the header declares 0 dimensions".to_string()));
    }

    let mut header = vec![0u8; 4 * ndims];
    let got = fill(&mut header)?;
    if got < header.len() {
        return Err(malformed(format!(
            "truncated header: {ndims} dimensions need {} bytes of sizes, found {got}",
            header.len()
        )));
    }
    let dims: Vec<usize> = header
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let shape = dims_text(&dims);
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| u64::try_from(n).is_ok_and(|n| n < u64::MAX))
        .ok_or_else(|| malformed(format!("dimensions {shape} are too large")))?;

    let mut data = Vec::new();
    input
        .take(expected as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| {
            if gzip {
                gzip_error(path, &e)
            } else {
                DataError::Io {
                    path: path.to_path_buf(),
                    source: e,
                }
            }
        })?;
    if data.len() < expected {
        return Err(malformed(format!(
            "truncated: dimensions {shape} need {expected} bytes of data, found {}",
            data.len()
        )));
    }
    if data.len() > expected {
        return Err(malformed(format!(
            "trailing data after the {expected} bytes that dimensions {shape} declare"
        )));
    }
    Ok(IdxArray { dims, data })
}

/// `60000x28x28`.
fn dims_text(dims: &[usize]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A raw IDX file of unsigned bytes.
    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, TYPE_U8, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn err(bytes: &[u8]) -> String {
        let e = parse(Path::new("x-idx3-ubyte"), bytes).unwrap_err();
        assert!(matches!(e, DataError::MalformedIdx { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("x-idx3-ubyte"), "{msg}");
        msg
    }

    #[test]
    fn raw_and_gzipped_files_parse_the_same() {
        let data: Vec<u8> = (0..24).collect();
        let raw = idx(&[2, 3, 4], &data);
        let expected = IdxArray {
            dims: vec![2, 3, 4],
            data,
        };
        assert_eq!(parse(Path::new("a"), &raw).unwrap(), expected);
        assert_eq!(parse(Path::new("a"), &gzip(&raw)).unwrap(), expected);
    }

    #[test]
    fn detection_is_by_content_not_name() {
        let dir = tempfile::tempdir().unwrap();
        let raw = idx(&[3], &[7, 8, 9]);
        // A gzipped file without .gz, and a raw file named .gz.
        let a = dir.path().join("labels-idx1-ubyte");
        let b = dir.path().join("labels-idx1-ubyte.gz");
        std::fs::write(&a, gzip(&raw)).unwrap();
        std::fs::write(&b, &raw).unwrap();
        for p in [a, b] {
            let arr = read(&p).unwrap();
            assert_eq!(arr.dims, vec![3]);
            assert_eq!(arr.data, vec![7, 8, 9]);
        }
    }

    #[test]
    fn bad_magic_is_rejected() {
        let mut raw = idx(&[3], &[1, 2, 3]);
        raw[0] = 0x12;
        let msg = err(&raw);
        assert!(msg.contains("bad magic number 12 00 08 01"), "{msg}");
        assert!(err(b"P5\n28 28\n").contains("bad magic"));
    }

    #[test]
    fn unsupported_and_unknown_types_are_rejected() {
        let mut raw = idx(&[1], &[0, 0, 0, 0]);
        raw[2] = 0x0D;
        assert!(err(&raw).contains("0x0d (f32) is not supported"));
        raw[2] = 0x42;
        assert!(err(&raw).contains("unknown element type 0x42"));
        raw[2] = TYPE_U8;
        raw[3] = 0;
        assert!(err(&raw[..4]).contains("0 dimensions"));
    }

    #[test]
    fn truncated_files_are_rejected() {
        let raw = idx(&[2, 2, 2], &[1; 8]);
        assert!(err(&raw[..2]).contains("too short"));
        assert!(err(&raw[..9]).contains("truncated header"));
        let msg = err(&raw[..raw.len() - 1]);
        assert!(msg.contains("2x2x2 need 8 bytes of data, found 7"), "{msg}");
        // Gzip of a truncated file, and a truncated gzip stream.
        let msg = err(&gzip(&raw[..raw.len() - 3]));
        assert!(msg.contains("found 5"), "{msg}");
        let gz = gzip(&raw);
        let msg = err(&gz[..gz.len() - 6]);
        assert!(msg.contains("gzip"), "{msg}");
        assert!(err(&[]).contains("too short"));
    }

    #[test]
    fn trailing_data_and_corrupt_gzip_are_rejected() {
        let mut raw = idx(&[2], &[1, 2]);
        raw.push(3);
        assert!(err(&raw).contains("trailing data after the 2 bytes"));
        assert!(err(&gzip(&raw)).contains("trailing data"));
        // A flipped byte in the compressed data fails the gzip CRC (or inflate).
        let data: Vec<u8> = (0..200).map(|i| (i * 7 % 251) as u8).collect();
        let mut gz = gzip(&idx(&[200], &data));
        let mid = gz.len() / 2;
        gz[mid] ^= 0x01;
        assert!(err(&gz).contains("gzip"));
    }

    #[test]
    fn huge_declared_dimensions_do_not_allocate() {
        let raw = idx(&[u32::MAX, u32::MAX, u32::MAX], &[1, 2, 3]);
        let msg = err(&raw);
        assert!(
            msg.contains("too large") || msg.contains("truncated"),
            "{msg}"
        );
        let raw = idx(&[60000, 28, 28], &[1, 2, 3]);
        assert!(err(&gzip(&raw)).contains("need 47040000 bytes of data, found 3"));
    }
}
