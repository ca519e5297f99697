//! `cargo xtask qemu`: the firmware with a directory of cases, under QEMU.

use std::path::Path;

use anyhow::ensure;
use xtask::{build_firmware, run_qemu};

pub(crate) fn qemu(cases: &Path) -> anyhow::Result<()> {
    xtask::install_prerequisites()?;
    let elf = build_firmware(cases, &[])?;
    let (flash, ram) = xtask::elf_size(&elf)?;
    eprintln!(
        "firmware {}: {flash} bytes flash, {ram} bytes static RAM",
        elf.display()
    );
    let result = run_qemu(&elf, None)?;
    print!("{}", result.stdout);
    eprint!("{}", result.stderr);
    ensure!(result.success, "the firmware reported a failure under QEMU");
    Ok(())
}
