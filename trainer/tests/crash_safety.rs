//! Crash safety of a run folder: a `tinygen fit` killed with SIGKILL at
//! random moments always resumes (`--resume`) to a complete run whose
//! checkpoint loads, and leaves no temporary file behind; the next fit or
//! resume removes tinygen's stale temporary files and nothing else.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use tinygen::nn::run::load_checkpoint;

const EPOCHS: usize = 6;

fn tinygen(args: &[String]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tinygen"));
    cmd.args(args);
    cmd
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "tinygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A small VAE on the bundled digits that checkpoints after each of its
/// epochs and writes plots at the end.
fn fit_args(run: &Path, epochs: usize, resume: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "fit",
        "vae",
        "--out",
        run.to_str().unwrap(),
        "--hidden",
        "48",
        "--batch-size",
        "64",
        "--epochs",
        &epochs.to_string(),
        "--iw-samples",
        "0",
        "--log",
        "quiet",
    ]
    .map(String::from)
    .to_vec();
    if resume {
        args.push("--resume".into());
    }
    args
}

/// Hidden files in `dir`: tinygen's temporary files (`.NAME.tinygen-tmp-*`)
/// or the `.tmpXXXXXX` ones of earlier versions; a run folder has no other.
fn hidden_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Checks a finished run: the checkpoint loads with every epoch, metrics.json
/// is valid JSON with the whole history, and no temporary file is left.
fn assert_complete(run: &Path, epochs: usize) {
    let (tensors, state) = load_checkpoint(run).expect("the checkpoint loads");
    assert!(!tensors.is_empty());
    assert_eq!(state.epochs_done(), epochs);
    let text = std::fs::read_to_string(run.join("metrics.json")).expect("metrics.json exists");
    let m: Value = serde_json::from_str(&text).expect("metrics.json is valid JSON");
    assert_eq!(m["history"].as_array().unwrap().len(), epochs, "{m}");
    assert!(m["test_loss"].as_f64().unwrap().is_finite());
    for png in [
        "loss.png",
        "latent.png",
        "samples.png",
        "reconstructions.png",
    ] {
        let bytes = std::fs::read(run.join(png)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{png}");
    }
    assert_eq!(
        hidden_files(run),
        Vec::<String>::new(),
        "temporary files left in {}",
        run.display()
    );
}

#[test]
fn killed_fits_resume_to_a_complete_run() {
    let dir = tempfile::tempdir().unwrap();
    // How long a whole run takes here (the kill times are drawn from it):
    // the faster of two, the first paying for cold caches.
    let mut full = Duration::MAX;
    for i in 0..2 {
        let reference = dir.path().join(format!("reference{i}"));
        let started = Instant::now();
        ok(&tinygen(&fit_args(&reference, EPOCHS, false))
            .output()
            .unwrap());
        full = full.min(started.elapsed());
        assert_complete(&reference, EPOCHS);
    }

    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let trials = if full > Duration::from_secs(5) { 6 } else { 10 };
    let mut summary = Vec::new();
    for trial in 0..trials {
        let run: PathBuf = dir.path().join(format!("run{trial}"));
        let delay = full.mul_f64(rng.random_range(0.02..0.9));
        let mut child = tinygen(&fit_args(&run, EPOCHS, false))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        // SIGKILL: no destructor or handler runs.
        let _ = child.kill();
        let status = child.wait().unwrap();
        let left = hidden_files(&run);
        // What the kill left is the previous checkpoint or the new one.
        let done = run
            .join("checkpoint.safetensors")
            .exists()
            .then(|| load_checkpoint(&run).expect("a killed fit's checkpoint loads"))
            .map(|(_, s)| s.epochs_done());
        let configured = run.join("config.json").is_file();
        summary.push(format!(
            "kill at {:.0} ms: {}, config.json {}, epochs checkpointed {done:?}, temporary files {left:?}",
            delay.as_secs_f64() * 1e3,
            if status.success() { "finished" } else { "killed" },
            if configured { "written" } else { "absent" },
        ));
        if configured {
            ok(&tinygen(&fit_args(&run, EPOCHS, true)).output().unwrap());
        } else {
            // Killed before the run folder got its configuration: there is
            // nothing to resume, and --resume says so; a new fit starts it.
            let out = tinygen(&fit_args(&run, EPOCHS, true)).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success() && stderr.contains("config.json"),
                "{stderr}"
            );
            ok(&tinygen(&fit_args(&run, EPOCHS, false)).output().unwrap());
        }
        assert_complete(&run, EPOCHS);
    }
    eprintln!(
        "a full run takes {:.0} ms\n{}",
        full.as_secs_f64() * 1e3,
        summary.join("\n")
    );
}

/// The id of a process that has exited.
fn dead_pid() -> u32 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tinygen"))
        .arg("--version")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn stale_temporary_files_are_removed_by_the_next_fit_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let dead = dead_pid();
    let plant = |names: &[String]| {
        for n in names {
            std::fs::write(run.join(n), b"partial").unwrap();
        }
    };
    // Left by a killed fit: tinygen's temporary files of a dead process.
    let stale = |tag: &str| {
        vec![
            format!(".checkpoint.safetensors.tinygen-tmp-{dead}-{tag}"),
            format!(".config.json.tinygen-tmp-{dead}-{tag}"),
            format!(".loss.png.tinygen-tmp-{dead}-{tag}"),
        ]
    };
    // Not tinygen's, or not stale: kept.
    let kept: Vec<String> = [
        ".tmpAbC123".to_string(),
        "notes.tinygen-tmp-1-abcdef".into(),
        ".checkpoint.safetensors.tinygen-tmp-backup".into(),
        format!(".checkpoint.safetensors.tinygen-tmp-{dead}-AbC123.bak"),
        // This test process is running: its temporary file may be in use.
        format!(".metrics.json.tinygen-tmp-{}-AbC123", std::process::id()),
    ]
    .to_vec();
    let hidden_kept = || {
        let mut v: Vec<String> = kept
            .iter()
            .filter(|n| n.starts_with('.'))
            .cloned()
            .collect();
        v.sort();
        v
    };

    // A new fit into a folder holding stale files.
    plant(&stale("AbC123"));
    plant(&kept);
    let mut args = fit_args(&run, 1, false);
    args.push("--no-plots".into());
    ok(&tinygen(&args).output().unwrap());
    assert_eq!(hidden_files(&run), hidden_kept());

    // A resume.
    plant(&stale("XyZ789"));
    let mut args = fit_args(&run, 2, true);
    args.push("--no-plots".into());
    ok(&tinygen(&args).output().unwrap());
    assert_eq!(hidden_files(&run), hidden_kept());
    let (_, state) = load_checkpoint(&run).unwrap();
    assert_eq!(state.epochs_done(), 2);
    for n in &kept {
        assert_eq!(std::fs::read(run.join(n)).unwrap(), b"partial", "{n}");
    }
}

#[test]
fn a_fit_killed_in_its_first_epoch_resumes_from_the_start() {
    // A fit stopped before its first checkpoint leaves config.json alone;
    // --resume trains from the seed's initial weights, as the fit would have.
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let args = |run: &Path, resume: bool| {
        let mut v = fit_args(run, 2, resume);
        v.push("--no-plots".into());
        v
    };
    ok(&tinygen(&args(&a, false)).output().unwrap());
    ok(&tinygen(&args(&b, false)).output().unwrap());
    std::fs::remove_file(b.join("checkpoint.safetensors")).unwrap();
    std::fs::remove_file(b.join("metrics.json")).unwrap();
    ok(&tinygen(&args(&b, true)).output().unwrap());
    let (wa, sa) = load_checkpoint(&a).unwrap();
    let (wb, sb) = load_checkpoint(&b).unwrap();
    assert_eq!(sb.epochs_done(), 2);
    assert_eq!(
        sa.history.iter().map(|r| r.train_loss).collect::<Vec<_>>(),
        sb.history.iter().map(|r| r.train_loss).collect::<Vec<_>>()
    );
    for (name, t) in &wa {
        let x = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let y = wb[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(x == y, "{name} differs from an uninterrupted run");
    }
    // A folder that is not a run still cannot be resumed.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = tinygen(&args(&empty, true)).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.json"));
}
