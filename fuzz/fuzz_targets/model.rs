//! Parse-and-evaluate for every model kind of the runtime.
//!
//! Input layout: one control byte, then a model file, then (optionally)
//! bytes that choose the evaluation inputs.
//!
//! * Control bits 0..=2: 1..=7 overwrite the header's kind code (1 gmm,
//!   2 kde, 3 detector, 4 decoder, 5 encoder, 6 decoder-int8, 7
//!   encoder-int8) and its schema key with that kind's; 0 keeps the header
//!   as it is (recipes, kind 8, come from the seeds).
//! * Control bit 3: no fix-ups at all (the file is tried as it is, so the
//!   length and CRC checks are exercised too).
//! * The file is `HEADER_LEN + claimed body length + CRC_LEN` bytes long if
//!   that many are present (the rest choose the inputs), else all of them.
//!   Unless bit 3 is set, its body length and trailing CRC-32 are then
//!   rewritten to match (`format::reseal`), so that mutations reach the
//!   body decoder.
//!
//! Whatever parses is evaluated through every public entry point, with
//! inputs of the right length (and some of a wrong one) whose values come
//! from the trailing bytes (NaN, infinities, zeros, raw f32 bit patterns)
//! or, once those run out, from a small deterministic generator.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinygen_runtime::detector::DetectorScratch;
use tinygen_runtime::diffusion::{Diffusion, Sampler};
use tinygen_runtime::format::{self, CRC_LEN, HEADER_LEN, ModelKind};
use tinygen_runtime::learn::{Buffers, Learner, Progress, Recipe};
use tinygen_runtime::rand_core::SeedableRng;
use tinygen_runtime::{
    Activation, AnyModel, Decoder, Detector, Encoder, Error, Gmm, Network, QNetwork, QScratch,
    Scratch, Xoshiro128PlusPlus,
};

/// Largest input the harness allocates for one call (values). A parsed
/// model's dimensions are bounded by its file, except a windowed
/// detector's window length, which only its input has to hold.
const MAX_INPUT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let (file, extra) = split_file(rest);
    let mut file = file.to_vec();
    if control & 0x08 == 0 {
        fix_up(&mut file, control & 0x07);
    }
    // A 4-byte aligned copy, as a device's flash holds the file.
    let mut words = vec![0u32; file.len().div_ceil(4)];
    let aligned = &mut bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..file.len()];
    aligned.copy_from_slice(&file);
    let bytes: &[u8] = aligned;
    let mut values = Values::new(extra, format::checksum(bytes));

    let _ = format::read_header(bytes);
    // The file found at the start of the bytes as a region (a flash page):
    // never longer than the region, and what it finds is a prefix.
    if let Ok(found) = format::file_in(bytes) {
        assert!(found.len() <= bytes.len() && bytes.starts_with(found));
    }
    if let Ok(gmm) = Gmm::from_bytes(bytes) {
        evaluate_gmm(&gmm, &mut values);
    }
    if let Ok(detector) = Detector::from_bytes(bytes) {
        evaluate_detector(&detector, &mut values);
    }
    if let Ok(network) = Network::from_bytes(bytes) {
        evaluate_network(&network, &mut values);
    }
    if let Ok(network) = QNetwork::from_bytes(bytes) {
        evaluate_qnetwork(&network, &mut values);
    }
    if let Ok(model) = AnyModel::from_bytes(bytes) {
        evaluate_any(&model, &mut values);
    }
    if let Ok(recipe) = Recipe::from_bytes(bytes) {
        evaluate_recipe(&recipe, &mut values);
    }
    if let Ok(model) = Diffusion::from_bytes(bytes) {
        evaluate_diffusion(&model, &mut values);
    }
    if let Ok(decoder) = Decoder::<4>::from_bytes(bytes) {
        evaluate_decoder(&decoder, &mut values);
    }
    if let Ok(decoder) = Decoder::<512>::from_bytes(bytes) {
        evaluate_decoder(&decoder, &mut values);
    }
    if let Ok(encoder) = Encoder::<4>::from_bytes(bytes) {
        evaluate_encoder(&encoder, &mut values);
    }
    if let Ok(encoder) = Encoder::<512>::from_bytes(bytes) {
        evaluate_encoder(&encoder, &mut values);
    }
});

/// Splits `rest` into the model file and the bytes after it.
fn split_file(rest: &[u8]) -> (&[u8], &[u8]) {
    if rest.len() < HEADER_LEN + CRC_LEN {
        return (rest, &[]);
    }
    let claimed = u32::from_le_bytes([rest[12], rest[13], rest[14], rest[15]]) as usize;
    match claimed.checked_add(HEADER_LEN + CRC_LEN) {
        Some(len) if len <= rest.len() => rest.split_at(len),
        _ => (rest, &[]),
    }
}

/// Sets the kind (if `kind` is a kind code), the body length and the CRC.
fn fix_up(file: &mut [u8], kind: u8) {
    if file.len() < HEADER_LEN + CRC_LEN {
        return;
    }
    if let Some(kind) = ModelKind::from_code(u16::from(kind)) {
        file[6..8].copy_from_slice(&(kind as u16).to_le_bytes());
        file[8..12].copy_from_slice(&kind.schema_key().to_le_bytes());
    }
    format::reseal(file);
    debug_assert_eq!(
        &file[file.len() - CRC_LEN..],
        &format::checksum(&file[..file.len() - CRC_LEN]).to_le_bytes()
    );
}

/// Evaluation inputs drawn from the fuzz bytes, then from a generator.
struct Values<'a> {
    bytes: &'a [u8],
    state: u32,
}

impl<'a> Values<'a> {
    fn new(bytes: &'a [u8], seed: u32) -> Self {
        Self {
            bytes,
            state: seed | 1,
        }
    }

    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(b)
    }

    /// A length: `n`, or (when the fuzz bytes say so) a wrong one.
    fn len(&mut self, n: usize) -> usize {
        match self.byte().map(|b| b % 8) {
            Some(5) => n + 1,
            Some(6) => n.saturating_sub(1),
            Some(7) => 0,
            _ => n,
        }
    }

    fn value(&mut self) -> f32 {
        let Some(tag) = self.byte() else {
            // xorshift32: finite values in [-4, 4).
            self.state ^= self.state << 13;
            self.state ^= self.state >> 17;
            self.state ^= self.state << 5;
            return (self.state >> 8) as f32 / (1u32 << 21) as f32 - 4.0;
        };
        match tag % 8 {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            3 => 0.0,
            4 => {
                let mut raw = [0u8; 4];
                for slot in &mut raw {
                    *slot = self.byte().unwrap_or(0);
                }
                f32::from_le_bytes(raw)
            }
            _ => f32::from(tag as i8) / 16.0,
        }
    }

    /// `n` values (at most [`MAX_INPUT`]; `None` above that).
    fn vector(&mut self, n: usize) -> Option<Vec<f32>> {
        let n = self.len(n);
        (n <= MAX_INPUT).then(|| (0..n).map(|_| self.value()).collect())
    }
}

fn evaluate_gmm(gmm: &Gmm<'_>, values: &mut Values<'_>) {
    let _ = (
        gmm.kind(),
        gmm.spec(),
        gmm.header(),
        gmm.stored_values(),
        gmm.macs(),
    );
    if let Some((mean, scale)) = gmm.standardizer() {
        assert_eq!((mean.len(), scale.len()), (gmm.dim(), gmm.dim()));
    }
    let (d, k) = (gmm.dim(), gmm.components());
    if let Some(x) = values.vector(d) {
        let density = gmm.log_density(&x);
        if let Some(mut out) = values.vector(k) {
            let total = gmm.log_responsibilities(&x, &mut out);
            if out.len() == k {
                assert_eq!(density.is_ok(), total.is_ok());
            }
        }
    }
    let rows = usize::from(values.byte().unwrap_or(2) % 4);
    if let Some(points) = values.vector(rows * d) {
        let mut out = vec![0.0; rows];
        let _ = gmm.log_density_batch(&points, &mut out);
    }
}

/// Learns from the recipe with inputs from the fuzz bytes (NaN and
/// infinities included) while buffers and inputs stay small; whatever it
/// learns must parse and score.
fn evaluate_recipe(recipe: &Recipe, values: &mut Values<'_>) {
    let spec = recipe.spec();
    let (Some(state_len), Some(features_len), Some(scores_len), Ok(file_len)) = (
        spec.state_len(),
        spec.features_len(),
        spec.scores_len(),
        spec.detector_len(),
    ) else {
        return;
    };
    let inputs = spec.learn as usize + spec.calibrate as usize;
    // Small problems only: each EM pass costs about K x D^2 x (inputs + D)
    // (the responsibilities, then a Cholesky factor and its inverse per
    // component), which the recipe may legitimately ask for.
    let d = spec.dim as usize;
    let em_work = [spec.iterations as usize + 1, spec.components as usize, d, d]
        .iter()
        .fold(spec.learn as usize + d, |w, &f| w.saturating_mul(f));
    if state_len > 1 << 16
        || file_len > 1 << 20
        || inputs * spec.input_len() > 1 << 16
        || scores_len > 1 << 16
        || em_work > 1 << 22
    {
        return;
    }
    let mut state = vec![0.0f64; state_len];
    let mut features = vec![0.0f32; features_len];
    let mut scores = vec![0.0f32; scores_len];
    let mut words = vec![0u32; file_len.div_ceil(4)];
    let buffers = Buffers {
        state: &mut state,
        features: &mut features,
        scores: &mut scores,
        file: bytemuck::cast_slice_mut(&mut words),
    };
    let Ok(mut learner) = Learner::new(recipe, buffers) else {
        return;
    };
    // Refused inputs do not count: at most twice as many tries.
    for _ in 0..2 * inputs {
        let Some(x) = values.vector(spec.input_len()) else {
            return;
        };
        match learner.observe(&x) {
            Ok(Progress::Done) => break,
            Ok(_) | Err(Error::NonFiniteInput) | Err(Error::DimensionMismatch { .. }) => {}
            Err(_) => return,
        }
    }
    if learner.progress() == Progress::Done {
        let detector = learner.detector().expect("a learned detector parses");
        evaluate_detector(&detector, values);
    }
}

fn evaluate_detector(detector: &Detector<'_>, values: &mut Values<'_>) {
    let _ = (
        detector.spec(),
        detector.stored_values(),
        detector.has_neural(),
        detector.has_second_density(),
        detector.neural_width(),
        detector.macs(),
    );
    evaluate_gmm(detector.density(), values);
    let Some(x) = values.vector(detector.input_len()) else {
        return;
    };
    let score = detector.score(&x);
    let _ = detector.is_anomaly(&x);
    let _ = detector.score_in(&x, &mut DetectorScratch::<4>::new());
    let wide = detector.score_in(&x, &mut Box::new(DetectorScratch::<256>::new()));
    if detector.neural_width() <= 64 {
        // Both run the same code with buffers of different sizes.
        match (score, wide) {
            (Ok(a), Ok(b)) => assert_eq!(a.to_bits(), b.to_bits()),
            (a, b) => assert_eq!(a.is_ok(), b.is_ok()),
        }
    }
    let _ = detector.terms_in(&x, &mut Box::new(DetectorScratch::<256>::new()));
    let _ = detector.density_terms(&x);
    if let Ok(score) = score {
        let _ = detector.alarm(score);
    }
}

fn evaluate_network(network: &Network<'_>, values: &mut Values<'_>) {
    let _ = (
        network.kind(),
        network.header(),
        network.spec(),
        network.layers(),
        network.latent_dim(),
        network.parameters(),
        network.stored_values(),
        network.macs(),
    );
    let (Some(input), Some(mut output)) = (
        values.vector(network.input_dim()),
        values.vector(network.output_dim()),
    ) else {
        return;
    };
    let _ = network.forward(&input, &mut output, &mut Scratch::<4>::new());
    let _ = network.forward(&input, &mut output, &mut Box::new(Scratch::<1024>::new()));
    if let Some(mut z) = values.vector(network.prior().dim()) {
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(u64::from(values.state));
        let _ = network.prior().sample(&mut rng, &mut z);
        let _ = network.prior().mixture();
    }
}

fn evaluate_qnetwork(network: &QNetwork<'_>, values: &mut Values<'_>) {
    let _ = (
        network.kind(),
        network.header(),
        network.spec(),
        network.layers().count(),
        network.input_params(),
        network.output_params(),
        network.hidden_width(),
        network.sample_width(),
        network.stored_bytes(),
        network.macs(),
    );
    // Exactly the sigmoid and tanh layers carry a table, but the last one
    // when it runs in f32.
    let last = network.layers().count().wrapping_sub(1);
    for (i, layer) in network.layers().enumerate() {
        let f32_last = i == last && network.f32_activation() != Activation::Identity;
        let tabled = matches!(layer.activation, Activation::Sigmoid | Activation::Tanh);
        assert_eq!(network.activation_table(i).is_some(), tabled && !f32_last);
        assert_eq!(layer.table, tabled && !f32_last);
    }
    let (Some(input), Some(mut output)) = (
        values.vector(network.input_dim()),
        values.vector(network.output_dim()),
    ) else {
        return;
    };
    let _ = network.forward(&input, &mut output, &mut QScratch::<4>::new());
    let mut wide = Box::new(QScratch::<2048>::new());
    let forward = network.forward(&input, &mut output, &mut wide);
    // forward is forward_i8 between quantize and dequantize (and the f32
    // final activation).
    let q: Vec<i8> = input
        .iter()
        .map(|&v| network.input_params().quantize(v))
        .collect();
    let mut q_out = vec![0i8; output.len()];
    let forward_i8 = network.forward_i8(&q, &mut q_out, &mut wide);
    if forward.is_ok() {
        assert!(forward_i8.is_ok());
        let params = network.output_params();
        let activation = network.f32_activation();
        for (y, &v) in output.iter().zip(&q_out) {
            let want = activation.apply(params.dequantize(v));
            assert_eq!(y.to_bits(), want.to_bits());
        }
    }
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(u64::from(values.state));
    let _ = network.sample(&mut rng, &mut output, &mut wide);
}

fn evaluate_decoder<const N: usize>(decoder: &Decoder<'_, N>, values: &mut Values<'_>) {
    let _ = (
        decoder.network(),
        decoder.max_width(),
        decoder.layers(),
        decoder.parameters(),
        decoder.macs(),
        decoder.prior().prior(),
        decoder.latent_dim(),
    );
    let mut scratch = Box::new(Scratch::<N>::new());
    let (Some(z), Some(mut out)) = (
        values.vector(decoder.latent_dim()),
        values.vector(decoder.output_dim()),
    ) else {
        return;
    };
    let _ = decoder.decode(&z, &mut out, &mut scratch);
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(u64::from(values.state));
    let _ = decoder.sample(&mut rng, &mut out, &mut scratch);
}

fn evaluate_encoder<const N: usize>(encoder: &Encoder<'_, N>, values: &mut Values<'_>) {
    let _ = (
        encoder.network(),
        encoder.max_width(),
        encoder.layers(),
        encoder.parameters(),
        encoder.macs(),
        encoder.prior().prior(),
    );
    let mut scratch = Box::new(Scratch::<N>::new());
    let (Some(x), Some(mut z)) = (
        values.vector(encoder.input_dim()),
        values.vector(encoder.latent_dim()),
    ) else {
        return;
    };
    let _ = encoder.encode(&x, &mut z, &mut scratch);
}

/// Samples with a few steps (the work is steps x the predictor's size) and
/// a fuzzed eta, into a work buffer of the right or a wrong length, and one
/// noise prediction at a fuzzed timestep.
fn evaluate_diffusion(model: &Diffusion<'_>, values: &mut Values<'_>) {
    let _ = (model.spec(), model.stored_values(), model.macs_per_step());
    let steps = u16::from(values.byte().unwrap_or(1) % 8);
    let sampler = Sampler {
        steps,
        eta: values.value(),
    };
    let mut work = vec![0f32; values.len(model.work_len()).min(1 << 16)];
    let Some(mut out) = values.vector(model.dim()) else {
        return;
    };
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(u64::from(values.byte().unwrap_or(0)));
    let _ = model.sample_in(&mut rng, sampler, &mut out, &mut work);
    let Some(x) = values.vector(model.dim()) else {
        return;
    };
    let t = u32::from(values.byte().unwrap_or(1));
    let width = values.len(model.predictor_width()).min(1 << 16);
    let (mut a, mut b) = (vec![0f32; width], vec![0f32; width]);
    let _ = model.predict_noise(&x, t, &mut out, &mut a, &mut b);
}

fn evaluate_any(model: &AnyModel<'_>, values: &mut Values<'_>) {
    let _ = (
        model.kind(),
        model.header(),
        model.macs(),
        model.stored_values(),
        model.scratch_width(),
    );
    let (Some(input), Some(mut output)) = (
        values.vector(model.input_len()),
        values.vector(model.output_len()),
    ) else {
        return;
    };
    let _ = model.eval(&input, &mut output, &mut Scratch::<4>::new());
    let _ = model.eval(&input, &mut output, &mut Box::new(Scratch::<1024>::new()));
}
