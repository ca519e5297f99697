//! Post-training int8 quantization of an exported network, in TensorFlow
//! Lite's scheme (the runtime's `quant` and `qnetwork` modules run it bit
//! for bit on every core).
//!
//! - Weights: symmetric int8, one scale per output channel,
//!   `s_w[o] = max_i |W[o][i]| / 127` (or one per layer,
//!   [`WeightScales::PerTensor`], `max |W| / 127`: 8 bytes less per output
//!   in the file), values rounded to nearest (ties away from zero) and
//!   clamped to [-127, 127].
//! - Activations: asymmetric int8, one scale and zero point per tensor, from
//!   the tensor's minimum and maximum over the calibration rows (the range
//!   widened to contain 0, as TFLite requires): `scale = (max - min) / 255`,
//!   `zero_point = round(-128 - min / scale)`.
//! - Bias: int32 at scale `s_in * s_w[o]`; requantization by the fixed-point
//!   multiplier and shift of `s_in * s_w[o] / s_out`.
//! - A layer with ReLU or no activation writes its output tensor directly
//!   (ReLU fused as a clamp); a sigmoid or tanh layer writes its
//!   pre-activation tensor, calibrated as such, and the activation maps it
//!   to TFLite's fixed output scale (1/256 for sigmoid, 1/128 for tanh)
//!   through the 256-entry table the runtime's writer stores
//!   (`tinygen_runtime::quant::activation_table`, TFLite's `LUTPopulate`:
//!   LiteRT's int8 `LOGISTIC` and `TANH`).
//!
//! A sigmoid or tanh layer's pre-activation range is clipped to ±7 and
//! ±3.5 ([`SATURATION`]): beyond them the int8 output is already saturated
//! (`256 σ(-7) = 0.23` and `256 σ(7) = 255.8` round to the extreme codes,
//! as `128 tanh(±3.5) = ±127.9` do), so the clip changes no output's
//! saturated value and makes the pre-activation's steps finer where the
//! output still moves.
//!
//! With [`FinalActivation::F32`] the last layer's sigmoid or tanh runs in
//! f32 on the dequantized pre-activation (no table, no output grid); that
//! pre-activation keeps its whole calibrated range, since in f32 the
//! activation does not saturate at ±7.
//!
//! Calibration runs the f32 layers over rows the caller chooses and takes
//! plain minimum and maximum (`tinygen export --quantize int8`: the first
//! 1,000 training rows for an encoder; for a decoder their latent codes
//! plus as many prior draws, see `nn::export::calibration_rows`). Inputs
//! outside the calibrated range saturate.

use anyhow::{bail, ensure};
use tinygen_runtime::Activation;
use tinygen_runtime::network::{PriorParams, Role};
use tinygen_runtime::qnetwork::{
    FinalActivation, QLayerParams, QNetworkParams, QuantParams, SIGMOID_OUTPUT, TANH_OUTPUT,
};
use tinygen_runtime::quant::kernel::packed_words;
use tinygen_runtime::quant::quantize_multiplier_single_rounding;

use super::export::DenseLayer;

/// The int8 parameters of one layer, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantLayer {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// Activation after the layer.
    pub activation: Activation,
    /// Weights, `outputs x inputs` row-major.
    pub weight: Vec<i8>,
    /// Bias at scale `s_in * s_w[o]`.
    pub bias: Vec<i32>,
    /// Weight scales `s_w` (one per output, or one per layer).
    pub weight_scale: Vec<f32>,
    /// Requantization multipliers (one per output, or one per layer).
    pub multiplier: Vec<i32>,
    /// Requantization shifts (as many).
    pub shift: Vec<i32>,
    /// The tensor the layer's fully connected part writes.
    pub output: QuantParams,
}

/// A quantized network: the input's parameters and its layers.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantNetwork {
    /// How the f32 input is quantized.
    pub input: QuantParams,
    /// The layers, in order.
    pub layers: Vec<QuantLayer>,
    /// Calibration rows used.
    pub calibration_rows: usize,
    /// How the last layer's sigmoid or tanh is computed.
    pub final_activation: FinalActivation,
}

impl QuantNetwork {
    /// The runtime writer's view, with `role` and `prior`.
    pub fn params<'a>(&'a self, role: Role, prior: PriorParams<'a>) -> QNetworkParams<'a> {
        QNetworkParams {
            role,
            input: self.input,
            layers: self
                .layers
                .iter()
                .map(|l| QLayerParams {
                    inputs: l.inputs,
                    outputs: l.outputs,
                    activation: l.activation,
                    weight: &l.weight,
                    bias: &l.bias,
                    multiplier: &l.multiplier,
                    shift: &l.shift,
                    output: l.output,
                })
                .collect(),
            prior,
            final_activation: self.final_activation,
        }
    }

    /// Bytes the file stores for the layers: packed weights (rows and
    /// columns padded to multiples of 4), biases, requantization parameters
    /// and sigmoid and tanh tables (256 bytes each; none for the last layer
    /// under [`FinalActivation::F32`]).
    pub fn parameter_bytes(&self) -> usize {
        let last = self.layers.len().saturating_sub(1);
        let f32_last = self.final_activation == FinalActivation::F32;
        self.layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let table = match l.activation {
                    Activation::Sigmoid | Activation::Tanh if !(f32_last && i == last) => 256,
                    _ => 0,
                };
                let weights = packed_words(l.inputs, l.outputs).unwrap_or(usize::MAX);
                4 * (weights + l.bias.len() + l.multiplier.len() + l.shift.len()) + table
            })
            .sum()
    }
}

/// How many weight scales a layer has (TFLite accepts both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightScales {
    /// One per output channel (row): each row's full int8 range.
    #[default]
    PerChannel,
    /// One per layer: one multiplier and shift per layer in the file.
    PerTensor,
}

/// The choices of a quantization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuantOptions {
    /// One weight scale per output channel or per layer.
    pub scales: WeightScales,
    /// The last layer's sigmoid or tanh in int8 (by table) or in f32.
    pub final_activation: FinalActivation,
}

impl QuantOptions {
    /// The options the command-line flags `--per-tensor` and `--f32-output` choose.
    pub fn from_flags(per_tensor: bool, f32_output: bool) -> Self {
        QuantOptions {
            scales: if per_tensor {
                WeightScales::PerTensor
            } else {
                WeightScales::PerChannel
            },
            final_activation: if f32_output {
                FinalActivation::F32
            } else {
                FinalActivation::Int8
            },
        }
    }
}

/// The multiplier and shift that take a layer's `i32` sums (at scale
/// `input_scale * weight_scale`) to its output's scale, as TFLite's Prepare
/// derives them: the ratio in `f64`, then
/// [`quantize_multiplier_single_rounding`].
pub fn requantization(input_scale: f32, weight_scale: f32, output_scale: f32) -> (i32, i32) {
    quantize_multiplier_single_rounding(
        f64::from(input_scale) * f64::from(weight_scale) / f64::from(output_scale),
    )
}

/// Quantizes `layers` with activation ranges measured on `rows` (row-major,
/// `layers[0].inputs` values each), per-channel weight scales.
pub fn quantize(layers: &[DenseLayer], rows: &[f32]) -> anyhow::Result<QuantNetwork> {
    quantize_with(layers, rows, QuantOptions::default())
}

/// [`quantize`] with the choices `options`.
pub fn quantize_with(
    layers: &[DenseLayer],
    rows: &[f32],
    options: QuantOptions,
) -> anyhow::Result<QuantNetwork> {
    let QuantOptions {
        scales,
        final_activation,
    } = options;
    let (Some(first), Some(last)) = (layers.first(), layers.last()) else {
        bail!("no layers to quantize");
    };
    if final_activation == FinalActivation::F32
        && !matches!(last.activation, Activation::Sigmoid | Activation::Tanh)
    {
        bail!(
            "an f32 output activation needs a last layer with sigmoid or tanh, not {}",
            last.activation.name()
        );
    }
    let width = first.inputs;
    ensure!(
        width > 0 && !rows.is_empty() && rows.len().is_multiple_of(width),
        "calibration needs whole rows of {width} values"
    );
    if let Some(bad) = rows.iter().find(|v| !v.is_finite()) {
        bail!("a calibration value is not finite ({bad})");
    }
    for layer in layers {
        if layer.activation == Activation::LeakyRelu {
            bail!("int8 networks support relu, tanh and sigmoid between layers, not leaky-relu");
        }
    }
    // Ranges: the input, then each layer's written tensor.
    let mut ranges = vec![Range::default(); layers.len() + 1];
    let mut x = Vec::new();
    let mut y = Vec::new();
    for row in rows.chunks_exact(width) {
        x.clear();
        x.extend_from_slice(row);
        ranges[0].add_all(&x);
        for (i, layer) in layers.iter().enumerate() {
            affine(layer, &x, &mut y);
            match layer.activation {
                Activation::Sigmoid | Activation::Tanh => {
                    ranges[i + 1].add_all(&y);
                    y.iter_mut().for_each(|v| *v = layer.activation.apply(*v));
                }
                act => {
                    y.iter_mut().for_each(|v| *v = act.apply(*v));
                    ranges[i + 1].add_all(&y);
                }
            }
            std::mem::swap(&mut x, &mut y);
        }
    }
    let input = ranges[0].params();
    let mut s_in = input;
    let mut out = Vec::with_capacity(layers.len());
    for (i, (layer, range)) in layers.iter().zip(&ranges[1..]).enumerate() {
        let table = final_activation == FinalActivation::Int8 || i + 1 < layers.len();
        let output = match SATURATION.iter().find(|(a, _)| *a == layer.activation) {
            Some(&(_, bound)) if table => range.clipped(bound).params(),
            _ => range.params(),
        };
        let mut weight = Vec::with_capacity(layer.weight.len());
        let mut bias = Vec::with_capacity(layer.outputs);
        let mut multiplier = Vec::with_capacity(layer.outputs);
        let mut shift = Vec::with_capacity(layer.outputs);
        let mut weight_scale = Vec::with_capacity(layer.outputs);
        let peak = |w: &[f32]| w.iter().fold(0f32, |m, w| m.max(w.abs()));
        let layer_peak = peak(&layer.weight);
        for (row, &b) in layer.weight.chunks_exact(layer.inputs).zip(&layer.bias) {
            let peak = match scales {
                WeightScales::PerChannel => peak(row),
                WeightScales::PerTensor => layer_peak,
            };
            let s_w = if peak > 0.0 { peak / 127.0 } else { 1.0 };
            weight.extend(
                row.iter()
                    .map(|w| (w / s_w).round().clamp(-127.0, 127.0) as i8),
            );
            let s_acc = f64::from(s_in.scale) * f64::from(s_w);
            bias.push(
                (f64::from(b) / s_acc)
                    .round()
                    .clamp(i32::MIN as f64, i32::MAX as f64) as i32,
            );
            let (m, s) = requantization(s_in.scale, s_w, output.scale);
            multiplier.push(m);
            shift.push(s);
            weight_scale.push(s_w);
        }
        if scales == WeightScales::PerTensor {
            // Every row has the same scale, so the same multiplier and shift.
            multiplier.truncate(1);
            shift.truncate(1);
            weight_scale.truncate(1);
        }
        s_in = match layer.activation {
            Activation::Sigmoid => SIGMOID_OUTPUT,
            Activation::Tanh => TANH_OUTPUT,
            _ => output,
        };
        out.push(QuantLayer {
            inputs: layer.inputs,
            outputs: layer.outputs,
            activation: layer.activation,
            weight,
            bias,
            weight_scale,
            multiplier,
            shift,
            output,
        });
    }
    Ok(QuantNetwork {
        input,
        layers: out,
        calibration_rows: rows.len() / width,
        final_activation,
    })
}

/// Where sigmoid's and tanh's int8 outputs saturate: pre-activations
/// beyond `±bound` give the extreme output codes.
pub const SATURATION: [(Activation, f32); 2] =
    [(Activation::Sigmoid, 7.0), (Activation::Tanh, 3.5)];

/// `y = W x + b` in f32.
fn affine(layer: &DenseLayer, x: &[f32], y: &mut Vec<f32>) {
    y.clear();
    y.extend(
        layer
            .weight
            .chunks_exact(layer.inputs)
            .zip(&layer.bias)
            .map(|(w, b)| w.iter().zip(x).map(|(w, x)| w * x).sum::<f32>() + b),
    );
}

/// The smallest and largest value a tensor took.
#[derive(Debug, Clone, Copy)]
struct Range {
    min: f32,
    max: f32,
}

impl Default for Range {
    fn default() -> Self {
        Self { min: 0.0, max: 0.0 }
    }
}

impl Range {
    fn add_all(&mut self, values: &[f32]) {
        for &v in values {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
    }

    /// The range within `[-bound, bound]`.
    fn clipped(self, bound: f32) -> Self {
        Self {
            min: self.min.max(-bound),
            max: self.max.min(bound),
        }
    }

    /// Asymmetric int8 parameters covering the range (which contains 0).
    fn params(self) -> QuantParams {
        let span = self.max - self.min;
        if span.is_nan() || span <= 0.0 {
            return QuantParams {
                scale: 1.0,
                zero_point: 0,
            };
        }
        let scale = span / 255.0;
        let zero_point = (-128.0 - self.min / scale).round().clamp(-128.0, 127.0) as i8;
        QuantParams { scale, zero_point }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(inputs: usize, outputs: usize, activation: Activation, seed: u32) -> DenseLayer {
        let value =
            |i: usize| (((i as u32).wrapping_mul(2654435761) ^ seed) % 2001) as f32 / 1000.0 - 1.0;
        DenseLayer {
            inputs,
            outputs,
            weight: (0..inputs * outputs).map(value).collect(),
            bias: (0..outputs).map(|i| value(i + 7) * 0.1).collect(),
            activation,
        }
    }

    #[test]
    fn ranges_give_tflite_parameters() {
        let p = Range {
            min: -1.0,
            max: 3.0,
        }
        .params();
        assert_eq!(p.scale, 4.0 / 255.0);
        // -128 - (-1) / (4/255) = -64.25 -> -64
        assert_eq!(p.zero_point, -64);
        let relu = Range { min: 0.0, max: 2.0 }.params();
        assert_eq!(relu.zero_point, -128);
    }

    #[test]
    fn weights_are_symmetric_per_channel_and_biases_at_the_accumulator_scale() {
        let l = DenseLayer {
            inputs: 2,
            outputs: 2,
            weight: vec![0.6, -1.0, 0.25, 0.1],
            bias: vec![0.1, -0.2],
            activation: Activation::Identity,
        };
        let rows = [1.0, -1.0, 0.0, 0.5];
        let q = quantize(&[l], &rows).unwrap();
        let layer = &q.layers[0];
        // 0.6 * 127 = 76.2, 0.1 / 0.25 * 127 = 50.8
        assert_eq!(layer.weight, vec![76, -127, 127, 51]);
        let s_in = f64::from(q.input.scale);
        let s_w0 = f64::from(1.0f32 / 127.0);
        assert_eq!(
            layer.bias[0],
            (0.1f32 as f64 / (s_in * s_w0)).round() as i32
        );
        assert_eq!(q.calibration_rows, 2);
    }

    #[test]
    fn dequantized_network_is_close_to_f32() {
        let layers = [
            layer(6, 16, Activation::Relu, 1),
            layer(16, 8, Activation::Tanh, 2),
            layer(8, 5, Activation::Sigmoid, 3),
        ];
        let rows: Vec<f32> = (0..6 * 200)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        let q = quantize(&layers, &rows).unwrap();
        let bytes = q.params(Role::Encoder, PriorParams::None).encode().unwrap();
        let file = crate::host::AlignedBytes::new(&bytes);
        let net = tinygen_runtime::qnetwork::QNetwork::from_bytes(file.as_bytes()).unwrap();
        // The file stores exactly these bytes, the padding of the packed
        // weights and the tanh and sigmoid tables included.
        assert_eq!(q.parameter_bytes(), net.stored_bytes());
        let mut scratch = tinygen_runtime::qnetwork::QScratch::<32>::new();
        let (mut worst, mut y, mut out) = (0f32, Vec::new(), [0f32; 5]);
        for row in rows.chunks_exact(6) {
            let mut x = row.to_vec();
            for l in &layers {
                affine(l, &x, &mut y);
                y.iter_mut().for_each(|v| *v = l.activation.apply(*v));
                std::mem::swap(&mut x, &mut y);
            }
            net.forward(row, &mut out, &mut scratch).unwrap();
            for (a, b) in out.iter().zip(&x) {
                worst = worst.max((a - b).abs());
            }
        }
        // Sigmoid outputs in steps of 1/256; a few steps of error at most.
        assert!(worst < 0.03, "int8 differs from f32 by {worst}");
    }

    #[test]
    fn weights_stay_in_tflites_range_so_every_pair_packs() {
        // Rows whose peak is their most negative weight (and one of f32's
        // extremes): w / s_w is -127 or a rounding error past it, never -128,
        // so the runtime's packed layout holds every pair of rows.
        let peaks = [-1.0f32, -3.0e-7, -1.0e30, 1.0];
        let weight: Vec<f32> = peaks
            .iter()
            .flat_map(|&p| (0..9).map(move |i| p * (1.0 - i as f32 / 9.0)))
            .collect();
        let mut l = layer(9, 4, Activation::Identity, 5);
        l.weight = weight;
        let rows: Vec<f32> = (0..9 * 4).map(|i| (i % 7) as f32 - 3.0).collect();
        let q = quantize(std::slice::from_ref(&l), &rows).unwrap();
        let w = &q.layers[0].weight;
        assert!(w.iter().all(|&v| (-127..=127).contains(&v)), "{w:?}");
        assert_eq!(w.iter().filter(|&&v| v == -127).count(), 3);
        q.params(Role::Encoder, PriorParams::None).encode().unwrap();
    }

    #[test]
    fn sigmoid_and_tanh_ranges_stop_where_their_outputs_saturate() {
        use tinygen_runtime::quant::activation_table;
        // One input through weight 1: the pre-activation is the input,
        // calibrated over [-40, 40].
        for (activation, bound) in SATURATION {
            let l = DenseLayer {
                inputs: 1,
                outputs: 1,
                weight: vec![1.0],
                bias: vec![0.0],
                activation,
            };
            let rows = [-40.0, 40.0, 0.5];
            let q = quantize(std::slice::from_ref(&l), &rows).unwrap();
            let output = q.layers[0].output;
            assert_eq!(output.scale, 2.0 * bound / 255.0, "{activation:?}");
            // The extreme pre-activation codes give the extreme outputs, as
            // ±40 would.
            let fixed = if activation == Activation::Sigmoid {
                SIGMOID_OUTPUT
            } else {
                TANH_OUTPUT
            };
            let table = activation_table(activation, output, fixed).unwrap();
            for (code, x) in [(-128i8, -40f32), (127, 40.0)] {
                let want = fixed.quantize(activation.apply(x));
                assert_eq!(table[usize::from(code as u8)], want, "{activation:?} {x}");
            }
        }
        // A range inside the bound is kept.
        let l = DenseLayer {
            inputs: 1,
            outputs: 1,
            weight: vec![1.0],
            bias: vec![0.0],
            activation: Activation::Sigmoid,
        };
        let q = quantize(std::slice::from_ref(&l), &[-1.0, 1.0]).unwrap();
        assert_eq!(q.layers[0].output.scale, 2.0 / 255.0);
    }

    #[test]
    fn per_tensor_scales_share_one_multiplier_and_store_less() {
        let layers = [
            layer(6, 16, Activation::Relu, 1),
            layer(16, 5, Activation::Sigmoid, 3),
        ];
        let rows: Vec<f32> = (0..6 * 50).map(|i| (i % 13) as f32 / 6.0 - 1.0).collect();
        let channel = quantize(&layers, &rows).unwrap();
        let per_tensor = QuantOptions {
            scales: WeightScales::PerTensor,
            ..QuantOptions::default()
        };
        let tensor = quantize_with(&layers, &rows, per_tensor).unwrap();
        for ((c, t), l) in channel.layers.iter().zip(&tensor.layers).zip(&layers) {
            assert_eq!((c.multiplier.len(), t.multiplier.len()), (l.outputs, 1));
            assert_eq!(t.shift.len(), 1);
            // The layer's largest weight is ±127, every other row's peak
            // below it; the activations are calibrated alike.
            assert_eq!(t.weight.iter().map(|w| w.unsigned_abs()).max(), Some(127));
            assert!(t.weight.iter().map(|w| w.unsigned_abs()).max() <= Some(127));
            assert_eq!(c.output, t.output);
        }
        assert_eq!(
            channel.parameter_bytes() - tensor.parameter_bytes(),
            8 * (16 - 1 + 5 - 1)
        );
        let bytes = tensor
            .params(Role::Encoder, PriorParams::None)
            .encode()
            .unwrap();
        let file = crate::host::AlignedBytes::new(&bytes);
        let net = tinygen_runtime::qnetwork::QNetwork::from_bytes(file.as_bytes()).unwrap();
        assert_eq!(tensor.parameter_bytes(), net.stored_bytes());
    }

    #[test]
    fn an_f32_output_keeps_the_whole_pre_activation_range_and_stores_no_table() {
        let layers = [
            layer(6, 16, Activation::Relu, 1),
            layer(16, 5, Activation::Sigmoid, 3),
        ];
        // Pre-activations well beyond ±7.
        let rows: Vec<f32> = (0..6 * 50).map(|i| (i % 13) as f32 - 6.0).collect();
        let f32_output = QuantOptions {
            final_activation: FinalActivation::F32,
            ..QuantOptions::default()
        };
        let table = quantize(&layers, &rows).unwrap();
        let f32_out = quantize_with(&layers, &rows, f32_output).unwrap();
        // The hidden layer is calibrated alike; the last sigmoid is clipped only with a table.
        assert_eq!(table.layers[0].output, f32_out.layers[0].output);
        let span = |p: QuantParams| 255.0 * p.scale;
        assert!(span(table.layers[1].output) <= 14.0 + 1e-4);
        assert!(span(f32_out.layers[1].output) > 14.0);
        assert_eq!(table.parameter_bytes() - f32_out.parameter_bytes(), 256);
        let bytes = f32_out
            .params(Role::Encoder, PriorParams::None)
            .encode()
            .unwrap();
        let file = crate::host::AlignedBytes::new(&bytes);
        let net = tinygen_runtime::qnetwork::QNetwork::from_bytes(file.as_bytes()).unwrap();
        assert_eq!(f32_out.parameter_bytes(), net.stored_bytes());
        assert_eq!(net.f32_activation(), Activation::Sigmoid);
        // Only a sigmoid or tanh output can run in f32.
        let relu_last = [layer(6, 4, Activation::Relu, 1)];
        let error = quantize_with(&relu_last, &rows, f32_output).unwrap_err();
        assert!(error.to_string().contains("sigmoid or tanh"), "{error}");
    }

    #[test]
    fn bad_input_is_refused() {
        let l = layer(2, 2, Activation::Relu, 0);
        assert!(quantize(&[], &[1.0]).is_err());
        assert!(quantize(std::slice::from_ref(&l), &[1.0, 2.0, 3.0]).is_err());
        assert!(quantize(std::slice::from_ref(&l), &[1.0, f32::NAN]).is_err());
        let leaky = layer(2, 2, Activation::LeakyRelu, 0);
        assert!(quantize(&[leaky], &[1.0, 2.0]).is_err());
    }
}
