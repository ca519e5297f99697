//! `tinygen import` on files TensorFlow's own TFLite converter wrote
//! (`tests/fixtures/tflite`, made once by `scripts/tflite_import_fixtures.py`,
//! sha256 in its README): the runtime, running the imported file, gives
//! LiteRT's outputs (reference kernels) on 256 inputs: int8 bit for bit,
//! float within 1e-5.

use std::path::PathBuf;

use serde_json::Value;
use tinygen::host::{AlignedBytes, run_rows};
use tinygen::import::{Imported, tflite};
use tinygen_runtime::network::Role;
use tinygen_runtime::qnetwork::{QNetwork, QScratch};
use tinygen_runtime::{AnyModel, ModelKind};

fn fixture(name: &str) -> (Vec<u8>, Value) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/tflite");
    let flat = std::fs::read(dir.join(format!("{name}.tflite"))).unwrap();
    let json = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
    (flat, serde_json::from_str(&json).unwrap())
}

fn rows<T>(v: &Value, each: impl Fn(&Value) -> T) -> Vec<T> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(&each).collect::<Vec<_>>())
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    rows(v, |x| x.as_f64().unwrap() as f32)
}

fn imported(name: &str) -> (Imported, Vec<u8>, Value) {
    let (flat, json) = fixture(name);
    let net = tflite::import(&flat).unwrap();
    let file = net.encode(Role::Decoder).unwrap();
    (net, file, json)
}

#[test]
fn float_networks_give_litert_s_outputs() {
    for (name, widths) in [
        ("float_relu_sigmoid", (8, 4)),
        ("float_tanh_linear", (6, 3)),
    ] {
        let (net, file, json) = imported(name);
        assert!(matches!(net, Imported::F32(_)), "{name}");
        assert_eq!(net.widths(), widths, "{name}");
        let inputs = floats(&json["inputs"]);
        let expected = floats(&json["outputs"]);
        assert_eq!(inputs.len(), 256 * widths.0);
        let bytes = AlignedBytes::new(&file);
        let model = AnyModel::from_bytes(bytes.as_bytes()).unwrap();
        assert_eq!(model.header().kind, ModelKind::Decoder);
        let got = run_rows(&model, &inputs).unwrap();
        let worst = got
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert_eq!(got.len(), expected.len());
        assert!(worst <= 1e-5, "{name}: max abs difference {worst}");
    }
}

#[test]
fn int8_networks_give_litert_s_integers() {
    // Float in and out: QUANTIZE, the int8 layers, DEQUANTIZE.
    let (net, file, json) = imported("int8_relu_sigmoid");
    let Imported::Int8(ref int8) = net else {
        panic!("not int8")
    };
    assert!(int8.float_input && int8.float_output);
    let bytes = AlignedBytes::new(&file);
    let model = AnyModel::from_bytes(bytes.as_bytes()).unwrap();
    assert_eq!(model.header().kind, ModelKind::DecoderInt8);
    let got = run_rows(&model, &floats(&json["inputs"])).unwrap();
    let expected = floats(&json["outputs"]);
    assert_eq!(got.len(), 256 * 4);
    let differ = got
        .iter()
        .zip(&expected)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    assert_eq!(differ, 0, "outputs differing from LiteRT's");

    // Int8 in and out: the integers themselves.
    let (net, file, json) = imported("int8_io_tanh_relu");
    let Imported::Int8(ref int8) = net else {
        panic!("not int8")
    };
    assert!(!int8.float_input && !int8.float_output);
    let bytes = AlignedBytes::new(&file);
    let q = QNetwork::from_bytes(bytes.as_bytes()).unwrap();
    let inputs: Vec<i8> = rows(&json["inputs"], |x| x.as_i64().unwrap() as i8);
    let expected: Vec<i8> = rows(&json["outputs"], |x| x.as_i64().unwrap() as i8);
    let mut scratch = QScratch::<64>::new();
    let mut got = vec![0i8; expected.len()];
    for (x, y) in inputs.chunks_exact(6).zip(got.chunks_exact_mut(3)) {
        q.forward_i8(x, y, &mut scratch).unwrap();
    }
    assert_eq!(got.len(), 256 * 3);
    assert_eq!(got, expected);
}

#[test]
fn an_unsupported_operator_is_named_with_its_index() {
    let (flat, _) = fixture("unsupported_softmax");
    let error = format!("{:#}", tflite::import(&flat).unwrap_err());
    assert!(error.contains("operator 1 (SOFTMAX)"), "{error}");
}

#[test]
fn damaged_files_are_errors_not_panics() {
    let (flat, _) = fixture("int8_relu_sigmoid");
    for len in (0..flat.len()).step_by(7) {
        assert!(tflite::import(&flat[..len]).is_err(), "truncated to {len}");
    }
    // Every byte changed in turn: an error or a network that still encodes.
    for i in 0..flat.len() {
        let mut bad = flat.clone();
        bad[i] ^= 0x5a;
        if let Ok(net) = tflite::import(&bad) {
            let _ = net.encode(Role::Decoder);
        }
    }
}

mod properties {
    use proptest::prelude::*;
    use tinygen::import::{Imported, tflite, tflite_writer};
    use tinygen::nn::export::DenseLayer;
    use tinygen_runtime::network::Role;
    use tinygen_runtime::{Activation, AnyModel};

    fn activation() -> impl Strategy<Value = Activation> {
        prop_oneof![
            Just(Activation::Identity),
            Just(Activation::Relu),
            Just(Activation::Sigmoid),
            Just(Activation::Tanh),
        ]
    }

    /// Float networks of 1 to 4 layers, widths 1 to 12.
    fn network() -> impl Strategy<Value = Vec<DenseLayer>> {
        prop::collection::vec(1usize..=12, 2..=5).prop_flat_map(|widths| {
            let layers: Vec<_> = widths
                .windows(2)
                .map(|w| {
                    let (inputs, outputs) = (w[0], w[1]);
                    (
                        prop::collection::vec(-4.0f32..4.0, inputs * outputs),
                        prop::collection::vec(-1.0f32..1.0, outputs),
                        activation(),
                    )
                        .prop_map(move |(weight, bias, activation)| {
                            DenseLayer {
                                inputs,
                                outputs,
                                weight,
                                bias,
                                activation,
                            }
                        })
                })
                .collect();
            layers
        })
    }

    fn fixture() -> Vec<u8> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tflite");
        std::fs::read(dir.join("int8_relu_sigmoid.tflite")).unwrap()
    }

    proptest! {
        /// A written network reads back to itself, and as a model file.
        #[test]
        fn written_networks_read_back(layers in network()) {
            let net = Imported::F32(layers);
            let flat = tflite_writer::write(&net).unwrap();
            let read = tflite::import(&flat).unwrap();
            prop_assert_eq!(&read, &net);
            let file = read.encode(Role::Encoder).unwrap();
            let bytes = tinygen::host::AlignedBytes::new(&file);
            prop_assert!(AnyModel::from_bytes(bytes.as_bytes()).is_ok());
        }

        /// A converter's file with bytes overwritten or cut: an error or a
        /// network that encodes, never a panic.
        #[test]
        fn damaged_files_never_panic(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut flat = fixture();
            for (at, byte) in edits {
                let i = at.index(flat.len());
                flat[i] = byte;
            }
            let len = cut.index(flat.len() + 1);
            if let Ok(net) = tflite::import(&flat[..len])
                && let Ok(file) = net.encode(Role::Decoder)
            {
                let bytes = tinygen::host::AlignedBytes::new(&file);
                prop_assert!(AnyModel::from_bytes(bytes.as_bytes()).is_ok());
            }
        }
    }
}
