//! Samples digits from the MNIST VAE decoder in `models/`, as the board
//! program does: fixed-size buffers, a seeded generator, no heap in the
//! runtime's calls. The same seed gives the same digits on every target.
//!
//! ```sh
//! cargo run -p tinygen-runtime --example sample_decoder
//! ```

use tinygen_runtime::rand_core::SeedableRng;
use tinygen_runtime::{Decoder, Error, Scratch, Xoshiro128PlusPlus, include_model};

static MODEL: &[u8] = include_model!("../../models/mnist-vae-decoder/model.tgm");

/// Widest hidden layer the buffers hold (the decoder's is 128).
const MAX_WIDTH: usize = 128;

fn main() -> Result<(), Error> {
    let decoder = Decoder::<MAX_WIDTH>::from_bytes(MODEL)?; // TooWide if it needs more
    let mut scratch = Scratch::<MAX_WIDTH>::new();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
    let mut image = [0f32; 784];
    println!(
        "latent {} -> {} pixels, {} multiply-accumulates per sample",
        decoder.latent_dim(),
        decoder.output_dim(),
        decoder.macs()
    );
    for _ in 0..2 {
        decoder.sample(&mut rng, &mut image, &mut scratch)?;
        for row in image.chunks_exact(28) {
            let line: String = row
                .iter()
                .map(|&v| [' ', '.', ':', 'o', '#'][((v.clamp(0.0, 1.0) * 4.0) + 0.5) as usize])
                .collect();
            println!("{line}");
        }
    }
    Ok(())
}
