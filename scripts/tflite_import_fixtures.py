#!/usr/bin/env python3
"""TFLite files written by TensorFlow's own converter, for `tinygen import`.

    python -m venv .venv && .venv/bin/pip install tensorflow-cpu ai-edge-litert
    .venv/bin/python scripts/tflite_import_fixtures.py [--out tests/fixtures/tflite]

Writes, per case, `NAME.tflite` (the converter's output, as it wrote it)
and `NAME.json`: 256 input rows (float, or int8 for int8-input models) and
the LiteRT interpreter's outputs on them with the reference kernels
(OpResolverType.BUILTIN_REF, no XNNPACK), plus the op sequence the
converter chose. Small Keras Dense stacks with seeded random weights:

- float_relu_sigmoid: 8 -> 16 relu -> 4 sigmoid, float32 throughout;
- float_tanh_linear: 6 -> 12 tanh -> 3, float32;
- int8_relu_sigmoid: the first, full-integer int8 (float input and output:
  QUANTIZE and DEQUANTIZE at the edges), calibrated on 128 rows;
- int8_io_tanh_relu: 6 -> 12 tanh -> 10 relu -> 3, int8 input and output;
- unsupported_softmax: 4 -> 3 softmax, float (import must name SOFTMAX).

Ends with the tool versions and each file's sha256 (recorded in
tests/fixtures/tflite/README.md). CI does not install TensorFlow: the
files and outputs are committed.
"""
import argparse
import hashlib
import json
import math
import pathlib

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType

SEED = 20261204


def keras_mlp(widths, activations, rng):
    layers = [tf.keras.Input((widths[0],))]
    for n_out, act in zip(widths[1:], activations):
        layers.append(tf.keras.layers.Dense(n_out, activation=act))
    model = tf.keras.Sequential(layers)
    for dense, n_in, n_out in zip(model.layers, widths, widths[1:]):
        w = rng.normal(0.0, 1.5 / math.sqrt(n_in), (n_in, n_out)).astype(np.float32)
        b = rng.normal(0.0, 0.5, (n_out,)).astype(np.float32)
        dense.set_weights([w, b])
    return model


def convert(model, calibration=None, int8_io=False):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]

        def representative():
            for row in calibration:
                yield [row[None, :].astype(np.float32)]

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    return converter.convert()


def run(flat, rows):
    interp = Interpreter(
        model_content=flat, experimental_op_resolver_type=OpResolverType.BUILTIN_REF
    )
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    ops = [o["op_name"] for o in interp._get_ops_details()]
    outputs = []
    for row in rows:
        interp.set_tensor(inp["index"], row[None, :].astype(inp["dtype"]))
        interp.invoke()
        outputs.append(interp.get_tensor(out["index"])[0])
    return ops, np.array(outputs), inp, out


def case(out_dir, name, flat, rows):
    ops, outputs, inp, out = run(flat, rows)
    (out_dir / f"{name}.tflite").write_bytes(flat)
    as_list = (lambda a: a.astype(int).tolist()) if rows.dtype == np.int8 else (
        lambda a: [[float(v) for v in r] for r in a]
    )
    out_list = (
        outputs.astype(int).tolist()
        if outputs.dtype == np.int8
        else [[float(v) for v in r] for r in outputs]
    )
    doc = {
        "name": name,
        "ops": ops,
        "input_dtype": str(inp["dtype"].__name__),
        "output_dtype": str(out["dtype"].__name__),
        "inputs": as_list(rows),
        "outputs": out_list,
    }
    (out_dir / f"{name}.json").write_text(json.dumps(doc) + "\n")
    print(name, ops, hashlib.sha256(flat).hexdigest())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="tests/fixtures/tflite")
    out_dir = pathlib.Path(parser.parse_args().out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)

    model = keras_mlp([8, 16, 4], ["relu", "sigmoid"], rng)
    rows = rng.normal(0.0, 1.5, (256, 8)).astype(np.float32)
    case(out_dir, "float_relu_sigmoid", convert(model), rows)
    case(out_dir, "int8_relu_sigmoid", convert(model, rows[:128]), rows)

    model = keras_mlp([6, 12, 3], ["tanh", None], rng)
    rows = rng.normal(0.0, 1.0, (256, 6)).astype(np.float32)
    case(out_dir, "float_tanh_linear", convert(model), rows)

    model = keras_mlp([6, 12, 10, 3], ["tanh", "relu", None], rng)
    calibration = rng.normal(0.0, 1.0, (128, 6)).astype(np.float32)
    flat = convert(model, calibration, int8_io=True)
    int8_rows = rng.integers(-128, 128, (256, 6)).astype(np.int8)
    case(out_dir, "int8_io_tanh_relu", flat, int8_rows)

    model = keras_mlp([4, 3], ["softmax"], rng)
    rows = rng.normal(0.0, 1.0, (8, 4)).astype(np.float32)
    case(out_dir, "unsupported_softmax", convert(model), rows)

    import ai_edge_litert

    print("tensorflow", tf.__version__, "ai-edge-litert", getattr(ai_edge_litert, "__version__", "?"))


if __name__ == "__main__":
    main()
