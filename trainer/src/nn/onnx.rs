//! Exporting a run's decoder or encoder as an ONNX graph, written with the
//! protobuf types tract-onnx maintains (`tract_onnx::pb`), and running it
//! back with tract to check it.
//!
//! The graph is one `Gemm` (`transB = 1`) per dense layer, each followed by
//! its activation (`Relu`, `LeakyRelu` with alpha 0.01, `Tanh`, `Sigmoid`;
//! none for identity). The input is `z` (decoder) or `x` (encoder) of shape
//! `[batch, inputs]` with a symbolic batch; the output is the other name, of
//! shape `[batch, outputs]`. Weights are float32 initializers.

use anyhow::{Context, bail};
use prost::Message;
use tract_onnx::pb;
use tract_onnx::prelude::{
    DatumExt, Framework, InferenceModelExt, IntoRunnable, TVec, Tensor as TractTensor, tvec,
};

use super::export::{DenseLayer, Part};
use tinygen_runtime::Activation;

/// ONNX intermediate-representation version of the files (ONNX 1.10+).
pub const IR_VERSION: i64 = 8;
/// Version of the default (`ai.onnx`) operator set the graphs use.
pub const OPSET_VERSION: i64 = 13;

/// Names of the graph's input and output for `part`.
pub fn io_names(part: Part) -> (&'static str, &'static str) {
    match part {
        Part::Decoder => ("z", "x"),
        Part::Encoder => ("x", "z"),
    }
}

fn float_tensor(name: &str, dims: &[usize], values: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.to_string(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: pb::tensor_proto::DataType::Float as i32,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn value_info(name: &str, width: usize) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let dim = |value| Dimension {
        value: Some(value),
        ..Default::default()
    };
    pb::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: Some(pb::TensorShapeProto {
                    dim: vec![
                        dim(Value::DimParam("batch".into())),
                        dim(Value::DimValue(width as i64)),
                    ],
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(
    op: &str,
    inputs: &[&str],
    output: &str,
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        name: output.to_string(),
        op_type: op.to_string(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        attribute,
        ..Default::default()
    }
}

/// Encodes `layers` (from [`super::export::dense_layers`]) as an ONNX model.
/// `doc` goes into the model's doc string.
pub fn export_onnx(layers: &[DenseLayer], part: Part, doc: &str) -> anyhow::Result<Vec<u8>> {
    use pb::attribute_proto::AttributeType;
    let (Some(first), Some(last)) = (layers.first(), layers.last()) else {
        bail!("the {part:?} has no layers");
    };
    let (input, output) = io_names(part);
    let mut nodes = Vec::new();
    let mut initializers = Vec::new();
    let mut h = input.to_string();
    for (i, l) in layers.iter().enumerate() {
        let (w, b) = (format!("layer{i}.weight"), format!("layer{i}.bias"));
        initializers.push(float_tensor(&w, &[l.outputs, l.inputs], &l.weight));
        initializers.push(float_tensor(&b, &[l.outputs], &l.bias));
        let is_last = i + 1 == layers.len();
        let linear = if is_last && l.activation == Activation::Identity {
            output.to_string()
        } else {
            format!("layer{i}.linear")
        };
        let trans_b = pb::AttributeProto {
            name: "transB".into(),
            r#type: AttributeType::Int as i32,
            i: 1,
            ..Default::default()
        };
        nodes.push(node("Gemm", &[&h, &w, &b], &linear, vec![trans_b]));
        let activated = if is_last {
            output.to_string()
        } else {
            format!("layer{i}.out")
        };
        let act = match l.activation {
            Activation::Identity => None,
            Activation::Relu => Some(("Relu", vec![])),
            Activation::LeakyRelu => Some((
                "LeakyRelu",
                vec![pb::AttributeProto {
                    name: "alpha".into(),
                    r#type: AttributeType::Float as i32,
                    f: Activation::LEAKY_RELU_SLOPE,
                    ..Default::default()
                }],
            )),
            Activation::Tanh => Some(("Tanh", vec![])),
            Activation::Sigmoid => Some(("Sigmoid", vec![])),
        };
        h = match act {
            Some((op, attrs)) => {
                nodes.push(node(op, &[&linear], &activated, attrs));
                activated
            }
            None => linear,
        };
    }
    let model = pb::ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET_VERSION,
        }],
        producer_name: "tinygen".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: doc.to_string(),
        graph: Some(pb::GraphProto {
            name: format!("tinygen_{}", format!("{part:?}").to_lowercase()),
            node: nodes,
            initializer: initializers,
            input: vec![value_info(input, first.inputs)],
            output: vec![value_info(output, last.outputs)],
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(model.encode_to_vec())
}

/// An ONNX file loaded by tract-onnx and optimized for a fixed batch.
pub struct TractPlan {
    plan: std::sync::Arc<tract_onnx::prelude::TypedRunnableModel>,
    rows: usize,
    width: usize,
}

impl TractPlan {
    /// Loads `file` for batches of `rows` inputs of width `width`.
    pub fn new(file: &[u8], rows: usize, width: usize) -> anyhow::Result<Self> {
        let plan = tract_onnx::onnx()
            .model_for_read(&mut &file[..])
            .context("tract-onnx cannot read the ONNX file")?
            .with_input_fact(0, f32::fact([rows, width]).into())?
            .into_optimized()?
            .into_runnable()?;
        Ok(Self { plan, rows, width })
    }

    /// Runs one batch (row-major) and returns the first output, row-major.
    pub fn run(&self, inputs: &[f32]) -> anyhow::Result<Vec<f32>> {
        if inputs.len() != self.rows * self.width {
            bail!(
                "{} values are not {} rows of {}",
                inputs.len(),
                self.rows,
                self.width
            );
        }
        let x = TractTensor::from_shape(&[self.rows, self.width], inputs)?;
        let out: TVec<_> = self.plan.run(tvec!(x.into()))?;
        let y = out
            .first()
            .context("the ONNX graph has no output")?
            .to_plain_array_view::<f32>()?;
        Ok(y.iter().copied().collect())
    }
}

/// Runs an ONNX file with tract-onnx on rows of width `width` (row-major)
/// and returns its first output, row-major.
pub fn run_tract(file: &[u8], inputs: &[f32], width: usize) -> anyhow::Result<Vec<f32>> {
    if width == 0 || !inputs.len().is_multiple_of(width) {
        bail!("{} values are not rows of {width}", inputs.len());
    }
    TractPlan::new(file, inputs.len() / width, width)?.run(inputs)
}
