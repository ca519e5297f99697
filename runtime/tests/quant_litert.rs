//! int8 fully connected layers as LiteRT runs them: the fixture holds what
//! TensorFlow Lite's converter stored for small Keras Dense models (int8
//! weights, int32 bias, scales, zero points) and what its interpreter output
//! for int8 inputs, with the reference kernels and the default optimized
//! ones. `dense_i8` with `Rounding::Single` must agree bit for bit, from
//! multipliers that `quantize_multiplier` derives from the stored scales as
//! TFLite's Prepare does: the LiteRT wheel is built with
//! `TFLITE_SINGLE_ROUNDING`, and gemmlowp's double rounding is one off on a
//! few of its outputs. Regenerate with
//! `python scripts/litert_int8_fixtures.py`.
//!
//! Sigmoid and tanh: a second fixture holds LiteRT's int8 `LOGISTIC` and
//! `TANH` (reference kernels) on all 256 inputs at 8 converter-chosen input
//! params each plus input scales chosen to put a table entry at a near-tie,
//! and small Keras Dense networks with sigmoid, tanh and relu converted to
//! int8 and run on int8 inputs; `activation_table` and int8 network files
//! must agree bit for bit, except where the fixture shows LiteRT's value
//! came from a C library `tanhf` or `expf` that is not correctly rounded
//! (glibc 2.36's `tanhf`; glibc 2.41's is correctly rounded), where the
//! runtime's correctly rounded table is one step away. Regenerate with
//! `python scripts/litert_activation_fixtures.py`.

use serde::Deserialize;
use tinygen_runtime::quant::{
    Requant, Rounding, dense_i8, dequantize, kernel, quantize, quantize_multiplier,
    quantize_multiplier_single_rounding,
};

#[derive(Deserialize)]
struct Fixture {
    tensorflow: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    inputs_len: usize,
    outputs_len: usize,
    activation: String,
    input_scale: f64,
    input_scale_bits: u32,
    input_zero_point: i32,
    output_scale: f64,
    output_scale_bits: u32,
    output_zero_point: i32,
    weight_scales: Vec<f64>,
    weight_scales_bits: Vec<u32>,
    bias_scales: Vec<f64>,
    weights: Vec<i8>,
    bias: Vec<i32>,
    multipliers: Vec<i32>,
    shifts: Vec<i32>,
    act_min: i8,
    act_max: i8,
    inputs: Vec<Vec<i8>>,
    outputs_reference: Vec<Vec<i8>>,
    outputs_builtin: Vec<Vec<i8>>,
}

fn fixture() -> Fixture {
    let text = include_str!("fixtures/litert_fc_int8.json");
    serde_json::from_str(text).expect("fixture parses")
}

/// The `float32` scales from their bit patterns, checked against the
/// decimals next to them (which serde_json need not round exactly).
fn scale(bits: u32, decimal: f64) -> f32 {
    let x = f32::from_bits(bits);
    assert!(
        (f64::from(x) - decimal).abs() <= 1e-15 * decimal,
        "{x} vs {decimal}"
    );
    x
}

impl Case {
    fn input_scale(&self) -> f32 {
        scale(self.input_scale_bits, self.input_scale)
    }

    fn output_scale(&self) -> f32 {
        scale(self.output_scale_bits, self.output_scale)
    }

    fn weight_scales(&self) -> Vec<f32> {
        assert_eq!(self.weight_scales.len(), self.weight_scales_bits.len());
        let pairs = self.weight_scales_bits.iter().zip(&self.weight_scales);
        pairs.map(|(&b, &d)| scale(b, d)).collect()
    }

    /// TFLite's Prepare: `double(input_scale) * double(weight_scale) /
    /// double(output_scale)`, then `QuantizeMultiplier`.
    fn multipliers(&self) -> (Vec<i32>, Vec<i32>) {
        let input_scale = f64::from(self.input_scale());
        let output_scale = f64::from(self.output_scale());
        let real = |w: f32| input_scale * f64::from(w) / output_scale;
        self.weight_scales()
            .into_iter()
            .map(|w| quantize_multiplier(real(w)))
            .unzip()
    }
}

#[test]
fn fixture_covers_both_kinds() {
    let fixture = fixture();
    assert!(!fixture.tensorflow.is_empty());
    let per_channel = fixture.cases.iter().filter(|c| c.weight_scales.len() > 1);
    let per_tensor = fixture.cases.iter().filter(|c| c.weight_scales.len() == 1);
    assert!(per_channel.count() >= 2);
    assert!(per_tensor.count() >= 2);
    assert!(fixture.cases.iter().any(|c| c.activation == "relu"));
    assert!(fixture.cases.iter().any(|c| c.inputs_len % 4 != 0));
}

#[test]
fn multipliers_match_tflite_prepare() {
    for case in fixture().cases {
        let (multiplier, shift) = case.multipliers();
        assert_eq!(multiplier, case.multipliers, "{}", case.name);
        assert_eq!(shift, case.shifts, "{}", case.name);
        // Multipliers below one: the single-rounding build stores the same.
        let input_scale = f64::from(case.input_scale());
        let output_scale = f64::from(case.output_scale());
        for (w, (&m, &s)) in case
            .weight_scales()
            .into_iter()
            .zip(multiplier.iter().zip(&shift))
        {
            let real = input_scale * f64::from(w) / output_scale;
            assert_eq!(quantize_multiplier_single_rounding(real), (m, s));
        }
        // The converter's bias scale is input scale times weight scale.
        assert_eq!(case.bias_scales.len(), case.weight_scales.len());
        for (&b, w) in case.bias_scales.iter().zip(case.weight_scales()) {
            let product = f64::from(case.input_scale()) * f64::from(w);
            assert!((product - b).abs() <= 1e-6 * b, "{}", case.name);
        }
    }
}

/// Runs every fixture input through `dense_i8` with `rounding`; returns
/// the outputs compared and the mismatches with LiteRT (both of its kernels,
/// which the fixture shows agree), each `(case, got, want)`.
fn run_fixture(rounding: Rounding) -> (usize, Vec<(String, i8, i8)>) {
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for case in fixture().cases {
        assert_eq!(case.weights.len(), case.inputs_len * case.outputs_len);
        assert_eq!(
            case.outputs_reference, case.outputs_builtin,
            "{}",
            case.name
        );
        let (multiplier, shift) = case.multipliers();
        // TFLite's CalculateActivationRangeQuantized: ReLU clamps at the
        // quantized 0.0, the output zero point.
        let act_min = if case.activation == "relu" {
            i8::try_from(case.output_zero_point.max(-128)).unwrap()
        } else {
            -128
        };
        assert_eq!(
            (act_min, 127),
            (case.act_min, case.act_max),
            "{}",
            case.name
        );
        let requant = Requant {
            multiplier: &multiplier,
            shift: &shift,
            output_zero_point: case.output_zero_point,
            act_min,
            act_max: 127,
            rounding,
        };
        let mut out = vec![0i8; case.outputs_len];
        // TFLite's row-major weights in the runtime's layout.
        let weights = kernel::pack(&case.weights, case.inputs_len).unwrap();
        for (x, want) in case.inputs.iter().zip(&case.outputs_reference) {
            dense_i8(
                x,
                case.input_zero_point,
                &weights,
                Some(&case.bias),
                &requant,
                &mut out,
            )
            .unwrap();
            assert_eq!(want.len(), out.len());
            for (&got, &want) in out.iter().zip(want) {
                compared += 1;
                if got != want {
                    mismatches.push((case.name.clone(), got, want));
                }
            }
        }
    }
    (compared, mismatches)
}

#[test]
fn dense_i8_single_rounding_matches_litert_bit_for_bit() {
    let (compared, mismatches) = run_fixture(Rounding::Single);
    assert!(compared >= 2700, "{compared} outputs");
    assert_eq!(mismatches, [], "of {compared} outputs");
}

#[test]
fn dense_i8_double_rounding_is_one_off_on_a_few_litert_outputs() {
    // gemmlowp's two roundings agree except on rare near-ties, and then by
    // one; the fixture holds some, so it tells the two builds apart.
    let (compared, mismatches) = run_fixture(Rounding::Double);
    assert!(!mismatches.is_empty());
    assert!(
        mismatches.len() * 100 < compared,
        "{} of {compared}",
        mismatches.len()
    );
    for (case, got, want) in &mismatches {
        assert_eq!((i32::from(*got) - i32::from(*want)).abs(), 1, "{case}");
    }
}

#[test]
fn quantize_round_trips_the_fixture_scales() {
    // Dequantize-then-quantize is the identity on every int8 value at the
    // converter's scales and zero points.
    for case in fixture().cases {
        for (scale, zp) in [
            (case.input_scale(), case.input_zero_point),
            (case.output_scale(), case.output_zero_point),
        ] {
            for q in i8::MIN..=i8::MAX {
                assert_eq!(quantize(dequantize(q, scale, zp), scale, zp), q);
            }
        }
    }
}

/// Each fixture case written as a one-layer int8 encoder file and read
/// back: `QNetwork::forward_i8` gives LiteRT's outputs bit for bit.
#[cfg(feature = "alloc")]
#[test]
fn int8_network_files_match_litert_bit_for_bit() {
    use tinygen_runtime::network::{PriorParams, Role};
    use tinygen_runtime::qnetwork::{
        FinalActivation, QLayerParams, QNetwork, QNetworkParams, QScratch, QuantParams,
    };
    use tinygen_runtime::{Activation, Aligned};

    let mut compared = 0;
    for case in fixture().cases {
        let (multiplier, shift) = case.multipliers();
        let zero_point = |z: i32| i8::try_from(z).unwrap();
        let params = QNetworkParams {
            role: Role::Encoder,
            input: QuantParams {
                scale: case.input_scale(),
                zero_point: zero_point(case.input_zero_point),
            },
            layers: vec![QLayerParams {
                inputs: case.inputs_len,
                outputs: case.outputs_len,
                activation: if case.activation == "relu" {
                    Activation::Relu
                } else {
                    Activation::Identity
                },
                weight: &case.weights,
                bias: &case.bias,
                multiplier: &multiplier,
                shift: &shift,
                output: QuantParams {
                    scale: case.output_scale(),
                    zero_point: zero_point(case.output_zero_point),
                },
            }],
            prior: PriorParams::None,
            final_activation: FinalActivation::Int8,
        };
        let bytes = params.encode().unwrap();
        let mut flash = Box::new(Aligned([0u8; 4096]));
        flash.0[..bytes.len()].copy_from_slice(&bytes);
        let net = QNetwork::from_bytes(&flash.0[..bytes.len()]).unwrap();
        assert_eq!(
            net.layers().next().unwrap().per_channel,
            multiplier.len() > 1
        );
        let mut scratch = QScratch::<64>::new();
        let mut out = vec![0i8; case.outputs_len];
        for (x, want) in case.inputs.iter().zip(&case.outputs_reference) {
            net.forward_i8(x, &mut out, &mut scratch).unwrap();
            assert_eq!(&out, want, "{}", case.name);
            compared += out.len();
        }
    }
    assert!(compared >= 2700, "{compared} outputs");
}

/// LiteRT's int8 sigmoid and tanh: `fixtures/litert_activation_int8.json`.
#[cfg(feature = "alloc")]
mod activations {
    use serde::Deserialize;
    use tinygen_runtime::network::{PriorParams, Role};
    use tinygen_runtime::qnetwork::{
        FinalActivation, QLayerParams, QNetwork, QNetworkParams, QScratch, QuantParams,
        SIGMOID_OUTPUT, TANH_OUTPUT,
    };
    use tinygen_runtime::quant::{activation_table, quantize_multiplier};
    use tinygen_runtime::{Activation, Aligned};

    use super::scale;

    #[derive(Deserialize)]
    struct Fixture {
        tensorflow: String,
        ai_edge_litert: String,
        ops: Vec<OpCase>,
        networks: Vec<NetworkCase>,
    }

    /// One standalone `LOGISTIC` or `TANH` op run on the inputs -128..=127.
    #[derive(Deserialize)]
    struct OpCase {
        name: String,
        op: String,
        input_scale: f64,
        input_scale_bits: u32,
        input_zero_point: i8,
        output_scale: f64,
        output_scale_bits: u32,
        output_zero_point: i8,
        outputs: Vec<i8>,
        /// `[q, LiteRT's output]` where LUTPopulate with the generating
        /// host's C library functions (which LiteRT's equal on every entry,
        /// the script checks) differs from LUTPopulate with correctly
        /// rounded ones.
        libm_not_correctly_rounded: Vec<(i8, i8)>,
    }

    #[derive(Deserialize)]
    struct NetworkCase {
        name: String,
        input_scale: f64,
        input_scale_bits: u32,
        input_zero_point: i8,
        output_scale: f64,
        output_scale_bits: u32,
        output_zero_point: i8,
        layers: Vec<LayerCase>,
        inputs: Vec<Vec<i8>>,
        outputs: Vec<Vec<i8>>,
    }

    /// One `FULLY_CONNECTED` (per-channel weights) and the activation after it.
    #[derive(Deserialize)]
    struct LayerCase {
        inputs: usize,
        outputs: usize,
        activation: String,
        weights: Vec<i8>,
        bias: Vec<i32>,
        weight_scales: Vec<f64>,
        weight_scales_bits: Vec<u32>,
        output_scale: f64,
        output_scale_bits: u32,
        output_zero_point: i8,
    }

    fn fixture() -> Fixture {
        let text = include_str!("fixtures/litert_activation_int8.json");
        serde_json::from_str(text).expect("fixture parses")
    }

    fn params(bits: u32, decimal: f64, zero_point: i8) -> QuantParams {
        QuantParams {
            scale: scale(bits, decimal),
            zero_point,
        }
    }

    fn activation(name: &str) -> Activation {
        match name {
            "sigmoid" | "LOGISTIC" => Activation::Sigmoid,
            "tanh" | "TANH" => Activation::Tanh,
            "relu" => Activation::Relu,
            "none" => Activation::Identity,
            other => panic!("activation {other}"),
        }
    }

    #[test]
    fn activation_tables_match_litert_on_every_input() {
        let fixture = fixture();
        assert!(!fixture.tensorflow.is_empty() && !fixture.ai_edge_litert.is_empty());
        let (mut equal, mut libm) = (0, 0);
        for case in &fixture.ops {
            let kind = activation(&case.op);
            let input = params(
                case.input_scale_bits,
                case.input_scale,
                case.input_zero_point,
            );
            let output = params(
                case.output_scale_bits,
                case.output_scale,
                case.output_zero_point,
            );
            // TFLite's fixed output params, which the runtime's tensors use.
            let fixed = match kind {
                Activation::Sigmoid => SIGMOID_OUTPUT,
                _ => TANH_OUTPUT,
            };
            assert_eq!(output, fixed, "{}", case.name);
            let table = activation_table(kind, input, output).unwrap();
            assert_eq!(case.outputs.len(), 256, "{}", case.name);
            for (q, &want) in (i8::MIN..=i8::MAX).zip(&case.outputs) {
                let got = table[usize::from(q as u8)];
                let host = case.libm_not_correctly_rounded.iter().find(|e| e.0 == q);
                if let Some(&(_, host)) = host {
                    // LiteRT rounded the C library's value; the correctly
                    // rounded one is across the tie.
                    assert_eq!(want, host, "{}: input {q}", case.name);
                    assert_eq!((i32::from(got) - i32::from(want)).abs(), 1);
                    libm += 1;
                } else {
                    assert_eq!(got, want, "{}: input {q}", case.name);
                    equal += 1;
                }
            }
        }
        // At least 8 input params per op, both ops, and near-ties.
        let ops = |op: &str| fixture.ops.iter().filter(|c| c.op == op).count();
        assert!(ops("LOGISTIC") >= 8 && ops("TANH") >= 8);
        assert!(fixture.ops.iter().any(|c| c.name.contains("tie")));
        assert_eq!(equal + libm, fixture.ops.len() * 256);
        assert!(libm * 500 < equal, "{libm} of {}", equal + libm);
    }

    #[test]
    fn int8_networks_with_sigmoid_and_tanh_match_litert() {
        let fixture = fixture();
        let mut compared = 0;
        for case in &fixture.networks {
            let input = params(
                case.input_scale_bits,
                case.input_scale,
                case.input_zero_point,
            );
            // TFLite's Prepare: double(input scale) * double(weight scale) /
            // double(output scale), then QuantizeMultiplier; each layer's
            // input scale is the tensor before it.
            let mut x_scale = input.scale;
            let mut requant = Vec::new();
            for layer in &case.layers {
                assert_eq!(layer.weight_scales.len(), layer.weight_scales_bits.len());
                let out = scale(layer.output_scale_bits, layer.output_scale);
                let (m, s): (Vec<i32>, Vec<i32>) = layer
                    .weight_scales_bits
                    .iter()
                    .zip(&layer.weight_scales)
                    .map(|(&bits, &decimal)| {
                        let w = scale(bits, decimal);
                        quantize_multiplier(f64::from(x_scale) * f64::from(w) / f64::from(out))
                    })
                    .unzip();
                requant.push((m, s));
                x_scale = match activation(&layer.activation) {
                    Activation::Sigmoid => SIGMOID_OUTPUT.scale,
                    Activation::Tanh => TANH_OUTPUT.scale,
                    _ => out,
                };
            }
            let network = QNetworkParams {
                role: Role::Encoder,
                input,
                layers: case
                    .layers
                    .iter()
                    .zip(&requant)
                    .map(|(layer, (m, s))| QLayerParams {
                        inputs: layer.inputs,
                        outputs: layer.outputs,
                        activation: activation(&layer.activation),
                        weight: &layer.weights,
                        bias: &layer.bias,
                        multiplier: m,
                        shift: s,
                        output: params(
                            layer.output_scale_bits,
                            layer.output_scale,
                            layer.output_zero_point,
                        ),
                    })
                    .collect(),
                prior: PriorParams::None,
                final_activation: FinalActivation::Int8,
            };
            let bytes = network.encode().unwrap();
            let mut flash = Box::new(Aligned([0u8; 4096]));
            flash.0[..bytes.len()].copy_from_slice(&bytes);
            let net = QNetwork::from_bytes(&flash.0[..bytes.len()]).unwrap();
            assert_eq!(
                net.output_params(),
                params(
                    case.output_scale_bits,
                    case.output_scale,
                    case.output_zero_point
                ),
                "{}",
                case.name
            );
            let mut scratch = QScratch::<32>::new();
            let mut out = vec![0i8; net.output_dim()];
            for (x, want) in case.inputs.iter().zip(&case.outputs) {
                net.forward_i8(x, &mut out, &mut scratch).unwrap();
                assert_eq!(&out, want, "{}: input {x:?}", case.name);
                compared += out.len();
            }
        }
        let last = |act: &str| {
            fixture
                .networks
                .iter()
                .any(|c| c.layers.last().is_some_and(|l| l.activation == act))
        };
        assert!(last("sigmoid") && last("tanh"));
        assert!(fixture.networks.iter().any(|c| c.layers.len() > 1));
        assert!(compared >= 1400, "{compared} outputs");
    }
}
