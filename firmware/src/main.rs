//! tinygen on a microcontroller under QEMU (Cortex-M0, M3, M4F, M33 or
//! RISC-V rv32imac; see `xtask::Core`): scores (or decodes) every
//! embedded test case with the runtime, compares with the host's values,
//! samples from decoders' priors and diffusion models like the host,
//! checks that corrupted or too-wide models are rejected, and exits
//! non-zero on any mismatch.
//!
//! Each case's first call (log-density, score or decode; for a recipe, the
//! whole learning; for a diffusion model, one whole sample by its file's
//! sampler) is bracketed by the marker functions
//! `tinygen_bench_start` / `tinygen_bench_end`, so an instruction-counting
//! QEMU plugin (xtask/icount) can measure exactly one call; an empty
//! bracket at the start measures the markers' own overhead, and a last
//! bracket the rejection of a hostile model file.
#![no_std]
#![no_main]

use core::hint::black_box;

#[cfg(target_arch = "arm")]
use cortex_m as _;
use semihosting::println;
#[cfg(nvmc)]
#[allow(dead_code)] // the nRF52840's region is the board program's
mod nvmc;
mod platform;

use tinygen_runtime::format::{file_in, read_header};
use tinygen_runtime::learn::{Buffers, Learner, Recipe};
use tinygen_runtime::qnetwork::{QNetwork, QScratch};
use tinygen_runtime::rand_core::SeedableRng;
use tinygen_runtime::{
    Aligned, AnyModel, Decoder, Detector, Diffusion, Error, ModelKind, Scratch, Shape,
    Xoshiro128PlusPlus,
};

/// One embedded model with host-computed expectations.
struct Case {
    name: &'static str,
    model: &'static [u8],
    dim: usize,
    /// Values per expected row (1 for densities and detectors).
    out_dim: usize,
    /// The input rows' values, stored once where rows overlap (build.rs).
    series: &'static [f32],
    /// Where each input row of `dim` values starts in `series`.
    starts: &'static [u32],
    expected: &'static [f32],
    /// 1 for an anomaly, 0 for a normal row (detector cases; may be empty).
    labels: &'static [u8],
    /// A decoder's first samples with the generator seeded with 0 (may be empty).
    samples: &'static [f32],
}

/// Widest layer a decoder may have on this firmware: the two activation
/// buffers take 8 x MAX_WIDTH bytes (4 KiB; 1.6 KiB on the 16 KiB
/// Cortex-M0, where an int8 network runs in them up to tensors of 800
/// values, the MNIST decoder's 784 included).
const MAX_WIDTH: usize = if cfg!(small_ram) { 200 } else { 512 };

/// Largest decoder output the firmware handles (784: an MNIST image, the
/// int8 decoder fits even the Cortex-M0).
const MAX_OUTPUT: usize = if cfg!(small_ram) { 784 } else { 1024 };

include!(concat!(env!("OUT_DIR"), "/cases.rs"));

impl Case {
    /// The input rows, in order (build.rs keeps every row inside `series`).
    fn rows(&self) -> impl Iterator<Item = &'static [f32]> + '_ {
        self.starts
            .iter()
            .filter_map(|&s| self.series.get(s as usize..s as usize + self.dim))
    }
}

/// Largest relative difference from the host (relative to max(1, |value|))
/// that still counts as a match. With libm the device is bit-exact in
/// practice; micromath's approximations are checked against a looser bound
/// and the measured error is printed.
const TOLERANCE: f32 = if cfg!(feature = "micromath") {
    1e-2
} else {
    1e-6
};

/// A small valid model file of the runtime's golden set.
static GOLDEN_DETECTOR: &[u8] =
    tinygen_runtime::include_model!("../../runtime/tests/golden/detector.tgm");

/// Largest model the corruption check copies to RAM (it corrupts the
/// smallest case's model that fits).
const CORRUPT_BUF: usize = if cfg!(small_ram) { 4 } else { 16 } * 1024;

#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tinygen_bench_start() {
    black_box(0x5741_5254u32);
}

#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tinygen_bench_end() {
    black_box(0x0045_4e44u32);
    black_box(0x0045_4e44u32);
}

/// Scores a case; returns the number of mismatches. Never inlined: its
/// buffers must not stay on the stack under the checks that follow (the
/// Cortex-M0 has 16 KiB of RAM).
#[inline(never)]
fn check_case(case: &Case) -> usize {
    let model = match AnyModel::from_bytes(case.model) {
        Ok(m) if m.scratch_width() <= MAX_WIDTH => m,
        Ok(m) => {
            println!(
                "case {}: model needs {} wide buffers, the firmware has {}",
                case.name,
                m.scratch_width(),
                MAX_WIDTH
            );
            return 1;
        }
        Err(e) => {
            println!("case {}: model rejected: {}", case.name, e);
            return 1;
        }
    };
    let out_len = model.output_len();
    if model.input_len() != case.dim || out_len != case.out_dim || out_len > MAX_OUTPUT {
        println!(
            "case {}: model maps {} -> {} values, the case {} -> {}",
            case.name,
            model.input_len(),
            out_len,
            case.dim,
            case.out_dim
        );
        return 1;
    }
    // Densities and detectors write one value: their frame need not hold a
    // decoder's output buffer (the Cortex-M0 has 16 KiB of RAM).
    if out_len <= 1 {
        score_case::<1>(case, &model, true)
    } else {
        score_case::<MAX_OUTPUT>(case, &model, true)
    }
}

/// [`check_case`]'s scoring, with an output buffer of `OUT` values.
#[inline(never)]
fn score_case<const OUT: usize>(case: &Case, model: &AnyModel<'_>, measure: bool) -> usize {
    let out_len = model.output_len();
    let mut scratch = Scratch::<MAX_WIDTH>::new();
    let mut buf = [0f32; OUT];
    let Some(out) = buf.get_mut(..out_len) else {
        return 1;
    };
    // One exactly measured call (markers for the instruction counter).
    let Some(first) = case.rows().next() else {
        return 1;
    };
    if let (true, AnyModel::Diffusion(diffusion)) = (measure, model) {
        measure_diffusion_sample(diffusion, out);
    } else if measure {
        tinygen_bench_start();
        let measured = model.eval(black_box(first), out, &mut scratch);
        tinygen_bench_end();
        black_box(&measured);
    }
    let stack = stack_used(|| {
        black_box(model.eval(black_box(first), out, &mut scratch).ok());
    });
    let mut mismatches = 0;
    let mut bit_exact = 0;
    let mut max_rel = 0.0f32;
    for (x, want) in case.rows().zip(case.expected.chunks_exact(out_len)) {
        if let Err(e) = model.eval(x, out, &mut scratch) {
            println!("case {}: evaluation failed: {}", case.name, e);
            mismatches += 1;
            continue;
        }
        for (&got, &want) in out.iter().zip(want) {
            let rel = (got - want).abs() / want.abs().max(1.0);
            max_rel = max_rel.max(rel);
            if got.to_bits() == want.to_bits() {
                bit_exact += 1;
            } else if rel > TOLERANCE {
                mismatches += 1;
            }
        }
    }
    match (model, model.kind()) {
        (AnyModel::Network(_), ModelKind::Decoder) => {
            mismatches += check_f32_samples(case, out, &mut scratch);
        }
        (AnyModel::QNetwork(decoder), ModelKind::DecoderInt8) => {
            mismatches += check_int8_samples(case, out, decoder);
        }
        (AnyModel::Diffusion(diffusion), _) => {
            mismatches += check_diffusion_samples(case, out, diffusion);
        }
        _ => {}
    }
    if let (AnyModel::Detector(detector), false) = (model, case.labels.is_empty()) {
        report_alarms(case, detector);
    }
    println!(
        "case {}: {} values, {} bit-exact, {} mismatches, max rel err {}, stack {} bytes",
        case.name,
        case.expected.len(),
        bit_exact,
        mismatches,
        Sci(max_rel),
        stack
    );
    mismatches
}

/// Learner state a recipe case may use: 348 f64 values for a full
/// Gaussian over 24 features (six channels' window statistics), 370 for
/// a pair of two-component diagonal mixtures over them.
const LEARN_STATE: usize = if cfg!(small_ram) { 400 } else { 2400 };
/// Stored features a recipe case with several components may use (24
/// windows of 24 features).
const LEARN_FEATURES: usize = 600;
/// Calibration scores a recipe case may use.
const LEARN_SCORES: usize = 128;
/// Bytes of a learned detector file (1,528 for 24 full features).
const LEARN_FILE: usize = if cfg!(small_ram) { 1600 } else { 12 * 1024 };

/// A recipe case: learns the detector on the device from the case's first
/// inputs (the recipe's learning and calibration inputs), prints what it
/// learned (threshold and the file's CRC, which the host compares), then
/// scores every input with it as [`score_case`] does. Not inlined: its
/// buffers must leave the stack before the next case.
#[inline(never)]
fn learn_case(case: &Case) -> usize {
    // The learned file goes to the start of an erased flash page, and is
    // found there as after a reset: by its header, not a stored length.
    let mut page = Aligned([0xFF; LEARN_FILE]);
    match learn(case, &mut page.0)
        .and_then(|()| file_in(&page.0))
        .and_then(|file| keep(case, file))
    {
        Ok(file) => score_learned(case, file),
        Err(e) => {
            println!("case {}: learning failed: {}", case.name, e);
            1
        }
    }
}

/// Where the device keeps a learned `file`: on a Nordic part (the
/// micro:bit), written to its last flash pages through the flash controller
/// and found there again by its header; elsewhere the RAM page it was
/// learned into.
#[cfg(nvmc)]
fn keep<'a>(case: &Case, file: &'a [u8]) -> Result<&'a [u8], Error> {
    const LEARNED: nvmc::Region = nvmc::MICROBIT;
    let kept = LEARNED.write(file)?;
    println!(
        "case {}: the learned file is in flash at {:#x}, {} bytes, written through the NVMC",
        case.name,
        LEARNED.start,
        kept.len()
    );
    Ok(kept)
}

#[cfg(not(nvmc))]
fn keep<'a>(_: &Case, file: &'a [u8]) -> Result<&'a [u8], Error> {
    Ok(file)
}

/// Reports what [`learn`] learned and scores the case's inputs with it.
#[inline(never)]
fn score_learned(case: &Case, file: &[u8]) -> usize {
    let detector = match Detector::from_bytes(file) {
        Ok(d) => d,
        Err(e) => {
            println!(
                "case {}: the learned detector is rejected: {}",
                case.name, e
            );
            return 1;
        }
    };
    // The threshold's bits: core's float formatting would cost about 20 KB.
    println!(
        "case {}: learned on the device from {} inputs, threshold bits {:#010x}, file crc {:#010x}",
        case.name,
        learned_inputs(case),
        detector.threshold().to_bits(),
        detector.density().header().crc
    );
    // The case's measured region was the learning.
    score_case::<1>(case, &AnyModel::Detector(detector), false)
}

/// Inputs a recipe case learns and calibrates from.
fn learned_inputs(case: &Case) -> usize {
    Recipe::from_bytes(case.model).map_or(0, |r| (r.spec().learn + r.spec().calibrate) as usize)
}

/// Runs the learner over the case's first inputs with its state and scores
/// on this function's frame (gone before the caller parses the learned
/// detector: the Cortex-M0 has 16 KiB of RAM), writing the learned file to
/// the start of `file`.
#[inline(never)]
fn learn(case: &Case, file: &mut [u8]) -> Result<(), Error> {
    let recipe = Recipe::from_bytes(case.model)?;
    let spec = recipe.spec();
    if spec.input_len() != case.dim {
        return Err(Error::DimensionMismatch {
            expected: spec.input_len(),
            found: case.dim,
        });
    }
    let mut state = [0f64; LEARN_STATE];
    let mut features = [0f32; LEARN_FEATURES];
    let mut scores = [0f32; LEARN_SCORES];
    let buffers = Buffers {
        state: &mut state,
        features: &mut features,
        scores: &mut scores,
        file,
    };
    let mut learner = Learner::new(&recipe, buffers)?;
    let needed = spec.learn as usize + spec.calibrate as usize;
    // The whole learning is the case's measured region (markers for the
    // instruction counter): every input, the fit and the threshold.
    tinygen_bench_start();
    let mut result = Ok(());
    for x in case.rows().take(needed) {
        if let Err(e) = learner.observe(black_box(x)) {
            result = Err(e);
            break;
        }
    }
    tinygen_bench_end();
    result?;
    learner.file().map(|_| ())
}

/// [`check_samples`] for an f32 decoder. Not inlined, so that its decoder
/// is not on the stack while [`check_case`] scores other kinds (the
/// Cortex-M0's 16 KiB).
#[inline(never)]
fn check_f32_samples(case: &Case, out: &mut [f32], scratch: &mut Scratch<MAX_WIDTH>) -> usize {
    match Decoder::<MAX_WIDTH>::from_bytes(case.model) {
        Ok(decoder) => check_samples(case, out, |rng, out| decoder.sample(rng, out, scratch)),
        Err(e) => {
            println!("case {}: decoder rejected: {}", case.name, e);
            1
        }
    }
}

/// [`check_samples`] for an int8 decoder, whose sampling keeps the whole
/// pass, output included, in int8 buffers (not inlined, as above).
#[inline(never)]
fn check_int8_samples(case: &Case, out: &mut [f32], decoder: &QNetwork<'_>) -> usize {
    let mut scratch = QScratch::<MAX_OUTPUT>::new();
    check_samples(case, out, |rng, out| decoder.sample(rng, out, &mut scratch))
}

/// Work buffer of a diffusion model's sampler (`Diffusion::work_len`):
/// two noise vectors and the predictor's two buffers.
const DIFFUSION_WORK: usize = if cfg!(small_ram) { 640 } else { 2048 };

/// [`check_samples`] for a diffusion model by its file's sampler (not
/// inlined, as above).
#[inline(never)]
fn check_diffusion_samples(case: &Case, out: &mut [f32], model: &Diffusion<'_>) -> usize {
    let mut work = [0f32; DIFFUSION_WORK];
    check_samples(case, out, |rng, out| model.sample(rng, out, &mut work))
}

/// One whole sample of a diffusion model by its file's sampler, between
/// the instruction counter's markers.
#[inline(never)]
fn measure_diffusion_sample(model: &Diffusion<'_>, out: &mut [f32]) {
    let mut work = [0f32; DIFFUSION_WORK];
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
    tinygen_bench_start();
    let measured = model.sample(&mut rng, out, &mut work);
    tinygen_bench_end();
    black_box(&measured);
}

/// A non-negative error in scientific notation with three digits, without
/// core's float formatting (about 20 KB of flash, a tenth of a Cortex-M0's).
struct Sci(f32);

impl core::fmt::Display for Sci {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut v = self.0;
        if v == 0.0 {
            return f.write_str("0e0");
        }
        if !(v.is_finite() && v > 0.0) {
            return f.write_str("NaN");
        }
        let mut exponent = 0i32;
        while v >= 10.0 {
            v /= 10.0;
            exponent += 1;
        }
        while v < 1.0 {
            v *= 10.0;
            exponent -= 1;
        }
        let digits = ((v * 100.0 + 0.5) as u32).min(999);
        write!(f, "{}.{:02}e{}", digits / 100, digits % 100, exponent)
    }
}

/// Samples from a decoder's prior with the generator seeded with 0, compares
/// with the host's samples (if the case has them) and draws the first
/// sample as text when it is a square image. Returns the mismatches.
fn check_samples(
    case: &Case,
    out: &mut [f32],
    mut sample: impl FnMut(&mut Xoshiro128PlusPlus, &mut [f32]) -> Result<(), Error>,
) -> usize {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
    let n = out.len();
    let mut mismatches = 0;
    let count = (case.samples.len() / n).max(1);
    for i in 0..count {
        if let Err(e) = sample(&mut rng, out) {
            println!("case {}: sampling failed: {}", case.name, e);
            return 1;
        }
        if let Some(want) = case.samples.get(i * n..(i + 1) * n) {
            mismatches += out
                .iter()
                .zip(want)
                .filter(|(g, w)| (*g - *w).abs() / w.abs().max(1.0) > TOLERANCE)
                .count();
        }
        if i == 0 {
            draw(out);
        }
    }
    println!(
        "case {}: {} samples from the prior, {} values differ from the host",
        case.name, count, mismatches
    );
    mismatches
}

/// Prints a square grey image in [0, 1] as text, two characters per pixel.
fn draw(image: &[f32]) {
    let side = (0..=64).find(|s| s * s >= image.len()).unwrap_or(0);
    if side * side != image.len() {
        return;
    }
    const SHADES: [&str; 5] = ["  ", "..", "::", "oo", "##"];
    for row in image.chunks_exact(side) {
        let mut line = [0u8; 128];
        for (j, &v) in row.iter().enumerate() {
            let level = ((v.clamp(0.0, 1.0) * 4.0) + 0.5) as usize;
            line[2 * j..2 * j + 2].copy_from_slice(SHADES[level.min(4)].as_bytes());
        }
        println!("{}", core::str::from_utf8(&line[..2 * side]).unwrap_or(""));
    }
}

/// Bytes of stack that `f` uses below the caller's frame, found by painting
/// the free stack with a pattern and looking for the deepest overwritten word.
#[inline(never)]
fn stack_used(f: impl FnOnce()) -> usize {
    const PAINT: u32 = 0xC0DE_CAFE;
    const WORDS: usize = if cfg!(small_ram) { 768 } else { 1024 };
    // Nothing lives below the stack pointer: this function's frame is above it.
    let top = platform::stack_pointer() & !3;
    let bottom = top - 4 * WORDS;
    for addr in (bottom..top).step_by(4) {
        // SAFETY: the region lies below the live stack, which every memory
        // map leaves free; nothing else runs (no interrupts are enabled).
        unsafe { core::ptr::write_volatile(addr as *mut u32, PAINT) };
    }
    f();
    let deepest = (bottom..top)
        .step_by(4)
        // SAFETY: as above, the painted region is ordinary RAM.
        .find(|&addr| unsafe { core::ptr::read_volatile(addr as *const u32) } != PAINT)
        .unwrap_or(top);
    platform::stack_pointer() - deepest
}

/// Streams a detector case's inputs and prints its hit and false-alarm counts.
fn report_alarms(case: &Case, detector: &Detector) {
    let (mut hits, mut anomalies, mut false_alarms, mut normal) = (0, 0, 0, 0);
    for (x, &label) in case.rows().zip(case.labels) {
        let alarm = detector.is_anomaly(x).unwrap_or(true);
        if label != 0 {
            anomalies += 1;
            hits += usize::from(alarm);
        } else {
            normal += 1;
            false_alarms += usize::from(alarm);
        }
    }
    println!(
        "case {}: detector flagged {} of {} anomalous windows, {} false alarms in {} normal windows",
        case.name, hits, anomalies, false_alarms, normal
    );
}

#[repr(C, align(4))]
struct Buffer([u8; CORRUPT_BUF]);

/// Corrupts copies of a model in RAM and checks each is rejected with the
/// right error. Never inlined: its buffer must not add to the frame that
/// runs the cases (the Cortex-M0 has 16 KiB of RAM).
#[inline(never)]
fn check_corruption(model: &[u8]) -> usize {
    let mut buf = Buffer([0; CORRUPT_BUF]);
    let n = model.len();
    if n >= CORRUPT_BUF {
        println!(
            "corruption check skipped: model of {} bytes > {} byte buffer",
            n, CORRUPT_BUF
        );
        return 1;
    }
    let mut failures = 0;
    let mut expect = |what: &str, bytes: &[u8], want: fn(&Error) -> bool| {
        let result = AnyModel::from_bytes(bytes);
        match result {
            Err(ref e) if want(e) => println!("corrupted model ({}) rejected: {}", what, e),
            Err(e) => {
                println!("corrupted model ({}): wrong error {}", what, e);
                failures += 1;
            }
            Ok(_) => {
                println!("corrupted model ({}) was ACCEPTED", what);
                failures += 1;
            }
        }
    };
    buf.0[..n].copy_from_slice(model);
    buf.0[n / 2] ^= 0x10;
    expect("one bit flipped", &buf.0[..n], |e| {
        matches!(e, Error::CrcMismatch { .. })
    });

    buf.0[..n].copy_from_slice(model);
    buf.0[0] = b'X';
    expect("bad magic", &buf.0[..n], |e| *e == Error::BadMagic);

    buf.0[..n].copy_from_slice(model);
    expect("truncated", &buf.0[..n - 1], |e| {
        *e == Error::LengthMismatch
    });

    buf.0[1..n + 1].copy_from_slice(model);
    expect("at an odd address", &buf.0[1..n + 1], |e| {
        *e == Error::Misaligned
    });
    failures
}

/// A 32-byte GMM file, found by fuzzing, whose spec claims a dimension near
/// 2.8e9 and about 147,000 components; header and CRC are valid. Parsing
/// must reject it within a budget of instructions (the QEMU test counts
/// them: the last measured region).
static HOSTILE: &Aligned<[u8; 32]> = &Aligned([
    0x54, 0x47, 0x4d, 0x00, 0x01, 0x00, 0x01, 0x00, 0x8f, 0x26, 0xe4, 0x0b, 0x0c, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xf3, 0xc2, 0x0a, 0xff, 0xff, 0x08, 0x00, 0x00, 0x00, 0x00, 0xce, 0xb8, 0x3a, 0x20,
]);

/// Parses [`HOSTILE`] between the instruction-count markers; returns 1 unless
/// its counts are rejected for not matching the stored values.
fn check_hostile() -> usize {
    tinygen_bench_start();
    let result = AnyModel::from_bytes(black_box(&HOSTILE.0));
    tinygen_bench_end();
    match result {
        Err(e @ Error::InvalidShape(Shape::DataLength)) => {
            println!("hostile 32-byte model rejected: {}", e);
            0
        }
        Err(e) => {
            println!("hostile 32-byte model: wrong error {}", e);
            1
        }
        Ok(_) => {
            println!("hostile 32-byte model was ACCEPTED");
            1
        }
    }
}

#[cfg_attr(target_arch = "arm", cortex_m_rt::entry)]
#[cfg_attr(target_arch = "riscv32", riscv_rt::entry)]
fn main() -> ! {
    // An empty measured region: the marker overhead the counts include.
    tinygen_bench_start();
    tinygen_bench_end();
    let mut failures = 0;
    for case in CASES {
        // A recipe is learned first; its frames stay apart from the
        // other cases' (the Cortex-M0 has 16 KiB of RAM).
        failures += if read_header(case.model).is_ok_and(|h| h.kind == ModelKind::Recipe) {
            learn_case(case)
        } else {
            check_case(case)
        };
    }
    // Corrupt the smallest case's model, or where even that does not fit
    // the RAM buffer (a Cortex-M0 image of one big case), the runtime's
    // golden detector file.
    let corrupted = CASES
        .iter()
        .map(|c| c.model)
        .filter(|m| m.len() < CORRUPT_BUF)
        .filter(|m| read_header(m).is_ok_and(|h| h.kind != ModelKind::Recipe))
        .min_by_key(|m| m.len())
        .unwrap_or(GOLDEN_DETECTOR);
    failures += check_corruption(corrupted);
    failures += check_hostile();
    // A decoder wider than the firmware's buffers is refused at parse time.
    let decoder = CASES
        .iter()
        .find(|c| matches!(read_header(c.model), Ok(h) if h.kind == ModelKind::Decoder));
    if let Some(case) = decoder {
        match Decoder::<2>::from_bytes(case.model) {
            Err(e @ Error::TooWide { .. }) => {
                println!("decoder {} with 2-value buffers rejected: {}", case.name, e)
            }
            other => {
                println!(
                    "decoder {} with 2-value buffers: {:?}",
                    case.name,
                    other.err()
                );
                failures += 1;
            }
        }
    }
    if failures == 0 {
        println!("firmware: all checks passed");
    } else {
        println!("firmware: {} checks FAILED", failures);
    }
    platform::exit(failures == 0)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("panic: {}", info);
    platform::exit(false)
}
