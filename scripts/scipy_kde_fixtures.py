#!/usr/bin/env python3
"""Generate scipy.stats.gaussian_kde fixtures for tinygen's KDE parity tests.

For each case, writes the data, optional weights, the bandwidth method, query
points, and scipy's factor, kernel covariance and logpdf at the queries:

    python scripts/scipy_kde_fixtures.py --out tests/fixtures/scipy

`cargo test` reads the committed fixtures; CI regenerates them with a freshly
installed scipy (TINYGEN_SCIPY_FIXTURES=DIR).
"""
import argparse
import json
import pathlib

import numpy as np
import scipy
from scipy.stats import gaussian_kde


def case(name, seed, n, d, bw, weighted):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d)) * 0.7 + np.eye(d)
    x = rng.normal(size=(n, d)) @ a + rng.normal(scale=3.0, size=d)
    x[: n // 3] += 2.5  # two clusters
    w = rng.uniform(0.2, 3.0, size=n) if weighted else None
    kde = gaussian_kde(x.T, bw_method=bw, weights=w)
    queries = np.concatenate([x[:20], x[:20] + rng.normal(scale=1.5, size=(20, d))])
    return {
        "name": name,
        "scipy_version": scipy.__version__,
        "bandwidth": bw if isinstance(bw, str) else float(bw),
        "x": x.tolist(),
        "weights": None if w is None else w.tolist(),
        "queries": queries.tolist(),
        "factor": float(kde.factor),
        "n_eff": float(kde.neff),
        "covariance": np.asarray(kde.covariance).ravel().tolist(),
        "logpdf": kde.logpdf(queries.T).tolist(),
    }


CASES = [
    ("scott_d2", 1, 200, 2, "scott", False),
    ("silverman_d3_weighted", 2, 150, 3, "silverman", True),
    ("factor_d1", 3, 100, 1, 0.3, False),
    ("scott_d5_weighted", 4, 300, 5, "scott", True),
]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=pathlib.Path, required=True)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for c in CASES:
        data = case(*c)
        path = args.out / f"kde_{c[0]}.json"
        path.write_text(json.dumps(data) + "\n")
        print(f"{path}: factor={data['factor']:.6f}")


if __name__ == "__main__":
    main()
