#!/usr/bin/env python3
"""Times the LiteRT interpreter on a TFLite network with float input, the
peer of `cargo xtask bench-decode`'s int8 rows:

    python scripts/bench_litert.py MODEL.tflite INPUTS.json OUTPUTS.json

INPUTS.json: {"width": W, "bits": [u32, ...]} (rows of W float32 values, as
`litert_check.py` reads them). For batch 1 (one row per `invoke`) and for
the whole batch in one `invoke` (the input resized to all rows), one
thread, LiteRT's default kernels (XNNPACK where it takes the graph), it
prints {"batch_1_us": per row, "batch_us": per batch, "rows": N} (medians
of 5 timings) and writes the batch-1 outputs to OUTPUTS.json, the same
layout, so that the caller can compare them with its own.
Needs `pip install ai-edge-litert`.
"""
import json
import statistics
import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def median_seconds(f, repeats=5):
    f()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interpreter(model_path, rows, width):
    interp = Interpreter(model_path=model_path, num_threads=1)
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], [rows, width])
    interp.allocate_tensors()
    return interp, inp["index"], interp.get_output_details()[0]["index"]


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    model_path, inputs_path, outputs_path = sys.argv[1:]
    doc = json.load(open(inputs_path))
    width = doc["width"]
    x = np.array(doc["bits"], dtype=np.uint32).view(np.float32).reshape(-1, width)

    one, one_in, one_out = interpreter(model_path, 1, width)
    rows = [x[i : i + 1] for i in range(len(x))]
    outputs = []
    for row in rows:
        one.set_tensor(one_in, row)
        one.invoke()
        outputs.append(one.get_tensor(one_out)[0].astype(np.float32))
    reps = 2000

    def batch_1():
        for k in range(reps):
            one.set_tensor(one_in, rows[k % len(rows)])
            one.invoke()
            one.get_tensor(one_out)

    all_rows, all_in, all_out = interpreter(model_path, len(x), width)
    batch_reps = 100

    def batch():
        for _ in range(batch_reps):
            all_rows.set_tensor(all_in, x)
            all_rows.invoke()
            all_rows.get_tensor(all_out)

    y = np.array(outputs, dtype=np.float32)
    json.dump(
        {"width": y.shape[1], "bits": y.view(np.uint32).ravel().tolist()},
        open(outputs_path, "w"),
    )
    print(
        json.dumps(
            {
                "batch_1_us": median_seconds(batch_1) / reps * 1e6,
                "batch_us": median_seconds(batch) / batch_reps * 1e6,
                "rows": len(x),
            }
        )
    )


if __name__ == "__main__":
    main()
