//! ONNX export (the `onnx` feature): every activation and output layer runs
//! in tract-onnx like candle and like the runtime's `.tgm`; the graph states
//! its IR and opset and uses the standard operators; the CLI writes files
//! that onnxruntime (a client no one here wrote) runs to the same values;
//! the committed example decoder's ONNX file agrees with its `.tgm`.
#![cfg(feature = "onnx")]

use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message;
use tinygen::host::{AlignedBytes, run_rows};
use tinygen::nn::config::{NetworkConfig, Objective, Reconstruction};
use tinygen::nn::export::{Part, check_close, dense_layers, export_tgm, reference_outputs};
use tinygen::nn::network::Network;
use tinygen::nn::onnx::{IR_VERSION, OPSET_VERSION, export_onnx, run_tract};
use tinygen_runtime::{Activation, AnyModel, Network as RtNetwork};
use tract_onnx::pb;

mod common;
use common::{ok, tinygen};

/// The operator types of the graph's nodes, in order.
fn op_types(file: &[u8]) -> Vec<String> {
    let model = pb::ModelProto::decode(file).expect("a protobuf ModelProto");
    assert_eq!(model.ir_version, IR_VERSION);
    assert_eq!(model.opset_import.len(), 1);
    assert_eq!(model.opset_import[0].domain, "");
    assert_eq!(model.opset_import[0].version, OPSET_VERSION);
    let graph = model.graph.expect("a graph");
    graph.node.iter().map(|n| n.op_type.clone()).collect()
}

#[test]
fn every_activation_and_output_layer_runs_in_tract_like_candle_and_the_runtime() {
    let activations = [
        (Activation::Relu, "Relu"),
        (Activation::LeakyRelu, "LeakyRelu"),
        (Activation::Tanh, "Tanh"),
        (Activation::Sigmoid, "Sigmoid"),
    ];
    for (seed, (activation, op)) in activations.into_iter().enumerate() {
        for reconstruction in [Reconstruction::Bce, Reconstruction::Mse] {
            for hidden in [vec![24], vec![16, 8]] {
                let config = NetworkConfig {
                    activation,
                    reconstruction,
                    ..NetworkConfig::new(Objective::VAE, 12, hidden.clone(), 3)
                };
                let net = Network::new(config, seed as u64).unwrap();
                let data: Vec<f32> = (0..40 * 12).map(|i| ((i * 7) % 11) as f32 / 10.0).collect();
                for part in [Part::Decoder, Part::Encoder] {
                    let what = format!("{activation:?} {reconstruction:?} {hidden:?} {part:?}");
                    let layers = dense_layers(&net, part).unwrap();
                    let file = export_onnx(&layers, part, "test").unwrap();
                    // Gemm per layer, the hidden activation after all but
                    // the last, the output activation after the last.
                    let mut expected_ops = Vec::new();
                    for _ in &hidden {
                        expected_ops.extend(["Gemm", op]);
                    }
                    expected_ops.push("Gemm");
                    if part == Part::Decoder && reconstruction == Reconstruction::Bce {
                        expected_ops.push("Sigmoid");
                    }
                    assert_eq!(op_types(&file), expected_ops, "{what}");

                    let (inputs, candle) = reference_outputs(&net, part, &data).unwrap();
                    let tract = run_tract(&file, &inputs, layers[0].inputs).unwrap();
                    check_close(&what, &tract, &candle, 1e-5).unwrap();
                    let tgm = AlignedBytes::new(&export_tgm(&net, part, None).unwrap());
                    let rt = RtNetwork::from_bytes(tgm.as_bytes()).unwrap();
                    let runtime = run_rows(&AnyModel::Network(rt), &inputs).unwrap();
                    check_close(&what, &tract, &runtime, 1e-5).unwrap();
                }
            }
        }
    }
}

#[test]
fn a_damaged_onnx_file_is_an_error_not_a_panic() {
    let config = NetworkConfig::new(Objective::AE, 8, vec![6], 2);
    let net = Network::new(config, 0).unwrap();
    let layers = dense_layers(&net, Part::Decoder).unwrap();
    let file = export_onnx(&layers, Part::Decoder, "").unwrap();
    let z = [0.5f32, -0.5];
    assert_eq!(run_tract(&file, &z, 2).unwrap().len(), 8);
    for cut in [0, 1, file.len() / 3, file.len() - 1] {
        assert!(run_tract(&file[..cut], &z, 2).is_err(), "cut at {cut}");
    }
    let err = run_tract(&file, &z, 3).unwrap_err().to_string();
    assert!(err.contains("rows of 3"), "{err}");
}

/// onnxruntime through `scripts/onnxruntime_check.py`, when
/// `TINYGEN_ONNXRUNTIME_PYTHON` names a Python with onnx and onnxruntime
/// (CI installs them); None (and a note) otherwise.
fn onnxruntime(model: &Path, inputs: &[f32], width: usize, dir: &Path) -> Option<Vec<f32>> {
    let Ok(python) = std::env::var("TINYGEN_ONNXRUNTIME_PYTHON") else {
        eprintln!(
            "onnxruntime check skipped: set TINYGEN_ONNXRUNTIME_PYTHON to a Python with \
             `pip install onnx onnxruntime numpy` (CI does)"
        );
        return None;
    };
    let name = model.file_stem().unwrap().to_string_lossy();
    let (x, y) = (
        dir.join(format!("{name}-in.csv")),
        dir.join(format!("{name}-out.csv")),
    );
    let csv: String = inputs
        .chunks(width)
        .map(|r| {
            let row: Vec<String> = r.iter().map(|v| format!("{v:e}")).collect();
            row.join(",") + "\n"
        })
        .collect();
    std::fs::write(&x, csv).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/onnxruntime_check.py");
    let out = Command::new(&python)
        .args([&script, model, &x, &y])
        .output()
        .expect("run the onnxruntime check");
    assert!(
        out.status.success(),
        "onnxruntime check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&out.stdout));
    Some(
        std::fs::read_to_string(&y)
            .unwrap()
            .split([',', '\n'])
            .filter(|s| !s.is_empty())
            .map(|v| v.parse().unwrap())
            .collect(),
    )
}

#[test]
fn exported_files_run_in_onnxruntime_like_candle() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("vae");
    let r = run.to_str().unwrap();
    ok(&tinygen(&[
        "fit",
        "vae",
        "--out",
        r,
        "--hidden",
        "32",
        "--latent",
        "4",
        "--activation",
        "leaky-relu",
        "--epochs",
        "2",
        "--log",
        "quiet",
        "--no-plots",
    ]));
    let (config, net, _) = tinygen::nn::run::load_run(&run).unwrap();
    let digits = tinygen::data::images::load_samples(
        &config.data,
        None,
        tinygen::data::images::Split::Test,
        None,
    )
    .unwrap();
    for (part, name) in [(Part::Decoder, "dec.onnx"), (Part::Encoder, "enc.onnx")] {
        let file = dir.path().join(name);
        let part_name = format!("{part:?}").to_lowercase();
        let report = ok(&tinygen(&[
            "export",
            r,
            "--part",
            &part_name,
            "--format",
            "onnx",
            "--out",
            file.to_str().unwrap(),
        ]));
        assert!(report.contains("IR 8, opset 13"), "{report}");
        assert!(report.contains("tract-onnx matches candle"), "{report}");
        let (inputs, candle) = reference_outputs(&net, part, &digits.x).unwrap();
        let width = inputs.len() / 64;
        let bytes = std::fs::read(&file).unwrap();
        check_close(
            name,
            &run_tract(&bytes, &inputs, width).unwrap(),
            &candle,
            1e-5,
        )
        .unwrap();
        if let Some(ort) = onnxruntime(&file, &inputs, width, dir.path()) {
            check_close(&format!("onnxruntime on {name}"), &ort, &candle, 1e-5).unwrap();
        }
    }
}

fn read_rows(path: &Path, header: bool) -> Vec<f32> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(usize::from(header))
        .flat_map(|l| l.split(',').map(|v| v.parse::<f32>().unwrap()))
        .collect()
}

#[test]
fn the_example_decoders_onnx_file_matches_its_runtime_file() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/mnist-vae-decoder");
    let latents = read_rows(&dir.join("inputs.csv"), false);
    // The runtime's outputs for these latents, stored with the model.
    let runtime = read_rows(&dir.join("expected.csv"), true);
    let onnx = dir.join("model.onnx");
    let tract = run_tract(&std::fs::read(&onnx).unwrap(), &latents, 16).unwrap();
    check_close("tract on model.onnx", &tract, &runtime, 1e-5).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    if let Some(ort) = onnxruntime(&onnx, &latents, 16, tmp.path()) {
        check_close("onnxruntime on model.onnx", &ort, &runtime, 1e-5).unwrap();
    }
}
