//! `tinygen import` of ONNX files written by PyTorch's own exporter (the
//! `onnx` feature; `tests/fixtures/onnx`, made once by
//! `scripts/onnx_import_fixtures.py`, sha256 in its README): the runtime,
//! running the imported file, gives onnxruntime's outputs on 256 inputs to
//! 1e-5 (BatchNormalization folded, external weights read, MatMul + Add and
//! Gemm alike); unsupported nodes and damaged files are clear errors.
#![cfg(feature = "onnx")]

use std::path::PathBuf;

use tinygen::host::{AlignedBytes, run_rows};
use tinygen::import::{Imported, onnx};
use tinygen_runtime::AnyModel;
use tinygen_runtime::network::Role;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/onnx")
}

fn bits(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| f32::from_bits(b.as_u64().unwrap() as u32))
        .collect()
}

#[test]
fn pytorch_exports_run_as_onnxruntime_runs_them() {
    for (name, widths) in [
        ("torch_gemm_bn_leaky_sigmoid", (6, 4)),
        ("torch_dynamo_relu_tanh", (5, 3)),
        ("torch_flatten_matmul_add", (6, 2)),
    ] {
        let net = onnx::import(&dir().join(format!("{name}.onnx"))).unwrap();
        assert!(matches!(net, Imported::F32(_)), "{name}");
        assert_eq!(net.widths(), widths, "{name}");
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir().join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        let (inputs, expected) = (bits(&json["inputs"]), bits(&json["outputs"]));
        assert_eq!(inputs.len(), 256 * widths.0, "{name}");
        let file = net.encode(Role::Decoder).unwrap();
        let bytes = AlignedBytes::new(&file);
        let model = AnyModel::from_bytes(bytes.as_bytes()).unwrap();
        let got = run_rows(&model, &inputs).unwrap();
        assert_eq!(got.len(), expected.len(), "{name}");
        let worst = got
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst <= 1e-5, "{name}: max abs difference {worst}");
    }
}

#[test]
fn unsupported_nodes_and_damaged_files_are_errors() {
    let error = format!(
        "{:#}",
        onnx::import(&dir().join("unsupported_softmax.onnx")).unwrap_err()
    );
    assert!(error.contains("node 1 (Softmax)"), "{error}");
    // The dynamo export keeps its weights in a file beside the model.
    let bytes = std::fs::read(dir().join("torch_dynamo_relu_tanh.onnx")).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let error = format!(
        "{:#}",
        onnx::import_bytes(&bytes, elsewhere.path()).unwrap_err()
    );
    assert!(error.contains("cannot open"), "{error}");
    let bytes = std::fs::read(dir().join("torch_gemm_bn_leaky_sigmoid.onnx")).unwrap();
    for len in (0..bytes.len()).step_by(5) {
        assert!(
            onnx::import_bytes(&bytes[..len], &dir()).is_err(),
            "cut at {len}"
        );
    }
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x21;
        if let Ok(net) = onnx::import_bytes(&bad, &dir()) {
            let _ = net.encode(Role::Decoder);
        }
    }
}

#[test]
fn the_cli_quantizes_an_imported_network_on_calibration_rows() {
    let out = tempfile::tempdir().unwrap();
    let (name_int8, name) = ("torch_dynamo_relu_tanh", "torch_gemm_bn_leaky_sigmoid");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir().join(format!("{name_int8}.json"))).unwrap(),
    )
    .unwrap();
    let inputs = bits(&json["inputs"]);
    let csv: String = inputs
        .chunks(5)
        .map(|r| {
            r.iter()
                .map(|v| format!("{v:e}"))
                .collect::<Vec<_>>()
                .join(",")
                + "\n"
        })
        .collect();
    let calibration = out.path().join("calibration.csv");
    std::fs::write(&calibration, csv).unwrap();
    let tgm = out.path().join("int8.tgm");
    let run = |model: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tinygen"))
            .arg("import")
            .arg(dir().join(format!("{model}.onnx")))
            .args(["--quantize", "int8", "--calibration"])
            .arg(&calibration)
            .arg("--out")
            .arg(&tgm)
            .output()
            .unwrap()
    };
    let ok = run(name_int8);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let file = std::fs::read(&tgm).unwrap();
    let bytes = AlignedBytes::new(&file);
    let model = AnyModel::from_bytes(bytes.as_bytes()).unwrap();
    assert_eq!(model.header().kind, tinygen_runtime::ModelKind::DecoderInt8);
    let got = run_rows(&model, &inputs).unwrap();
    let expected = bits(&json["outputs"]);
    let mean = got
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .sum::<f32>()
        / got.len() as f32;
    assert!(
        mean < 0.02,
        "int8 against onnxruntime: mean abs error {mean}"
    );
    // A 6-wide network refuses 5-wide calibration rows.
    let refused = run(name);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("calibration rows"),
        "{stderr}"
    );
}

#[test]
fn non_finite_weights_are_refused() {
    use prost::Message;
    let bytes = std::fs::read(dir().join("torch_gemm_bn_leaky_sigmoid.onnx")).unwrap();
    for as_float_data in [false, true] {
        let mut model = tract_onnx::pb::ModelProto::decode(&bytes[..]).unwrap();
        let graph = model.graph.as_mut().unwrap();
        let tensor = &mut graph.initializer[0];
        let count = tensor.dims.iter().product::<i64>() as usize;
        let mut values = vec![0.5f32; count];
        values[count / 2] = f32::NAN;
        if as_float_data {
            tensor.raw_data.clear();
            tensor.float_data = values;
        } else {
            tensor.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        }
        let error = format!(
            "{:#}",
            onnx::import_bytes(&model.encode_to_vec(), &dir()).unwrap_err()
        );
        assert!(error.contains("non-finite"), "{error}");
    }
}
