//! ONNX multilayer perceptrons, as `torch.onnx.export` writes them, to an
//! [`Imported`] float network (the `onnx` cargo feature: the protobuf
//! types are tract-onnx's, `tract_onnx::pb`).
//!
//! The graph must be one chain from its single input to its single
//! output: `Gemm` (`transA = 0`), or `MatMul` then `Add` of a constant
//! bias, each optionally followed by `BatchNormalization` (folded into the
//! layer before it), then `Relu`, `LeakyRelu` (alpha 0.01, the runtime's
//! slope), `Sigmoid` or `Tanh`; `Flatten`, `Reshape`, `Identity` and
//! `Dropout` where they keep the row. Weights are float32 initializers (or
//! `Constant` nodes), inline or in external data files next to the model.
//! Any other operator is an error naming it and its node index.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail, ensure};
use prost::Message;
use tinygen_runtime::Activation;
use tract_onnx::pb;

use super::Imported;
use crate::nn::export::DenseLayer;

/// A float32 constant: its dimensions and values.
#[derive(Debug, Clone)]
struct Constant {
    dims: Vec<usize>,
    values: Vec<f32>,
}

/// Whether a file looks like an ONNX model (parses as a `ModelProto` with a graph).
pub fn is_onnx(bytes: &[u8]) -> bool {
    pb::ModelProto::decode(bytes).is_ok_and(|m| m.graph.is_some())
}

/// Reads the float network of the ONNX file at `path`.
pub fn import(path: &Path) -> anyhow::Result<Imported> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    import_bytes(&bytes, dir)
}

/// Reads an ONNX model's float network; external data files are looked up
/// in `dir`.
pub fn import_bytes(bytes: &[u8], dir: &Path) -> anyhow::Result<Imported> {
    let model = pb::ModelProto::decode(bytes).context("not an ONNX model (protobuf)")?;
    let graph = model.graph.context("the ONNX model has no graph")?;
    let mut constants: HashMap<String, Constant> = HashMap::new();
    for tensor in &graph.initializer {
        constants.insert(tensor.name.clone(), constant(tensor, dir)?);
    }
    let inputs: Vec<&pb::ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !constants.contains_key(&i.name))
        .collect();
    let ([input], [output]) = (&inputs[..], &graph.output[..]) else {
        bail!(
            "the graph has {} inputs and {} outputs; tinygen imports networks of one of each",
            inputs.len(),
            graph.output.len()
        );
    };
    let mut chain = Chain {
        current: input.name.clone(),
        width: row_width(input)?,
        layers: Vec::new(),
        open: false,
    };
    for (index, node) in graph.node.iter().enumerate() {
        let op = node.op_type.as_str();
        if op == "Constant" {
            let [name] = &node.output[..] else {
                bail!("node {index} (Constant): expected one output");
            };
            let value = node
                .attribute
                .iter()
                .find(|a| a.name == "value")
                .and_then(|a| a.t.as_ref())
                .with_context(|| format!("node {index} (Constant): no tensor value"))?;
            constants.insert(name.clone(), constant(value, dir)?);
            continue;
        }
        let Some(first) = node.input.first() else {
            bail!("node {index} ({op}) has no input");
        };
        ensure!(
            *first == chain.current,
            "node {index} ({op}) does not read the previous node's output: \
             tinygen imports a single chain of layers"
        );
        let Some(out) = node.output.first() else {
            bail!("node {index} ({op}) has no output");
        };
        let operand = |i: usize| -> anyhow::Result<&Constant> {
            let name = node.input.get(i).context("a missing input")?;
            constants
                .get(name)
                .with_context(|| format!("input {name:?} is not a constant"))
        };
        let step = match op {
            "Gemm" => operand(1).and_then(|w| {
                let bias = node
                    .input
                    .get(2)
                    .filter(|n| !n.is_empty())
                    .map(|_| operand(2));
                chain.gemm(node, w, bias.transpose()?)
            }),
            "MatMul" => operand(1).and_then(|w| chain.matmul(w)),
            "Add" => operand(1).and_then(|b| chain.add(b)),
            "BatchNormalization" => {
                let params: anyhow::Result<Vec<&Constant>> = (1..5).map(operand).collect();
                params.and_then(|p| chain.batch_norm(node, &p))
            }
            "Relu" => chain.activation(Activation::Relu),
            "Sigmoid" => chain.activation(Activation::Sigmoid),
            "Tanh" => chain.activation(Activation::Tanh),
            "LeakyRelu" => {
                let alpha = float_attribute(node, "alpha").unwrap_or(0.01);
                if alpha == Activation::LEAKY_RELU_SLOPE {
                    chain.activation(Activation::LeakyRelu)
                } else {
                    Err(anyhow::anyhow!(
                        "slope {alpha}: the runtime's leaky ReLU has slope {}",
                        Activation::LEAKY_RELU_SLOPE
                    ))
                }
            }
            "Flatten" if int_attribute(node, "axis").unwrap_or(1) != 1 => {
                Err(anyhow::anyhow!("only axis 1 keeps the batch"))
            }
            "Flatten" | "Reshape" | "Identity" | "Dropout" => Ok(()),
            _ => bail!(
                "node {index} ({op}) is not supported: tinygen imports Gemm or MatMul + Add \
                 layers with BatchNormalization, Relu, LeakyRelu, Sigmoid, Tanh, and Flatten, \
                 Reshape, Identity, Dropout"
            ),
        };
        step.with_context(|| format!("node {index} ({op})"))?;
        chain.current = out.clone();
    }
    ensure!(
        chain.current == output.name,
        "the graph's output is not the last node's"
    );
    ensure!(!chain.layers.is_empty(), "the graph has no layer");
    Ok(Imported::F32(chain.layers))
}

/// Elements of a row of a value (the dimensions past the batch).
fn row_width(value: &pb::ValueInfoProto) -> anyhow::Result<usize> {
    use pb::tensor_shape_proto::dimension::Value;
    use pb::type_proto::Value as Type;
    let Some(Type::TensorType(tensor)) = value.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        bail!("input {}: not a tensor", value.name);
    };
    let dims = tensor.shape.as_ref().map(|s| &s.dim[..]).unwrap_or(&[]);
    ensure!(
        dims.len() >= 2,
        "input {}: expected [batch, ...]",
        value.name
    );
    dims[1..].iter().try_fold(1usize, |n, d| match d.value {
        Some(Value::DimValue(v)) if v > 0 => n
            .checked_mul(v as usize)
            .context("input dimensions overflow"),
        _ => bail!(
            "input {}: a symbolic or missing dimension past the batch",
            value.name
        ),
    })
}

fn float_attribute(node: &pb::NodeProto, name: &str) -> Option<f32> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.f)
}

fn int_attribute(node: &pb::NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

/// A float32 tensor's values: inline (`float_data` or `raw_data`) or in an
/// external data file under `dir`.
fn constant(tensor: &pb::TensorProto, dir: &Path) -> anyhow::Result<Constant> {
    let name = &tensor.name;
    let dims = tensor
        .dims
        .iter()
        .map(|&d| usize::try_from(d).with_context(|| format!("{name}: bad dimension {d}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let count = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .with_context(|| format!("{name}: too many values"))?;
    ensure!(
        tensor.data_type == pb::tensor_proto::DataType::Float as i32,
        "{name}: data type {} (only float32 tensors are read)",
        tensor.data_type
    );
    let external = tensor.data_location == Some(pb::tensor_proto::DataLocation::External as i32);
    let raw = if external {
        external_bytes(tensor, dir, count * 4)?
    } else if !tensor.raw_data.is_empty() {
        tensor.raw_data.clone()
    } else {
        ensure!(
            tensor.float_data.len() == count,
            "{name}: {} values for dimensions {dims:?}",
            tensor.float_data.len()
        );
        tensor
            .float_data
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    };
    ensure!(
        raw.len() == count * 4,
        "{name}: {} bytes for dimensions {dims:?}",
        raw.len()
    );
    let values: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    ensure!(
        values.iter().all(|v| v.is_finite()),
        "{name}: non-finite values"
    );
    Ok(Constant { dims, values })
}

/// The `length` bytes of an external tensor (`location`, `offset`), read
/// from a file beside the model, never outside its directory.
fn external_bytes(tensor: &pb::TensorProto, dir: &Path, length: usize) -> anyhow::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let key = |k: &str| {
        tensor
            .external_data
            .iter()
            .find(|e| e.key == k)
            .map(|e| e.value.as_str())
    };
    let location = key("location").context("external data without a location")?;
    let relative = Path::new(location);
    ensure!(
        relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_))),
        "external data location {location:?} leaves the model's directory"
    );
    let offset: u64 = key("offset").map_or(Ok(0), str::parse)?;
    if let Some(stated) = key("length") {
        ensure!(
            stated.parse::<usize>()? == length,
            "external data of {stated} bytes for {length}"
        );
    }
    let path = dir.join(relative);
    let mut file =
        std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.take(length as u64).read_to_end(&mut bytes)?;
    ensure!(
        bytes.len() == length,
        "{}: {} bytes at offset {offset}, expected {length}",
        path.display(),
        bytes.len()
    );
    Ok(bytes)
}

/// The network read so far along the chain.
struct Chain {
    /// Name of the value the next node must read.
    current: String,
    /// Its row width.
    width: usize,
    layers: Vec<DenseLayer>,
    /// Whether the last layer still takes a bias, batch norm or activation.
    open: bool,
}

impl Chain {
    fn push(&mut self, inputs: usize, outputs: usize, weight: Vec<f32>, bias: Vec<f32>) {
        self.layers.push(DenseLayer {
            inputs,
            outputs,
            weight,
            bias,
            activation: Activation::Identity,
        });
        self.width = outputs;
        self.open = true;
    }

    fn open_layer(&mut self) -> anyhow::Result<&mut DenseLayer> {
        ensure!(
            self.open,
            "it does not follow a layer that has no activation yet"
        );
        self.layers.last_mut().context("no layer before it")
    }

    /// `Gemm`: `alpha x B (or B^T) + beta C`.
    fn gemm(
        &mut self,
        node: &pb::NodeProto,
        w: &Constant,
        c: Option<&Constant>,
    ) -> anyhow::Result<()> {
        ensure!(
            int_attribute(node, "transA").unwrap_or(0) == 0,
            "transA = 1 is not supported"
        );
        let alpha = float_attribute(node, "alpha").unwrap_or(1.0);
        let beta = float_attribute(node, "beta").unwrap_or(1.0);
        let trans_b = int_attribute(node, "transB").unwrap_or(0) != 0;
        let outputs = self.push_weights(w, trans_b, alpha)?;
        if let Some(c) = c {
            ensure!(
                c.values.len() == outputs || c.values.len() == 1,
                "a bias of shape {:?} for {outputs} outputs",
                c.dims
            );
            let layer = self.open_layer()?;
            for (o, bias) in layer.bias.iter_mut().enumerate() {
                *bias = beta * c.values[if c.values.len() == 1 { 0 } else { o }];
            }
        }
        Ok(())
    }

    /// `MatMul`: `x B`, its bias from an `Add` after it.
    fn matmul(&mut self, w: &Constant) -> anyhow::Result<()> {
        self.push_weights(w, false, 1.0).map(|_| ())
    }

    /// A layer of weights `alpha B` (`B` inputs x outputs, or outputs x
    /// inputs when `transposed`) and zero bias; returns its outputs.
    fn push_weights(
        &mut self,
        w: &Constant,
        transposed: bool,
        alpha: f32,
    ) -> anyhow::Result<usize> {
        let [rows, cols] = w.dims[..] else {
            bail!("weights of shape {:?}", w.dims);
        };
        let (inputs, outputs) = if transposed {
            (cols, rows)
        } else {
            (rows, cols)
        };
        ensure!(
            inputs == self.width,
            "weights of shape {:?} after a row of {}",
            w.dims,
            self.width
        );
        let at = |o: usize, i: usize| {
            if transposed {
                o * inputs + i
            } else {
                i * outputs + o
            }
        };
        let weight = (0..outputs)
            .flat_map(|o| (0..inputs).map(move |i| alpha * w.values[at(o, i)]))
            .collect();
        self.push(inputs, outputs, weight, vec![0.0; outputs]);
        Ok(outputs)
    }

    fn add(&mut self, b: &Constant) -> anyhow::Result<()> {
        let layer = self.open_layer()?;
        ensure!(
            layer.activation == Activation::Identity && b.values.len() == layer.outputs,
            "an Add of shape {:?} after a layer of {} outputs",
            b.dims,
            layer.outputs
        );
        for (bias, add) in layer.bias.iter_mut().zip(&b.values) {
            *bias += add;
        }
        Ok(())
    }

    /// Folds `y = (x - mean) / sqrt(var + epsilon) * scale + b` into the
    /// layer before it (in f64, rounded once).
    fn batch_norm(&mut self, node: &pb::NodeProto, p: &[&Constant]) -> anyhow::Result<()> {
        let epsilon = f64::from(float_attribute(node, "epsilon").unwrap_or(1e-5));
        let layer = self.open_layer()?;
        ensure!(
            layer.activation == Activation::Identity,
            "a BatchNormalization after an activation"
        );
        let [scale, b, mean, var] = p else {
            bail!("expected scale, bias, mean and variance");
        };
        ensure!(
            [scale, b, mean, var]
                .iter()
                .all(|c| c.values.len() == layer.outputs),
            "parameters not of the layer's {} outputs",
            layer.outputs
        );
        let inputs = layer.inputs;
        for o in 0..layer.outputs {
            let var = f64::from(var.values[o]) + epsilon;
            ensure!(var > 0.0, "a non-positive variance");
            let s = f64::from(scale.values[o]) / var.sqrt();
            for w in &mut layer.weight[o * inputs..(o + 1) * inputs] {
                *w = (f64::from(*w) * s) as f32;
            }
            let bias =
                (f64::from(layer.bias[o]) - f64::from(mean.values[o])) * s + f64::from(b.values[o]);
            layer.bias[o] = bias as f32;
        }
        Ok(())
    }

    fn activation(&mut self, activation: Activation) -> anyhow::Result<()> {
        self.open_layer()?.activation = activation;
        self.open = false;
        Ok(())
    }
}
