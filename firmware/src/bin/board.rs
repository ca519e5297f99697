//! tinygen on a real board (nRF52840, `--features nrf52840`): embeds the
//! example MNIST decoder, decodes its test latents, samples digits from the
//! prior with a seeded generator and logs them over RTT with defmt. Flash
//! and run it with a debug probe: `cargo board` (probe-rs).
//!
//! The same runtime calls as the QEMU firmware, whose outputs are checked
//! bit for bit against the host in CI; this program is built in CI but can
//! only run on hardware.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use defmt_rtt as _;
use panic_probe as _;
use tinygen_runtime::rand_core::SeedableRng;
use tinygen_runtime::{Decoder, Scratch, Xoshiro128PlusPlus, include_model};

static MODEL: &[u8] = include_model!("../../../models/mnist-vae-decoder/model.tgm");

/// The widest layer this program supports (the decoder's hidden layer is 128).
const MAX_WIDTH: usize = 128;

#[entry]
fn main() -> ! {
    match run() {
        Ok(()) => defmt::println!("board: done"),
        Err(e) => defmt::println!("board: error {}", e),
    }
    loop {
        cortex_m::asm::wfi();
    }
}

fn run() -> Result<(), tinygen_runtime::Error> {
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
