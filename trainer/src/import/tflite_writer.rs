//! An [`Imported`] network as a TFLite flatbuffer, the inverse of
//! [`super::tflite::import`]: what `tinygen export --format tflite` writes.
//!
//! The graph is the converter's: float FULLY_CONNECTED layers (ReLU fused)
//! each followed by LOGISTIC or TANH where the layer has one; int8 ones
//! between a QUANTIZE of the float input and a DEQUANTIZE of the output
//! (or with int8 input and output, as the network says),
//! their weights symmetric with one scale per output (or per layer), int32
//! biases at `input_scale * weight_scale`, sigmoid and tanh outputs at
//! TFLite's fixed params, and with [`FinalActivation::F32`] the last
//! sigmoid or tanh in float after the DEQUANTIZE. LiteRT's Prepare derives
//! from these scales the very multipliers the runtime's file stores.

use anyhow::bail;
use flatbuffers::{FlatBufferBuilder, TableFinishedWIPOffset, WIPOffset};
use tinygen_runtime::Activation;
use tinygen_runtime::qnetwork::{FinalActivation, QuantParams, SIGMOID_OUTPUT, TANH_OUTPUT};

use super::{Imported, Int8Network};
use crate::nn::export::DenseLayer;

type Table = WIPOffset<TableFinishedWIPOffset>;

const fn slot(id: u16) -> u16 {
    4 + 2 * id
}

/// `BuiltinOperator` codes written.
const FULLY_CONNECTED: i32 = 9;
const LOGISTIC: i32 = 14;
const TANH: i32 = 28;
const QUANTIZE: i32 = 114;
const DEQUANTIZE: i32 = 6;

/// `TensorType` codes written.
const FLOAT32: i8 = 0;
const INT32: i8 = 2;
const INT8: i8 = 9;

/// A tensor before it is written.
struct TensorDef {
    shape: Vec<i32>,
    kind: i8,
    /// Index into the buffers (0: none, TFLite's empty sentinel).
    buffer: u32,
    name: String,
    /// Scales and zero points, with the quantized dimension.
    quantization: Option<(Vec<f32>, Vec<i64>)>,
}

struct OperatorDef {
    code: i32,
    inputs: Vec<i32>,
    outputs: Vec<i32>,
    /// A FULLY_CONNECTED's fused activation.
    fused: Option<i8>,
}

/// The graph under construction.
#[derive(Default)]
struct Graph {
    tensors: Vec<TensorDef>,
    buffers: Vec<Vec<u8>>,
    operators: Vec<OperatorDef>,
}

impl Graph {
    fn tensor(&mut self, def: TensorDef) -> i32 {
        self.tensors.push(def);
        self.tensors.len() as i32 - 1
    }

    /// A constant tensor holding `data`.
    fn constant(
        &mut self,
        name: String,
        shape: Vec<i32>,
        kind: i8,
        data: Vec<u8>,
        quantization: Option<(Vec<f32>, Vec<i64>)>,
    ) -> i32 {
        self.buffers.push(data);
        let buffer = self.buffers.len() as u32; // after the sentinel
        self.tensor(TensorDef {
            shape,
            kind,
            buffer,
            name,
            quantization,
        })
    }

    /// A run-time row of `width` values.
    fn activation(&mut self, name: String, width: usize, params: Option<QuantParams>) -> i32 {
        self.tensor(TensorDef {
            shape: vec![1, width as i32],
            kind: if params.is_some() { INT8 } else { FLOAT32 },
            buffer: 0,
            name,
            quantization: params.map(|p| (vec![p.scale], vec![i64::from(p.zero_point)])),
        })
    }

    fn op(&mut self, code: i32, inputs: Vec<i32>, output: i32, fused: Option<i8>) {
        self.operators.push(OperatorDef {
            code,
            inputs,
            outputs: vec![output],
            fused,
        });
    }
}

fn fused_code(activation: Activation) -> Option<i8> {
    match activation {
        Activation::Relu => Some(1),
        Activation::Identity | Activation::Sigmoid | Activation::Tanh => Some(0),
        Activation::LeakyRelu => None,
    }
}

fn le_bytes<T: Copy, const N: usize>(values: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|&v| f(v)).collect()
}

fn float_graph(layers: &[DenseLayer]) -> anyhow::Result<Graph> {
    let mut g = Graph::default();
    let first = layers.first().map_or(0, |l| l.inputs);
    let mut x = g.activation("input".into(), first, None);
    for (i, l) in layers.iter().enumerate() {
        let Some(fused) = fused_code(l.activation) else {
            bail!("layer {i}: leaky ReLU has no TFLite export here");
        };
        let shape = vec![l.outputs as i32, l.inputs as i32];
        let w = g.constant(
            format!("dense_{i}/weight"),
            shape,
            FLOAT32,
            le_bytes(&l.weight, f32::to_le_bytes),
            None,
        );
        let b = g.constant(
            format!("dense_{i}/bias"),
            vec![l.outputs as i32],
            FLOAT32,
            le_bytes(&l.bias, f32::to_le_bytes),
            None,
        );
        let y = g.activation(format!("dense_{i}"), l.outputs, None);
        g.op(FULLY_CONNECTED, vec![x, w, b], y, Some(fused));
        x = y;
        if let Some(code) = table_op(l.activation) {
            let y = g.activation(format!("dense_{i}/activation"), l.outputs, None);
            g.op(code, vec![x], y, None);
            x = y;
        }
    }
    Ok(g)
}

fn table_op(activation: Activation) -> Option<i32> {
    match activation {
        Activation::Sigmoid => Some(LOGISTIC),
        Activation::Tanh => Some(TANH),
        _ => None,
    }
}

fn int8_graph(int8: &Int8Network) -> anyhow::Result<Graph> {
    let net = &int8.network;
    let mut g = Graph::default();
    let first = net.layers.first().map_or(0, |l| l.inputs);
    let mut x = if int8.float_input {
        let input = g.activation("input".into(), first, None);
        let x = g.activation("input/quantized".into(), first, Some(net.input));
        g.op(QUANTIZE, vec![input], x, None);
        x
    } else {
        g.activation("input".into(), first, Some(net.input))
    };
    if net.final_activation == FinalActivation::F32 && !int8.float_output {
        bail!("an f32 output activation needs float output");
    }
    let mut s_in = net.input.scale;
    let last = net.layers.len().saturating_sub(1);
    let mut float_activation = None;
    for (i, l) in net.layers.iter().enumerate() {
        let Some(fused) = fused_code(l.activation) else {
            bail!("layer {i}: leaky ReLU is not supported in int8");
        };
        let zeros = vec![0i64; l.weight_scale.len()];
        let w = g.constant(
            format!("dense_{i}/weight"),
            vec![l.outputs as i32, l.inputs as i32],
            INT8,
            l.weight.iter().map(|&v| v as u8).collect(),
            Some((l.weight_scale.clone(), zeros.clone())),
        );
        // TFLite's bias scale: input scale times each weight scale, in f32.
        let bias_scales = l.weight_scale.iter().map(|&s| s_in * s).collect();
        let b = g.constant(
            format!("dense_{i}/bias"),
            vec![l.outputs as i32],
            INT32,
            le_bytes(&l.bias, i32::to_le_bytes),
            Some((bias_scales, zeros)),
        );
        let y = g.activation(format!("dense_{i}"), l.outputs, Some(l.output));
        g.op(FULLY_CONNECTED, vec![x, w, b], y, Some(fused));
        x = y;
        s_in = l.output.scale;
        if let Some(code) = table_op(l.activation) {
            if i == last && net.final_activation == FinalActivation::F32 {
                float_activation = Some(code);
                continue;
            }
            let fixed = if code == LOGISTIC {
                SIGMOID_OUTPUT
            } else {
                TANH_OUTPUT
            };
            let y = g.activation(format!("dense_{i}/activation"), l.outputs, Some(fixed));
            g.op(code, vec![x], y, None);
            x = y;
            s_in = fixed.scale;
        }
    }
    let width = net.layers.last().map_or(0, |l| l.outputs);
    if !int8.float_output {
        // The graph's output is the last tensor made: the last int8 one.
        return Ok(g);
    }
    let output = g.activation("output".into(), width, None);
    g.op(DEQUANTIZE, vec![x], output, None);
    if let Some(code) = float_activation {
        let y = g.activation("output/activation".into(), width, None);
        g.op(code, vec![output], y, None);
    }
    Ok(g)
}

/// Writes `net` as a TFLite flatbuffer (schema version 3, one subgraph).
pub fn write(net: &Imported) -> anyhow::Result<Vec<u8>> {
    let graph = match net {
        Imported::F32(layers) => float_graph(layers)?,
        Imported::Int8(net) => int8_graph(net)?,
    };
    Ok(serialize(&graph))
}

fn serialize(g: &Graph) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    let mut codes: Vec<i32> = Vec::new();
    for op in &g.operators {
        if !codes.contains(&op.code) {
            codes.push(op.code);
        }
    }
    let code_tables: Vec<Table> = codes
        .iter()
        .map(|&code| {
            let t = fbb.start_table();
            // The byte field holds codes below 127, else its placeholder 127.
            fbb.push_slot::<i8>(slot(0), code.min(127) as i8, 0);
            fbb.push_slot::<i32>(slot(2), 1, 1);
            fbb.push_slot::<i32>(slot(3), code, 0);
            fbb.end_table(t)
        })
        .collect();
    let tensors: Vec<Table> = g
        .tensors
        .iter()
        .map(|t| {
            let shape = fbb.create_vector(&t.shape);
            let name = fbb.create_string(&t.name);
            let quantization = t.quantization.as_ref().map(|(scales, zero_points)| {
                let scales = fbb.create_vector(scales);
                let zero_points = fbb.create_vector(zero_points);
                let q = fbb.start_table();
                fbb.push_slot_always(slot(2), scales);
                fbb.push_slot_always(slot(3), zero_points);
                fbb.push_slot::<i32>(slot(6), 0, 0);
                fbb.end_table(q)
            });
            let table = fbb.start_table();
            fbb.push_slot_always(slot(0), shape);
            fbb.push_slot::<i8>(slot(1), t.kind, 0);
            fbb.push_slot::<u32>(slot(2), t.buffer, 0);
            fbb.push_slot_always(slot(3), name);
            if let Some(q) = quantization {
                fbb.push_slot_always(slot(4), q);
            }
            fbb.end_table(table)
        })
        .collect();
    let operators: Vec<Table> = g
        .operators
        .iter()
        .map(|op| {
            let inputs = fbb.create_vector(&op.inputs);
            let outputs = fbb.create_vector(&op.outputs);
            let options = op.fused.map(|fused| {
                let o = fbb.start_table();
                fbb.push_slot::<i8>(slot(0), fused, 0);
                fbb.end_table(o)
            });
            let index = codes.iter().position(|&c| c == op.code).unwrap_or(0) as u32;
            let table = fbb.start_table();
            fbb.push_slot::<u32>(slot(0), index, 0);
            fbb.push_slot_always(slot(1), inputs);
            fbb.push_slot_always(slot(2), outputs);
            if let Some(options) = options {
                fbb.push_slot::<u8>(slot(3), 8, 0); // FullyConnectedOptions
                fbb.push_slot_always(slot(4), options);
            }
            fbb.end_table(table)
        })
        .collect();
    let buffers: Vec<Table> = std::iter::once(&Vec::new())
        .chain(&g.buffers)
        .map(|data| {
            // A u8 vector's data follows its 4-byte length: aligned for
            // the int32 and float32 values it holds.
            let data = (!data.is_empty()).then(|| fbb.create_vector(data));
            let table = fbb.start_table();
            if let Some(data) = data {
                fbb.push_slot_always(slot(0), data);
            }
            fbb.end_table(table)
        })
        .collect();
    let tensors = fbb.create_vector(&tensors);
    let graph_inputs = fbb.create_vector(&[0i32]);
    let graph_outputs = fbb.create_vector(&[g.tensors.len() as i32 - 1]);
    let operators = fbb.create_vector(&operators);
    let name = fbb.create_string("main");
    let subgraph = fbb.start_table();
    fbb.push_slot_always(slot(0), tensors);
    fbb.push_slot_always(slot(1), graph_inputs);
    fbb.push_slot_always(slot(2), graph_outputs);
    fbb.push_slot_always(slot(3), operators);
    fbb.push_slot_always(slot(4), name);
    let subgraph = fbb.end_table(subgraph);
    let code_tables = fbb.create_vector(&code_tables);
    let subgraphs = fbb.create_vector(&[subgraph]);
    let buffers = fbb.create_vector(&buffers);
    let description = fbb.create_string("tinygen");
    let model = fbb.start_table();
    fbb.push_slot_always::<u32>(slot(0), 3);
    fbb.push_slot_always(slot(1), code_tables);
    fbb.push_slot_always(slot(2), subgraphs);
    fbb.push_slot_always(slot(3), description);
    fbb.push_slot_always(slot(4), buffers);
    let model = fbb.end_table(model);
    fbb.finish(model, Some("TFL3"));
    fbb.finished_data().to_vec()
}
