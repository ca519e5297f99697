#!/usr/bin/env python3
"""LiteRT side of runtime/tests/quant_litert.rs: int8 fully connected layers
as TensorFlow Lite's converter quantizes them and its interpreter runs them.

    pip install tensorflow-cpu ai-edge-litert
    python scripts/litert_int8_fixtures.py [--out runtime/tests/fixtures/litert_fc_int8.json]

Builds small Keras Dense models (8 -> 5 with ReLU, 8 -> 5 linear, 37 -> 13
linear; weights per channel, the converter's default, and two per tensor),
converts each with full-integer post-training quantization (int8
input and output, a representative dataset), checks the graph is one
FULLY_CONNECTED op, and runs the interpreter on int8 inputs (random, the
extremes, and quantized representative samples) with the reference kernels
(BUILTIN_REF) and the default optimized ones (BUILTIN). The JSON holds what
the converter stored (int8 weights, int32 bias, scales, also as float32 bit
patterns, zero points, the fused activation) and both interpreters'
outputs; the multipliers are what TFLite's Prepare computes from the scales
(double input_scale * weight_scale / output_scale, then QuantizeMultiplier),
given so the Rust test can also check its quantize_multiplier.

With ai-edge-litert 2.3.0 both kernels round once (TFLITE_SINGLE_ROUNDING):
gemmlowp's double rounding is one off on a few of these outputs.
"""
import argparse
import json
import math
import pathlib
import struct

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType

SEED = 20261201


def f32_bits(x):
    """The bit pattern of a float32 scale, so readers need not round decimals."""
    return struct.unpack("<I", struct.pack("<f", x))[0]


def quantize_multiplier(real):
    """TFLite's QuantizeMultiplier (frexp, round half away, the 2^31 case)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    v = q * (1 << 31)  # exact
    q_fixed = int(math.copysign(math.floor(abs(v) + 0.5), v))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def build(n_in, n_out, activation, rng):
    model = tf.keras.Sequential(
        [tf.keras.Input((n_in,)), tf.keras.layers.Dense(n_out, activation=activation)]
    )
    dense = model.layers[-1]
    w = rng.normal(0.0, 1.0 / math.sqrt(n_in), (n_in, n_out)).astype(np.float32)
    b = rng.normal(0.0, 0.3, (n_out,)).astype(np.float32)
    dense.set_weights([w, b])
    return model


def convert(model, n_in, per_channel, rng):
    data = rng.normal(0.0, 1.0, (256, n_in)).astype(np.float32)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    # The converter quantizes dense weights per output channel by default.
    converter._experimental_disable_per_channel_quantization_for_dense_layers = (
        not per_channel
    )

    def representative():
        for row in data[:128]:
            yield [row[None, :]]

    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert(), data[128:]


def quant(t):
    q = t["quantization_parameters"]
    return [float(s) for s in q["scales"]], [int(z) for z in q["zero_points"]]


def run(flat, inputs, resolver):
    interp = Interpreter(model_content=flat, experimental_op_resolver_type=resolver)
    interp.allocate_tensors()
    i = interp.get_input_details()[0]["index"]
    o = interp.get_output_details()[0]["index"]
    outs = []
    for x in inputs:
        interp.set_tensor(i, np.asarray(x, np.int8)[None, :])
        interp.invoke()
        outs.append([int(v) for v in interp.get_tensor(o)[0]])
    return interp, outs


def case(name, n_in, n_out, activation, rng, per_channel=True):
    model = build(n_in, n_out, activation, rng)
    flat, samples = convert(model, n_in, per_channel, rng)
    interp = Interpreter(
        model_content=flat, experimental_op_resolver_type=OpResolverType.BUILTIN_REF
    )
    interp.allocate_tensors()
    ops = interp._get_ops_details()
    assert [op["op_name"] for op in ops] == ["FULLY_CONNECTED"], ops
    op = ops[0]
    details = {t["index"]: t for t in interp.get_tensor_details()}
    t_in, t_w, t_b = (details[k] for k in op["inputs"])
    t_out = details[op["outputs"][0]]
    assert t_in["dtype"] == np.int8 and t_w["dtype"] == np.int8, (t_in, t_w)
    assert t_b["dtype"] == np.int32 and t_out["dtype"] == np.int8, (t_b, t_out)
    weights = interp.get_tensor(t_w["index"])
    bias = interp.get_tensor(t_b["index"])
    assert weights.shape == (n_out, n_in), weights.shape
    (in_scale,), (in_zp,) = quant(t_in)
    (out_scale,), (out_zp,) = quant(t_out)
    w_scales, w_zps = quant(t_w)
    assert all(z == 0 for z in w_zps), w_zps
    b_scales, _ = quant(t_b)

    # Prepare's multipliers: the float32 scales widened to double.
    mults = [
        quantize_multiplier(float(np.float64(in_scale) * np.float64(s) / np.float64(out_scale)))
        for s in w_scales
    ]
    if activation == "relu":
        act_min, act_max = max(-128, out_zp), 127
    else:
        act_min, act_max = -128, 127

    inputs = [list(rng.integers(-128, 128, n_in)) for _ in range(48)]
    inputs += [[-128] * n_in, [127] * n_in, [in_zp] * n_in]
    inputs += [[-128 if (j % 2) else 127 for j in range(n_in)]]
    for row in samples[:16]:
        q = np.clip(np.round(row / in_scale) + in_zp, -128, 127)
        inputs.append([int(v) for v in q])
    inputs = [[int(v) for v in x] for x in inputs]
    _, out_ref = run(flat, inputs, OpResolverType.BUILTIN_REF)
    _, out_opt = run(flat, inputs, OpResolverType.BUILTIN)
    return {
        "name": name,
        "inputs_len": n_in,
        "outputs_len": n_out,
        "activation": activation or "none",
        "input_scale": in_scale,
        "input_scale_bits": f32_bits(in_scale),
        "input_zero_point": in_zp,
        "output_scale": out_scale,
        "output_scale_bits": f32_bits(out_scale),
        "output_zero_point": out_zp,
        "weight_scales": w_scales,
        "weight_scales_bits": [f32_bits(s) for s in w_scales],
        "bias_scales": b_scales,
        "weights": [int(v) for v in weights.reshape(-1)],
        "bias": [int(v) for v in bias.reshape(-1)],
        "multipliers": [m for m, _ in mults],
        "shifts": [s for _, s in mults],
        "act_min": act_min,
        "act_max": act_max,
        "inputs": inputs,
        "outputs_reference": out_ref,
        "outputs_builtin": out_opt,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runtime/tests/fixtures/litert_fc_int8.json")
    args = ap.parse_args()
    rng = np.random.default_rng(SEED)
    import ai_edge_litert

    cases = [
        case("dense_8_5_relu", 8, 5, "relu", rng),
        case("dense_8_5", 8, 5, None, rng),
        case("dense_37_13", 37, 13, None, rng),
        case("dense_8_5_relu_per_tensor", 8, 5, "relu", rng, per_channel=False),
        case("dense_37_13_per_tensor", 37, 13, None, rng, per_channel=False),
    ]
    for c in cases:
        same = c["outputs_reference"] == c["outputs_builtin"]
        print(f"{c['name']}: {len(c['weight_scales'])} weight scale(s), "
              f"BUILTIN {'equals' if same else 'DIFFERS FROM'} BUILTIN_REF")
    doc = {
        "generator": "scripts/litert_int8_fixtures.py",
        "tensorflow": tf.__version__,
        "ai_edge_litert": getattr(ai_edge_litert, "__version__", "unknown"),
        "cases": cases,
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
