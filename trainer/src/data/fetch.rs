//! Getting data sets: download MNIST from a public mirror, or import local
//! copies, into a data directory; every file is verified against the
//! canonical MD5 of its raw (gunzipped) content before it is written.
//!
//! A download is held in memory (at most 256 MB) and verified; only then is
//! it written, atomically ([`crate::io::write_atomic`]: a temporary file
//! beside the target, synced, then renamed). So a failed, corrupted or
//! interrupted transfer, or a process killed at any moment, never leaves a
//! partial file under a final name; the temporary file a kill during the
//! write may leave is removed by the next run. Files already present are
//! verified again (not trusted for being there): valid ones are skipped,
//! invalid ones replaced.

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use md5::{Digest, Md5};

use super::idx;

/// A file and the MD5 of its raw content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checksum<'a> {
    /// The raw file name; mirrors serve it gzipped as `{name}.gz`.
    pub name: &'a str,
    /// The MD5 of the raw (gunzipped) content, lowercase hex.
    pub md5: &'a str,
}

/// The four MNIST files and the canonical MD5s of their raw content.
pub const MNIST_FILES: [Checksum<'static>; 4] = [
    Checksum {
        name: "train-images-idx3-ubyte",
        md5: "6bbc9ace898e44ae57da46a324031adb",
    },
    Checksum {
        name: "train-labels-idx1-ubyte",
        md5: "a25bea736e30d166cdddb491f175f624",
    },
    Checksum {
        name: "t10k-images-idx3-ubyte",
        md5: "2646ac647ad5339dbf082846283269ea",
    },
    Checksum {
        name: "t10k-labels-idx1-ubyte",
        md5: "27ae3e4e09519cfbb04c329615203637",
    },
];

/// Public mirrors of the gzipped MNIST files, tried in order.
pub const MNIST_MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

/// The largest response accepted (MNIST's largest file is about 10 MB).
const MAX_DOWNLOAD_BYTES: u64 = 256 << 20;

/// Puts the four MNIST files into `dir`: imported from `from` if given,
/// else downloaded from `mirrors` (the default [`MNIST_MIRRORS`] when
/// empty). See [`import`] and [`download`].
pub fn mnist(dir: &Path, from: Option<&Path>, mirrors: &[&str]) -> anyhow::Result<Vec<Fetched>> {
    match from {
        Some(from) => import(from, dir, &MNIST_FILES),
        None => {
            let mirrors = if mirrors.is_empty() {
                &MNIST_MIRRORS[..]
            } else {
                mirrors
            };
            download(dir, mirrors, &MNIST_FILES).map_err(|e| {
                anyhow::anyhow!(
                    "{e:#}\n(without network access, import local copies with \
                     `tinygen data mnist --from DIR`)"
                )
            })
        }
    }
}

/// How a file came to be in the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Obtained {
    /// It was already there and verified.
    AlreadyPresent,
    /// Downloaded from this URL.
    Downloaded(String),
    /// Copied from this file.
    Imported(PathBuf),
}

/// One verified file in the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Where it is.
    pub path: PathBuf,
    /// How it got there.
    pub how: Obtained,
}

/// The MD5 of `bytes`, lowercase hex.
pub fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Checks that the content of a file (gunzipped first if it starts with the
/// gzip magic bytes) has the MD5 `expected`; `what` names the file in errors.
pub fn verify(what: &str, bytes: &[u8], expected: &str) -> anyhow::Result<()> {
    let mut gunzipped = Vec::new();
    let raw = if idx::is_gzip(bytes) {
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut gunzipped)
            .with_context(|| {
                format!(
                    "{what}: corrupt or truncated gzip data, so its content cannot have \
                     the expected MD5 {expected}"
                )
            })?;
        &gunzipped[..]
    } else {
        bytes
    };
    let actual = md5_hex(raw);
    if !actual.eq_ignore_ascii_case(expected) {
        bail!(
            "{what}: MD5 mismatch: the raw content has MD5 {actual}, expected {expected} \
             (corrupted or not the right file)"
        );
    }
    Ok(())
}

/// Downloads `{name}.gz` of each file from the first of `mirrors` (base URLs)
/// that serves a valid copy, into `dir` (created if needed).
///
/// Files already in `dir` (as `{name}.gz` or `{name}`) that verify are
/// skipped. Every file is tried; if any cannot be had, the error lists each
/// one with the reason from every mirror (e.g. both MD5s for a corrupted
/// copy), and nothing unverified is written.
pub fn download(
    dir: &Path,
    mirrors: &[&str],
    files: &[Checksum<'_>],
) -> anyhow::Result<Vec<Fetched>> {
    if mirrors.is_empty() {
        bail!("no mirror to download from");
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("tinygen/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    obtain(dir, files, |file| {
        let remote = format!("{}.gz", file.name);
        let mut reasons = Vec::new();
        for base in mirrors {
            let url = join_url(base, &remote);
            println!("downloading {url}");
            let attempt = get(&agent, &url).and_then(|bytes| {
                verify(&format!("{remote} from {url}"), &bytes, file.md5).map(|()| bytes)
            });
            match attempt {
                Ok(bytes) => return Ok((remote, bytes, Obtained::Downloaded(url))),
                Err(e) => {
                    println!("  failed: {e:#}");
                    reasons.push(format!("{e:#}"));
                }
            }
        }
        bail!("{}", reasons.join("; "))
    })
}

/// Imports each file from `from` (as `{name}.gz` or `{name}`, kept under the
/// name it has there) into `dir` (created if needed), verifying it first.
/// Files already in `dir` that verify are skipped.
pub fn import(from: &Path, dir: &Path, files: &[Checksum<'_>]) -> anyhow::Result<Vec<Fetched>> {
    obtain(dir, files, |file| {
        let gz = format!("{}.gz", file.name);
        let Some((name, src)) = [gz.clone(), file.name.to_string()]
            .into_iter()
            .map(|n| (n.clone(), from.join(n)))
            .find(|(_, p)| p.is_file())
        else {
            bail!("neither {gz} nor {} is in {}", file.name, from.display());
        };
        let bytes =
            std::fs::read(&src).with_context(|| format!("cannot read {}", src.display()))?;
        verify(&src.display().to_string(), &bytes, file.md5)?;
        Ok((name, bytes, Obtained::Imported(src)))
    })
}

/// The shared loop of [`download`] and [`import`]: `get` returns a verified
/// file's name in `dir`, its bytes and its origin.
fn obtain(
    dir: &Path,
    files: &[Checksum<'_>],
    mut get: impl FnMut(&Checksum<'_>) -> anyhow::Result<(String, Vec<u8>, Obtained)>,
) -> anyhow::Result<Vec<Fetched>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    let removed = crate::io::remove_stale_temp_files(dir).with_context(|| {
        format!(
            "cannot remove the temporary files of an interrupted run from {}",
            dir.display()
        )
    })?;
    for p in &removed {
        println!("removed {} (left by an interrupted run)", p.display());
    }
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for file in files {
        let candidates = [format!("{}.gz", file.name), file.name.to_string()].map(|n| dir.join(n));
        let mut stale = Vec::new();
        let mut present = None;
        for p in candidates.iter().filter(|p| p.is_file()) {
            let check = std::fs::read(p)
                .with_context(|| format!("cannot read {}", p.display()))
                .and_then(|bytes| verify(&p.display().to_string(), &bytes, file.md5));
            match check {
                Ok(()) => {
                    present = Some(p.clone());
                    break;
                }
                Err(e) => {
                    println!("{e:#}; replacing it");
                    stale.push(p.clone());
                }
            }
        }
        if let Some(path) = present {
            println!("{} is present and valid", path.display());
            done.push(Fetched {
                path,
                how: Obtained::AlreadyPresent,
            });
            continue;
        }
        let outcome = get(file).and_then(|(name, bytes, how)| {
            let path = dir.join(name);
            crate::io::write_atomic(&path, &bytes)?;
            Ok(Fetched { path, how })
        });
        match outcome {
            Ok(fetched) => {
                for p in stale.iter().filter(|p| **p != fetched.path) {
                    std::fs::remove_file(p).with_context(|| {
                        format!("cannot remove the invalid file {}", p.display())
                    })?;
                }
                println!("wrote {} (MD5 verified)", fetched.path.display());
                done.push(fetched);
            }
            // Every reason names the file (a URL or a path).
            Err(e) => failed.push(format!("{e:#}")),
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} files could not be obtained, nothing unverified was written:\n  {}",
            failed.len(),
            files.len(),
            failed.join("\n  ")
        );
    }
    Ok(done)
}

/// `base` + `/` + `name`, with exactly one slash between.
fn join_url(base: &str, name: &str) -> String {
    format!("{}/{name}", base.trim_end_matches('/'))
}

/// The body of a successful GET.
fn get(agent: &ureq::Agent, url: &str) -> anyhow::Result<Vec<u8>> {
    let mut response = agent
        .get(url)
        .call()
        .with_context(|| format!("GET {url}"))?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_DOWNLOAD_BYTES)
        .read_to_vec()
        .with_context(|| format!("reading the response of {url}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_of_known_strings() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn urls_are_joined_with_one_slash() {
        assert_eq!(join_url("http://h/m/", "a.gz"), "http://h/m/a.gz");
        assert_eq!(join_url("http://h/m", "a.gz"), "http://h/m/a.gz");
    }

    #[test]
    fn verify_names_both_checksums() {
        let e = verify("f.gz", b"abd", "900150983cd24fb0d6963f7d28e17f72").unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("f.gz: MD5 mismatch"), "{msg}");
        assert!(msg.contains("900150983cd24fb0d6963f7d28e17f72"), "{msg}");
        assert!(msg.contains(&md5_hex(b"abd")), "{msg}");
        verify("f", b"abc", "900150983CD24FB0D6963F7D28E17F72").unwrap();
    }
}
