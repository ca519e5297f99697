//! Writing a learned detector to flash on Nordic parts: the nRF51's and
//! nRF52's non-volatile memory controller (NVMC, the same registers on
//! both), which QEMU's `microbit` machine models. The region is reserved
//! by the memory map (`firmware/memory/`), so no code or data lives there.

use tinygen_runtime::Error;
use tinygen_runtime::format::file_in;

const NVMC: usize = 0x4001_E000;
/// 1 when the controller is ready for the next erase or write.
const READY: *const u32 = (NVMC + 0x400) as *const u32;
/// 0 read only, 1 write enabled, 2 erase enabled.
const CONFIG: *mut u32 = (NVMC + 0x504) as *mut u32;
/// Writing a page's address erases it.
const ERASEPAGE: *mut u32 = (NVMC + 0x508) as *mut u32;

/// The last 4 KiB of the micro:bit's flash (QEMU `microbit`, nRF51822):
/// four 1 KiB pages, kept out of the program by `memory/cortex-m0.x`.
pub const MICROBIT: Region = Region {
    start: 0x3_F000,
    len: 4096,
    page: 1024,
};

/// The nRF52840's last flash page (4 KiB), kept out of the program by
/// `memory/nrf52840.x`.
pub const NRF52840: Region = Region {
    start: 0xF_F000,
    len: 4096,
    page: 4096,
};

/// A flash region of whole pages, reserved for learned detectors.
pub struct Region {
    /// Address of its first byte (page-aligned).
    pub start: usize,
    /// Bytes, a whole number of pages.
    pub len: usize,
    /// Bytes per erasable page.
    pub page: usize,
}

impl Region {
    /// The region's bytes, as the part reads them (an erased page is 0xFF).
    pub fn bytes(&self) -> &'static [u8] {
        // SAFETY: the memory map reserves the region in flash, which is
        // always mapped and readable; nothing else writes it while the
        // slice is used (the program is single-threaded).
        unsafe { core::slice::from_raw_parts(self.start as *const u8, self.len) }
    }

    /// Erases the region's pages and writes `file` at its start, word by
    /// word (the last one padded with 0xFF, as erased flash reads), as a
    /// device keeps the detector it learned; returns the file as found
    /// there again by its header. `InvalidShape(DataLength)` if the file
    /// does not fit.
    pub fn write(&self, file: &[u8]) -> Result<&'static [u8], Error> {
        if file.len() > self.len {
            return Err(Error::InvalidShape(tinygen_runtime::Shape::DataLength));
        }
        // SAFETY: the registers are the NVMC's; the addresses written are
        // the reserved region's pages and words, aligned.
        unsafe {
            configure(2);
            for page in (self.start..self.start + self.len).step_by(self.page) {
                ERASEPAGE.write_volatile(page as u32);
                wait();
            }
            configure(1);
            for (i, chunk) in file.chunks(4).enumerate() {
                let mut word = [0xFF; 4];
                word[..chunk.len()].copy_from_slice(chunk);
                let at = (self.start + 4 * i) as *mut u32;
                at.write_volatile(u32::from_le_bytes(word));
                wait();
            }
            configure(0);
        }
        file_in(self.bytes())
    }
}

/// Sets CONFIG and waits for the controller.
unsafe fn configure(mode: u32) {
    // SAFETY: the caller's.
    unsafe {
        CONFIG.write_volatile(mode);
        wait();
    }
}

/// Waits until the controller is ready.
unsafe fn wait() {
    // SAFETY: the caller's.
    while unsafe { READY.read_volatile() } & 1 == 0 {}
}
