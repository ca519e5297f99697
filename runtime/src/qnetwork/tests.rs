//! Unit tests of int8 network files: hand-computed passes, an i64
//! reference, validation and typed errors, mutated files, bounded parsing.
#![cfg(feature = "alloc")]

extern crate std;

use std::vec;
use std::vec::Vec;

use proptest::prelude::*;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;

use super::*;
use crate::format::reseal;
use crate::network::MAX_LAYERS;
use crate::network::{PriorParams, Role};
use crate::quant::quantize_multiplier_single_rounding;

/// A copy of `bytes` at a 4-aligned address.
struct AlignedBuf {
    words: Vec<u32>,
    len: usize,
}

impl AlignedBuf {
    fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Self {
            words,
            len: bytes.len(),
        }
    }

    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u32, u8>(&self.words)[..self.len]
    }
}

fn qp(scale: f32, zero_point: i8) -> QuantParams {
    QuantParams { scale, zero_point }
}

/// 2 -> 3 (relu) -> 2 (identity), weights at scale 1/64, tensors at 1/16
/// with zero points: input 4, hidden -8, output 10.
fn two_layers<'p>(multiplier: &'p [i32], shift: &'p [i32]) -> QNetworkParams<'p> {
    QNetworkParams {
        role: Role::Encoder,
        input: qp(1.0 / 16.0, 4),
        layers: vec![
            QLayerParams {
                inputs: 2,
                outputs: 3,
                activation: Activation::Relu,
                weight: &[64, 0, 0, 64, 64, 64],
                bias: &[0, 0, -1024],
                multiplier: &[1 << 30],
                shift: &[-5],
                output: qp(1.0 / 16.0, -8),
            },
            QLayerParams {
                inputs: 3,
                outputs: 2,
                activation: Activation::Identity,
                weight: &[64, -64, 32, -32, 16, 8],
                bias: &[100, -100],
                multiplier,
                shift,
                output: qp(1.0 / 16.0, 10),
            },
        ],
        prior: PriorParams::None,
        final_activation: FinalActivation::Int8,
    }
}

fn parse(buf: &AlignedBuf) -> Result<QNetwork<'_>, Error> {
    QNetwork::from_bytes(buf.bytes())
}

#[test]
fn two_layer_relu_identity_by_hand_per_tensor_and_per_channel() {
    // x = (2, -1): q = (32 + 4, -16 + 4) = (36, -12); x - zp = (32, -16).
    // Layer 1: acc = (2048, -1024, 2048 - 1024 - 1024 = 0); times 2^-6 =
    // (32, -16, 0); + zp -8 = (24, -24, -8); relu clamps at the zero point
    // -8: (24, -8, -8), the reals (2, 0, 0).
    // Layer 2: x - zp = (32, 0, 0); acc = (2048 + 100, -1024 - 100).
    // Per-tensor (2^30, -5), times 2^-6: 33.56 -> 34 and -17.56 -> -18;
    // + 10 = (44, -8). Per-channel, second row (2^30, -4), times 2^-5:
    // -35.125 -> -35, + 10 = -25.
    for (multiplier, shift, want) in [
        (&[1 << 30][..], &[-5][..], [44i8, -8]),
        (&[1 << 30, 1 << 30][..], &[-5, -4][..], [44, -25]),
    ] {
        let bytes = two_layers(multiplier, shift).encode().unwrap();
        let buf = AlignedBuf::new(&bytes);
        let net = parse(&buf).unwrap();
        assert_eq!(net.kind(), ModelKind::EncoderInt8);
        assert_eq!((net.input_dim(), net.output_dim()), (2, 2));
        assert_eq!((net.hidden_width(), net.macs()), (3, 12));
        assert_eq!(
            net.layers().map(|l| l.per_channel).collect::<Vec<_>>(),
            [false, multiplier.len() == 2]
        );
        let mut scratch = QScratch::<3>::new();
        let mut q = [0i8; 2];
        net.forward_i8(&[36, -12], &mut q, &mut scratch).unwrap();
        assert_eq!(q, want);
        let mut y = [0f32; 2];
        net.forward(&[2.0, -1.0], &mut y, &mut scratch).unwrap();
        assert_eq!(
            y,
            [
                f32::from(want[0] - 10) / 16.0,
                f32::from(want[1] - 10) / 16.0
            ]
        );
        assert_eq!(net.output_params(), qp(1.0 / 16.0, 10));
        // Words: layer 1: 4 (3 x 2 weights padded to 4 x 4) + 3 + 2; layer
        // 2: 4 (2 x 3 padded) + 2 + 2m.
        assert_eq!(net.stored_bytes(), 4 * (9 + 6 + 2 * multiplier.len()));
    }
}

/// 1 -> 2 (`activation`) -> 1 (identity) decoder: the pre-activation is
/// (z, -z), the output the activated first value, all at scale 1/16.
fn activated_decoder(activation: Activation) -> QNetworkParams<'static> {
    QNetworkParams {
        role: Role::Decoder,
        input: qp(1.0 / 16.0, 0),
        layers: vec![
            QLayerParams {
                inputs: 1,
                outputs: 2,
                activation,
                weight: &[64, -64],
                bias: &[0, 0],
                multiplier: &[1 << 30],
                shift: &[-5],
                output: qp(1.0 / 16.0, 0),
            },
            QLayerParams {
                inputs: 2,
                outputs: 1,
                activation: Activation::Identity,
                weight: &[64, 0],
                bias: &[0],
                multiplier: &[1 << 30],
                shift: &[-5],
                output: qp(1.0 / 16.0, 0),
            },
        ],
        prior: PriorParams::Gaussian,
        final_activation: FinalActivation::Int8,
    }
}

#[test]
fn sigmoid_and_tanh_map_through_the_fixed_output_params() {
    for activation in [Activation::Sigmoid, Activation::Tanh] {
        let bytes = activated_decoder(activation).encode().unwrap();
        let buf = AlignedBuf::new(&bytes);
        let net = parse(&buf).unwrap();
        let fixed = if activation == Activation::Sigmoid {
            qp(1.0 / 256.0, -128)
        } else {
            qp(1.0 / 128.0, 0)
        };
        assert_eq!(net.layers().next().unwrap().activated, fixed);
        // Words: layer 1: 4 packed weight words (4 rows by 4 columns
        // padded), 2 bias, 1 + 1, a 64-word table; layer 2: 4 + 1 + 1 + 1;
        // no prior values.
        assert_eq!(net.stored_words(), 72 + 7);
        assert_eq!(
            net.activation_table(0),
            Some(&table(activation, qp(1.0 / 16.0, 0)))
        );
        assert_eq!(
            (net.activation_table(1), net.activation_table(2)),
            (None, None)
        );
        let mut scratch = QScratch::<2>::new();
        let mut out = [0i8];
        // z = 1: pre-activation (16, -16) = (1, -1).
        net.forward_i8(&[16], &mut out, &mut scratch).unwrap();
        let h: i8 = if activation == Activation::Sigmoid {
            // sigmoid(1) * 256 = 187.15 -> 187 - 128.
            59
        } else {
            // tanh(1) * 128 = 97.48 -> 97.
            97
        };
        // Layer 2 reads h with the fixed params: acc = 64 (h - zp), / 64,
        // so its output is h - zp (the identity, clamped to 127).
        let want = (i32::from(h) - i32::from(fixed.zero_point)).min(127);
        assert_eq!(i32::from(out[0]), want);
    }
}

#[test]
fn the_stored_table_is_what_runs() {
    // Rewrite entry 16 (the pre-activation 1.0) of the stored sigmoid
    // table: the pass reads the new value, whatever the table's origin.
    let bytes = activated_decoder(Activation::Sigmoid).encode().unwrap();
    let buf = AlignedBuf::new(&bytes);
    let (_, spec, data) = format::open(buf.bytes())
        .unwrap()
        .read_body::<QNetworkSpec>(&[ModelKind::DecoderInt8], SCHEMA_KEY)
        .unwrap();
    let mut data = data.to_vec();
    // The table starts after 4 + 2 + 1 + 1 words; entry 16 is byte 0 of
    // its word 4.
    let at = 8 + 4;
    let mut word = data[at].to_bits().to_le_bytes();
    assert_eq!(word[0] as i8, 59);
    word[0] = (-100i8) as u8;
    data[at] = f32::from_bits(u32::from_le_bytes(word));
    let bytes = format::write(ModelKind::DecoderInt8, SCHEMA_KEY, &spec, &data).unwrap();
    let buf = AlignedBuf::new(&bytes);
    let net = parse(&buf).unwrap();
    assert_eq!(net.activation_table(0).unwrap()[16], -100);
    let mut out = [0i8];
    net.forward_i8(&[16], &mut out, &mut QScratch::<2>::new())
        .unwrap();
    // The identity layer passes h - (-128) = 28 on.
    assert_eq!(out, [28]);
}

#[test]
fn activation_tables_follow_tflite_lut_populate() {
    let sixteenth = qp(1.0 / 16.0, 0);
    let sigmoid = quant::activation_table(Activation::Sigmoid, sixteenth, SIGMOID_OUTPUT).unwrap();
    let tanh = quant::activation_table(Activation::Tanh, sixteenth, TANH_OUTPUT).unwrap();
    let at = |t: &[i8; 256], q: i8| t[usize::from(q as u8)];
    // 0 -> 1/2 and 0; x = 127/16 = 7.94: sigmoid 0.99964 * 256 = 255.9 ->
    // 256 - 128 = 128, clamped to 127; tanh 1.0 * 128 = 128 -> 127; x = -8:
    // sigmoid 0.000335 * 256 = 0.09 -> 0 - 128; tanh -1 -> -128.
    assert_eq!((at(&sigmoid, 0), at(&tanh, 0)), (0, 0));
    assert_eq!((at(&sigmoid, 127), at(&tanh, 127)), (127, 127));
    assert_eq!((at(&sigmoid, -128), at(&tanh, -128)), (-128, -128));
    // x = 1/2: sigmoid 0.62246 * 256 = 159.35 -> 31; tanh 0.46212 * 128 =
    // 59.15 -> 59; x = -1/2: 96.65 -> 97 - 128 = -31, -59.15 -> -59.
    assert_eq!((at(&sigmoid, 8), at(&tanh, 8)), (31, 59));
    assert_eq!((at(&sigmoid, -8), at(&tanh, -8)), (-31, -59));
    // Both rise with q, sigmoid(-x) = 1 - sigmoid(x) and tanh is odd (up
    // to the ties' direction, half away from zero, at most one step).
    for q in -127..127i8 {
        assert!(at(&sigmoid, q) <= at(&sigmoid, q + 1));
        assert!(at(&tanh, q) <= at(&tanh, q + 1));
        let mirror = i32::from(at(&sigmoid, q)) + 128 + i32::from(at(&sigmoid, -q)) + 128;
        assert!((mirror - 256).abs() <= 1, "{q}");
        assert!((i32::from(at(&tanh, q)) + i32::from(at(&tanh, -q))).abs() <= 1);
    }
    // Input zero points shift the table: zero point 5 puts x = 0 at q = 5.
    let shifted =
        quant::activation_table(Activation::Tanh, qp(1.0 / 16.0, 5), TANH_OUTPUT).unwrap();
    for q in -128..=122i8 {
        assert_eq!(at(&shifted, q + 5), at(&tanh, q));
    }
    // Other activations and bad scales are refused.
    for activation in [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu,
    ] {
        assert_eq!(
            quant::activation_table(activation, sixteenth, SIGMOID_OUTPUT),
            Err(Error::InvalidParameters)
        );
    }
    for scale in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        assert_eq!(
            quant::activation_table(Activation::Sigmoid, qp(scale, 0), SIGMOID_OUTPUT),
            Err(Error::InvalidParameters)
        );
        assert_eq!(
            quant::activation_table(Activation::Tanh, sixteenth, qp(scale, 0)),
            Err(Error::InvalidParameters)
        );
    }
}

/// The table a writer stores for a sigmoid or tanh layer writing `output`.
fn table(activation: Activation, output: QuantParams) -> [i8; 256] {
    let fixed = match activation {
        Activation::Sigmoid => SIGMOID_OUTPUT,
        _ => TANH_OUTPUT,
    };
    quant::activation_table(activation, output, fixed).unwrap()
}

/// A straightforward int8 pass: i64 sums, i128 single-rounding rescale,
/// sigmoid and tanh by [`quant::activation_table`].
fn reference(params: &QNetworkParams<'_>, rounding: Rounding, input: &[i8]) -> Vec<i8> {
    let mut x: Vec<i8> = input.to_vec();
    let mut zp = i64::from(params.input.zero_point);
    for layer in &params.layers {
        let mut y = vec![0i8; layer.outputs];
        for (o, slot) in y.iter_mut().enumerate() {
            let mut acc = i64::from(layer.bias[o]);
            for (i, &xi) in x.iter().enumerate() {
                acc += i64::from(layer.weight[o * layer.inputs + i]) * (i64::from(xi) - zp);
            }
            let c = if layer.multiplier.len() == 1 { 0 } else { o };
            let (m, s) = (i128::from(layer.multiplier[c]), layer.shift[c]);
            let total = 31 - s;
            let scaled = match rounding {
                Rounding::Single => (i128::from(acc) * m + (1i128 << (total - 1))) >> total,
                // gemmlowp's two roundings: the crate's own function.
                Rounding::Double => i128::from(quant::multiply_by_quantized_multiplier(
                    i32::try_from(acc).unwrap(),
                    layer.multiplier[c],
                    s,
                )),
            };
            let lo = match layer.activation {
                Activation::Relu => i128::from(layer.output.zero_point),
                _ => -128,
            };
            let q = (scaled + i128::from(layer.output.zero_point)).clamp(lo, 127) as i8;
            *slot = match layer.activation {
                Activation::Sigmoid => {
                    table(Activation::Sigmoid, layer.output)[usize::from(q as u8)]
                }
                Activation::Tanh => table(Activation::Tanh, layer.output)[usize::from(q as u8)],
                _ => q,
            };
        }
        zp = i64::from(match layer.activation {
            Activation::Sigmoid => SIGMOID_OUTPUT.zero_point,
            Activation::Tanh => TANH_OUTPUT.zero_point,
            _ => layer.output.zero_point,
        });
        x = y;
    }
    x
}

/// Owned parameters of a random network.
#[derive(Debug, Clone)]
struct Owned {
    widths: Vec<usize>,
    activations: Vec<Activation>,
    weights: Vec<Vec<i8>>,
    biases: Vec<Vec<i32>>,
    multipliers: Vec<Vec<i32>>,
    shifts: Vec<Vec<i32>>,
    outputs: Vec<QuantParams>,
    input: QuantParams,
}

impl Owned {
    fn params(&self) -> QNetworkParams<'_> {
        QNetworkParams {
            role: Role::Encoder,
            input: self.input,
            layers: (0..self.activations.len())
                .map(|l| QLayerParams {
                    inputs: self.widths[l],
                    outputs: self.widths[l + 1],
                    activation: self.activations[l],
                    weight: &self.weights[l],
                    bias: &self.biases[l],
                    multiplier: &self.multipliers[l],
                    shift: &self.shifts[l],
                    output: self.outputs[l],
                })
                .collect(),
            prior: PriorParams::None,
            final_activation: FinalActivation::Int8,
        }
    }
}

fn random_network(seed: u64) -> Owned {
    use rand_core::RngCore;
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    let mut next = |n: u32| rng.next_u32() % n;
    let layers = 1 + next(4) as usize;
    let widths: Vec<usize> = (0..=layers).map(|_| 1 + next(9) as usize).collect();
    let acts = [
        Activation::Identity,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
    ];
    let mut owned = Owned {
        widths: widths.clone(),
        activations: vec![],
        weights: vec![],
        biases: vec![],
        multipliers: vec![],
        shifts: vec![],
        outputs: vec![],
        input: qp(0.01 + next(100) as f32 / 100.0, next(256) as u8 as i8),
    };
    for l in 0..layers {
        let (i, o) = (widths[l], widths[l + 1]);
        owned.activations.push(acts[next(4) as usize]);
        let mut w: Vec<i8> = (0..i * o).map(|_| next(256) as u8 as i8).collect();
        // -128 only where a packed lane holds it (not in an odd row below
        // a negative weight): the writer refuses the rest.
        for r in (1..o).step_by(2) {
            for c in 0..i {
                if w[r * i + c] == -128 && w[(r - 1) * i + c] < 0 {
                    w[r * i + c] = -127;
                }
            }
        }
        owned.weights.push(w);
        owned
            .biases
            .push((0..o).map(|_| next(1 << 16) as i32 - (1 << 15)).collect());
        let m = if next(2) == 0 { 1 } else { o };
        let (mut ms, mut ss) = (vec![], vec![]);
        for _ in 0..m {
            let real = f64::from(1 + next(1000)) * 1e-5;
            let (mq, sq) = quantize_multiplier_single_rounding(real);
            ms.push(mq);
            ss.push(sq);
        }
        owned.multipliers.push(ms);
        owned.shifts.push(ss);
        owned
            .outputs
            .push(qp(0.01 + next(100) as f32 / 50.0, next(256) as u8 as i8));
    }
    owned
}

#[test]
fn random_networks_agree_with_the_i64_reference_and_forward_is_forward_i8() {
    let mut scratch = QScratch::<16>::new();
    for seed in 0..300 {
        let owned = random_network(seed);
        let params = owned.params();
        let bytes = params.encode().unwrap();
        let buf = AlignedBuf::new(&bytes);
        let net = parse(&buf).unwrap();
        let n_in = owned.widths[0];
        let n_out = *owned.widths.last().unwrap();
        let input: Vec<i8> = (0..n_in)
            .map(|i| ((seed as usize * 37 + i * 101) % 256) as u8 as i8)
            .collect();
        let mut got = vec![0i8; n_out];
        net.forward_i8(&input, &mut got, &mut scratch).unwrap();
        assert_eq!(
            got,
            reference(&params, Rounding::Single, &input),
            "seed {seed}"
        );

        // forward == dequantize(forward_i8(quantize(x))).
        let x: Vec<f32> = (0..n_in)
            .map(|i| ((seed as f32) * 0.37 + i as f32 * 1.3).sin() * 3.0)
            .collect();
        let q: Vec<i8> = x.iter().map(|&v| net.input_params().quantize(v)).collect();
        net.forward_i8(&q, &mut got, &mut scratch).unwrap();
        let mut y = vec![0f32; n_out];
        net.forward(&x, &mut y, &mut scratch).unwrap();
        let out = net.output_params();
        let want: Vec<f32> = got.iter().map(|&v| out.dequantize(v)).collect();
        assert_eq!(y, want, "seed {seed}");
    }
}

#[test]
fn an_f32_final_activation_is_the_table_s_pre_activation_activated_in_f32() {
    let mut scratch = QScratch::<16>::new();
    for seed in 0..200 {
        let mut owned = random_network(seed);
        let last = owned.activations.len() - 1;
        owned.activations[last] = if seed % 2 == 0 {
            Activation::Sigmoid
        } else {
            Activation::Tanh
        };
        let tabled = owned.params().encode().unwrap();
        let f32_out = QNetworkParams {
            final_activation: FinalActivation::F32,
            ..owned.params()
        }
        .encode()
        .unwrap();
        let (tabled, f32_out) = (AlignedBuf::new(&tabled), AlignedBuf::new(&f32_out));
        let (tabled, f32_out) = (parse(&tabled).unwrap(), parse(&f32_out).unwrap());
        let stored = f32_out.stored_bytes() + 256;
        assert_eq!(stored, tabled.stored_bytes(), "seed {seed}: no table");
        assert_eq!(f32_out.output_params(), owned.outputs[last]);
        assert_eq!(f32_out.f32_activation(), owned.activations[last]);
        assert!(!f32_out.layers().last().unwrap().table);
        let table = tabled.activation_table(last).unwrap();

        let n_in = owned.widths[0];
        let n_out = *owned.widths.last().unwrap();
        let x: Vec<f32> = (0..n_in)
            .map(|i| ((seed as f32) * 0.41 + i as f32 * 0.7).cos() * 2.0)
            .collect();
        let q: Vec<i8> = x
            .iter()
            .map(|&v| f32_out.input_params().quantize(v))
            .collect();
        let (mut pre, mut post) = (vec![0i8; n_out], vec![0i8; n_out]);
        f32_out.forward_i8(&q, &mut pre, &mut scratch).unwrap();
        tabled.forward_i8(&q, &mut post, &mut scratch).unwrap();
        // The int8 pass stops before the table the other file applies.
        let looked_up: Vec<i8> = pre.iter().map(|&v| table[usize::from(v as u8)]).collect();
        assert_eq!(looked_up, post, "seed {seed}");
        let mut y = vec![0f32; n_out];
        f32_out.forward(&x, &mut y, &mut scratch).unwrap();
        let params = owned.outputs[last];
        let want: Vec<f32> = pre
            .iter()
            .map(|&v| owned.activations[last].apply(params.dequantize(v)))
            .collect();
        assert_eq!(y, want, "seed {seed}");
        // And the two agree to the table's output grid.
        let mut y_tabled = vec![0f32; n_out];
        tabled.forward(&x, &mut y_tabled, &mut scratch).unwrap();
        let step = tabled.output_params().scale;
        for (a, b) in y.iter().zip(&y_tabled) {
            assert!((a - b).abs() <= step, "seed {seed}: {a} vs {b}");
        }
    }
}

#[test]
fn an_f32_final_activation_needs_a_last_sigmoid_or_tanh() {
    let identity = QNetworkParams {
        final_activation: FinalActivation::F32,
        ..two_layers(&[1 << 30], &[-5])
    };
    assert_eq!(identity.encode(), Err(Error::InvalidParameters));
    // A file that claims it anyway is refused by the reader.
    let (spec, data) = parts();
    let claimed = QNetworkSpec {
        final_activation: FinalActivation::F32,
        ..spec
    };
    assert_eq!(
        parse(&write(&claimed, &data)).map(|_| ()),
        Err(Error::ParameterOutOfRange)
    );
}

#[test]
fn double_rounding_is_stored_and_used() {
    let mut scratch = QScratch::<16>::new();
    for seed in 0..100 {
        let owned = random_network(seed);
        let params = owned.params();
        let bytes = params.encode_with(Rounding::Double).unwrap();
        let buf = AlignedBuf::new(&bytes);
        let net = parse(&buf).unwrap();
        assert_eq!(net.rounding(), Rounding::Double);
        let input: Vec<i8> = (0..owned.widths[0])
            .map(|i| ((seed as usize * 53 + i * 29) % 256) as u8 as i8)
            .collect();
        let mut got = vec![0i8; *owned.widths.last().unwrap()];
        net.forward_i8(&input, &mut got, &mut scratch).unwrap();
        assert_eq!(got, reference(&params, Rounding::Double, &input));
    }
    let owned = random_network(11);
    let params = owned.params();
    let single = params.encode().unwrap();
    let single = AlignedBuf::new(&single);
    assert_eq!(parse(&single).unwrap().rounding(), Rounding::Single);
}

#[test]
fn calls_check_lengths_inputs_and_widths() {
    let bytes = two_layers(&[1 << 30], &[-5]).encode().unwrap();
    let buf = AlignedBuf::new(&bytes);
    let net = parse(&buf).unwrap();
    let mut scratch = QScratch::<3>::new();
    let mut y = [0f32; 2];
    assert!(matches!(
        net.forward(&[1.0], &mut y, &mut scratch),
        Err(Error::DimensionMismatch {
            expected: 2,
            found: 1
        })
    ));
    assert!(matches!(
        net.forward(&[1.0, 2.0], &mut [0.0; 3], &mut scratch),
        Err(Error::DimensionMismatch { .. })
    ));
    assert_eq!(
        net.forward(&[f32::NAN, 0.0], &mut y, &mut scratch),
        Err(Error::NonFiniteInput)
    );
    assert_eq!(
        net.forward(&[1.0, 0.0], &mut y, &mut QScratch::<2>::new()),
        Err(Error::TooWide { width: 3, max: 2 })
    );
    assert_eq!(
        net.forward_i8(&[1, 0], &mut [0; 2], &mut QScratch::<2>::new()),
        Err(Error::TooWide { width: 3, max: 2 })
    );
    // An encoder does not sample; a decoder without a prior cannot.
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
    assert!(matches!(
        net.sample(&mut rng, &mut y, &mut scratch),
        Err(Error::WrongKind { .. })
    ));
    let mut decoder = two_layers(&[1 << 30], &[-5]);
    decoder.role = Role::Decoder;
    let bytes = decoder.encode().unwrap();
    let buf = AlignedBuf::new(&bytes);
    let net = parse(&buf).unwrap();
    assert_eq!(
        net.sample(&mut rng, &mut y, &mut QScratch::<8>::new()),
        Err(Error::NoPrior)
    );
    // The f32 code takes 4 bytes a value.
    assert_eq!(net.sample_width(), 8);
    assert_eq!(
        net.sample(&mut rng, &mut y, &mut QScratch::<7>::new()),
        Err(Error::TooWide { width: 8, max: 7 })
    );
}

#[test]
fn the_writer_rejects_inconsistent_parameters() {
    let mut p = two_layers(&[1 << 30], &[-5]);
    p.layers[0].activation = Activation::LeakyRelu;
    assert_eq!(p.encode(), Err(Error::InvalidParameters));
    let mut p = two_layers(&[1 << 30, 1], &[-5]);
    assert_eq!(p.encode(), Err(Error::InvalidParameters));
    p = two_layers(&[1 << 30], &[31]);
    assert_eq!(p.encode(), Err(Error::InvalidParameters));
    p = two_layers(&[-1], &[0]);
    assert_eq!(p.encode(), Err(Error::InvalidParameters));
    p = two_layers(&[1 << 30], &[-5]);
    p.layers[1].inputs = 2;
    assert_eq!(p.encode(), Err(Error::InvalidParameters));
    p = two_layers(&[1 << 30], &[-5]);
    p.input.scale = 0.0;
    assert_eq!(p.encode(), Err(Error::InvalidParameters));
}

/// A valid spec and its data words, to break one thing at a time.
fn parts() -> (QNetworkSpec, Vec<f32>) {
    let bytes = two_layers(&[1 << 30, 1 << 29], &[-5, -4]).encode().unwrap();
    let buf = AlignedBuf::new(&bytes);
    let file = format::open(buf.bytes()).unwrap();
    let (_, spec, data) = file
        .read_body::<QNetworkSpec>(&[ModelKind::EncoderInt8], SCHEMA_KEY)
        .unwrap();
    (spec, data.to_vec())
}

fn write(spec: &QNetworkSpec, data: &[f32]) -> AlignedBuf {
    AlignedBuf::new(&format::write(ModelKind::EncoderInt8, SCHEMA_KEY, spec, data).unwrap())
}

fn with_layer(spec: &QNetworkSpec, i: usize, f: impl Fn(&mut QLayer)) -> QNetworkSpec {
    let mut layers: Vec<QLayer> = spec.layers.as_slice().to_vec();
    f(&mut layers[i]);
    QNetworkSpec {
        layers: QLayers::new(&layers).unwrap(),
        ..*spec
    }
}

#[test]
fn every_validation_failure_is_a_typed_error() {
    let (spec, data) = parts();
    assert!(parse(&write(&spec, &data)).is_ok());
    let shape = |s| Err(Error::InvalidShape(s));

    // Truncated or extended data.
    assert_eq!(
        parse(&write(&spec, &data[..data.len() - 1])).map(|_| ()),
        shape(Shape::DataLength)
    );
    let mut longer = data.clone();
    longer.push(0.0);
    assert_eq!(
        parse(&write(&spec, &longer)).map(|_| ()),
        shape(Shape::DataLength)
    );
    // A sigmoid or tanh layer needs its table's 64 words, and only it.
    for activation in [Activation::Sigmoid, Activation::Tanh] {
        let activated = with_layer(&spec, 0, |l| l.activation = activation);
        assert_eq!(
            parse(&write(&activated, &data)).map(|_| ()),
            shape(Shape::DataLength)
        );
        let mut tabled = data.clone();
        tabled.splice(7..7, [0.0; TABLE_WORDS]);
        assert!(parse(&write(&activated, &tabled)).is_ok());
        assert_eq!(
            parse(&write(&spec, &tabled)).map(|_| ()),
            shape(Shape::DataLength)
        );
    }
    // Wrong widths: a chain that breaks, ends that do not match, a zero.
    let broken = with_layer(&spec, 1, |l| l.inputs = 4);
    assert_eq!(
        parse(&write(&broken, &data)).map(|_| ()),
        shape(Shape::LayerWidths)
    );
    let ends = QNetworkSpec { data: 3, ..spec };
    assert_eq!(
        parse(&write(&ends, &data)).map(|_| ()),
        shape(Shape::NetworkEnds)
    );
    let zero = with_layer(&spec, 0, |l| l.outputs = 0);
    let zero = with_layer(&zero, 1, |l| l.inputs = 0);
    assert_eq!(parse(&write(&zero, &data)).map(|_| ()), shape(Shape::Empty));
    let none = QNetworkSpec {
        layers: QLayers::new(&[]).unwrap(),
        ..spec
    };
    assert_eq!(parse(&write(&none, &[])).map(|_| ()), shape(Shape::Empty));
    // Too many layers: 17 layers 2 -> 2.
    let layer = QLayer {
        inputs: 2,
        outputs: 2,
        ..spec.layers.as_slice()[0]
    };
    #[derive(Serialize)]
    struct ManySpec {
        latent: u16,
        data: u16,
        input: QuantParams,
        rounding: Rounding,
        layers: Vec<QLayer>,
        prior: Prior,
        final_activation: FinalActivation,
    }
    let many = ManySpec {
        latent: 2,
        data: 2,
        input: spec.input,
        rounding: spec.rounding,
        layers: vec![layer; MAX_LAYERS + 1],
        prior: Prior::None,
        final_activation: FinalActivation::Int8,
    };
    let bytes = format::write(ModelKind::EncoderInt8, SCHEMA_KEY, &many, &data).unwrap();
    assert_eq!(
        parse(&AlignedBuf::new(&bytes)).map(|_| ()),
        Err(Error::TooManyLayers {
            layers: MAX_LAYERS + 1,
            max: MAX_LAYERS
        })
    );
    let mut seventeen = Vec::new();
    for _ in 0..=MAX_LAYERS {
        seventeen.push(layer);
    }
    assert_eq!(
        QLayers::new(&seventeen),
        Err(Error::TooManyLayers {
            layers: 17,
            max: MAX_LAYERS
        })
    );
    // Scales: zero, negative, NaN, infinite; input and layer output.
    for (scale, error) in [
        (0.0, Error::ParameterOutOfRange),
        (-1.0, Error::ParameterOutOfRange),
        (f32::NAN, Error::NonFiniteParameter),
        (f32::INFINITY, Error::NonFiniteParameter),
    ] {
        let bad = QNetworkSpec {
            input: qp(scale, 0),
            ..spec
        };
        assert_eq!(parse(&write(&bad, &data)).map(|_| ()), Err(error));
        let bad = with_layer(&spec, 1, |l| l.output.scale = scale);
        assert_eq!(parse(&write(&bad, &data)).map(|_| ()), Err(error));
    }
    // LeakyRelu is not an int8 activation.
    let leaky = with_layer(&spec, 0, |l| l.activation = Activation::LeakyRelu);
    assert_eq!(
        parse(&write(&leaky, &data)).map(|_| ()),
        Err(Error::ParameterOutOfRange)
    );
    // Shifts out of [-31, 30] and negative multipliers. Layer 1's words:
    // 4 weight words, 3 bias, multiplier, shift; layer 2: 4, 2, 2 m, 2 s.
    let (m1, s1, m2, s2) = (7, 8, 15, 17);
    for (at, value) in [
        (s1, 31),
        (s1, -32),
        (s2 + 1, i32::MAX),
        (m1, -1),
        (m2, i32::MIN),
    ] {
        let mut bad = data.clone();
        bad[at] = f32::from_bits(value as u32);
        assert_eq!(
            parse(&write(&spec, &bad)).map(|_| ()),
            Err(Error::ParameterOutOfRange),
            "word {at} = {value}"
        );
    }
    for (at, value) in [(s1, 30), (s1, -31), (m2 + 1, 0), (m1, i32::MAX)] {
        let mut ok = data.clone();
        ok[at] = f32::from_bits(value as u32);
        assert!(parse(&write(&spec, &ok)).is_ok(), "word {at} = {value}");
    }
    // The other kinds' parsers reject int8 files, and this one theirs.
    let buf = write(&spec, &data);
    assert!(matches!(
        crate::Network::from_bytes(buf.bytes()),
        Err(Error::WrongKind { .. })
    ));
    let f32_file = crate::network::DecoderParams {
        role: Role::Encoder,
        latent: 1,
        layers: vec![crate::network::LayerParams {
            inputs: 1,
            outputs: 1,
            activation: Activation::Identity,
            weight: &[1.0],
            bias: &[0.0],
        }],
        prior: PriorParams::None,
    }
    .encode()
    .unwrap();
    assert!(matches!(
        QNetwork::from_bytes(AlignedBuf::new(&f32_file).bytes()),
        Err(Error::WrongKind { .. })
    ));
}

#[test]
fn a_spec_claiming_huge_widths_is_rejected_fast() {
    // 16 layers of 65535 x 65535, per channel, and four data bytes: the
    // reader compares counts before any loop over values.
    let layer = QLayer {
        inputs: u16::MAX,
        outputs: u16::MAX,
        activation: Activation::Relu,
        per_channel: true,
        output: qp(1.0, 0),
    };
    let spec = QNetworkSpec {
        latent: u16::MAX,
        data: u16::MAX,
        input: qp(1.0, 0),
        rounding: Rounding::Single,
        layers: QLayers::new(&[layer; MAX_LAYERS]).unwrap(),
        prior: Prior::Mixture {
            components: u16::MAX,
        },
        final_activation: FinalActivation::Int8,
    };
    let buf = write(&spec, &[0.0]);
    let start = std::time::Instant::now();
    for _ in 0..1000 {
        assert_eq!(
            parse(&buf).map(|_| ()),
            Err(Error::InvalidShape(Shape::DataLength))
        );
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_files_never_panic(
        seed in 0u64..64,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<usize>()),
        x in proptest::collection::vec(-10.0f32..10.0, 16),
    ) {
        let owned = random_network(seed);
        let mut params = owned.params();
        if seed % 2 == 0 {
            params.role = Role::Decoder;
            params.prior = PriorParams::Gaussian;
        }
        let mut bytes = params.encode().unwrap();
        for (at, value) in edits {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        reseal(&mut bytes);
        let buf = AlignedBuf::new(&bytes);
        if let Ok(net) = parse(&buf) {
            let mut scratch = QScratch::<64>::new();
            let mut out = vec![0f32; net.output_dim()];
            let input = x.get(..net.input_dim()).map(<[f32]>::to_vec)
                .unwrap_or_else(|| vec![0.5; net.input_dim()]);
            let _ = net.forward(&input, &mut out, &mut scratch);
            let q = vec![7i8; net.input_dim()];
            let mut qo = vec![0i8; net.output_dim()];
            let _ = net.forward_i8(&q, &mut qo, &mut scratch);
            let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
            let _ = net.sample(&mut rng, &mut out, &mut scratch);
            let _ = (net.macs(), net.stored_bytes(), net.layers().count());
            if let Ok(any) = crate::AnyModel::from_bytes(buf.bytes()) {
                let _ = any.eval(&input, &mut out, &mut crate::Scratch::<64>::new());
            }
        }
    }
}
