//! Proof that the runtime has no reachable panic: this program parses
//! bytes the optimiser knows nothing about and calls every public entry
//! point (parse, score, decode, encode, forward, sample, window
//! statistics, the any-kind dispatch, the int8 arithmetic and int8
//! networks, the on-device learner), and its panic handler calls a function that does not exist. It
//! links only if no panic path survives optimisation; it is built with the
//! firmware, and never run.
#![no_std]
#![no_main]

use core::hint::black_box;

#[cfg(target_arch = "arm")]
use cortex_m as _;
use tinygen_runtime::detector::DetectorScratch;
use tinygen_runtime::diffusion::Sampler;
use tinygen_runtime::features::window_stats;
use tinygen_runtime::learn::{Buffers, Learner, Recipe};
use tinygen_runtime::rand_core::SeedableRng;
use tinygen_runtime::{
    Aligned, AnyModel, Decoder, Detector, Diffusion, Encoder, Gmm, Network, QNetwork, QScratch,
    Scratch, Xoshiro128PlusPlus,
};

static FILE: Aligned<[u8; 4096]> = Aligned([0; 4096]);
static INPUT: [f32; 64] = [0.0; 64];
static INTS: [i8; 64] = [0; 64];
static WORDS: [i32; 16] = [0; 16];
static PACKED: [u32; 64] = [0; 64];
static SHIFTS: [i32; 16] = [0; 16];

#[path = "../platform.rs"]
#[allow(dead_code)] // the stack pointer is for the test firmware
mod platform;

#[cfg_attr(target_arch = "arm", cortex_m_rt::entry)]
#[cfg_attr(target_arch = "riscv32", riscv_rt::entry)]
fn main() -> ! {
    let bytes = &FILE.0[..black_box(4096usize).min(4096)];
    let bytes = black_box(bytes);
    let input = black_box(&INPUT[..black_box(16usize).min(64)]);
    let mut out = [0f32; 64];
    let out = &mut out[..black_box(8usize).min(64)];
    if let Ok(gmm) = Gmm::from_bytes(bytes) {
        black_box(gmm.log_density(input).ok());
        black_box(gmm.log_responsibilities(input, out).ok());
        black_box(gmm.log_density_batch(input, out).ok());
        black_box(gmm.standardizer());
    }
    if let Ok(detector) = Detector::from_bytes(bytes) {
        black_box(detector.score(input).ok());
        black_box(detector.is_anomaly(input).ok());
        black_box(detector.log_density(input).ok());
        let mut buffers = DetectorScratch::<32>::new();
        black_box(detector.score_in(input, &mut buffers).ok());
        black_box(detector.terms_in(input, &mut buffers).ok());
        black_box(detector.density_terms(input).ok());
    }
    let mut scratch = Scratch::<64>::new();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(black_box(1));
    if let Ok(decoder) = Decoder::<64>::from_bytes(bytes) {
        black_box(decoder.decode(input, out, &mut scratch).ok());
        black_box(decoder.sample(&mut rng, out, &mut scratch).ok());
        black_box(decoder.prior().sample(&mut rng, out).ok());
    }
    if let Ok(encoder) = Encoder::<64>::from_bytes(bytes) {
        black_box(encoder.encode(input, out, &mut scratch).ok());
    }
    if let Ok(network) = Network::from_bytes(bytes) {
        black_box(network.forward(input, out, &mut scratch).ok());
        // Buffers sized at run time (the C API's calls).
        let mut words = [0f32; 64];
        let (a, b) = words.split_at_mut(black_box(32usize).min(64));
        let b_len = black_box(30usize).min(b.len());
        let b = &mut b[..b_len];
        black_box(network.forward_in(input, out, a, b).ok());
        black_box(network.sample_in(&mut rng, out, a, b).ok());
    }
    if let Ok(recipe) = Recipe::from_bytes(bytes) {
        let mut state = [0f64; 128];
        let mut features = [0f32; 256];
        let mut scores = [0f32; 16];
        let mut file = Aligned([0u8; 1024]);
        let n = black_box(128usize).min(128);
        let buffers = Buffers {
            state: &mut state[..n],
            features: &mut features,
            scores: &mut scores,
            file: &mut file.0,
        };
        if let Ok(mut learner) = Learner::new(&recipe, buffers) {
            for _ in 0..black_box(40) {
                black_box(learner.observe(input).ok());
            }
            black_box(learner.progress());
            black_box(learner.file().ok());
            if let Ok(detector) = learner.detector() {
                black_box(detector.score(input).ok());
            }
        }
    }
    if let Ok(model) = Diffusion::from_bytes(bytes) {
        let mut work = [0f32; 256];
        let work = &mut work[..black_box(200usize).min(256)];
        let sampler = Sampler {
            steps: black_box(7),
            eta: black_box(0.5),
        };
        black_box(model.sample_in(&mut rng, sampler, out, work).ok());
        black_box(model.sample(&mut rng, out, work).ok());
        if let Some((a, b)) = work.split_at_mut_checked(black_box(100)) {
            black_box(model.predict_noise(input, black_box(3), out, a, b).ok());
            black_box(model.eval_in(input, out, a, b).ok());
        }
    }
    if let Ok(model) = AnyModel::from_bytes(bytes) {
        black_box(model.eval(input, out, &mut scratch).ok());
        black_box(model.scratch_bytes());
        // An int8 network inside the dispatch (its own int8 buffers).
        if let AnyModel::QNetwork(net) = model {
            black_box(net.macs());
        }
    }
    let mut qscratch = QScratch::<64>::new();
    if let Ok(net) = QNetwork::from_bytes(bytes) {
        black_box(net.forward(input, out, &mut qscratch).ok());
        let mut int_out = [0i8; 64];
        let int_out = &mut int_out[..black_box(8usize).min(64)];
        let ints = black_box(&INTS[..black_box(16usize).min(64)]);
        black_box(net.forward_i8(ints, int_out, &mut qscratch).ok());
        black_box(net.sample(&mut rng, out, &mut qscratch).ok());
        let mut bytes = [0i8; 128];
        let (a, b) = bytes.split_at_mut(black_box(64usize).min(128));
        let b_len = black_box(60usize).min(b.len());
        let b = &mut b[..b_len];
        black_box(net.forward_i8_in(ints, int_out, a, b).ok());
        black_box(net.sample_in(&mut rng, out, a, b).ok());
        black_box(net.prior().sample(&mut rng, out).ok());
        black_box((net.input_params(), net.output_params(), net.stored_bytes()));
        black_box(net.layers().map(|l| l.outputs).sum::<usize>());
        black_box(net.activation_table(black_box(1)).map(|t| t[0]));
    }
    let channels = black_box(4usize);
    black_box(window_stats(input, channels, out).ok());
    black_box(tinygen_runtime::format::read_header(bytes).ok());
    black_box(tinygen_runtime::format::file_in(bytes).ok());
    // The int8 arithmetic, on lengths and parameters the optimiser cannot see.
    {
        use tinygen_runtime::quant::{self, Requant, Rounding};
        let ints = black_box(&INTS[..black_box(48usize).min(64)]);
        let inputs = black_box(&ints[..black_box(8usize).min(ints.len())]);
        let mut int_out = [0i8; 16];
        let int_out = &mut int_out[..black_box(6usize).min(16)];
        let words = black_box(&WORDS[..black_box(6usize).min(16)]);
        let packed = black_box(&PACKED[..black_box(16usize).min(64)]);
        for rounding in [Rounding::Double, Rounding::Single] {
            let requant = Requant {
                multiplier: words,
                shift: black_box(&SHIFTS[..black_box(6usize).min(16)]),
                output_zero_point: black_box(3),
                act_min: black_box(-128),
                act_max: black_box(127),
                rounding,
            };
            black_box(
                quant::dense_i8(
                    inputs,
                    black_box(-2),
                    packed,
                    Some(words),
                    &requant,
                    int_out,
                )
                .ok(),
            );
        }
        let (m, shift) = quant::quantize_multiplier(f64::from(black_box(0.3f32)));
        black_box(quant::multiply_by_quantized_multiplier(
            black_box(7),
            m,
            shift,
        ));
        black_box(quant::quantize_multiplier_single_rounding(f64::from(
            black_box(1e-9f32),
        )));
        black_box(quant::dequantize(
            quant::quantize(input.iter().take(1).sum(), 0.1, 4),
            0.1,
            4,
        ));
    }
    platform::exit(true)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    unsafe extern "C" {
        /// Deliberately undefined: referencing it fails the link.
        fn tinygen_runtime_has_a_reachable_panic() -> !;
    }
    // SAFETY: never executed; the link fails if this is reachable at all.
    unsafe { tinygen_runtime_has_a_reachable_panic() }
}
