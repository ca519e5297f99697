//! "Learn normal, keep it in flash": the flow of the nRF52840 `board`
//! program, shared with the QEMU micro:bit program that checks it across a
//! reset (`learn_reset`) and with the host test that learns the same
//! detector (`tests/tests/qemu_parity.rs`). No printing: each program logs
//! its own way.

use tinygen_runtime::format::file_in;
use tinygen_runtime::learn::{Buffers, Learner, Progress, Recipe};
use tinygen_runtime::rand_core::{RngCore, SeedableRng};
use tinygen_runtime::{Detector, Error, Xoshiro128PlusPlus, include_model};

/// Made with `tinygen recipe --window 32 --channels 3 --learn 600
/// --calibrate 300 --alarm-rate 0.01 --out firmware/board/recipe.tgm`: one
/// full Gaussian (and its 0.01-regularised twin) over the windows'
/// per-channel mean, std, min and max.
pub static RECIPE: &[u8] = include_model!("../board/recipe.tgm");

/// Samples per window and channels of the sensor.
pub const LENGTH: usize = 32;
pub const CHANNELS: usize = 3;

/// Bytes the learned file may take (980 for this recipe).
pub const FILE_BYTES: usize = 1024;

/// A stand-in for a three-axis vibration sensor (the boards have none): a
/// triangle wave per axis (periods of 16, 20 and 25 samples) scaled by an
/// amplitude, plus uniform noise from a seeded generator.
pub struct Sensor {
    rng: Xoshiro128PlusPlus,
    t: u32,
}

/// The seed of the sensor's noise while learning.
pub const LEARNING: u64 = 1;
/// The seed of the sensor's noise in [`alarms`]: windows not learned from.
pub const SCORING: u64 = 2;

impl Sensor {
    /// The sensor from its first sample, its noise drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Xoshiro128PlusPlus::seed_from_u64(seed),
            t: 0,
        }
    }

    /// The next window of `LENGTH` samples, time-major.
    pub fn window(&mut self, amplitude: f32, out: &mut [f32; LENGTH * CHANNELS]) {
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

/// Learns [`RECIPE`]'s detector from the sensor's windows (noise seeded
/// with [`LEARNING`]) into the start of `file`; returns the file's length
/// and the windows taken.
pub fn learn(file: &mut [u8]) -> Result<(usize, usize), Error> {
    let mut sensor = Sensor::new(LEARNING);
    let recipe = Recipe::from_bytes(RECIPE)?;
    let (mut state, mut scores) = ([0f64; 192], [0f32; 960]);
    let mut learner = Learner::new(
        &recipe,
        Buffers {
            state: &mut state,
            features: &mut [],
            scores: &mut scores,
            file,
        },
    )?;
    let mut window = [0f32; LENGTH * CHANNELS];
    let mut windows = 0;
    loop {
        sensor.window(1.0, &mut window);
        windows += 1;
        if learner.observe(&window)? == Progress::Done {
            return Ok((learner.file()?.len(), windows));
        }
    }
}

/// The detector file at the start of a flash region, if one is there and
/// whole: a write cut short (power lost while writing) fails its CRC, and
/// the device learns again.
pub fn kept(region: &[u8]) -> Option<&[u8]> {
    let file = file_in(region).ok()?;
    Detector::from_bytes(file).is_ok().then_some(file)
}

/// Alarms of `detector` on 100 normal windows, then on 100 whose vibration
/// doubled (noise seeded with [`SCORING`]).
pub fn alarms(detector: &Detector<'_>) -> Result<[usize; 2], Error> {
    let mut sensor = Sensor::new(SCORING);
    let mut window = [0f32; LENGTH * CHANNELS];
    let mut counts = [0; 2];
    for (count, amplitude) in counts.iter_mut().zip([1.0, 2.0]) {
        for _ in 0..100 {
            sensor.window(amplitude, &mut window);
            *count += usize::from(detector.is_anomaly(&window)?);
        }
    }
    Ok(counts)
}
