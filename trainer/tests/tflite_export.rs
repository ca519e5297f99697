//! `--format tflite`: networks written as TFLite flatbuffers read back to
//! the same network, and run in LiteRT (reference kernels) as the runtime
//! runs the imported file: int8 bit for bit, float to 1e-5. LiteRT runs
//! when `TINYGEN_LITERT_PYTHON` names a Python with `ai-edge-litert` (CI
//! installs it); the round trip runs everywhere.

use std::path::Path;
use std::process::Command;

use tinygen::host::{AlignedBytes, run_rows};
use tinygen::import::{Imported, Int8Network, tflite, tflite_writer};
use tinygen::nn::export::DenseLayer;
use tinygen::nn::quantize::{QuantOptions, WeightScales, quantize_with};
use tinygen_runtime::network::Role;
use tinygen_runtime::qnetwork::FinalActivation;
use tinygen_runtime::{Activation, AnyModel};

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| {
            let h = (i ^ seed.rotate_left(13)).wrapping_mul(2654435761) ^ seed;
            (h % 20000) as f32 / 10000.0 - 1.0
        })
        .collect()
}

fn layer(inputs: usize, outputs: usize, activation: Activation, seed: u32) -> DenseLayer {
    DenseLayer {
        inputs,
        outputs,
        weight: values(inputs * outputs, seed)
            .iter()
            .map(|w| 2.0 * w / (inputs as f32).sqrt())
            .collect(),
        bias: values(outputs, seed + 99).iter().map(|b| 0.3 * b).collect(),
        activation,
    }
}

fn networks() -> Vec<(&'static str, Vec<DenseLayer>)> {
    vec![
        (
            "relu_sigmoid",
            vec![
                layer(7, 24, Activation::Relu, 1),
                layer(24, 10, Activation::Sigmoid, 2),
            ],
        ),
        (
            "tanh_relu_linear",
            vec![
                layer(5, 12, Activation::Tanh, 3),
                layer(12, 9, Activation::Relu, 4),
                layer(9, 3, Activation::Identity, 5),
            ],
        ),
    ]
}

fn variants(layers: &[DenseLayer], rows: &[f32]) -> Vec<(String, Imported)> {
    let mut out = vec![("f32".to_string(), Imported::F32(layers.to_vec()))];
    let last_saturates = matches!(
        layers.last().map(|l| l.activation),
        Some(Activation::Sigmoid | Activation::Tanh)
    );
    for scales in [WeightScales::PerChannel, WeightScales::PerTensor] {
        for final_activation in [FinalActivation::Int8, FinalActivation::F32] {
            if final_activation == FinalActivation::F32 && !last_saturates {
                continue;
            }
            let options = QuantOptions {
                scales,
                final_activation,
            };
            let q = quantize_with(layers, rows, options).unwrap();
            out.push((
                format!("int8_{scales:?}_{final_activation:?}"),
                Imported::Int8(Int8Network::from(&q)),
            ));
        }
    }
    out
}

#[test]
fn written_files_read_back_to_the_same_network() {
    for (name, layers) in networks() {
        let rows = values(layers[0].inputs * 200, 7)
            .iter()
            .map(|v| 3.0 * v)
            .collect::<Vec<_>>();
        for (variant, net) in variants(&layers, &rows) {
            let flat = tflite_writer::write(&net).unwrap();
            assert!(tflite::is_tflite(&flat));
            let read = tflite::import(&flat).unwrap();
            assert_eq!(read, net, "{name} {variant}");
            // The same int8 network with int8 input and output.
            if let Imported::Int8(int8) = &net
                && int8.network.final_activation == FinalActivation::Int8
            {
                let io = Imported::Int8(Int8Network {
                    float_input: false,
                    float_output: false,
                    ..int8.clone()
                });
                let read = tflite::import(&tflite_writer::write(&io).unwrap()).unwrap();
                assert_eq!(read, io, "{name} {variant} with int8 input and output");
            }
        }
    }
    // A leaky ReLU has no TFLite layer here.
    let leaky = Imported::F32(vec![layer(3, 2, Activation::LeakyRelu, 9)]);
    assert!(tflite_writer::write(&leaky).is_err());
}

fn litert(python: &str, model: &Path, inputs: &[f32], width: usize, dir: &Path) -> Vec<f32> {
    let stem = model.file_stem().unwrap().to_string_lossy();
    let (x, y) = (
        dir.join(format!("{stem}-in.json")),
        dir.join(format!("{stem}-out.json")),
    );
    let bits: Vec<u32> = inputs.iter().map(|v| v.to_bits()).collect();
    std::fs::write(
        &x,
        serde_json::json!({"width": width, "bits": bits}).to_string(),
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/litert_check.py");
    let out = Command::new(python)
        .arg(&script)
        .args([model, &x, &y])
        .output()
        .expect("run the LiteRT check");
    assert!(
        out.status.success(),
        "LiteRT check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&out.stdout));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&y).unwrap()).unwrap();
    doc["bits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| f32::from_bits(b.as_u64().unwrap() as u32))
        .collect()
}

#[test]
fn litert_runs_written_files_as_the_runtime_runs_them() {
    let Ok(python) = std::env::var("TINYGEN_LITERT_PYTHON") else {
        eprintln!(
            "LiteRT check skipped: set TINYGEN_LITERT_PYTHON to a Python with \
             `pip install ai-edge-litert numpy` (CI does)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, layers) in networks() {
        let width = layers[0].inputs;
        let calibration: Vec<f32> = values(width * 200, 7).iter().map(|v| 3.0 * v).collect();
        // 256 inputs: within the calibrated range and beyond it.
        let inputs: Vec<f32> = values(width * 256, 11).iter().map(|v| 4.0 * v).collect();
        for (variant, net) in variants(&layers, &calibration) {
            let flat = tflite_writer::write(&net).unwrap();
            let path = dir.path().join(format!("{name}_{variant}.tflite"));
            std::fs::write(&path, &flat).unwrap();
            let expected = litert(&python, &path, &inputs, width, dir.path());
            let file = tflite::import(&flat)
                .unwrap()
                .encode(Role::Decoder)
                .unwrap();
            let bytes = AlignedBytes::new(&file);
            let model = AnyModel::from_bytes(bytes.as_bytes()).unwrap();
            let got = run_rows(&model, &inputs).unwrap();
            assert_eq!(got.len(), expected.len(), "{name} {variant}");
            let worst = got
                .iter()
                .zip(&expected)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            let bit_exact = matches!(&net, Imported::Int8(n) if n.network.final_activation == FinalActivation::Int8);
            if bit_exact {
                let differ = got
                    .iter()
                    .zip(&expected)
                    .filter(|(a, b)| a.to_bits() != b.to_bits())
                    .count();
                assert_eq!(
                    differ, 0,
                    "{name} {variant}: outputs differing from LiteRT's"
                );
            } else {
                assert!(
                    worst <= 1e-5,
                    "{name} {variant}: max abs difference {worst}"
                );
            }
        }
    }
}
