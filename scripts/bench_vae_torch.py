#!/usr/bin/env python3
"""The pytorch/examples VAE (784-400-20, BCE + KL, Adam 1e-3, batch 128) on
MNIST read from the IDX files, as the reference for `cargo xtask bench-neural`.

Prints one JSON object: steps per second of training on the first
`--steps` steps (after `--warmup` untimed steps), the thread count, and,
with `--epochs N`, the test loss per sample after each epoch (the number
pytorch/examples prints as "Test set loss").
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def idx(path):
    raw = path if os.path.exists(path) else path[:-3]
    opener = gzip.open if raw.endswith(".gz") else open
    with opener(raw, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def loss_function(recon, x, mu, logvar):
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    d = args.data_dir
    train = torch.from_numpy(idx(f"{d}/train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255)
    test = torch.from_numpy(idx(f"{d}/t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255)
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(batch):
        opt.zero_grad()
        recon, mu, logvar = model(batch)
        loss = loss_function(recon, batch, mu, logvar)
        loss.backward()
        opt.step()
        return loss.item()

    perm = torch.randperm(len(train))
    batches = [train[perm[i:i + 128]] for i in range(0, len(train), 128)]
    for b in batches[: args.warmup]:
        step(b)
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(batches[i % len(batches)])
    seconds = time.perf_counter() - t0
    out = {"torch": torch.__version__, "threads": args.threads, "steps": args.steps,
           "steps_per_second": args.steps / seconds}
    # The quality run starts from a fresh model, as pytorch/examples does.
    torch.manual_seed(args.seed)
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(args.epochs):
        model.train()
        perm = torch.randperm(len(train))
        for i in range(0, len(train), 128):
            step(train[perm[i:i + 128]])
        model.eval()
        total = 0.0
        with torch.no_grad():
            for i in range(0, len(test), 128):
                b = test[i:i + 128]
                recon, mu, logvar = model(b)
                total += loss_function(recon, b, mu, logvar).item()
        losses.append(total / len(test))
    if losses:
        out["test_loss_per_epoch"] = losses
    print(json.dumps(out))


if __name__ == "__main__":
    main()
