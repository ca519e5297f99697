//! Running cargo, the `tinygen` binary and timed closures from the workspace root.

use std::process::Command;

use anyhow::{Context, ensure};
use xtask::root;

/// Runs a command from the workspace root, failing on a non-zero exit.
pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("$ {}", describe(cmd));
    let status = cmd
        .current_dir(root())
        .status()
        .with_context(|| describe(cmd))?;
    ensure!(status.success(), "failed: {}", describe(cmd));
    Ok(())
}

pub(crate) fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Runs this xtask command again from a release build with `features`,
/// unless this build is one and `has_features`: host timings measure what
/// users run (`cargo run --release -p tinygen`), and the `cargo xtask`
/// alias builds the dev profile, whose overflow checks and debug assertions
/// in tinygen's own code made its int8 fast path 1.9x slower. `None` when
/// this build is the one to measure with.
pub(crate) fn rerun_in_release(
    features: &[&str],
    has_features: bool,
) -> Option<anyhow::Result<()>> {
    if !cfg!(debug_assertions) && has_features {
        return None;
    }
    let mut cmd = cargo();
    cmd.args(["run", "--quiet", "--release", "-p", "xtask"]);
    for feature in features {
        cmd.args(["--features", feature]);
    }
    cmd.arg("--").args(std::env::args_os().skip(1));
    Some(run(&mut cmd))
}

/// `tinygen` from a release build.
pub(crate) fn tinygen(args: &[&str]) -> anyhow::Result<()> {
    run(cargo()
        .args(["run", "--quiet", "--release", "-p", "tinygen", "--"])
        .args(args))
}

/// Runs the release `tinygen` binary and returns its standard output.
pub(crate) fn tinygen_output(args: &[&str]) -> anyhow::Result<String> {
    eprintln!("$ tinygen {}", args.join(" "));
    let out = cargo()
        .args(["run", "--quiet", "--release", "-p", "tinygen", "--"])
        .args(args)
        .current_dir(root())
        .stderr(std::process::Stdio::inherit())
        .output()?;
    ensure!(out.status.success(), "tinygen {} failed", args.join(" "));
    Ok(String::from_utf8(out.stdout)?)
}

/// Median wall time of three runs of `f`.
pub(crate) fn median_seconds(mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..3)
        .map(|_| {
            let start = std::time::Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[1]
}
