use rand::{Rng, SeedableRng};
use tinygen_runtime::network::{PriorParams, Role};
use tinygen_runtime::{Activation, QScratch};

use super::*;
use crate::host::AlignedBytes;
use crate::nn::export::DenseLayer;
use crate::nn::quantize::{QuantOptions, quantize_with};

/// A random int8 network with the given widths and activations, as
/// the quantizer writes it with `options`; then, with `extreme`, some
/// weights set to -128 (where a lane holds them) and the biases spread
/// over the whole `i32` range, so that sums wrap and requantization
/// saturates; with `clamping`, the ReLUs' zero points (where
/// calibration puts -128, which clamps nothing) moved up, so that they
/// clamp.
fn network(
    widths: &[usize],
    activations: &[Activation],
    options: QuantOptions,
    [extreme, clamping]: [bool; 2],
    seed: u64,
) -> Vec<u8> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let layers: Vec<DenseLayer> = widths
        .windows(2)
        .zip(activations)
        .map(|(io, &activation)| {
            let scale = 2.0 / (io[0] as f32).sqrt();
            DenseLayer {
                inputs: io[0],
                outputs: io[1],
                weight: (0..io[0] * io[1])
                    .map(|_| rng.random_range(-scale..scale))
                    .collect(),
                bias: (0..io[1]).map(|_| rng.random_range(-0.5..0.5)).collect(),
                activation,
            }
        })
        .collect();
    let calibration: Vec<f32> = (0..64 * widths[0])
        .map(|_| rng.random_range(-2.0..2.0))
        .collect();
    let mut quantized = quantize_with(&layers, &calibration, options).unwrap();
    if extreme {
        for layer in &mut quantized.layers {
            let inputs = layer.inputs;
            for (k, w) in layer.weight.iter_mut().enumerate() {
                // Rows 4b and 4b + 2 are a lane's low bytes.
                if (k / inputs) % 2 == 0 && rng.random_range(0..4) == 0 {
                    *w = -128;
                }
            }
            for b in &mut layer.bias {
                *b = rng.random();
            }
        }
    }
    if clamping {
        for layer in &mut quantized.layers {
            if layer.activation == Activation::Relu {
                layer.output.zero_point = rng.random_range(-100..=20);
            }
        }
    }
    quantized
        .params(Role::Decoder, PriorParams::None)
        .encode()
        .unwrap()
}

fn runtime_rows(net: &QNetwork<'_>, inputs: &[f32]) -> Vec<f32> {
    let mut scratch = Box::new(QScratch::<256>::new());
    let o = net.output_dim();
    let mut out = vec![0f32; inputs.len() / net.input_dim() * o];
    for (x, y) in inputs.chunks(net.input_dim()).zip(out.chunks_mut(o)) {
        net.forward(x, y, &mut scratch).unwrap();
    }
    out
}

#[test]
fn the_fast_path_is_bit_identical_to_the_runtime() {
    use Activation::{Identity, Relu, Sigmoid, Tanh};
    let cases: [(&[usize], &[Activation]); 4] = [
        (&[16, 128, 100], &[Relu, Sigmoid]),
        (&[5, 37, 3], &[Tanh, Identity]),
        (&[1, 17, 33, 2], &[Sigmoid, Relu, Tanh]),
        (&[64, 16], &[Identity]),
    ];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let kernels = Kernel::available();
    // CI sets it where a SIMD kernel must be compared (QEMU's aarch64).
    if std::env::var_os("TINYGEN_REQUIRE_SIMD").is_some() {
        assert!(kernels.len() > 1, "no SIMD kernel on this CPU: {kernels:?}");
    }
    // The scalar lookups, and the vector ones where the CPU has them.
    let lookups = [false, has_vector_lookups()];
    // Under Miri (`scripts/miri.sh trainer`), only the small networks, in
    // batches the calling thread runs (a whole tile and a part one): the
    // rest takes Miri hours.
    let (cases, batches): (&[_], &[usize]) = if cfg!(miri) {
        (&cases[1..], &[1, 5])
    } else {
        (&cases, &[1, 3, 4, 5, 37, 100])
    };
    let mut compared = 0;
    for (seed, (widths, activations)) in cases.iter().enumerate() {
        for (per_tensor, f32_output, extreme, clamping) in [
            (false, false, false, false),
            (true, false, false, true),
            (false, true, true, false),
            (true, true, true, true),
            (false, true, false, true),
        ] {
            let saturating = matches!(activations.last(), Some(Sigmoid | Tanh));
            if f32_output && !saturating {
                continue;
            }
            let options = QuantOptions::from_flags(per_tensor, f32_output);
            let file = network(
                widths,
                activations,
                options,
                [extreme, clamping],
                seed as u64,
            );
            let bytes = AlignedBytes::new(&file);
            let net = QNetwork::from_bytes(bytes.as_bytes()).unwrap();
            // (Layers start where their kernel's inputs need.)
            let mut fast: Vec<FastQNetwork> = kernels
                .iter()
                .map(|&kernel| FastQNetwork::with_kernel(&net, kernel).unwrap())
                .collect();
            for &rows in batches {
                let inputs: Vec<f32> = (0..rows * widths[0])
                    .map(|_| rng.random_range(-4.0..4.0))
                    .collect();
                let want = runtime_rows(&net, &inputs);
                for (i, vector) in (0..fast.len()).flat_map(|i| lookups.map(|v| (i, v))) {
                    let fast = &mut fast[i];
                    fast.vector_lookups = vector;
                    let kernel = fast.kernel;
                    let mut got = vec![0f32; want.len()];
                    fast.forward_batch(&inputs, &mut got).unwrap();
                    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert_eq!(
                            g.to_bits(),
                            w.to_bits(),
                            "{widths:?} {activations:?} per-tensor {per_tensor} f32 output \
                             {f32_output} extreme {extreme} clamping {clamping}, {rows} rows, \
                             {kernel:?}, vector lookups {vector}, value {k}"
                        );
                    }
                    compared += 1;
                }
            }
        }
    }
    assert!(compared >= 10 * batches.len() * kernels.len(), "{compared}");
    eprintln!(
        "kernels compared: {kernels:?}, vector lookups {}",
        has_vector_lookups()
    );
}

/// The vector requantizations (AVX2, AVX-512, NEON), followed by the
/// lookups' clamp, against the runtime's on sums, multipliers and
/// shifts over their whole valid ranges.
#[test]
fn the_vector_requantization_is_the_runtimes() {
    use tinygen_runtime::quant::Requant;
    let kernels: Vec<Kernel> = Kernel::available()
        .into_iter()
        .filter(|&k| k != Kernel::Portable)
        .collect();
    if kernels.is_empty() {
        eprintln!("no SIMD kernel on this CPU: nothing to compare");
        return;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let trials = if cfg!(miri) { 200 } else { 2000 };
    for trial in 0..trials {
        let multiplier: Vec<i32> = (0..WIDTH)
            .map(|_| match rng.random_range(0..4) {
                0 => i32::MAX,
                1 => rng.random_range(0..=i32::MAX),
                _ => rng.random_range(1 << 30..=i32::MAX),
            })
            .collect();
        let shift: Vec<i32> = (0..WIDTH).map(|_| rng.random_range(-31..=30)).collect();
        let acc: Vec<i32> = (0..WIDTH)
            .map(|_| match rng.random_range(0..3) {
                0 => rng.random(),
                1 => rng.random_range(-1 << 16..1 << 16),
                _ => [i32::MIN, i32::MAX, 0, -1][rng.random_range(0..4)],
            })
            .collect();
        let (act_min, act_max) = if trial % 2 == 0 {
            (-128, 127)
        } else {
            (rng.random_range(-128..0), 127)
        };
        let per_tensor = trial % 3 == 0;
        let (m, sh) = if per_tensor {
            (&multiplier[..1], &shift[..1])
        } else {
            (&multiplier[..], &shift[..])
        };
        let requant = Requant {
            multiplier: m,
            shift: sh,
            output_zero_point: rng.random_range(-128..=127),
            act_min,
            act_max,
            rounding: Rounding::Single,
        };
        let data = QLayerData {
            inputs: 1,
            outputs: WIDTH,
            input_zero_point: 0,
            weights: &[],
            bias: &[],
            requant,
            table: None,
        };
        let layer = FastQLayer {
            data,
            groups: 1,
            blocks: 1,
            weights: Vec::new(),
            start: Vec::new(),
            scales: Scales::new(&requant, WIDTH),
            lookup: Lookup::Next {
                table: Box::new([0; 256]),
                next_row: 0,
            },
        };
        for &kernel in &kernels {
            let mut got = [0i8; WIDTH];
            kernel.requantize(&layer, &acc, &mut got);
            for (o, (&g, &a)) in got.iter().zip(&acc).enumerate() {
                let (g, want) = (clamp(&requant, g), requant.output(o, a));
                assert_eq!(g, want, "{kernel:?}, trial {trial}, lane {o}: {a}");
            }
        }
    }
}

/// The fast path's input quantization, scalar and vectorised, against
/// the runtime's on values at every magnitude, ties, and the extremes.
#[test]
fn the_input_quantization_is_the_runtimes() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    // Fewer under Miri, which is thousands of times slower.
    let (random, ties) = if cfg!(miri) { (500, 20) } else { (20_000, 400) };
    // Finite values of every exponent, and the extremes.
    let values: Vec<f32> = [0.0, -0.0, f32::MAX, f32::MIN, f32::MIN_POSITIVE, 1e-45]
        .into_iter()
        .chain((0..random).map(|_| {
            f32::from_bits(rng.random::<u32>() & !(0xff << 23) | rng.random_range(0..255) << 23)
        }))
        .collect();
    for scale in [1.0f32, 0.034199186, 1.0 / 3.0, 1e-30, 3e37] {
        for zero_point in [-128i8, -6, 0, 66, 127] {
            let params = QuantParams { scale, zero_point };
            // Ties and their neighbours: (k + 1/2) scale, one ulp either way.
            let mut x = values.clone();
            for k in -ties..ties {
                let tie = (k as f32 + 0.5) * scale;
                x.extend([
                    tie,
                    f32::from_bits(tie.to_bits() + 1),
                    f32::from_bits(tie.to_bits() - 1),
                ]);
            }
            x.retain(|v| v.is_finite());
            let want: Vec<u8> = x.iter().map(|&v| unsigned(params.quantize(v))).collect();
            for kernel in Kernel::available() {
                let mut got = vec![0u8; x.len()];
                quantize(kernel, params, &x, &mut got);
                for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(
                        g, w,
                        "{kernel:?} scale {scale} zero point {zero_point}: {}",
                        x[k]
                    );
                }
            }
        }
    }
}

#[test]
fn bad_rows_are_errors() {
    let options = QuantOptions::default();
    let file = network(&[3, 8, 2], &[Relu, Identity], options, [false; 2], 1);
    let bytes = AlignedBytes::new(&file);
    let net = QNetwork::from_bytes(bytes.as_bytes()).unwrap();
    let fast = FastQNetwork::new(&net).unwrap();
    let mut out = [0f32; 4];
    assert!(fast.forward_batch(&[], &mut []).is_ok(), "no rows");
    assert!(fast.forward_batch(&[0.0; 5], &mut out).is_err());
    assert!(fast.forward_batch(&[0.0; 6], &mut out[..3]).is_err());
    let err = fast
        .forward_batch(&[0.0, f32::NAN, 0.0, 1.0, 2.0, 3.0], &mut out)
        .unwrap_err();
    assert!(err.to_string().contains("finite"), "{err}");
}

use Activation::{Identity, Relu};
