//! tinygen on a real board (nRF52840, `--features nrf52840`), logging over
//! RTT with defmt. Flash and run it with a debug probe: `cargo board`
//! (probe-rs). Two parts:
//!
//! - **Decoding**: embeds the example MNIST decoder, samples digits from
//!   the prior with a seeded generator and draws them as text.
//! - **Learning "normal" and keeping it**: on the first boot the board
//!   learns a detector from the windows of its (simulated) sensor with the
//!   recipe `firmware/board/recipe.tgm`, writes the learned file to its
//!   last flash page through the NVMC and says so; after a reset (or power
//!   cycle) it finds the detector there by its header and uses it without
//!   learning again. Either way it then scores normal windows and windows
//!   whose vibration doubled, and logs how many raise the alarm. Erase the
//!   page to learn again: `probe-rs erase --chip nRF52840_xxAA`.
//!
//! The same runtime calls as the QEMU firmware, whose outputs are checked
//! bit for bit against the host in CI, the NVMC writes included (QEMU's
//! micro:bit, an nRF51 with the same flash controller); this program is
//! built in CI but can only run on hardware.
#![no_std]
#![no_main]

#[path = "../nvmc.rs"]
mod nvmc;

use cortex_m_rt::entry;
use defmt_rtt as _;
use panic_probe as _;
use tinygen_runtime::format::file_in;
use tinygen_runtime::learn::{Buffers, Learner, Progress, Recipe};
use tinygen_runtime::rand_core::{RngCore, SeedableRng};
use tinygen_runtime::{
    Aligned, Decoder, Detector, Error, Scratch, Xoshiro128PlusPlus, include_model,
};

static MODEL: &[u8] = include_model!("../../../models/mnist-vae-decoder/model.tgm");

/// Made with `tinygen recipe --window 32 --channels 3 --learn 200
/// --calibrate 100 --alarm-rate 0.01 --out firmware/board/recipe.tgm`: one
/// full Gaussian (and its 0.01-regularised twin) over the windows'
/// per-channel mean, std, min and max.
static RECIPE: &[u8] = include_model!("../../board/recipe.tgm");

/// The widest layer this program supports (the decoder's hidden layer is 128).
const MAX_WIDTH: usize = 128;

/// The nRF52840's last flash page (4 KiB), kept out of the program by
/// `memory/nrf52840.x`.
const LEARNED: nvmc::Region = nvmc::Region {
    start: 0xF_F000,
    len: 4096,
    page: 4096,
};

/// Samples per window and channels of the sensor.
const LENGTH: usize = 32;
const CHANNELS: usize = 3;

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
    let mut sensor = Sensor::new();
    let file = match file_in(LEARNED.bytes()) {
        Ok(file) => {
            defmt::println!(
                "learned detector found in flash at {=usize:#x}: {} bytes, not learning again",
                LEARNED.start,
                file.len()
            );
            file
        }
        Err(_) => learn_and_keep(&mut sensor)?,
    };
    let detector = Detector::from_bytes(file)?;
    let mut window = [0f32; LENGTH * CHANNELS];
    for (amplitude, what) in [(1.0, "normal"), (2.0, "shaken")] {
        let mut alarms = 0;
        for _ in 0..100 {
            sensor.window(amplitude, &mut window);
            alarms += usize::from(detector.is_anomaly(&window)?);
        }
        defmt::println!("{} windows: {} alarms in 100", what, alarms);
    }
    Ok(())
}

/// Learns the recipe's detector from the sensor's windows and writes it to
/// the [`LEARNED`] page; returns the file as found there.
fn learn_and_keep(sensor: &mut Sensor) -> Result<&'static [u8], Error> {
    let recipe = Recipe::from_bytes(RECIPE)?;
    let (mut state, mut features, mut scores) = ([0f64; 256], [0f32; 0], [0f32; 512]);
    let mut file = Aligned([0u8; 2048]);
    let mut learner = Learner::new(
        &recipe,
        Buffers {
            state: &mut state,
            features: &mut features,
            scores: &mut scores,
            file: &mut file.0,
        },
    )?;
    let mut window = [0f32; LENGTH * CHANNELS];
    let mut windows = 0;
    loop {
        sensor.window(1.0, &mut window);
        windows += 1;
        if learner.observe(&window)? == Progress::Done {
            break;
        }
    }
    LEARNED.write(learner.file()?)?;
    let kept = file_in(LEARNED.bytes())?;
    defmt::println!(
        "learned a detector from {} windows and wrote it to flash at {=usize:#x} ({} bytes): reset the board and it is found there",
        windows,
        LEARNED.start,
        kept.len()
    );
    Ok(kept)
}

/// A stand-in for a three-axis vibration sensor (the DK has none): a
/// triangle wave per axis (periods of 16, 20 and 25 samples) scaled by an
/// amplitude, plus uniform noise.
struct Sensor {
    rng: Xoshiro128PlusPlus,
    t: u32,
}

impl Sensor {
    fn new() -> Self {
        Self {
            rng: Xoshiro128PlusPlus::seed_from_u64(1),
            t: 0,
        }
    }

    /// The next window of `LENGTH` samples, time-major.
    fn window(&mut self, amplitude: f32, out: &mut [f32; LENGTH * CHANNELS]) {
        for sample in out.chunks_exact_mut(CHANNELS) {
            for (v, period) in sample.iter_mut().zip([16u32, 20, 25]) {
                let phase = (self.t % period) as f32 / period as f32;
                let wave = 4.0 * (phase - 0.5).abs() - 1.0;
                let noise = (self.rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                *v = amplitude * wave + 0.2 * noise;
            }
            self.t += 1;
        }
    }
}
