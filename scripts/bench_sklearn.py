#!/usr/bin/env python3
"""scikit-learn side of `cargo xtask bench-host`: writes the benchmark data
and times GaussianMixture EM iterations and score_samples on it.

    python scripts/bench_sklearn.py --out DIR [--n 100000 --d 16 --k 8]

Writes DIR/x.npy (N x D float64) and DIR/labels.npy (k-means labels, the
shared initialisation) and prints one JSON object with the timings.
"""
import argparse
import json
import pathlib
import time

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

ITERS = 10
REPEATS = 3


def blobs(n, d, k, seed):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-5, 5, size=(k, d))
    scales = rng.uniform(0.3, 2.0, size=(k, d))
    labels = np.arange(n) % k
    return centers[labels] + scales[labels] * rng.normal(size=(n, d))


def median_time(fn, repeats=REPEATS):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=pathlib.Path, required=True)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--d", type=int, default=16)
    p.add_argument("--k", type=int, default=8)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    x = blobs(args.n, args.d, args.k, 0)
    labels = KMeans(n_clusters=args.k, n_init=1, random_state=0).fit(x).labels_
    resp = np.zeros((args.n, args.k))
    resp[np.arange(args.n), labels] = 1.0
    np.save(args.out / "x.npy", x)
    np.save(args.out / "labels.npy", labels.astype(np.float64))

    result = {"sklearn": sklearn.__version__, "n": args.n, "d": args.d, "k": args.k}
    for cov in ["full", "diag"]:
        def fit():
            gm = GaussianMixture(args.k, covariance_type=cov, max_iter=ITERS, tol=0.0)
            gm._initialize_parameters = lambda X, *a, **kw: gm._initialize(X, resp)
            gm.fit(x)
            return gm

        gm = fit()
        # fit = initial M-step + ITERS x (E-step + M-step) + a final E-step.
        result[f"em_{cov}_s_per_iter"] = median_time(fit) / ITERS
        result[f"score_{cov}_samples_per_s"] = args.n / median_time(lambda: gm.score_samples(x))
        one = x[:1]
        calls = 1000
        result[f"score_{cov}_one_call_s"] = median_time(
            lambda: [gm.score_samples(one) for _ in range(calls)]
        ) / calls
    print(json.dumps(result))


if __name__ == "__main__":
    main()
