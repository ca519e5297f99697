//! Helpers the command-line tests share: run the `tinygen` binary, expect
//! success or a failure naming what went wrong, read a run's metrics.
// Each test binary uses its own subset.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Runs `tinygen` with `args`.
pub fn tinygen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tinygen"))
        .args(args)
        .output()
        .expect("run tinygen")
}

/// The standard output of a run that must succeed.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "tinygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Checks that a run failed with every one of `needles` in its error.
pub fn fails(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a failure, got success");
    for n in needles {
        assert!(stderr.contains(n), "{n:?} not in the error: {stderr}");
    }
}

/// A run folder's `metrics.json`.
pub fn metrics(run: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap()
}
