//! `cargo xtask qemu`: the firmware with a directory of cases, under QEMU.

use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use xtask::{Core, build_firmware, run_qemu};

pub(crate) fn qemu(cases: &Path, cores: &[Core]) -> anyhow::Result<()> {
    xtask::install_prerequisites()?;
    for &core in cores {
        let cases = fitting_cases(cases, core)?;
        // Several images when the cases do not fit the core's flash at once.
        for image in xtask::case_images(&cases, core)? {
            let elf = build_firmware(&image, core, &[])?;
            let (flash, ram) = xtask::elf_size(&elf)?;
            eprintln!(
                "{}: firmware with the cases in {}: {flash} bytes flash, {ram} bytes static RAM",
                core.name(),
                image.display()
            );
            let result = run_qemu(&elf, core, None)?;
            print!("{}", result.stdout);
            eprint!("{}", result.stderr);
            ensure!(
                result.success,
                "the firmware reported a failure under QEMU on the {}",
                core.name()
            );
        }
    }
    Ok(())
}

/// The cases under `dir` whose model fits `core`'s flash: `dir` itself when
/// all do, otherwise a directory of links to those that do; says which
/// were left out.
pub(crate) fn fitting_cases(dir: &Path, core: Core) -> anyhow::Result<PathBuf> {
    let mut fitting = Vec::new();
    let mut left_out = false;
    for entry in std::fs::read_dir(dir)? {
        let case = entry?.path();
        if !case.join("model.tgm").is_file() {
            continue;
        }
        if xtask::model_fits(&case, core)? {
            fitting.push(case);
        } else {
            left_out = true;
            eprintln!(
                "{}: {} left out: its model does not fit the {} KiB of flash",
                core.name(),
                case.display(),
                core.flash_bytes() / 1024
            );
        }
    }
    if !left_out {
        return Ok(dir.to_path_buf());
    }
    let out = xtask::target_dir().join("qemu-fitting").join(core.target());
    std::fs::remove_dir_all(&out).ok();
    std::fs::create_dir_all(&out)?;
    for case in fitting {
        let case = case.canonicalize()?;
        let name = case.file_name().context("case without a name")?;
        std::os::unix::fs::symlink(&case, out.join(name))?;
    }
    Ok(out)
}
