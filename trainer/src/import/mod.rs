//! `tinygen import`: networks trained elsewhere, as model files the runtime
//! runs.
//!
//! [`tflite`] reads TensorFlow Lite files (float or full-integer int8),
//! `onnx` (the `onnx` feature) PyTorch's ONNX MLPs (float);
//! the result is written as an f32 network (`decoder`/`encoder`) or an int8
//! one (`decoder-int8`/`encoder-int8`) whose arithmetic is TFLite's own, so
//! LiteRT's reference kernels and the runtime agree bit for bit.

pub mod flatbuffer;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod tflite;
pub mod tflite_writer;

use tinygen_runtime::Activation;
use tinygen_runtime::network::{DecoderParams, LayerParams, PriorParams, Role};
use tinygen_runtime::qnetwork::{
    FinalActivation, QLayerParams, QNetworkParams, QuantParams, SIGMOID_OUTPUT, TANH_OUTPUT,
};
use tinygen_runtime::quant::quantize_multiplier_single_rounding;

use crate::nn::export::DenseLayer;
use crate::nn::quantize::QuantNetwork;

/// A network read from another tool's file.
#[derive(Debug, Clone, PartialEq)]
pub enum Imported {
    /// Float layers.
    F32(Vec<DenseLayer>),
    /// TFLite int8 layers.
    Int8(Int8Network),
}

/// One int8 fully connected layer as TFLite stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Layer {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// The activation after it (relu fused; sigmoid and tanh as tables).
    pub activation: Activation,
    /// `outputs x inputs` row-major, symmetric.
    pub weight: Vec<i8>,
    /// At scale `input_scale * weight_scale[o]`.
    pub bias: Vec<i32>,
    /// One, or one per output.
    pub weight_scales: Vec<f32>,
    /// Params of the fully connected part's output.
    pub output: QuantParams,
}

/// A TFLite int8 network.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Network {
    /// Params of the int8 input.
    pub input: QuantParams,
    /// The layers, input to output.
    pub layers: Vec<Int8Layer>,
    /// Whether the TFLite graph took float input (a QUANTIZE first).
    pub float_input: bool,
    /// Whether it gave float output (a DEQUANTIZE last).
    pub float_output: bool,
    /// [`FinalActivation::F32`] when the last sigmoid or tanh ran in float
    /// after the DEQUANTIZE.
    pub final_activation: FinalActivation,
}

impl From<&QuantNetwork> for Int8Network {
    fn from(net: &QuantNetwork) -> Self {
        Int8Network {
            input: net.input,
            layers: net
                .layers
                .iter()
                .map(|l| Int8Layer {
                    inputs: l.inputs,
                    outputs: l.outputs,
                    activation: l.activation,
                    weight: l.weight.clone(),
                    bias: l.bias.clone(),
                    weight_scales: l.weight_scale.clone(),
                    output: l.output,
                })
                .collect(),
            float_input: true,
            float_output: true,
            final_activation: net.final_activation,
        }
    }
}

impl Imported {
    /// Input and output widths.
    pub fn widths(&self) -> (usize, usize) {
        let ends =
            |first: Option<usize>, last: Option<usize>| (first.unwrap_or(0), last.unwrap_or(0));
        match self {
            Imported::F32(layers) => ends(
                layers.first().map(|l| l.inputs),
                layers.last().map(|l| l.outputs),
            ),
            Imported::Int8(net) => ends(
                net.layers.first().map(|l| l.inputs),
                net.layers.last().map(|l| l.outputs),
            ),
        }
    }

    /// The network as a model file of `role`, without a prior.
    pub fn encode(&self, role: Role) -> anyhow::Result<Vec<u8>> {
        let (inputs, outputs) = self.widths();
        let bytes = match self {
            Imported::F32(layers) => DecoderParams {
                role,
                latent: match role {
                    Role::Decoder => inputs,
                    Role::Encoder => outputs,
                },
                layers: layers
                    .iter()
                    .map(DenseLayer::params)
                    .collect::<Vec<LayerParams>>(),
                prior: PriorParams::None,
            }
            .encode(),
            Imported::Int8(net) => {
                let requant = net.requantization();
                QNetworkParams {
                    role,
                    input: net.input,
                    layers: net
                        .layers
                        .iter()
                        .zip(&requant)
                        .map(|(l, (m, s))| QLayerParams {
                            inputs: l.inputs,
                            outputs: l.outputs,
                            activation: l.activation,
                            weight: &l.weight,
                            bias: &l.bias,
                            multiplier: m,
                            shift: s,
                            output: l.output,
                        })
                        .collect(),
                    prior: PriorParams::None,
                    final_activation: net.final_activation,
                }
                .encode()
            }
        };
        bytes.map_err(|e| anyhow::anyhow!("cannot write the imported network: {e}"))
    }
}

impl Int8Network {
    /// Each layer's multipliers and shifts, as TFLite's Prepare derives
    /// them: `input_scale * weight_scale / output_scale` in `f64`, the
    /// input scale being the previous tensor's (sigmoid and tanh outputs
    /// have TFLite's fixed params).
    pub fn requantization(&self) -> Vec<(Vec<i32>, Vec<i32>)> {
        let mut input_scale = self.input.scale;
        self.layers
            .iter()
            .map(|l| {
                let pairs = l
                    .weight_scales
                    .iter()
                    .map(|&w| {
                        quantize_multiplier_single_rounding(
                            f64::from(input_scale) * f64::from(w) / f64::from(l.output.scale),
                        )
                    })
                    .unzip();
                input_scale = match l.activation {
                    Activation::Sigmoid => SIGMOID_OUTPUT.scale,
                    Activation::Tanh => TANH_OUTPUT.scale,
                    _ => l.output.scale,
                };
                pairs
            })
            .collect()
    }
}
