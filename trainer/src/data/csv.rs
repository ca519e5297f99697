//! CSV loading (plain or gzip-compressed).
//!
//! Fields are separated by commas, tabs or semicolons: the separator is the
//! one that splits the first records (up to five) into the same number of
//! fields, the most; a comma if none does. The first record is a header if
//! any of its fields is not a number. Without a header, columns are named
//! `x0`, `x1`, ...; an empty header field is named the same way (`x{i}` for
//! column `i`).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use csv::ByteRecord;

use super::{DataError, Dataset, LoadOptions, Role, assign_roles, default_names};

/// Loads a CSV file, gunzipping it first if `gzip` is set.
pub(super) fn load(path: &Path, gzip: bool, opts: &LoadOptions) -> Result<Dataset, DataError> {
    let file = File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if gzip {
        parse(
            path,
            flate2::read::MultiGzDecoder::new(BufReader::new(file)),
            opts,
        )
    } else {
        parse(path, file, opts)
    }
}

/// Parses CSV text from `input`; `path` is only used in error messages.
pub(super) fn parse(
    path: &Path,
    mut input: impl Read,
    opts: &LoadOptions,
) -> Result<Dataset, DataError> {
    let mut head = Vec::new();
    (&mut input)
        .take(SNIFF_BYTES)
        .read_to_end(&mut head)
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(sniff_delimiter(&head))
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_reader(head.as_slice().chain(input));
    let mut record = ByteRecord::new();
    let mut next = |record: &mut ByteRecord| {
        reader
            .read_byte_record(record)
            .map_err(|e| csv_error(path, e))
    };

    if !next(&mut record)? {
        return Err(no_rows(path));
    }
    strip_bom(&mut record);
    let has_header = record.iter().any(|f| parse_field(f).is_none());
    let names: Vec<String> = if has_header {
        record
            .iter()
            .enumerate()
            .map(|(i, f)| match String::from_utf8_lossy(f).trim() {
                "" => format!("x{i}"),
                name => name.to_string(),
            })
            .collect()
    } else {
        default_names(record.len())
    };
    let (roles, columns) = assign_roles(path, &names, !has_header, opts)?;

    let mut table = Table {
        path,
        names: &names,
        roles: &roles,
        values: Vec::new(),
        labels: roles.contains(&Role::Label).then(Vec::new),
        rows: 0,
    };
    if !has_header {
        table.push(&record)?;
    }
    while next(&mut record)? {
        table.push(&record)?;
    }
    if table.rows == 0 {
        return Err(no_rows(path));
    }
    Ok(Dataset {
        cols: columns.len(),
        columns,
        rows: table.rows,
        values: table.values,
        labels: table.labels,
    })
}

/// Accumulates parsed data rows.
struct Table<'a> {
    path: &'a Path,
    names: &'a [String],
    roles: &'a [Role],
    values: Vec<f64>,
    labels: Option<Vec<f64>>,
    rows: usize,
}

impl Table<'_> {
    /// Parses and appends one data record.
    fn push(&mut self, record: &ByteRecord) -> Result<(), DataError> {
        let row = self.rows + 1;
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != self.names.len() {
            return Err(DataError::RaggedRow {
                path: self.path.to_path_buf(),
                row,
                line,
                found: record.len(),
                expected: self.names.len(),
            });
        }
        for ((field, role), name) in record.iter().zip(self.roles).zip(self.names) {
            if *role == Role::Drop {
                continue;
            }
            let value = parse_field(field).ok_or_else(|| DataError::NotANumber {
                path: self.path.to_path_buf(),
                row,
                line,
                column: name.clone(),
                text: String::from_utf8_lossy(field).trim().to_string(),
            })?;
            if !value.is_finite() {
                return Err(DataError::NonFinite {
                    path: self.path.to_path_buf(),
                    row,
                    line: Some(line),
                    column: name.clone(),
                    value,
                });
            }
            match (role, &mut self.labels) {
                (Role::Label, Some(labels)) => labels.push(value),
                _ => self.values.push(value),
            }
        }
        self.rows = row;
        Ok(())
    }
}

/// Field separators, in the order that breaks ties.
const DELIMITERS: [u8; 3] = [b',', b'\t', b';'];
/// Records the separator is chosen on.
const SNIFF_RECORDS: usize = 5;
/// Bytes read ahead to choose the separator.
const SNIFF_BYTES: u64 = 1 << 16;

/// The separator of CSV text that starts with `head`: among [`DELIMITERS`],
/// the one that splits the first non-blank records (outside double quotes)
/// into the same number of fields, at least two, the most; `,` if none does.
/// A record cut off by the end of `head` counts only if it is the only one.
fn sniff_delimiter(head: &[u8]) -> u8 {
    // Fields per record under each separator.
    let mut records: Vec<[usize; 3]> = Vec::new();
    let mut fields = [1; 3];
    let (mut quoted, mut blank) = (false, true);
    for &byte in head {
        match byte {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => {
                if !blank {
                    records.push(fields);
                    if records.len() == SNIFF_RECORDS {
                        break;
                    }
                }
                (fields, blank) = ([1; 3], true);
                continue;
            }
            _ if !quoted => {
                if let Some(i) = DELIMITERS.iter().position(|&d| d == byte) {
                    fields[i] += 1;
                }
            }
            _ => {}
        }
        blank &= byte.is_ascii_whitespace();
    }
    if records.is_empty() && !blank {
        records.push(fields);
    }
    let Some(first) = records.first() else {
        return b',';
    };
    (0..DELIMITERS.len())
        .filter(|&i| first[i] > 1 && records.iter().all(|r| r[i] == first[i]))
        .max_by_key(|&i| (first[i], std::cmp::Reverse(i)))
        .map_or(b',', |i| DELIMITERS[i])
}

/// Parses a trimmed field as `f64` (NaN/Inf are accepted here and rejected later).
fn parse_field(field: &[u8]) -> Option<f64> {
    std::str::from_utf8(field).ok()?.trim().parse().ok()
}

/// Removes a UTF-8 byte-order mark from the start of the first field.
fn strip_bom(record: &mut ByteRecord) {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    if record.get(0).is_some_and(|f| f.starts_with(BOM)) {
        let fields: Vec<Vec<u8>> = record.iter().map(<[u8]>::to_vec).collect();
        let position = record.position().cloned();
        record.clear();
        record.push_field(&fields[0][BOM.len()..]);
        for f in &fields[1..] {
            record.push_field(f);
        }
        record.set_position(position);
    }
}

fn no_rows(path: &Path) -> DataError {
    DataError::Empty {
        path: path.to_path_buf(),
        reason: "no data rows".to_string(),
    }
}

fn csv_error(path: &Path, err: csv::Error) -> DataError {
    let reason = err.to_string();
    match err.into_kind() {
        csv::ErrorKind::Io(source) => DataError::Io {
            path: path.to_path_buf(),
            source,
        },
        _ => DataError::MalformedCsv {
            path: path.to_path_buf(),
            reason,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::PathBuf;

    use super::super::load;
    use super::*;

    /// Writes `text` to `name` in a fresh temp dir (kept alive by the returned guard).
    fn write(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn load_text(text: &str, opts: &LoadOptions) -> Result<Dataset, DataError> {
        let (_dir, path) = write("data.csv", text);
        load(&path, opts)
    }

    fn opts(label: Option<&str>, drop: &[&str]) -> LoadOptions {
        LoadOptions {
            label_column: label.map(str::to_string),
            drop_columns: drop.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn header_detected() {
        let d = load_text("a, b ,c\n1,2,3\n 4 , 5.5,-6e1\n", &LoadOptions::default()).unwrap();
        assert_eq!(d.columns, vec!["a", "b", "c"]);
        assert_eq!((d.rows, d.cols), (2, 3));
        assert_eq!(d.values, vec![1.0, 2.0, 3.0, 4.0, 5.5, -60.0]);
        assert_eq!(d.labels, None);
    }

    #[test]
    fn header_detected_if_any_field_is_text() {
        // Only one header field is non-numeric: still a header.
        let d = load_text("1,b\n1,2\n", &LoadOptions::default()).unwrap();
        assert_eq!(d.columns, vec!["1", "b"]);
        assert_eq!(d.rows, 1);
    }

    #[test]
    fn no_header() {
        let d = load_text("1,2\n3,4\n\n5,6", &LoadOptions::default()).unwrap();
        assert_eq!(d.columns, vec!["x0", "x1"]);
        assert_eq!((d.rows, d.cols), (3, 2));
        assert_eq!(d.values, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn bom_and_crlf_handled() {
        let d = load_text("\u{feff}1,2\r\n3,4\r\n", &LoadOptions::default()).unwrap();
        assert_eq!(d.columns, vec!["x0", "x1"]);
        assert_eq!(d.values, vec![1.0, 2.0, 3.0, 4.0]);
        let d = load_text("\u{feff}a,b\r\n3,4\r\n", &LoadOptions::default()).unwrap();
        assert_eq!(d.columns, vec!["a", "b"]);
    }

    #[test]
    fn empty_header_field_gets_default_name() {
        let d = load_text(",a\n0,1\n1,2\n", &opts(None, &["x0"])).unwrap();
        assert_eq!(d.columns, vec!["a"]);
        assert_eq!(d.values, vec![1.0, 2.0]);
    }

    #[test]
    fn gzip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(
            File::create(&path).unwrap(),
            flate2::Compression::default(),
        );
        enc.write_all(b"u,v\n1,2\n3,4\n").unwrap();
        enc.finish().unwrap();
        let d = load(&path, &LoadOptions::default()).unwrap();
        assert_eq!(d.columns, vec!["u", "v"]);
        assert_eq!(d.values, vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn corrupt_gzip_is_io_error() {
        let (_dir, path) = write("data.csv.gz", "1,2\n3,4\n");
        let err = load(&path, &LoadOptions::default()).unwrap_err();
        assert!(matches!(err, DataError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("data.csv.gz"), "{err}");
    }

    #[test]
    fn label_column_by_name() {
        let d = load_text("a,y,b\n1,0,2\n3,1,4\n", &opts(Some("y"), &[])).unwrap();
        assert_eq!(d.columns, vec!["a", "b"]);
        assert_eq!(d.values, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(d.labels, Some(vec![0.0, 1.0]));
    }

    #[test]
    fn label_column_by_index_without_header() {
        let d = load_text("1,0,2\n3,1,4\n", &opts(Some("1"), &[])).unwrap();
        assert_eq!(d.columns, vec!["x0", "x2"]);
        assert_eq!(d.values, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(d.labels, Some(vec![0.0, 1.0]));
    }

    #[test]
    fn drop_columns_by_name() {
        // Dropped columns are not parsed, so they may hold text.
        let d = load_text("id,a,b,c\nx,1,2,3\ny,4,5,6\n", &opts(None, &["id", "b"])).unwrap();
        assert_eq!(d.columns, vec!["a", "c"]);
        assert_eq!(d.values, vec![1.0, 3.0, 4.0, 6.0]);
    }

    #[test]
    fn drop_columns_by_index_and_default_name() {
        let d = load_text("1,2,3,4\n5,6,7,8\n", &opts(Some("x3"), &["0", "x2"])).unwrap();
        assert_eq!(d.columns, vec!["x1"]);
        assert_eq!(d.values, vec![2.0, 6.0]);
        assert_eq!(d.labels, Some(vec![4.0, 8.0]));
    }

    #[test]
    fn index_not_accepted_when_header_present() {
        let err = load_text("a,b\n1,2\n", &opts(None, &["0"])).unwrap_err();
        assert!(matches!(err, DataError::ColumnNotFound { .. }), "{err:?}");
    }

    #[test]
    fn error_missing_label_column_lists_columns() {
        let err = load_text("a,b\n1,2\n", &opts(Some("target"), &[])).unwrap_err();
        assert!(
            matches!(&err, DataError::ColumnNotFound { role: "label", name, .. } if name == "target"),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("'target'") && msg.contains("a, b"), "{msg}");
    }

    #[test]
    fn error_missing_drop_column_lists_columns() {
        let err = load_text("1,2\n", &opts(None, &["5"])).unwrap_err();
        assert!(
            matches!(&err, DataError::ColumnNotFound { role: "drop", name, .. } if name == "5"),
            "{err:?}"
        );
        assert!(err.to_string().contains("x0, x1"), "{err}");
    }

    #[test]
    fn error_empty_file() {
        for text in ["", "\n\n", "a,b,c\n"] {
            let err = load_text(text, &LoadOptions::default()).unwrap_err();
            assert!(matches!(err, DataError::Empty { .. }), "{text:?}: {err:?}");
            assert!(err.to_string().contains("no data rows"), "{err}");
        }
    }

    #[test]
    fn error_no_feature_columns_left() {
        let err = load_text("a,b\n1,2\n", &opts(Some("a"), &["b"])).unwrap_err();
        assert!(matches!(err, DataError::Empty { .. }), "{err:?}");
        assert!(err.to_string().contains("no feature columns"), "{err}");
    }

    #[test]
    fn error_ragged_row() {
        let err = load_text("a,b,c\n1,2,3\n4,5,6\n7,8\n", &LoadOptions::default()).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::RaggedRow {
                    row: 3,
                    line: 4,
                    found: 2,
                    expected: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("row 3") && msg.contains("line 4"), "{msg}");
        assert!(msg.contains("has 2 fields, expected 3"), "{msg}");
    }

    #[test]
    fn error_not_a_number() {
        let err = load_text("a,b\n1,2\n3, oops \n", &LoadOptions::default()).unwrap_err();
        assert!(
            matches!(&err, DataError::NotANumber { row: 2, line: 3, column, text, .. }
                if column == "b" && text == "oops"),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("row 2") && msg.contains("line 3"), "{msg}");
        assert!(msg.contains("'b'") && msg.contains("oops"), "{msg}");
    }

    #[test]
    fn error_not_a_number_in_label() {
        let err = load_text("1,2\n3,?\n", &opts(Some("x1"), &[])).unwrap_err();
        assert!(
            matches!(&err, DataError::NotANumber { row: 2, line: 2, column, .. } if column == "x1"),
            "{err:?}"
        );
    }

    #[test]
    fn error_non_finite() {
        for bad in ["nan", "NaN", "inf", "-inf", "Infinity", "1e999"] {
            let text = format!("a,b\n1,2\n3,4\n5,{bad}\n");
            let err = load_text(&text, &LoadOptions::default()).unwrap_err();
            assert!(
                matches!(&err, DataError::NonFinite { row: 3, line: Some(4), column, .. }
                    if column == "b"),
                "{bad}: {err:?}"
            );
            let msg = err.to_string();
            assert!(msg.contains("row 3") && msg.contains("line 4"), "{msg}");
            assert!(msg.contains("'b'"), "{msg}");
        }
    }

    #[test]
    fn error_non_finite_in_first_row_without_header() {
        // "nan" parses as a number, so the first row is data and gets rejected.
        let err = load_text("1,nan\n", &LoadOptions::default()).unwrap_err();
        assert!(
            matches!(&err, DataError::NonFinite { row: 1, line: Some(1), column, .. } if column == "x1"),
            "{err:?}"
        );
    }

    #[test]
    fn quoted_fields() {
        let d = load_text("\"a,1\",b\n\"1\",\" 2 \"\n", &LoadOptions::default()).unwrap();
        assert_eq!(d.columns, vec!["a,1", "b"]);
        assert_eq!(d.values, vec![1.0, 2.0]);
    }

    #[test]
    fn tab_and_semicolon_separators() {
        let want = load_text("a,b\n1,2\n3,4.5\n", &LoadOptions::default()).unwrap();
        for text in ["a\tb\n1\t2\n3\t4.5\n", "a;b\r\n1;2\r\n3;4.5\r\n"] {
            assert_eq!(load_text(text, &LoadOptions::default()).unwrap(), want);
        }
        let (_dir, path) = write("data.tsv", "1\t2\n3\t4.5\n");
        let d = load(&path, &LoadOptions::default()).unwrap();
        assert_eq!((d.rows, d.cols, d.values), (2, 2, vec![1.0, 2.0, 3.0, 4.5]));
    }

    #[test]
    fn separator_is_the_one_every_record_agrees_on() {
        assert_eq!(sniff_delimiter(b"a,b\n1,2\n"), b',');
        assert_eq!(sniff_delimiter(b"1\t2\t3\n4\t5\t6"), b'\t');
        // Names with semicolons in a comma-separated file.
        assert_eq!(sniff_delimiter(b"t;C,p;hPa,x\n1,2,3\n"), b',');
        // Decimal commas in a semicolon-separated file.
        assert_eq!(sniff_delimiter(b"a;b\n1,5;2\n3;4,25\n"), b';');
        // Separators inside quotes, blank lines, a record cut off by the
        // end of the look-ahead.
        assert_eq!(sniff_delimiter(b"\"a;b\";c\n\n1;2\n3;4"), b';');
        assert_eq!(sniff_delimiter(b"\"x,\ny\"\tz\n1\t2\n"), b'\t');
        // One record: the separator that splits it most; ties go to ','.
        assert_eq!(sniff_delimiter(b"1;2;3,4"), b';');
        assert_eq!(sniff_delimiter(b"1;2,3"), b',');
        // One column, or nothing at all.
        assert_eq!(sniff_delimiter(b"a\n1\n2\n"), b',');
        assert_eq!(sniff_delimiter(b"  \n\n"), b',');
        assert_eq!(sniff_delimiter(b""), b',');
    }

    #[test]
    fn decimal_commas_are_not_numbers() {
        let err = load_text("a;b\n1,5;2\n", &LoadOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("\"1,5\" is not a number (the decimal separator must be '.')"),
            "{msg}"
        );
        // No such hint where a point would not help.
        let err = load_text("a;b\n1,5,2;2\n", &LoadOptions::default()).unwrap_err();
        assert!(
            err.to_string().ends_with("\"1,5,2\" is not a number"),
            "{err}"
        );
    }

    /// Run with `cargo test --release -p tinygen --lib csv_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn csv_speed() {
        let mut text = (0..16)
            .map(|j| format!("c{j}"))
            .collect::<Vec<_>>()
            .join(",");
        text.push('\n');
        for i in 0..100_000 {
            let row: Vec<String> = (0..16)
                .map(|j| format!("{:.6}", (i * 16 + j) as f64 * 0.001 - 3.0))
                .collect();
            text.push_str(&row.join(","));
            text.push('\n');
        }
        let (_dir, path) = write("big.csv", &text);
        let t = std::time::Instant::now();
        let d = load(&path, &LoadOptions::default()).unwrap();
        let elapsed = t.elapsed();
        println!("loaded {}x{} in {elapsed:?}", d.rows, d.cols);
        assert_eq!((d.rows, d.cols), (100_000, 16));
    }
}
