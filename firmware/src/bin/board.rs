//! tinygen on a real board (nRF52840, `--features nrf52840`), logging over
//! RTT with defmt. Flash and run it with a debug probe: `cargo board`
//! (probe-rs). Two parts:
//!
//! - **Decoding**: embeds the example MNIST decoder, samples digits from
//!   the prior with a seeded generator and draws them as text.
//! - **Learning "normal" and keeping it** (`src/learn_demo.rs`): on the
//!   first boot the board learns a detector from the windows of its
//!   (simulated) sensor with the recipe `firmware/board/recipe.tgm`,
//!   writes the learned file to its last flash page through the NVMC and
//!   says so; after a reset (or power cycle) it finds the detector there by
//!   its header and uses it without learning again. Either way it then
//!   scores normal windows and windows whose vibration doubled, and logs
//!   how many raise the alarm. Erase the page to learn again: `probe-rs
//!   erase --chip nRF52840_xxAA`.
//!
//! The same runtime calls as the QEMU firmware, whose outputs are checked
//! bit for bit against the host in CI; the learning flow itself runs in CI
//! on QEMU's micro:bit (an nRF51 with the same flash controller) across a
//! reset, learning the host's detector bit for bit (`learn_reset`). This
//! program is built in CI but can only run on hardware.
#![no_std]
#![no_main]

#[path = "../learn_demo.rs"]
mod learn_demo;
#[allow(dead_code)] // the micro:bit's region is the QEMU programs'
#[path = "../nvmc.rs"]
mod nvmc;

use cortex_m_rt::entry;
use defmt_rtt as _;
use panic_probe as _;
use tinygen_runtime::rand_core::SeedableRng;
use tinygen_runtime::{
    Aligned, Decoder, Detector, Error, Scratch, Xoshiro128PlusPlus, include_model,
};

static MODEL: &[u8] = include_model!("../../../models/mnist-vae-decoder/model.tgm");

/// The widest layer this program supports (the decoder's hidden layer is 128).
const MAX_WIDTH: usize = 128;

/// Where the learned detector is kept: the last flash page.
const LEARNED: nvmc::Region = nvmc::NRF52840;

#[entry]
fn main() -> ! {
    match decode_digits().and_then(|()| learn_normal()) {
        Ok(()) => defmt::println!("board: done"),
        Err(e) => defmt::println!("board: error {}", e),
    }
    loop {
        cortex_m::asm::wfi();
    }
}

/// Samples four digits from the decoder's prior and draws them.
fn decode_digits() -> Result<(), Error> {
    let decoder = Decoder::<MAX_WIDTH>::from_bytes(MODEL)?;
    defmt::println!(
        "decoder: {} -> {}, {} parameters, {} MACs per image",
        decoder.latent_dim(),
        decoder.output_dim(),
        decoder.parameters(),
        decoder.macs()
    );
    let mut scratch = Scratch::<MAX_WIDTH>::new();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
    let mut image = [0f32; 784];
    for i in 0..4 {
        decoder.sample(&mut rng, &mut image, &mut scratch)?;
        defmt::println!("sample {}:", i);
        for row in image.chunks_exact(28) {
            let mut line = [b' '; 28];
            for (c, &v) in line.iter_mut().zip(row) {
                *c = match v {
                    v if v > 0.75 => b'#',
                    v if v > 0.5 => b'o',
                    v if v > 0.25 => b':',
                    v if v > 0.1 => b'.',
                    _ => b' ',
                };
            }
            defmt::println!("{=[u8]:a}", line);
        }
    }
    Ok(())
}

/// Uses the detector kept in flash, or learns one and keeps it there; then
/// counts the alarms on normal and on shaken windows.
fn learn_normal() -> Result<(), Error> {
    let file = match learn_demo::kept(LEARNED.bytes()) {
        Some(file) => {
            defmt::println!(
                "learned detector found in flash at {=usize:#x}: {} bytes, not learning again",
                LEARNED.start,
                file.len()
            );
            file
        }
        None => {
            let mut learned = Aligned([0u8; learn_demo::FILE_BYTES]);
            let (len, windows) = learn_demo::learn(&mut learned.0)?;
            let kept = LEARNED.write(&learned.0[..len])?;
            defmt::println!(
                "learned a detector from {} windows and wrote it to flash at {=usize:#x} ({} bytes): reset the board and it is found there",
                windows,
                LEARNED.start,
                kept.len()
            );
            kept
        }
    };
    let [normal, shaken] = learn_demo::alarms(&Detector::from_bytes(file)?)?;
    defmt::println!("normal windows: {} alarms in 100", normal);
    defmt::println!("shaken windows: {} alarms in 100", shaken);
    Ok(())
}
