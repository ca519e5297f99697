//! `cargo xtask qemu`: the firmware with a directory of cases, under QEMU.

use std::path::Path;

use anyhow::ensure;
use xtask::{Core, build_firmware, run_qemu};

pub(crate) fn qemu(cases: &Path, cores: &[Core]) -> anyhow::Result<()> {
    xtask::install_prerequisites()?;
    for &core in cores {
        // Several images when the cases do not fit the core's flash at once.
        for image in xtask::case_images(cases, core)? {
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
