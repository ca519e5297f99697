//! `cargo xtask test`: every test, closing with one summary line.

use anyhow::{Context, ensure};
use xtask::root;

use crate::process::{cargo, describe, run};

pub(crate) fn test() -> anyhow::Result<()> {
    xtask::install_prerequisites()?;
    // The runtime builds no_std for every core, with and without its
    // optional features.
    for core in xtask::Core::ALL {
        run(cargo().args(["build", "-p", "tinygen-runtime", "--target", core.target()]))?;
    }
    run(cargo().args([
        "build",
        "-p",
        "tinygen-runtime",
        "--target",
        xtask::Core::MAIN.target(),
        "--features",
        "defmt,micromath",
    ]))?;
    // Run the workspace's tests, echoing their output, and close with one
    // summary line over every test binary.
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--features", "tinygen/onnx"])
        .current_dir(root())
        .stdout(std::process::Stdio::piped());
    eprintln!("$ {}", describe(&cmd));
    let mut child = cmd.spawn().context("cannot run cargo test")?;
    let (mut passed, mut failed) = (0u64, 0u64);
    let stdout = child.stdout.take().context("no stdout")?;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |word: &str| {
                rest.split(';')
                    .find_map(|part| {
                        part.trim()
                            .strip_suffix(word)?
                            .trim()
                            .rsplit(' ')
                            .next()?
                            .parse::<u64>()
                            .ok()
                    })
                    .unwrap_or(0)
            };
            passed += count(" passed");
            failed += count(" failed");
        }
    }
    let status = child.wait()?;
    println!("{passed} passed, {failed} failed");
    ensure!(status.success() && failed == 0, "tests failed");
    Ok(())
}
