#!/usr/bin/env python3
"""Generate scikit-learn GaussianMixture and OAS fixtures for tinygen's parity tests.

For every covariance type, fits sklearn.mixture.GaussianMixture on a small
synthetic data set, starting EM from responsibilities that the script records
(one-hot labels of sklearn's own KMeans, as init_params='kmeans' does), and
writes data, initial responsibilities, fitted parameters, iteration count,
lower bound, score_samples, BIC and AIC as JSON (`gmm_*.json`); and for a
few data sets the OAS shrunk covariance (`sklearn.covariance.OAS`: location,
covariance, shrinkage; `oas_*.json`).

    python scripts/sklearn_fixtures.py --out tests/fixtures/sklearn

`cargo test` reads the committed fixtures; CI regenerates them with a freshly
installed scikit-learn and runs the same test on the fresh files
(TINYGEN_SKLEARN_FIXTURES=DIR).
"""
import argparse
import json
import pathlib

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from sklearn.covariance import OAS
from sklearn.mixture import GaussianMixture


def make_data(seed: int, n: int, d: int, k: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    parts = []
    for c in range(k):
        center = rng.normal(scale=2.0, size=d)
        a = rng.normal(size=(d, d)) * rng.uniform(0.3, 1.2)
        parts.append(center + rng.normal(size=(n // k, d)) @ a)
    return np.concatenate(parts)


def fixture(name: str, covariance_type: str, k: int, seed: int, n: int, d: int, tol: float) -> dict:
    x = make_data(seed, n, d, max(k, 2))
    labels = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(x).labels_
    resp = np.zeros((x.shape[0], k))
    resp[np.arange(x.shape[0]), labels] = 1.0

    gm = GaussianMixture(
        n_components=k,
        covariance_type=covariance_type,
        tol=tol,
        reg_covar=1e-6,
        max_iter=500,
        random_state=seed,
    )
    # Start EM from the recorded responsibilities instead of sklearn's own draw.
    gm._initialize_parameters = lambda X, *args, **kwargs: gm._initialize(X, resp)
    gm.fit(x)
    return {
        "name": name,
        "sklearn_version": sklearn.__version__,
        "covariance_type": covariance_type,
        "n_components": k,
        "reg_covar": gm.reg_covar,
        "tol": gm.tol,
        "max_iter": gm.max_iter,
        "x": x.tolist(),
        "resp_init": resp.tolist(),
        "weights": gm.weights_.tolist(),
        "means": gm.means_.tolist(),
        "covariances": np.ravel(gm.covariances_).tolist(),
        "precisions_cholesky": np.ravel(gm.precisions_cholesky_).tolist(),
        "n_iter": int(gm.n_iter_),
        "converged": bool(gm.converged_),
        "lower_bound": float(gm.lower_bound_),
        "score_samples": gm.score_samples(x).tolist(),
        "bic": float(gm.bic(x)),
        "aic": float(gm.aic(x)),
    }


# name, covariance type, K, seed, N, D, tol (small tolerances make EM run
# many iterations, so that parity covers the whole trajectory).
CASES = [
    ("full_k3", "full", 3, 1, 300, 3, 1e-6),
    ("tied_k3", "tied", 3, 2, 300, 3, 1e-6),
    ("diag_k3", "diag", 3, 3, 300, 4, 1e-6),
    ("spherical_k3", "spherical", 3, 4, 300, 2, 1e-6),
    ("full_k4_default_tol", "full", 4, 6, 400, 2, 1e-3),
    ("full_k1", "full", 1, 5, 200, 4, 1e-3),
]


def oas_fixture(name: str, seed: int, n: int, d: int) -> dict:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + rng.normal(scale=3.0, size=d)
    est = OAS().fit(x)
    return {
        "name": name,
        "sklearn_version": sklearn.__version__,
        "x": x.tolist(),
        "location": est.location_.tolist(),
        "covariance": est.covariance_.ravel().tolist(),
        "shrinkage": float(est.shrinkage_),
    }


# name, seed, N, D: more rows than features, fewer, and one feature.
OAS_CASES = [("tall", 7, 200, 6), ("wide", 8, 12, 20), ("one_feature", 9, 50, 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        data = fixture(*case)
        path = args.out / f"gmm_{case[0]}.json"
        path.write_text(json.dumps(data, indent=None) + "\n")
        print(f"{path}: n_iter={data['n_iter']} lower_bound={data['lower_bound']:.6f}")
    for case in OAS_CASES:
        data = oas_fixture(*case)
        path = args.out / f"oas_{case[0]}.json"
        path.write_text(json.dumps(data, indent=None) + "\n")
        print(f"{path}: shrinkage={data['shrinkage']:.6f}")


if __name__ == "__main__":
    main()
