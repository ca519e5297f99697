//! TensorFlow Lite fully connected networks, as the TFLite converter
//! writes them, to an [`Imported`] network.
//!
//! The main subgraph must be one chain from its single input to its single
//! output: FULLY_CONNECTED (fused NONE, RELU, or in int8 RELU6 where its
//! clamp is RELU's), each optionally followed by RELU, LOGISTIC or TANH;
//! RESHAPE anywhere (a no-op on a row); in int8 files QUANTIZE first (float
//! input) and DEQUANTIZE last (float output), optionally followed by a
//! float LOGISTIC or TANH (the last layer's activation in f32:
//! [`FinalActivation::F32`]). Every other operator is an error naming it
//! and its index.

use anyhow::{Context, bail, ensure};
use tinygen_runtime::Activation;
use tinygen_runtime::qnetwork::{FinalActivation, QuantParams, SIGMOID_OUTPUT, TANH_OUTPUT};

use super::flatbuffer::{self, Model, Tensor, TensorType};
use super::{Imported, Int8Network};
use crate::nn::export::DenseLayer;
use crate::nn::quantize::{QuantLayer, QuantNetwork, requantization};

/// `BuiltinOperator` codes read here.
mod op {
    pub const DEQUANTIZE: i32 = 6;
    pub const FULLY_CONNECTED: i32 = 9;
    pub const LOGISTIC: i32 = 14;
    pub const RELU: i32 = 19;
    pub const RESHAPE: i32 = 22;
    pub const TANH: i32 = 28;
    pub const QUANTIZE: i32 = 114;
}

/// Names of the `BuiltinOperator` codes, for error messages.
fn op_name(code: i32) -> String {
    const NAMES: &[(i32, &str)] = &[
        (0, "ADD"),
        (1, "AVERAGE_POOL_2D"),
        (2, "CONCATENATION"),
        (3, "CONV_2D"),
        (4, "DEPTHWISE_CONV_2D"),
        (6, "DEQUANTIZE"),
        (9, "FULLY_CONNECTED"),
        (14, "LOGISTIC"),
        (17, "MAX_POOL_2D"),
        (18, "MUL"),
        (19, "RELU"),
        (21, "RELU6"),
        (22, "RESHAPE"),
        (25, "SOFTMAX"),
        (28, "TANH"),
        (41, "SUB"),
        (98, "LEAKY_RELU"),
        (114, "QUANTIZE"),
        (126, "BATCH_MATMUL"),
        (150, "GELU"),
    ];
    NAMES.iter().find(|(c, _)| *c == code).map_or_else(
        || format!("builtin operator {code}"),
        |(_, n)| n.to_string(),
    )
}

/// Whether a file starts like a TFLite flatbuffer (identifier `TFL3`).
pub fn is_tflite(bytes: &[u8]) -> bool {
    bytes.get(4..8) == Some(&flatbuffer::IDENTIFIER[..])
}

/// Reads a TFLite file's network.
pub fn import(bytes: &[u8]) -> anyhow::Result<Imported> {
    let model = flatbuffer::model(bytes).context("not a valid TFLite flatbuffer")?;
    ensure!(
        model.version() == 3,
        "TFLite schema version {} (expected 3)",
        model.version()
    );
    let graph = model
        .subgraphs()
        .into_iter()
        .next()
        .context("the model has no subgraph")?;
    let tensors = graph.tensors();
    let tensor = |i: i32| -> anyhow::Result<Tensor<'_>> {
        usize::try_from(i)
            .ok()
            .and_then(|i| tensors.get(i).copied())
            .with_context(|| format!("tensor index {i} out of range"))
    };
    let (inputs, outputs) = (graph.inputs(), graph.outputs());
    let ([input], [output]) = (&inputs[..], &outputs[..]) else {
        bail!(
            "the graph has {} inputs and {} outputs; tinygen imports networks of one of each",
            inputs.len(),
            outputs.len()
        );
    };
    let codes = model.operator_codes();
    let mut chain = Chain::new(&model, tensor(*input)?, *input)?;
    for (index, operator) in graph.operators().iter().enumerate() {
        let code = *codes
            .get(operator.opcode_index() as usize)
            .with_context(|| format!("operator {index}: unknown operator code index"))?;
        let name = op_name(code);
        let ins = operator.inputs();
        let outs = operator.outputs();
        let (Some(&first), [out]) = (ins.first(), &outs[..]) else {
            bail!("operator {index} ({name}): expected one output and at least one input");
        };
        ensure!(
            first == chain.current,
            "operator {index} ({name}) does not read the previous operator's output: \
             tinygen imports a single chain of layers"
        );
        let out_tensor = tensor(*out)?;
        let step = match code {
            op::FULLY_CONNECTED => {
                let weight = tensor(*ins.get(1).context("no weights")?)?;
                let bias = match ins.get(2) {
                    Some(&b) if b >= 0 => Some(tensor(b)?),
                    _ => None,
                };
                chain.fully_connected(weight, bias, out_tensor, operator.fused_activation())
            }
            op::RELU => chain.activation(Activation::Relu, out_tensor),
            op::LOGISTIC => chain.activation(Activation::Sigmoid, out_tensor),
            op::TANH => chain.activation(Activation::Tanh, out_tensor),
            op::RESHAPE => chain.reshape(out_tensor),
            op::QUANTIZE => chain.quantize(out_tensor),
            op::DEQUANTIZE => chain.dequantize(out_tensor),
            _ => bail!(
                "operator {index} ({name}) is not supported: tinygen imports FULLY_CONNECTED \
                 networks with RELU, LOGISTIC, TANH, RESHAPE, QUANTIZE and DEQUANTIZE"
            ),
        };
        step.with_context(|| format!("operator {index} ({name})"))?;
        chain.current = *out;
    }
    ensure!(
        chain.current == *output,
        "the graph's output is not the last operator's"
    );
    chain.finish()
}

/// The network read so far along the chain.
struct Chain<'m, 'a> {
    model: &'m Model<'a>,
    /// Index of the tensor the next operator must read.
    current: i32,
    /// Element type and params of that tensor.
    kind: TensorType,
    params: Option<QuantParams>,
    /// Its width.
    width: usize,
    /// Whether the network is int8 (decided by the first layer).
    int8: Option<bool>,
    input: Option<QuantParams>,
    f32_layers: Vec<DenseLayer>,
    int8_layers: Vec<QuantLayer>,
    /// Whether the last layer's activation is still open (identity, no
    /// operator after it yet).
    open: bool,
    /// Whether the float input went through a QUANTIZE.
    quantized: bool,
    /// Whether the float output came from a DEQUANTIZE.
    dequantized: bool,
    /// Whether the last activation ran in float after it.
    final_f32: bool,
}

/// Elements of a tensor shape (a row: the product of the dimensions past
/// the batch).
fn row_width(t: &Tensor) -> anyhow::Result<usize> {
    let shape = t.shape();
    let dims = if shape.len() > 1 {
        &shape[1..]
    } else {
        &shape[..]
    };
    dims.iter().try_fold(1usize, |n, &d| {
        usize::try_from(d)
            .ok()
            .filter(|&d| d > 0)
            .and_then(|d| n.checked_mul(d))
            .with_context(|| format!("tensor {}: bad shape {shape:?}", t.name()))
    })
}

/// A tensor's per-tensor int8 params.
fn int8_params(t: &Tensor) -> anyhow::Result<QuantParams> {
    ensure!(
        t.kind() == TensorType::I8,
        "tensor {} is {:?}, expected int8",
        t.name(),
        t.kind()
    );
    let (scales, zero_points, _) = t.quantization();
    let ([scale], [zero_point]) = (&scales[..], &zero_points[..]) else {
        bail!(
            "tensor {}: expected one scale and zero point, found {} and {}",
            t.name(),
            scales.len(),
            zero_points.len()
        );
    };
    let zero_point = i8::try_from(*zero_point)
        .with_context(|| format!("tensor {}: zero point {zero_point} outside int8", t.name()))?;
    ensure!(
        scale.is_finite() && *scale > 0.0,
        "tensor {}: scale {scale} is not positive and finite",
        t.name()
    );
    Ok(QuantParams {
        scale: *scale,
        zero_point,
    })
}

impl<'m, 'a> Chain<'m, 'a> {
    fn new(model: &'m Model<'a>, input: Tensor, index: i32) -> anyhow::Result<Self> {
        let kind = input.kind();
        let params = match kind {
            TensorType::F32 => None,
            TensorType::I8 => Some(int8_params(&input)?),
            other => bail!("the input tensor is {other:?}; expected float32 or int8"),
        };
        Ok(Chain {
            model,
            current: index,
            kind,
            params,
            width: row_width(&input)?,
            int8: params.map(|_| true),
            input: params,
            f32_layers: Vec::new(),
            int8_layers: Vec::new(),
            open: false,
            quantized: false,
            dequantized: false,
            final_f32: false,
        })
    }

    fn constant(&self, t: &Tensor) -> anyhow::Result<&'a [u8]> {
        let data = self.model.buffer(t.buffer()).map_err(anyhow::Error::msg)?;
        ensure!(
            !data.is_empty(),
            "tensor {} has no constant data (weights computed at run time are not supported)",
            t.name()
        );
        Ok(data)
    }

    fn fully_connected(
        &mut self,
        weight: Tensor,
        bias: Option<Tensor>,
        out: Tensor,
        fused: i8,
    ) -> anyhow::Result<()> {
        ensure!(!self.dequantized, "a layer after DEQUANTIZE");
        let shape = weight.shape();
        let [outputs, inputs] = shape[..] else {
            bail!("weights of shape {shape:?}, expected [outputs, inputs]");
        };
        let (outputs, inputs) = (
            usize::try_from(outputs).context("bad weight shape")?,
            usize::try_from(inputs).context("bad weight shape")?,
        );
        ensure!(
            inputs == self.width && outputs > 0,
            "weights of shape [{outputs}, {inputs}] after a tensor of width {}",
            self.width
        );
        ensure!(
            row_width(&out)? == outputs,
            "output tensor {} is not {outputs} wide",
            out.name()
        );
        let int8 = weight.kind() == TensorType::I8;
        match (self.kind, int8) {
            (TensorType::F32, false) => self.f32_layer(weight, bias, inputs, outputs, fused)?,
            (TensorType::I8, true) => self.int8_layer(weight, bias, out, inputs, outputs, fused)?,
            (TensorType::F32, true) => bail!(
                "int8 weights on a float32 input (dynamic-range quantization) are not \
                 supported: convert with full-integer quantization"
            ),
            (kind, _) => bail!("input of type {kind:?} with {:?} weights", weight.kind()),
        }
        self.int8 = Some(int8);
        self.width = outputs;
        self.open = fused == 0;
        Ok(())
    }

    fn f32_layer(
        &mut self,
        weight: Tensor,
        bias: Option<Tensor>,
        inputs: usize,
        outputs: usize,
        fused: i8,
    ) -> anyhow::Result<()> {
        let floats = |t: &Tensor, n: usize| -> anyhow::Result<Vec<f32>> {
            ensure!(
                t.kind() == TensorType::F32,
                "tensor {} is not float32",
                t.name()
            );
            let data = self.constant(t)?;
            ensure!(
                data.len() == 4 * n,
                "tensor {}: {} bytes for {n} values",
                t.name(),
                data.len()
            );
            Ok(data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        };
        let weight = floats(&weight, inputs * outputs)?;
        let bias = match bias {
            Some(b) => floats(&b, outputs)?,
            None => vec![0.0; outputs],
        };
        ensure!(
            weight.iter().chain(&bias).all(|v| v.is_finite()),
            "non-finite weights"
        );
        let activation = match fused {
            0 => Activation::Identity,
            1 => Activation::Relu,
            4 => Activation::Tanh,
            3 => bail!("fused RELU6 has no float layer in tinygen (ReLU, sigmoid, tanh only)"),
            other => bail!("fused activation {other} is not supported"),
        };
        self.f32_layers.push(DenseLayer {
            inputs,
            outputs,
            weight,
            bias,
            activation,
        });
        Ok(())
    }

    fn int8_layer(
        &mut self,
        weight: Tensor,
        bias: Option<Tensor>,
        out: Tensor,
        inputs: usize,
        outputs: usize,
        fused: i8,
    ) -> anyhow::Result<()> {
        let data = self.constant(&weight)?;
        ensure!(data.len() == inputs * outputs, "weights: wrong byte count");
        let (scales, zero_points, dimension) = weight.quantization();
        ensure!(
            scales.len() == 1 || (scales.len() == outputs && dimension == 0),
            "weights: {} scales along dimension {dimension} (expected 1, or one per output)",
            scales.len()
        );
        ensure!(
            zero_points.iter().all(|&z| z == 0),
            "weights are not symmetric (non-zero zero points)"
        );
        ensure!(
            scales.iter().all(|s| s.is_finite() && *s > 0.0),
            "weight scales must be positive and finite"
        );
        let bias = match bias {
            Some(b) => {
                ensure!(
                    b.kind() == TensorType::I32,
                    "bias {} is not int32",
                    b.name()
                );
                let data = self.constant(&b)?;
                ensure!(data.len() == 4 * outputs, "bias: wrong byte count");
                data.chunks_exact(4)
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect()
            }
            None => vec![0; outputs],
        };
        let output = int8_params(&out)?;
        let activation = match fused {
            0 => Activation::Identity,
            1 => Activation::Relu,
            // RELU6 clamps at quantize(6); where that is past 127 the clamp is RELU's.
            3 if i32::from(output.zero_point) + (6.0 / output.scale).round() as i32 >= 127 => {
                Activation::Relu
            }
            3 => bail!("fused RELU6 clamps below the output's range; tinygen has no such layer"),
            other => bail!("fused activation {other} is not supported in int8"),
        };
        let input_scale = self.params.context("no int8 params")?.scale;
        let (multiplier, shift) = scales
            .iter()
            .map(|&w| requantization(input_scale, w, output.scale))
            .unzip();
        self.int8_layers.push(QuantLayer {
            inputs,
            outputs,
            activation,
            weight: data.iter().map(|&b| b as i8).collect(),
            bias,
            weight_scale: scales,
            multiplier,
            shift,
            output,
        });
        self.params = Some(output);
        Ok(())
    }

    /// A standalone RELU, LOGISTIC or TANH: the activation of the layer before it.
    fn activation(&mut self, activation: Activation, out: Tensor) -> anyhow::Result<()> {
        ensure!(
            self.open,
            "an activation that does not directly follow a FULLY_CONNECTED without one"
        );
        match self.int8 {
            Some(true) if self.dequantized => {
                // FULLY_CONNECTED -> DEQUANTIZE -> LOGISTIC or TANH in float.
                ensure!(
                    matches!(activation, Activation::Sigmoid | Activation::Tanh)
                        && out.kind() == TensorType::F32,
                    "only a float LOGISTIC or TANH may follow the DEQUANTIZE"
                );
                if let Some(layer) = self.int8_layers.last_mut() {
                    layer.activation = activation;
                }
                self.final_f32 = true;
            }
            Some(false) => {
                ensure!(out.kind() == TensorType::F32, "expected a float32 output");
                if let Some(layer) = self.f32_layers.last_mut() {
                    layer.activation = activation;
                }
            }
            Some(true) => {
                let got = int8_params(&out)?;
                let before = self.params.context("no int8 params")?;
                let expected = match activation {
                    Activation::Sigmoid => SIGMOID_OUTPUT,
                    Activation::Tanh => TANH_OUTPUT,
                    // A RELU that also requantized would need a layer of its own.
                    _ => before,
                };
                ensure!(
                    got == expected,
                    "output params {got:?}, expected {expected:?} (TFLite's for this operator)"
                );
                if let Some(layer) = self.int8_layers.last_mut() {
                    layer.activation = activation;
                }
                self.params = Some(got);
            }
            None => bail!("an activation before any layer"),
        }
        self.open = false;
        Ok(())
    }

    fn reshape(&mut self, out: Tensor) -> anyhow::Result<()> {
        ensure!(
            row_width(&out)? == self.width && out.kind() == self.kind,
            "a RESHAPE that changes the row"
        );
        if self.kind == TensorType::I8 {
            ensure!(
                Some(int8_params(&out)?) == self.params,
                "a RESHAPE that requantizes"
            );
        }
        Ok(())
    }

    fn quantize(&mut self, out: Tensor) -> anyhow::Result<()> {
        ensure!(
            self.kind == TensorType::F32 && self.int8.is_none(),
            "QUANTIZE is supported only on the float input"
        );
        let params = int8_params(&out)?;
        (self.kind, self.params, self.input) = (TensorType::I8, Some(params), Some(params));
        self.quantized = true;
        Ok(())
    }

    fn dequantize(&mut self, out: Tensor) -> anyhow::Result<()> {
        ensure!(
            self.kind == TensorType::I8 && out.kind() == TensorType::F32,
            "DEQUANTIZE is supported only from int8 to float32"
        );
        (self.kind, self.dequantized) = (TensorType::F32, true);
        Ok(())
    }

    fn finish(self) -> anyhow::Result<Imported> {
        // An int8 input makes the network int8 before any layer.
        ensure!(
            !(self.f32_layers.is_empty() && self.int8_layers.is_empty()),
            "the graph has no FULLY_CONNECTED layer"
        );
        match self.int8 {
            None => bail!("the graph has no FULLY_CONNECTED layer"),
            Some(false) => Ok(Imported::F32(self.f32_layers)),
            Some(true) => Ok(Imported::Int8(Int8Network {
                network: QuantNetwork {
                    input: self.input.context("no input params")?,
                    layers: self.int8_layers,
                    calibration_rows: 0,
                    final_activation: if self.final_f32 {
                        FinalActivation::F32
                    } else {
                        FinalActivation::Int8
                    },
                },
                float_input: self.quantized,
                float_output: self.dequantized,
            })),
        }
    }
}
