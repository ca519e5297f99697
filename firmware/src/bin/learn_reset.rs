//! The `board` program's "learn normal, keep it in flash" flow
//! (`src/learn_demo.rs`) on QEMU's micro:bit, whose nRF51 has the same
//! flash controller as the nRF52840, across a real reset: the first boot
//! finds no detector in flash, learns one, writes it through the NVMC and
//! resets the part; the second finds it by its header, scores with it and
//! exits. The parity test checks the learned file's CRC and the alarms
//! against the host's (the same code, learning on the host). On the other
//! cores (no flash controller) it says so and exits.
#![no_std]
#![no_main]

#[cfg(target_arch = "arm")]
use cortex_m as _;
use semihosting::println;

#[path = "../platform.rs"]
#[allow(dead_code)] // the stack pointer is for the test firmware
mod platform;

#[cfg(nvmc)]
#[path = "../learn_demo.rs"]
mod learn_demo;
#[cfg(nvmc)]
#[allow(dead_code)] // the nRF52840's region is the board program's
#[path = "../nvmc.rs"]
mod nvmc;

#[cfg_attr(target_arch = "arm", cortex_m_rt::entry)]
#[cfg_attr(target_arch = "riscv32", riscv_rt::entry)]
fn main() -> ! {
    #[cfg(nvmc)]
    let ok = match cycle::run() {
        Ok(()) => true,
        Err(e) => {
            println!("learn_reset: error {}", e);
            false
        }
    };
    #[cfg(not(nvmc))]
    let ok = {
        println!("learn_reset: no flash controller on this core");
        true
    };
    platform::exit(ok)
}

#[cfg(nvmc)]
mod cycle {
    use super::{learn_demo, nvmc, println};
    use tinygen_runtime::format;
    use tinygen_runtime::{Aligned, Detector, Error};

    const LEARNED: nvmc::Region = nvmc::MICROBIT;

    /// One boot: scores with the kept detector if there is one, else
    /// learns one, keeps it and resets.
    pub fn run() -> Result<(), Error> {
        let file = match learn_demo::kept(LEARNED.bytes()) {
            Some(file) => file,
            None => {
                let mut learned = Aligned([0u8; learn_demo::FILE_BYTES]);
                let (len, windows) = learn_demo::learn(&mut learned.0)?;
                let kept = LEARNED.write(&learned.0[..len])?;
                println!(
                    "learn_reset: learned from {} windows, file crc {:#010x}; written to flash, resetting",
                    windows,
                    crc(kept)?
                );
                cortex_m::peripheral::SCB::sys_reset()
            }
        };
        println!(
            "learn_reset: after a reset, found in flash at {:#x}: {} bytes, file crc {:#010x}",
            LEARNED.start,
            file.len(),
            crc(file)?
        );
        let [normal, shaken] = learn_demo::alarms(&Detector::from_bytes(file)?)?;
        println!(
            "learn_reset: normal windows {} alarms in 100, shaken windows {} alarms in 100",
            normal, shaken
        );
        Ok(())
    }

    /// A model file's CRC, as the runtime reads and checks it.
    fn crc(file: &[u8]) -> Result<u32, Error> {
        Ok(format::open(file)?.header().crc)
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("panic: {}", info);
    platform::exit(false)
}
