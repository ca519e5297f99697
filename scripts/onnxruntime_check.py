#!/usr/bin/env python3
"""Runs an ONNX file exported by tinygen in onnxruntime, a client tinygen
did not write: validates it with the ONNX checker (full check, with shape
inference), runs it on the rows of a CSV file (no header) and writes its
outputs as CSV (no header), one row per input row.

    python scripts/onnxruntime_check.py MODEL.onnx INPUTS.csv OUTPUTS.csv

Needs `pip install onnx onnxruntime numpy`.
"""

import sys

import numpy as np
import onnx
import onnxruntime as ort


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    model_path, inputs_path, outputs_path = sys.argv[1:]
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    x = np.atleast_2d(np.loadtxt(inputs_path, delimiter=",", dtype=np.float32))
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    (y,) = session.run(None, {inp.name: x})
    np.savetxt(outputs_path, y, delimiter=",", fmt="%.9g")
    print(
        f"onnxruntime {ort.__version__} (onnx {onnx.__version__}): "
        f"{model_path} IR {model.ir_version}, opset "
        f"{model.opset_import[0].version}, {x.shape} -> {y.shape}"
    )


if __name__ == "__main__":
    main()
