//! Data sets for the neural trainer: rows of `f32` features with optional
//! integer class labels, often images.
//!
//! [`load_samples`] takes a spec that names a data set or a file:
//!
//! * `digits` — the 8x8 UCI handwritten digits (1,797 images, classes 0..9),
//!   built into the binary, so it works from any directory. Pixel values
//!   0..16 are scaled to [0, 1] by /16. Fixed split: row `i` (0-based, file
//!   order) is in the test part when `i % 5 == 4` (359 rows), else in the
//!   train part (1,438 rows).
//! * `mnist` — MNIST (60,000 train and 10,000 test images of 28x28, classes
//!   0..9) from the four IDX files in the data directory (default
//!   [`DEFAULT_MNIST_DIR`]), as `tinygen data mnist` stores them; gzipped or
//!   not. Pixel values 0..255 are scaled to [0, 1] by /255.
//! * the path of an IDX images file (`…-images-idx3-ubyte[.gz]`), scaled by
//!   /255; the labels come from the matching `…-labels-idx1-ubyte[.gz]` file
//!   beside it when there is one.
//! * the path of a CSV, CSV.gz or NPY file (see [`crate::data::load`]), values
//!   taken as they are: images are expected in [0, 1]. A label column is
//!   optional; its values must be whole numbers in `0..=u32::MAX`. When the
//!   number of features is a perfect square s², rows are taken as s x s images.
//!
//! For a file, the split does not apply: the whole file is returned (keep
//! train and test data in separate files). The label column applies to CSV
//! and NPY files only; named sets and IDX files carry their own labels.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{DataError, LoadOptions, idx};

/// The default directory of the MNIST files, relative to the current directory.
pub const DEFAULT_MNIST_DIR: &str = "data/mnist";

/// The 8x8 digits as scikit-learn ships them: 1,797 rows of 64 pixel values
/// 0..16 and the class, no header.
static DIGITS_CSV_GZ: &[u8] = include_bytes!("../../../data/digits.csv.gz");

/// Which part of a named data set to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The training part.
    Train,
    /// The held-out test part.
    Test,
}

/// Rows of `f32` features, optionally labelled, optionally images.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    /// A short name for messages: `digits`, `mnist`, or the file name.
    pub name: String,
    /// Number of rows.
    pub n: usize,
    /// Features per row.
    pub dim: usize,
    /// `n * dim` values, row-major.
    pub x: Vec<f32>,
    /// One class label per row, if the data have labels.
    pub labels: Option<Vec<u32>>,
    /// `(height, width)` when the rows are images (`height * width == dim`).
    pub image: Option<(usize, usize)>,
}

impl Samples {
    /// The features of row `i`.
    ///
    /// # Panics
    /// If `i >= self.n`.
    pub fn row(&self, i: usize) -> &[f32] {
        assert!(i < self.n, "row {i} out of range ({} rows)", self.n);
        &self.x[i * self.dim..(i + 1) * self.dim]
    }

    /// How many rows have each label `0..=max label`, if there are labels.
    pub fn label_counts(&self) -> Option<Vec<usize>> {
        let labels = self.labels.as_ref()?;
        let k = labels.iter().max().map_or(0, |&m| m as usize + 1);
        let mut counts = vec![0; k];
        for &l in labels {
            counts[l as usize] += 1;
        }
        Some(counts)
    }
}

/// Loads a data set: `digits`, `mnist`, or the path of an IDX, CSV, CSV.gz or
/// NPY file (see the [module documentation](self)).
///
/// `data_dir` is where `mnist` looks for its files (default
/// [`DEFAULT_MNIST_DIR`]); `split` chooses the part of a named set;
/// `label_column` names the label column of a CSV or NPY file.
pub fn load_samples(
    spec: &str,
    data_dir: Option<&Path>,
    split: Split,
    label_column: Option<&str>,
) -> Result<Samples, DataError> {
    match spec {
        "digits" => digits(split),
        "mnist" => mnist(data_dir.unwrap_or(Path::new(DEFAULT_MNIST_DIR)), split),
        _ => {
            let path = Path::new(spec);
            let lower = file_name(path).to_ascii_lowercase();
            if lower.ends_with(".csv") || lower.ends_with(".csv.gz") || lower.ends_with(".npy") {
                table(path, label_column)
            } else if path.is_file() {
                idx_images(path)
            } else if path.exists() || spec.contains(['/', '\\', '.']) {
                // A directory, or a path that looks like one: say why it cannot be read.
                Err(DataError::Io {
                    path: path.to_path_buf(),
                    source: std::fs::File::open(path)
                        .err()
                        .unwrap_or_else(|| std::io::Error::other("not a file")),
                })
            } else {
                Err(DataError::UnknownDataset {
                    spec: spec.to_string(),
                })
            }
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `Some((s, s))` when `dim == s * s`.
fn square(dim: usize) -> Option<(usize, usize)> {
    let s = (dim as f64).sqrt().round() as usize;
    (s * s == dim && dim > 0).then_some((s, s))
}

/// The built-in 8x8 digits.
fn digits(split: Split) -> Result<Samples, DataError> {
    let path = Path::new("digits.csv.gz (built in)");
    let malformed = |reason: String| DataError::MalformedCsv {
        path: path.to_path_buf(),
        reason,
    };
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut text)
        .map_err(|e| malformed(format!("cannot gunzip: {e}")))?;
    const DIM: usize = 64;
    let mut x = Vec::new();
    let mut labels = Vec::new();
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let in_test = i % 5 == 4;
        if in_test != (split == Split::Test) {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != DIM + 1 {
            return Err(malformed(format!(
                "row {} has {} fields, expected {}",
                i + 1,
                fields.len(),
                DIM + 1
            )));
        }
        for (j, f) in fields.iter().enumerate() {
            let v: u32 = f
                .trim()
                .parse()
                .ok()
                .filter(|&v| if j < DIM { v <= 16 } else { v <= 9 })
                .ok_or_else(|| malformed(format!("row {}: bad value {f:?}", i + 1)))?;
            if j < DIM {
                x.push(v as f32 / 16.0);
            } else {
                labels.push(v);
            }
        }
    }
    Ok(Samples {
        name: "digits".to_string(),
        n: labels.len(),
        dim: DIM,
        x,
        labels: Some(labels),
        image: Some((8, 8)),
    })
}

/// The file in `dir` called `name.gz` or `name`, if either exists.
fn find_in(dir: &Path, name: &str) -> Option<PathBuf> {
    [format!("{name}.gz"), name.to_string()]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// MNIST from `dir`.
fn mnist(dir: &Path, split: Split) -> Result<Samples, DataError> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images_name = format!("{prefix}-images-idx3-ubyte");
    let labels_name = format!("{prefix}-labels-idx1-ubyte");
    let images = find_in(dir, &images_name);
    let labels = find_in(dir, &labels_name);
    let (Some(images), Some(labels)) = (images.clone(), labels.clone()) else {
        let missing = [(images, images_name), (labels, labels_name)]
            .into_iter()
            .filter(|(found, _)| found.is_none())
            .map(|(_, name)| format!("{name}.gz"))
            .collect();
        let dir_arg = if dir == Path::new(DEFAULT_MNIST_DIR) {
            String::new()
        } else {
            format!(" --dir {}", dir.display())
        };
        return Err(DataError::MnistMissing {
            dir: dir.to_path_buf(),
            missing,
            dir_arg,
        });
    };
    let mut samples = idx_pair(&images, Some(&labels))?;
    if samples.image != Some((28, 28)) {
        return Err(DataError::MalformedIdx {
            path: images,
            reason: format!(
                "expected MNIST images of 28x28 pixels, found rows of {} values",
                samples.dim
            ),
        });
    }
    samples.name = "mnist".to_string();
    Ok(samples)
}

/// An IDX images file and, if it exists, the matching labels file beside it.
fn idx_images(path: &Path) -> Result<Samples, DataError> {
    let name = file_name(path);
    let labels = name
        .contains("images-idx3-ubyte")
        .then(|| {
            let base = name
                .replace("images-idx3-ubyte", "labels-idx1-ubyte")
                .trim_end_matches(".gz")
                .to_string();
            find_in(path.parent().unwrap_or(Path::new("")), &base)
        })
        .flatten();
    idx_pair(path, labels.as_deref())
}

/// Images from an IDX file (3-D: count, height, width; or 2-D: count,
/// features) scaled by /255, with labels from a 1-D IDX file.
fn idx_pair(images: &Path, labels: Option<&Path>) -> Result<Samples, DataError> {
    let arr = idx::read(images)?;
    let malformed = |reason: String| DataError::MalformedIdx {
        path: images.to_path_buf(),
        reason,
    };
    let (n, dim, image) = match arr.dims[..] {
        [n, h, w] => (n, h * w, Some((h, w))),
        [n, d] => (n, d, square(d)),
        ref dims => {
            return Err(malformed(format!(
                "expected images of 3 dimensions (count, height, width) or 2 (count, \
                 features), found {} dimensions {dims:?}",
                dims.len()
            )));
        }
    };
    if n == 0 || dim == 0 {
        return Err(DataError::Empty {
            path: images.to_path_buf(),
            reason: format!("no data: dimensions {:?}", arr.dims),
        });
    }
    let labels = match labels {
        None => None,
        Some(lp) => {
            let l = idx::read(lp)?;
            if l.dims.len() != 1 {
                return Err(DataError::MalformedIdx {
                    path: lp.to_path_buf(),
                    reason: format!(
                        "expected labels of 1 dimension, found dimensions {:?}",
                        l.dims
                    ),
                });
            }
            if l.dims[0] != n {
                return Err(DataError::Mismatch {
                    path: images.to_path_buf(),
                    other: lp.to_path_buf(),
                    reason: format!("{n} images but {} labels", l.dims[0]),
                });
            }
            Some(l.data.into_iter().map(u32::from).collect())
        }
    };
    Ok(Samples {
        name: file_name(images),
        n,
        dim,
        x: arr.data.iter().map(|&b| f32::from(b) / 255.0).collect(),
        labels,
        image,
    })
}

/// A CSV or NPY table, values as they are.
fn table(path: &Path, label_column: Option<&str>) -> Result<Samples, DataError> {
    let opts = LoadOptions {
        label_column: label_column.map(str::to_string),
        drop_columns: Vec::new(),
    };
    let d = super::load(path, &opts)?;
    if d.rows == 0 || d.cols == 0 {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            reason: "no data rows".to_string(),
        });
    }
    let labels = d
        .labels
        .as_ref()
        .map(|ls| {
            ls.iter()
                .enumerate()
                .map(|(i, &v)| {
                    if v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) {
                        Ok(v as u32)
                    } else {
                        Err(DataError::BadLabel {
                            path: path.to_path_buf(),
                            row: i + 1,
                            value: v,
                        })
                    }
                })
                .collect::<Result<Vec<u32>, _>>()
        })
        .transpose()?;
    Ok(Samples {
        name: file_name(path),
        n: d.rows,
        dim: d.cols,
        x: d.to_f32(),
        labels,
        image: square(d.cols),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, idx::TYPE_U8, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn load(spec: &Path) -> Result<Samples, DataError> {
        load_samples(spec.to_str().unwrap(), None, Split::Train, None)
    }

    #[test]
    fn digits_split_is_fixed_and_complete() {
        let train = load_samples("digits", None, Split::Train, None).unwrap();
        let test = load_samples("digits", None, Split::Test, None).unwrap();
        assert_eq!((train.n, test.n), (1438, 359));
        for s in [&train, &test] {
            assert_eq!(s.dim, 64);
            assert_eq!(s.image, Some((8, 8)));
            assert_eq!(s.x.len(), s.n * 64);
            assert!(s.x.iter().all(|&v| (0.0..=1.0).contains(&v)));
            assert_eq!(s.labels.as_ref().unwrap().len(), s.n);
            assert_eq!(s.label_counts().unwrap().len(), 10);
        }
        // The first test row is file row 4 (a 4).
        assert_eq!(test.labels.as_ref().unwrap()[0], 4);
        assert_eq!(train.labels.as_ref().unwrap()[..4], [0, 1, 2, 3]);
        assert_eq!(train.row(0)[2], 5.0 / 16.0);
    }

    #[test]
    fn idx_file_with_matching_labels() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("tiny-images-idx3-ubyte.gz");
        let pixels: Vec<u8> = (0..12).map(|i| i * 20).collect();
        std::fs::write(&images, gzip(&idx_bytes(&[3, 2, 2], &pixels))).unwrap();
        // Unlabelled while the labels file is absent.
        let s = load(&images).unwrap();
        assert_eq!((s.n, s.dim, s.image), (3, 4, Some((2, 2))));
        assert_eq!(s.labels, None);
        assert_eq!(
            s.row(1),
            &[80.0 / 255.0, 100.0 / 255.0, 120.0 / 255.0, 140.0 / 255.0]
        );
        assert_eq!(s.name, "tiny-images-idx3-ubyte.gz");
        // The labels file may be raw while the images are gzipped.
        let labels = dir.path().join("tiny-labels-idx1-ubyte");
        std::fs::write(&labels, idx_bytes(&[3], &[2, 0, 2])).unwrap();
        let s = load(&images).unwrap();
        assert_eq!(s.labels, Some(vec![2, 0, 2]));
        assert_eq!(s.label_counts(), Some(vec![1, 0, 2]));
        // Label count mismatch.
        std::fs::write(&labels, idx_bytes(&[2], &[2, 0])).unwrap();
        let e = load(&images).unwrap_err();
        assert!(matches!(e, DataError::Mismatch { .. }), "{e:?}");
        assert!(e.to_string().contains("3 images but 2 labels"), "{e}");
        // Labels must be 1-D.
        std::fs::write(&labels, idx_bytes(&[3, 1], &[2, 0, 1])).unwrap();
        assert!(
            load(&images)
                .unwrap_err()
                .to_string()
                .contains("1 dimension")
        );
    }

    #[test]
    fn idx_shapes_and_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("flat.idx");
        std::fs::write(&p, idx_bytes(&[2, 9], &[255; 18])).unwrap();
        let s = load(&p).unwrap();
        assert_eq!((s.n, s.dim, s.image), (2, 9, Some((3, 3))));
        assert!(s.x.iter().all(|&v| v == 1.0));
        std::fs::write(&p, idx_bytes(&[2, 3], &[0; 6])).unwrap();
        assert_eq!(load(&p).unwrap().image, None);
        std::fs::write(&p, idx_bytes(&[6], &[0; 6])).unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("3 dimensions"));
        std::fs::write(&p, idx_bytes(&[0, 28, 28], &[])).unwrap();
        let e = load(&p).unwrap_err();
        assert!(matches!(e, DataError::Empty { .. }), "{e:?}");
    }

    #[test]
    fn csv_values_are_kept_and_labels_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.csv");
        std::fs::write(&p, "a,b,c,d,y\n0,0.5,1,0.25,3\n1,1,0,0,0\n").unwrap();
        let s = load_samples(p.to_str().unwrap(), None, Split::Test, Some("y")).unwrap();
        assert_eq!((s.n, s.dim, s.image), (2, 4, Some((2, 2))));
        assert_eq!(s.row(0), &[0.0, 0.5, 1.0, 0.25]);
        assert_eq!(s.labels, Some(vec![3, 0]));
        // Without a label column every column is a feature.
        let s = load(&p).unwrap();
        assert_eq!((s.dim, s.image, s.labels), (5, None, None));
        for bad in ["1.5", "-1", "4294967296"] {
            std::fs::write(&p, format!("a,y\n0,1\n1,{bad}\n")).unwrap();
            let e = load_samples(p.to_str().unwrap(), None, Split::Train, Some("y")).unwrap_err();
            assert!(matches!(e, DataError::BadLabel { row: 2, .. }), "{e:?}");
            assert!(e.to_string().contains("d.csv: data row 2"), "{e}");
        }
        std::fs::write(&p, "a,b\n").unwrap();
        assert!(matches!(load(&p).unwrap_err(), DataError::Empty { .. }));
        std::fs::write(&p, "1,2\n3\n").unwrap();
        assert!(matches!(load(&p).unwrap_err(), DataError::RaggedRow { .. }));
    }

    #[test]
    fn missing_mnist_tells_how_to_get_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_samples("mnist", Some(dir.path()), Split::Test, None).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, DataError::MnistMissing { .. }), "{e:?}");
        assert!(msg.contains("t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"));
        assert!(msg.contains("tinygen data mnist --dir"), "{msg}");
        assert!(msg.contains("--from DIR"), "{msg}");
        let e = mnist(Path::new(DEFAULT_MNIST_DIR), Split::Train)
            .err()
            .map(|e| e.to_string());
        if let Some(msg) = e.filter(|m| m.contains("MNIST is not in")) {
            assert!(
                msg.contains("run `tinygen data mnist` to download"),
                "{msg}"
            );
        }
    }

    #[test]
    fn mnist_images_must_be_28x28() {
        let dir = tempfile::tempdir().unwrap();
        let w = |name: &str, bytes: Vec<u8>| std::fs::write(dir.path().join(name), bytes).unwrap();
        w("t10k-images-idx3-ubyte", idx_bytes(&[1, 2, 2], &[0; 4]));
        w("t10k-labels-idx1-ubyte.gz", gzip(&idx_bytes(&[1], &[7])));
        let e = load_samples("mnist", Some(dir.path()), Split::Test, None).unwrap_err();
        assert!(e.to_string().contains("28x28"), "{e}");
        w(
            "t10k-images-idx3-ubyte",
            idx_bytes(&[1, 28, 28], &[255; 784]),
        );
        let s = load_samples("mnist", Some(dir.path()), Split::Test, None).unwrap();
        assert_eq!((s.n, s.dim, s.image), (1, 784, Some((28, 28))));
        assert_eq!(s.labels, Some(vec![7]));
        assert_eq!(s.name, "mnist");
    }

    #[test]
    fn unknown_names_and_missing_paths() {
        let e = load_samples("mnsit", None, Split::Train, None).unwrap_err();
        assert!(matches!(e, DataError::UnknownDataset { .. }), "{e:?}");
        assert!(e.to_string().contains("'mnsit'") && e.to_string().contains("digits, mnist"));
        let e = load_samples("no/such-images-idx3-ubyte.gz", None, Split::Train, None).unwrap_err();
        assert!(matches!(e, DataError::Io { .. }), "{e:?}");
        let e = load_samples("no/such.csv", None, Split::Train, None).unwrap_err();
        assert!(matches!(e, DataError::Io { .. }), "{e:?}");
    }
}
