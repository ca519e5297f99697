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

use tinygen_runtime::network::{DecoderParams, LayerParams, PriorParams, Role};

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

/// A TFLite int8 network: the layers as tinygen's quantizer writes them
/// (TFLite's arithmetic), and whether the graph's ends are float.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Network {
    /// The layers, their scales and requantization.
    pub network: QuantNetwork,
    /// Whether the TFLite graph takes float input (a QUANTIZE first).
    pub float_input: bool,
    /// Whether it gives float output (a DEQUANTIZE last).
    pub float_output: bool,
}

impl From<&QuantNetwork> for Int8Network {
    /// A quantized network with float ends, as `export --format tflite`
    /// writes it; the calibration row count is not part of the file.
    fn from(network: &QuantNetwork) -> Self {
        Int8Network {
            network: QuantNetwork {
                calibration_rows: 0,
                ..network.clone()
            },
            float_input: true,
            float_output: true,
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
                net.network.layers.first().map(|l| l.inputs),
                net.network.layers.last().map(|l| l.outputs),
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
            Imported::Int8(net) => net.network.params(role, PriorParams::None).encode(),
        };
        bytes.map_err(|e| anyhow::anyhow!("cannot write the imported network: {e}"))
    }
}
