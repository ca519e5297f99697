//! `tinygen data mnist` against a local HTTP server on 127.0.0.1, and the
//! data sets of `tinygen::data::images::load_samples`.
//!
//! The tests with the real MNIST files use the project's shared data
//! directory (`$TINYGEN_SHARED`, else `../shared` beside the workspace) and
//! are skipped with a message when it is absent; the downloader logic is also
//! tested everywhere with tiny synthetic files and an injected checksum table.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tinygen::data::fetch::{Checksum, MNIST_FILES, Obtained, download, import, md5_hex};
use tinygen::data::images::{Samples, Split, load_samples};

/// MNIST's label counts, digits 0..9.
const TRAIN_COUNTS: [usize; 10] = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];
const TEST_COUNTS: [usize; 10] = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];
const TINY_COUNTS: [usize; 10] = [85, 126, 116, 107, 110, 87, 87, 99, 89, 94];

/// The shared data directory, `$TINYGEN_SHARED/data` or `<workspace>/../shared/data`.
fn shared_data() -> PathBuf {
    let shared = std::env::var_os("TINYGEN_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    shared.join("data")
}

/// `shared/data/NAME` if it holds all of `files`, else `None` after printing
/// what is absent.
fn shared_set(name: &str, files: &[&str], test: &str) -> Option<PathBuf> {
    let dir = shared_data().join(name);
    let missing: Vec<String> = files
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED {test}: {} absent (set TINYGEN_SHARED to the shared directory)",
            missing.join(", ")
        );
        None
    }
}

fn real_mnist(test: &str) -> Option<PathBuf> {
    let names: Vec<String> = MNIST_FILES
        .iter()
        .map(|f| format!("{}.gz", f.name))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    shared_set("mnist", &names, test)
}

/// A minimal HTTP/1.1 server on 127.0.0.1 answering `GET /NAME` with the
/// bytes of `files[NAME]` (404 otherwise). It serves at most 64 requests,
/// stops after 2 minutes, and stops when dropped.
struct Server {
    base: String,
    stop: Arc<AtomicBool>,
    /// Set once a [`Cut::Stall`] response has sent its first half.
    stalled: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// How the server breaks a response (it announces the full length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Sends the first half of the body, then closes the connection.
    Drop,
    /// Sends the first half of the body, then waits (until the server stops).
    Stall,
}

impl Server {
    fn start(files: HashMap<String, Vec<u8>>) -> Server {
        Server::start_with_cuts(files, HashMap::new())
    }

    /// As [`Server::start`], with the responses of the files in `cuts` broken.
    fn start_with_cuts(files: HashMap<String, Vec<u8>>, cuts: HashMap<String, Cut>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!(
            "http://127.0.0.1:{}/",
            listener.local_addr().unwrap().port()
        );
        let stop = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (stop2, stalled2) = (stop.clone(), stalled.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut served = 0;
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline && served < 64 {
                match listener.accept() {
                    Ok((stream, _)) => {
                        served += 1;
                        let _ = respond(stream, &files, &cuts, (&stop2, &stalled2));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => break,
                }
            }
        });
        Server {
            base,
            stop,
            stalled,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn respond(
    mut stream: TcpStream,
    files: &HashMap<String, Vec<u8>>,
    cuts: &HashMap<String, Cut>,
    (stop, stalled): (&AtomicBool, &AtomicBool),
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 << 10 {
        let k = stream.read(&mut buf)?;
        if k == 0 {
            break;
        }
        request.extend_from_slice(&buf[..k]);
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("/");
    let name = path.trim_start_matches('/');
    let (status, body) = match files.get(name) {
        Some(body) => ("200 OK", &body[..]),
        None => ("404 Not Found", &b"not found"[..]),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    let Some(&cut) = cuts.get(name) else {
        stream.write_all(body)?;
        return stream.flush();
    };
    stream.write_all(&body[..body.len() / 2])?;
    stream.flush()?;
    if cut == Cut::Stall {
        stalled.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    // Dropping the stream closes the connection mid-body.
    Ok(())
}

fn tinygen(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tinygen"));
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(args).output().expect("run tinygen")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// A raw IDX file of unsigned bytes.
fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// The file names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn assert_mnist(s: &Samples, n: usize, counts: &[usize; 10]) {
    assert_eq!((s.n, s.dim, s.image), (n, 784, Some((28, 28))));
    assert_eq!(s.x.len(), n * 784);
    assert!(s.x.iter().all(|&v| (0.0..=1.0).contains(&v)));
    assert_eq!(s.label_counts().unwrap(), counts.to_vec());
}

/// Two tiny 28x28 MNIST-like files (raw) and a checksum table for them.
struct Synthetic {
    images: Vec<u8>,
    labels: Vec<u8>,
    md5s: [String; 2],
}

impl Synthetic {
    fn new() -> Self {
        let pixels: Vec<u8> = (0..3 * 784).map(|i| (i * 31 % 256) as u8).collect();
        let images = idx(&[3, 28, 28], &pixels);
        let labels = idx(&[3], &[4, 0, 4]);
        let md5s = [md5_hex(&images), md5_hex(&labels)];
        Synthetic {
            images,
            labels,
            md5s,
        }
    }

    fn table(&self) -> [Checksum<'_>; 2] {
        [
            Checksum {
                name: "train-images-idx3-ubyte",
                md5: &self.md5s[0],
            },
            Checksum {
                name: "train-labels-idx1-ubyte",
                md5: &self.md5s[1],
            },
        ]
    }

    /// What a mirror serves: the two files gzipped, `labels` in place of the real labels.
    fn served(&self, labels_gz: Vec<u8>) -> HashMap<String, Vec<u8>> {
        HashMap::from([
            ("train-images-idx3-ubyte.gz".to_string(), gzip(&self.images)),
            ("train-labels-idx1-ubyte.gz".to_string(), labels_gz),
        ])
    }
}

#[test]
fn downloader_verifies_with_an_injected_table() {
    let syn = Synthetic::new();
    let table = syn.table();
    let good = Server::start(syn.served(gzip(&syn.labels)));
    let tmp = tempfile::tempdir().unwrap();

    // Download, then load what was written.
    let dir = tmp.path().join("ok");
    let got = download(&dir, &[&good.base], &table).unwrap();
    assert_eq!(got.len(), 2);
    assert!(
        got.iter()
            .all(|f| matches!(&f.how, Obtained::Downloaded(url) if url.starts_with(&good.base))),
        "{got:?}"
    );
    assert_eq!(
        listing(&dir),
        ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    );
    let s = load_samples("mnist", Some(&dir), Split::Train, None).unwrap();
    assert_eq!((s.n, s.labels.as_deref()), (3, Some(&[4, 0, 4][..])));
    // A second run finds them present and valid.
    let again = download(&dir, &[&good.base], &table).unwrap();
    assert!(again.iter().all(|f| f.how == Obtained::AlreadyPresent));

    // One byte flipped in the raw labels: rejected, nothing written for it.
    let mut bad = syn.labels.clone();
    *bad.last_mut().unwrap() ^= 0x01;
    let corrupt = Server::start(syn.served(gzip(&bad)));
    let dir = tmp.path().join("corrupt");
    let err = format!(
        "{:#}",
        download(&dir, &[&corrupt.base], &table).unwrap_err()
    );
    for needle in [
        "train-labels-idx1-ubyte.gz",
        "MD5 mismatch",
        &syn.md5s[1],
        &md5_hex(&bad),
    ] {
        assert!(err.contains(needle), "error lacks {needle:?}: {err}");
    }
    assert_eq!(listing(&dir), ["train-images-idx3-ubyte.gz"], "{err}");

    // A byte flipped in the gzip stream: rejected too.
    let mut gz = gzip(&syn.labels);
    let mid = gz.len() / 2;
    gz[mid] ^= 0x10;
    let broken = Server::start(syn.served(gz));
    let dir = tmp.path().join("broken");
    let err = format!("{:#}", download(&dir, &[&broken.base], &table).unwrap_err());
    assert!(err.contains("gzip") && err.contains(&syn.md5s[1]), "{err}");
    assert_eq!(listing(&dir), ["train-images-idx3-ubyte.gz"]);

    // The next mirror is tried when one fails; the invalid file is replaced.
    let empty = Server::start(HashMap::new());
    let dir = tmp.path().join("fallback");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), b"garbage").unwrap();
    let got = download(&dir, &[&empty.base, &corrupt.base, &good.base], &table).unwrap();
    let from = |i: usize, base: &str| matches!(&got[i].how, Obtained::Downloaded(url) if url.starts_with(base));
    assert!(from(0, &corrupt.base) && from(1, &good.base), "{got:?}");
    assert_eq!(
        listing(&dir),
        ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    );

    // Only a mirror without the files: every file fails, with the status.
    let dir = tmp.path().join("absent");
    let err = format!("{:#}", download(&dir, &[&empty.base], &table).unwrap_err());
    assert!(err.contains("2 of 2 files") && err.contains("404"), "{err}");
    assert!(listing(&dir).is_empty());
}

/// The id of a process that has exited.
fn dead_pid() -> u32 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tinygen"))
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn interrupted_downloads_leave_nothing_a_later_run_trusts() {
    let syn = Synthetic::new();
    let table = syn.table();
    let labels = "train-labels-idx1-ubyte.gz".to_string();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mnist");

    // The connection drops halfway through the labels: an error naming the
    // URL, and nothing under the labels' name (nor a temporary file).
    let dropping = Server::start_with_cuts(
        syn.served(gzip(&syn.labels)),
        HashMap::from([(labels.clone(), Cut::Drop)]),
    );
    let err = format!(
        "{:#}",
        download(&dir, &[&dropping.base], &table).unwrap_err()
    );
    assert!(
        err.contains("1 of 2 files") && err.contains(&format!("{}{labels}", dropping.base)),
        "{err}"
    );
    assert_eq!(listing(&dir), ["train-images-idx3-ubyte.gz"]);

    // A truncated copy under the final name (as a non-atomic writer would
    // leave), beside tinygen's temporary files of a killed process and files
    // that are not tinygen's: the next run does not trust the truncated copy
    // but verifies it, downloads a good one, and removes only the stale
    // temporary files.
    let good = gzip(&syn.labels);
    std::fs::write(dir.join(&labels), &good[..good.len() / 2]).unwrap();
    let dead = dead_pid();
    let stale = [
        format!(".{labels}.tinygen-tmp-{dead}-AbC123"),
        format!(".train-images-idx3-ubyte.gz.tinygen-tmp-{dead}-q1w2e3"),
    ];
    let unrelated = [
        ".tmpAbC123",
        "notes.tinygen-tmp-1-abcdef",
        ".train-labels.tinygen-tmp",
    ];
    for n in stale.iter().map(String::as_str).chain(unrelated) {
        std::fs::write(dir.join(n), b"partial").unwrap();
    }
    let server = Server::start(syn.served(good.clone()));
    let got = download(&dir, &[&server.base], &table).unwrap();
    assert_eq!(got[0].how, Obtained::AlreadyPresent);
    assert!(
        matches!(&got[1].how, Obtained::Downloaded(url) if url.starts_with(&server.base)),
        "{got:?}"
    );
    assert_eq!(std::fs::read(dir.join(&labels)).unwrap(), good);
    let mut expected: Vec<String> = unrelated.iter().map(|s| s.to_string()).collect();
    expected.extend(["train-images-idx3-ubyte.gz".into(), labels.clone()]);
    expected.sort();
    assert_eq!(listing(&dir), expected);
    let s = load_samples("mnist", Some(&dir), Split::Train, None).unwrap();
    assert_eq!(s.n, 3);
}

#[cfg(unix)]
#[test]
fn a_killed_download_leaves_no_file() {
    // `tinygen data mnist` killed (SIGKILL) while a file is half received.
    let syn = Synthetic::new();
    let first = format!("{}.gz", MNIST_FILES[0].name);
    let files: HashMap<String, Vec<u8>> = MNIST_FILES
        .iter()
        .map(|f| (format!("{}.gz", f.name), gzip(&syn.images)))
        .collect();
    let server = Server::start_with_cuts(files, HashMap::from([(first, Cut::Stall)]));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mnist");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tinygen"));
    for var in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"] {
        cmd.env_remove(var);
    }
    let mut child = cmd
        .args(["data", "mnist", "--mirror", &server.base, "--dir"])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.stalled.load(Ordering::Relaxed) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        server.stalled.load(Ordering::Relaxed),
        "the download never started"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(listing(&dir).is_empty(), "{:?}", listing(&dir));
}

#[test]
fn import_verifies_local_copies() {
    let syn = Synthetic::new();
    let table = syn.table();
    let tmp = tempfile::tempdir().unwrap();
    // Raw (un-gzipped) names are accepted and kept.
    let from = tmp.path().join("from");
    std::fs::create_dir_all(&from).unwrap();
    std::fs::write(from.join("train-images-idx3-ubyte"), &syn.images).unwrap();
    std::fs::write(from.join("train-labels-idx1-ubyte.gz"), gzip(&syn.labels)).unwrap();
    let dir = tmp.path().join("dest");
    let got = import(&from, &dir, &table).unwrap();
    assert!(got.iter().all(|f| matches!(f.how, Obtained::Imported(_))));
    assert_eq!(
        listing(&dir),
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte.gz"]
    );
    assert_eq!(
        load_samples("mnist", Some(&dir), Split::Train, None)
            .unwrap()
            .n,
        3
    );

    // A corrupted source is rejected; a missing one is named.
    let mut bad = syn.images.clone();
    bad[100] ^= 0x80;
    std::fs::write(from.join("train-images-idx3-ubyte"), &bad).unwrap();
    std::fs::remove_file(from.join("train-labels-idx1-ubyte.gz")).unwrap();
    let dir = tmp.path().join("dest2");
    let err = format!("{:#}", import(&from, &dir, &table).unwrap_err());
    assert!(
        err.contains("MD5 mismatch") && err.contains(&md5_hex(&bad)),
        "{err}"
    );
    assert!(
        err.contains("neither train-labels-idx1-ubyte.gz nor train-labels-idx1-ubyte"),
        "{err}"
    );
    assert!(listing(&dir).is_empty());
}

#[test]
fn cli_rejects_files_that_are_not_mnist() {
    // Served bytes that are valid gzip but not the canonical MNIST content.
    let syn = Synthetic::new();
    let files: HashMap<String, Vec<u8>> = MNIST_FILES
        .iter()
        .map(|f| (format!("{}.gz", f.name), gzip(&syn.labels)))
        .collect();
    let server = Server::start(files);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mnist");
    let out = tinygen(&[
        "data",
        "mnist",
        "--mirror",
        &server.base,
        "--dir",
        dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure:\n{stderr}");
    for needle in [
        "4 of 4 files",
        "MD5 mismatch",
        "train-images-idx3-ubyte.gz",
        "6bbc9ace898e44ae57da46a324031adb",
        &md5_hex(&syn.labels),
    ] {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
    assert!(listing(&dir).is_empty(), "{:?}", listing(&dir));
    // And loading tells how to get MNIST.
    let err = load_samples("mnist", Some(&dir), Split::Train, None).unwrap_err();
    assert!(err.to_string().contains("tinygen data mnist"), "{err}");
}

#[test]
fn real_mnist_through_a_local_mirror() {
    let Some(src) = real_mnist("real_mnist_through_a_local_mirror") else {
        return;
    };
    let files: HashMap<String, Vec<u8>> = MNIST_FILES
        .iter()
        .map(|f| {
            let name = format!("{}.gz", f.name);
            let bytes = std::fs::read(src.join(&name)).unwrap();
            (name, bytes)
        })
        .collect();
    let tmp = tempfile::tempdir().unwrap();

    // (a) The real files download, verify and load.
    let server = Server::start(files.clone());
    let dir = tmp.path().join("mnist");
    let d = dir.to_str().unwrap();
    let out = tinygen(&["data", "mnist", "--mirror", &server.base, "--dir", d]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let train = load_samples("mnist", Some(&dir), Split::Train, None).unwrap();
    assert_mnist(&train, 60000, &TRAIN_COUNTS);
    let test = load_samples("mnist", Some(&dir), Split::Test, None).unwrap();
    assert_mnist(&test, 10000, &TEST_COUNTS);
    // A second run skips the valid files.
    let out = tinygen(&["data", "mnist", "--mirror", &server.base, "--dir", d]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("0 of 4 files new"),
        "{stdout}"
    );
    drop(server);

    // --from imports local copies.
    let imported = tmp.path().join("imported");
    let out = tinygen(&[
        "data",
        "mnist",
        "--from",
        src.to_str().unwrap(),
        "--dir",
        imported.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(listing(&imported).len(), 4);

    // (b) One byte flipped in the test labels: rejected with both MD5s, not written.
    let mut raw = gunzip(&files["t10k-labels-idx1-ubyte.gz"]);
    raw[100] ^= 0x01;
    let mut corrupted = files;
    corrupted.insert("t10k-labels-idx1-ubyte.gz".to_string(), gzip(&raw));
    let server = Server::start(corrupted);
    let dir = tmp.path().join("corrupted");
    let out = tinygen(&[
        "data",
        "mnist",
        "--mirror",
        &server.base,
        "--dir",
        dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure:\n{stderr}");
    for needle in [
        "t10k-labels-idx1-ubyte.gz",
        "MD5 mismatch",
        "27ae3e4e09519cfbb04c329615203637",
        &md5_hex(&raw),
    ] {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
    assert_eq!(
        listing(&dir),
        [
            "t10k-images-idx3-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz"
        ]
    );
}

#[test]
fn digits_are_built_in() {
    let train = load_samples("digits", None, Split::Train, None).unwrap();
    let test = load_samples("digits", None, Split::Test, None).unwrap();
    assert_eq!(train.n + test.n, 1797);
    let mut counts = [0usize; 10];
    for s in [&train, &test] {
        assert_eq!((s.dim, s.image), (64, Some((8, 8))));
        assert!(s.x.iter().all(|&v| (0.0..=1.0).contains(&v)));
        for &l in s.labels.as_ref().unwrap() {
            counts[l as usize] += 1;
        }
    }
    // scikit-learn's load_digits: 178 0s, 182 1s, ...
    assert_eq!(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
}

#[test]
fn mnist_tiny_loads_by_path() {
    let files = [
        "mnist-t10k-first1000-images-idx3-ubyte.gz",
        "mnist-t10k-first1000-labels-idx1-ubyte.gz",
    ];
    let Some(dir) = shared_set("mnist-tiny", &files, "mnist_tiny_loads_by_path") else {
        return;
    };
    let path = dir.join(files[0]);
    let s = load_samples(path.to_str().unwrap(), None, Split::Train, None).unwrap();
    assert_mnist(&s, 1000, &TINY_COUNTS);
    assert_eq!(s.name, files[0]);
}
