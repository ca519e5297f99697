#!/usr/bin/env python3
"""ONNX files written by PyTorch's own exporter, for `tinygen import`.

    python -m venv .venv && .venv/bin/pip install torch onnx onnxscript onnxruntime
    .venv/bin/python scripts/onnx_import_fixtures.py [--out tests/fixtures/onnx]

Writes, per case, `NAME.onnx` (as `torch.onnx.export` wrote it) and
`NAME.json`: 256 input rows (float32 bit patterns) and onnxruntime's
outputs on them (CPUExecutionProvider), plus the graph's operators.
Small PyTorch MLPs with seeded random weights, in eval mode:

- torch_gemm_bn_leaky_sigmoid: Linear 6->16, BatchNorm1d (random running
  statistics), LeakyReLU(0.01), Linear 16->4, Sigmoid; the TorchScript
  exporter (dynamo=False): Gemm, BatchNormalization, LeakyRelu, Gemm, Sigmoid;
- torch_dynamo_relu_tanh: Linear 5->12, ReLU, Linear 12->8, Tanh,
  Linear 8->3; the dynamo exporter (torch's default);
- torch_flatten_matmul_add: input [N, 2, 3], Flatten, x @ W + b (MatMul,
  Add), ReLU, Linear 5->2; the TorchScript exporter;
- unsupported_softmax: Linear 4->3, Softmax (import must name Softmax).

Ends with the tool versions and each file's sha256 (recorded in
tests/fixtures/onnx/README.md). CI does not install PyTorch.
"""
import argparse
import hashlib
import json
import pathlib

import numpy as np
import onnx
import onnxruntime as ort
import torch

SEED = 20261204


class FlattenMatMulAdd(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(6, 5) * 0.5)
        self.b = torch.nn.Parameter(torch.randn(5) * 0.3)
        self.out = torch.nn.Linear(5, 2)

    def forward(self, x):
        h = torch.relu(torch.flatten(x, 1) @ self.w + self.b)
        return self.out(h)


def case(out_dir, name, model, example, dynamo, rows):
    path = out_dir / f"{name}.onnx"
    torch.onnx.export(
        model,
        (example,),
        str(path),
        dynamo=dynamo,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
    )
    graph = onnx.load(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y = session.run(None, {session.get_inputs()[0].name: rows})[0].astype(np.float32)
    with torch.no_grad():
        torch_y = model(torch.from_numpy(rows)).numpy()
    doc = {
        "name": name,
        "ops": [n.op_type for n in graph.graph.node],
        "input_shape": list(rows.shape[1:]),
        "inputs": rows.reshape(len(rows), -1).view(np.uint32).ravel().tolist(),
        "outputs": y.reshape(len(rows), -1).view(np.uint32).ravel().tolist(),
        "output_width": int(np.prod(y.shape[1:])),
        "max_abs_onnxruntime_vs_torch": float(np.abs(y - torch_y).max()),
    }
    (out_dir / f"{name}.json").write_text(json.dumps(doc) + "\n")
    print(name, doc["ops"], hashlib.sha256(path.read_bytes()).hexdigest())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="tests/fixtures/onnx")
    out_dir = pathlib.Path(parser.parse_args().out)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)

    bn = torch.nn.BatchNorm1d(16)
    bn.running_mean.copy_(torch.randn(16) * 0.5)
    bn.running_var.copy_(torch.rand(16) + 0.5)
    bn.weight.data.copy_(torch.rand(16) + 0.5)
    bn.bias.data.copy_(torch.randn(16) * 0.2)
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 16), bn, torch.nn.LeakyReLU(0.01), torch.nn.Linear(16, 4),
        torch.nn.Sigmoid(),
    ).eval()
    rows = rng.normal(0.0, 1.5, (256, 6)).astype(np.float32)
    case(out_dir, "torch_gemm_bn_leaky_sigmoid", model, torch.randn(2, 6), False, rows)

    model = torch.nn.Sequential(
        torch.nn.Linear(5, 12), torch.nn.ReLU(), torch.nn.Linear(12, 8), torch.nn.Tanh(),
        torch.nn.Linear(8, 3),
    ).eval()
    rows = rng.normal(0.0, 1.0, (256, 5)).astype(np.float32)
    case(out_dir, "torch_dynamo_relu_tanh", model, torch.randn(2, 5), True, rows)

    model = FlattenMatMulAdd().eval()
    rows = rng.normal(0.0, 1.0, (256, 2, 3)).astype(np.float32)
    case(out_dir, "torch_flatten_matmul_add", model, torch.randn(2, 2, 3), False, rows)

    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Softmax(dim=1)).eval()
    rows = rng.normal(0.0, 1.0, (8, 4)).astype(np.float32)
    case(out_dir, "unsupported_softmax", model, torch.randn(2, 4), False, rows)

    print("torch", torch.__version__, "onnx", onnx.__version__, "onnxruntime", ort.__version__)


if __name__ == "__main__":
    main()
