#!/usr/bin/env python3
"""Runs a TFLite file in the LiteRT interpreter, a client tinygen did not
write, with the reference kernels (OpResolverType.BUILTIN_REF, no XNNPACK),
on rows given as float32 bit patterns, and writes its outputs the same way:

    python scripts/litert_check.py MODEL.tflite INPUTS.json OUTPUTS.json

INPUTS.json: {"width": W, "bits": [u32, ...]} (rows of W float32 values);
OUTPUTS.json: {"width": V, "bits": [...]}. Needs `pip install ai-edge-litert`.
"""
import json
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    model_path, inputs_path, outputs_path = sys.argv[1:]
    doc = json.load(open(inputs_path))
    x = np.array(doc["bits"], dtype=np.uint32).view(np.float32).reshape(-1, doc["width"])
    interp = Interpreter(
        model_path=model_path, experimental_op_resolver_type=OpResolverType.BUILTIN_REF
    )
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    rows = []
    for row in x:
        interp.set_tensor(inp["index"], row[None, :])
        interp.invoke()
        rows.append(interp.get_tensor(out["index"])[0].astype(np.float32))
    y = np.array(rows, dtype=np.float32)
    json.dump(
        {"width": y.shape[1], "bits": y.view(np.uint32).ravel().tolist()},
        open(outputs_path, "w"),
    )
    ops = [o["op_name"] for o in interp._get_ops_details()]
    print(f"LiteRT (reference kernels): {model_path} {ops}, {x.shape} -> {y.shape}")


if __name__ == "__main__":
    main()
