#!/usr/bin/env python3
"""LiteRT side of the int8 sigmoid and tanh checks in runtime/tests/quant_litert.rs.

    python -m venv .venv && .venv/bin/pip install tensorflow-cpu ai-edge-litert
    .venv/bin/python scripts/litert_activation_fixtures.py \
        [--out runtime/tests/fixtures/litert_activation_int8.json]

Writes two kinds of cases, all run by the LiteRT interpreter with the
reference kernels (OpResolverType.BUILTIN_REF, no XNNPACK):

- "ops": Keras models of one sigmoid or tanh activation, converted with
  full-integer post-training quantization (int8 input and output) from
  representative data over 8 ranges each, so 8 input scales and zero points
  per op; then the (-1, 1) model with its input scale patched in the
  flatbuffer to scales where a table entry is a near-tie: where float32
  steps and double ones round differently, and where the C library's expf
  or tanhf (not correctly rounded) gives another entry than correctly
  rounded ones. The graph is checked to be the one LOGISTIC or TANH op, run
  on all 256 int8 values at once: the outputs are LiteRT's table. The script
  checks that it equals TFLite's LUTPopulate computed with the C library's
  expf and tanhf (what LiteRT calls), and records the entries where that
  differs from LUTPopulate with correctly rounded ones (what the runtime's
  quant::activation_table computes).
- "networks": Keras Dense stacks with sigmoid, tanh and relu (Dense+sigmoid,
  Dense+tanh, Dense+relu+Dense+sigmoid, Dense+tanh+Dense+sigmoid) converted
  the same way; the graph is checked to be FULLY_CONNECTED ops (relu fused)
  each followed by LOGISTIC or TANH where the Keras layer has one. The JSON
  holds every FULLY_CONNECTED's int8 weights, int32 bias, scales (also as
  float32 bit patterns) and zero points, and the network's int8 outputs for
  random, extreme and quantized sample inputs.

The script also prints, per case, how many outputs the default optimized
kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES) and the default interpreter
(BUILTIN, with XNNPACK) give differently, for information. It ends with the
tool versions and the fixture's sha256 (recorded in
runtime/tests/fixtures/README.md); the output is the same on every run.
"""
import argparse
import ctypes
import ctypes.util
import hashlib
import json
import math
import pathlib
import platform
import struct

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType

SEED = 20261203

# Representative ranges for the standalone ops (min, max): wide, narrow,
# one-sided, off-centre, tiny, saturating.
OP_RANGES = [
    (-8.0, 8.0),
    (-1.0, 1.0),
    (0.0, 6.0),
    (-20.0, 3.0),
    (-3.0, 12.0),
    (-0.05, 0.05),
    (-100.0, 100.0),
    (-0.5, 2.5),
]

RESOLVERS = {
    "reference": OpResolverType.BUILTIN_REF,
    "optimized": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    "default": OpResolverType.BUILTIN,
}


def f32(x):
    """x rounded to float32 (overflow gives infinity)."""
    with np.errstate(over="ignore"):
        return float(np.float32(x))


def f32_bits(x):
    """The bit pattern of a float32 scale, so readers need not round decimals."""
    return struct.unpack("<I", struct.pack("<f", x))[0]


def _libm():
    lib = ctypes.CDLL(ctypes.util.find_library("m"))
    for name in ["expf", "tanhf"]:
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
    return lib


LIBM = _libm()
HOST_EXPF = np.frompyfunc(LIBM.expf, 1, 1)
HOST_TANHF = np.frompyfunc(LIBM.tanhf, 1, 1)


def cr_exp(x):
    """expf correctly rounded (double, then float32), elementwise."""
    with np.errstate(over="ignore"):
        return np.exp(x.astype(np.float64)).astype(np.float32)


def cr_tanh(x):
    return np.tanh(x.astype(np.float64)).astype(np.float32)


def host_exp(x):
    return HOST_EXPF(x).astype(np.float32)


def host_tanh(x):
    return HOST_TANHF(x).astype(np.float32)


def lut_populate(op, in_scale, in_zp, out_scale, out_zp, exp=cr_exp, tanh=cr_tanh):
    """TFLite's LUTPopulate<int8_t> with float32 steps, exp and tanh given
    (correctly rounded by default; host_exp and host_tanh are the C
    library's expf and tanhf, which LiteRT calls); indexed by value + 128."""
    q = np.arange(-128, 128)
    x = np.float32(in_scale) * (q - in_zp).astype(np.float32)
    if op == "LOGISTIC":
        y = np.float32(1.0) / (np.float32(1.0) + exp(-x))
    else:
        y = tanh(x)
    r = (y * np.float32(1.0 / out_scale)).astype(np.float64)
    rounded = np.sign(r) * np.floor(np.abs(r) + 0.5)  # TfLiteRound, exact
    return [int(v) for v in np.clip(rounded + out_zp, -128, 127)]


def f64_table(op, in_scale, in_zp, out_scale, out_zp):
    """The same in double precision throughout: differs from LUTPopulate
    where float32 steps round across a tie."""
    x = np.float64(np.float32(in_scale) * (np.arange(-128, 128) - in_zp).astype(np.float32))
    with np.errstate(over="ignore"):
        y = 1.0 / (1.0 + np.exp(-x)) if op == "LOGISTIC" else np.tanh(x)
    r = y / out_scale
    rounded = np.sign(r) * np.floor(np.abs(r) + 0.5)
    return [int(v) for v in np.clip(rounded + out_zp, -128, 127)]


def convert(model, samples):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]

    def representative():
        for row in samples:
            yield [row[None, :].astype(np.float32)]

    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


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
    return outs


def graph(flat):
    interp = Interpreter(
        model_content=flat, experimental_op_resolver_type=OpResolverType.BUILTIN_REF
    )
    interp.allocate_tensors()
    details = {t["index"]: t for t in interp.get_tensor_details()}
    return interp, interp._get_ops_details(), details


def others_agree(flat, inputs, reference):
    """Per other resolver: how many output values differ from `reference`."""
    return {
        name: sum(
            a != b
            for got, want in zip(run(flat, inputs, resolver), reference)
            for a, b in zip(got, want)
        )
        for name, resolver in RESOLVERS.items()
        if name != "reference"
    }


def describe(agree):
    return ", ".join(
        f"{k} {'agrees' if v == 0 else f'differs on {v} value(s)'}" for k, v in agree.items()
    )


def op_model(op, lo, hi, rng):
    """A converted one-activation model whose input covers [lo, hi]."""
    width = 256
    activation = "sigmoid" if op == "LOGISTIC" else "tanh"
    model = tf.keras.Sequential(
        [tf.keras.Input((width,)), tf.keras.layers.Activation(activation)]
    )
    samples = rng.uniform(lo, hi, (64, width))
    samples[0, :2] = [lo, hi]
    flat = convert(model, samples)
    _, ops, _ = graph(flat)
    assert [o["op_name"] for o in ops] == [op], ops
    return flat


def op_params(flat):
    _, ops, details = graph(flat)
    t_in = details[ops[0]["inputs"][0]]
    t_out = details[ops[0]["outputs"][0]]
    assert t_in["dtype"] == np.int8 and t_out["dtype"] == np.int8
    (in_scale,), (in_zp,) = quant(t_in)
    (out_scale,), (out_zp,) = quant(t_out)
    return in_scale, in_zp, out_scale, out_zp


def with_input_scale(flat, scale):
    """The model with its input tensor's float32 scale replaced by `scale`
    (its 4 bytes occur once in the flatbuffer)."""
    old = struct.pack("<f", op_params(flat)[0])
    assert flat.count(old) == 1, "the input scale's bytes are not unique"
    patched = flat.replace(old, struct.pack("<f", scale))
    assert op_params(patched)[0] == f32(scale)
    return patched


def op_case(name, op, flat):
    in_scale, in_zp, out_scale, out_zp = op_params(flat)
    inputs = [list(range(-128, 128))]
    (outputs,) = run(flat, inputs, OpResolverType.BUILTIN_REF)
    agree = others_agree(flat, inputs, [outputs])
    exact = lut_populate(op, in_scale, in_zp, out_scale, out_zp)
    host = lut_populate(op, in_scale, in_zp, out_scale, out_zp, host_exp, host_tanh)
    # LiteRT's reference kernel is LUTPopulate with the C library's functions.
    assert host == outputs, name
    differs = [[q - 128, host[q]] for q in range(256) if host[q] != exact[q]]
    print(
        f"{name}: input ({in_scale:.9g}, {in_zp}), output ({out_scale:.6g}, {out_zp}): "
        f"LiteRT equals LUTPopulate with the C library's functions; with correctly "
        f"rounded ones on {256 - len(differs)}/256; "
        + describe(agree)
    )
    return {
        "name": name,
        "op": op,
        "input_scale": in_scale,
        "input_scale_bits": f32_bits(in_scale),
        "input_zero_point": in_zp,
        "output_scale": out_scale,
        "output_scale_bits": f32_bits(out_scale),
        "output_zero_point": out_zp,
        "outputs": outputs,
        "libm_not_correctly_rounded": differs,
    }


def tie_scales(op, zp, rng, want, tries, differ):
    """Up to `want` float32 input scales (of `tries` candidates in
    [0.004, 0.25]) whose tables, at input zero point `zp`, satisfy
    `differ(scale)`."""
    found = []
    for _ in range(tries):
        scale = f32(math.exp(rng.uniform(math.log(0.004), math.log(0.25))))
        if differ(scale):
            found.append(scale)
            if len(found) == want:
                break
    return found


def op_cases(rng, tie_rng):
    cases = []
    for op in ["LOGISTIC", "TANH"]:
        activation = "sigmoid" if op == "LOGISTIC" else "tanh"
        for lo, hi in OP_RANGES:
            cases.append(op_case(f"{activation}_{lo}_{hi}", op, op_model(op, lo, hi, rng)))
        # Scales at which a table entry is a near-tie: float32 steps and
        # double ones round it differently; or the C library's expf or
        # tanhf, not correctly rounded, gives another entry.
        base = op_model(op, -1.0, 1.0, rng)
        _, zp, out_scale, out_zp = op_params(base)
        args = (op, zp, out_scale, out_zp)

        def order(scale):
            return lut_populate(op, scale, *args[1:]) != f64_table(op, scale, *args[1:])

        def libm(scale):
            exact = lut_populate(op, scale, *args[1:])
            return exact != lut_populate(op, scale, *args[1:], host_exp, host_tanh)

        for kind, differ in [("float32_steps", order), ("libm", libm)]:
            for k, scale in enumerate(tie_scales(op, zp, tie_rng, 2, 20000, differ)):
                name = f"{activation}_tie_{kind}_{k}"
                cases.append(op_case(name, op, with_input_scale(base, scale)))
    return cases


def network_case(name, widths, activations, rng):
    layers = [tf.keras.Input((widths[0],))]
    for n_in, n_out, act in zip(widths, widths[1:], activations):
        layers.append(tf.keras.layers.Dense(n_out, activation=act))
    model = tf.keras.Sequential(layers)
    for dense, n_in, n_out in zip(model.layers, widths, widths[1:]):
        w = rng.normal(0.0, 1.5 / math.sqrt(n_in), (n_in, n_out)).astype(np.float32)
        b = rng.normal(0.0, 0.5, (n_out,)).astype(np.float32)
        dense.set_weights([w, b])
    data = rng.normal(0.0, 1.0, (256, widths[0])).astype(np.float32)
    flat = convert(model, data[:128])
    interp, ops, details = graph(flat)
    expected = []
    for act in activations:
        expected.append("FULLY_CONNECTED")
        if act == "sigmoid":
            expected.append("LOGISTIC")
        elif act == "tanh":
            expected.append("TANH")
    assert [o["op_name"] for o in ops] == expected, ops
    t_in = details[ops[0]["inputs"][0]]
    (in_scale,), (in_zp,) = quant(t_in)
    fcs = [o for o in ops if o["op_name"] == "FULLY_CONNECTED"]
    out_layers = []
    for k, (op, act) in enumerate(zip(fcs, activations)):
        t_x, t_w, t_b = (details[i] for i in op["inputs"])
        t_y = details[op["outputs"][0]]
        assert t_w["dtype"] == np.int8 and t_b["dtype"] == np.int32, (t_w, t_b)
        weights = interp.get_tensor(t_w["index"])
        assert weights.shape == (widths[k + 1], widths[k]), weights.shape
        w_scales, w_zps = quant(t_w)
        assert all(z == 0 for z in w_zps), w_zps
        (y_scale,), (y_zp,) = quant(t_y)
        out_layers.append(
            {
                "inputs": widths[k],
                "outputs": widths[k + 1],
                "activation": act or "none",
                "weights": [int(v) for v in weights.reshape(-1)],
                "bias": [int(v) for v in interp.get_tensor(t_b["index"]).reshape(-1)],
                "weight_scales": w_scales,
                "weight_scales_bits": [f32_bits(s) for s in w_scales],
                "output_scale": y_scale,
                "output_scale_bits": f32_bits(y_scale),
                "output_zero_point": y_zp,
            }
        )
        if k > 0:
            # The layer reads the previous tensor: the activation's fixed
            # params, or the previous FULLY_CONNECTED's.
            (x_scale,), (x_zp,) = quant(t_x)
            prev = activations[k - 1]
            fixed = {"sigmoid": (1 / 256, -128), "tanh": (1 / 128, 0)}.get(prev)
            if fixed:
                assert (x_scale, x_zp) == fixed, (x_scale, x_zp)
    t_out = details[ops[-1]["outputs"][0]]
    (out_scale,), (out_zp,) = quant(t_out)
    n = widths[0]
    inputs = [list(rng.integers(-128, 128, n)) for _ in range(48)]
    inputs += [[-128] * n, [127] * n, [in_zp] * n]
    inputs += [[-128 if (j % 2) else 127 for j in range(n)]]
    for row in data[128:156]:
        q = np.clip(np.round(row / in_scale) + in_zp, -128, 127)
        inputs.append([int(v) for v in q])
    inputs = [[int(v) for v in x] for x in inputs]
    outputs = run(flat, inputs, OpResolverType.BUILTIN_REF)
    agree = others_agree(flat, inputs, outputs)
    print(
        f"{name}: {len(inputs)} inputs, {len(inputs) * widths[-1]} outputs, "
        + describe(agree)
    )
    return {
        "name": name,
        "input_scale": in_scale,
        "input_scale_bits": f32_bits(in_scale),
        "input_zero_point": in_zp,
        "output_scale": out_scale,
        "output_scale_bits": f32_bits(out_scale),
        "output_zero_point": out_zp,
        "layers": out_layers,
        "inputs": inputs,
        "outputs": outputs,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runtime/tests/fixtures/litert_activation_int8.json")
    args = ap.parse_args()
    rng = np.random.default_rng(SEED)
    tie_rng = np.random.default_rng(SEED + 1)
    net_rng = np.random.default_rng(SEED + 2)
    import ai_edge_litert

    ops = op_cases(rng, tie_rng)
    networks = [
        network_case("dense_8_5_sigmoid", [8, 5], ["sigmoid"], net_rng),
        network_case("dense_8_6_tanh", [8, 6], ["tanh"], net_rng),
        network_case("dense_12_16_relu_4_sigmoid", [12, 16, 4], ["relu", "sigmoid"], net_rng),
        network_case("dense_6_10_tanh_3_sigmoid", [6, 10, 3], ["tanh", "sigmoid"], net_rng),
    ]
    doc = {
        "generator": "scripts/litert_activation_fixtures.py",
        "tensorflow": tf.__version__,
        "ai_edge_litert": getattr(ai_edge_litert, "__version__", "unknown"),
        "numpy": np.__version__,
        "libc": " ".join(platform.libc_ver()),
        "ops": ops,
        "networks": networks,
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, separators=(",", ":")) + "\n"
    out.write_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    print(
        f"wrote {out}: tensorflow {doc['tensorflow']}, ai-edge-litert "
        f"{doc['ai_edge_litert']}, numpy {doc['numpy']}, sha256 {digest}"
    )


if __name__ == "__main__":
    main()
