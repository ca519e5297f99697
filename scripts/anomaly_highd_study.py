#!/usr/bin/env python3
"""Wide sets: what the default detector becomes when its 64 KiB budget
holds no K = 4 member, against shrunk Gaussians (issue 16; scikit-learn
prototype).

    python scripts/anomaly_highd_study.py --data DIR[,DIR..] [--novelty] [--study]

Each DIR as for `anomaly_baselines.py`; only its sets with too many features
for one K = 4 full-covariance member in 64 KiB (89 or more) are run. The rows
are standardized as the default does (`anomaly_zscore_study.py`). Prints,
per set, the mean ROC-AUC over the splits of

- `default`: the default there: one member of as many full-covariance
  components as fit (at least one) on a random half of the rows, `reg_covar`
  Scott's n^(-2/(d+4)), components under 5 % weight dropped;
- `oas`: the candidate of `data/anomaly-embedding/README.md`, one Gaussian
  on all the rows with the OAS shrunk covariance (Chen et al., 2010);
- with `--study` also: the default's member on all the rows, and with
  `reg_covar` 1e-3, 0.01 and Scott's / d; a Ledoit-Wolf Gaussian.

A Gaussian scores by its Mahalanobis distance, which ranks as -log p.
"""
import argparse
import gzip
import pathlib

import numpy as np
from joblib import Parallel, delayed
from sklearn.covariance import OAS, LedoitWolf
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture

from anomaly_zscore_study import BUDGET, K, load, neg_log_density, print_results, robust_standardization, shape


def member(u, reg, half):
    _, k = shape(u.shape[1], BUDGET)
    rows = u[np.random.default_rng(0).choice(len(u), len(u) // 2, replace=False)] if half else u
    gm = GaussianMixture(min(k, len(rows)), covariance_type="full", reg_covar=reg(len(rows)), random_state=0)
    gm.fit(rows)
    keep = gm.weights_ >= 0.05
    return [(gm, keep if keep.any() else gm.weights_ == gm.weights_.max())]


def detectors(d, study):
    scott = lambda n: n ** (-2.0 / (d + 4))
    out = {
        "default": lambda u, v: neg_log_density(member(u, scott, True), v),
        "oas": lambda u, v: OAS().fit(u).mahalanobis(v),
    }
    if study:
        out.update({
            "default on all rows": lambda u, v: neg_log_density(member(u, scott, False), v),
            "all rows, reg 1e-3": lambda u, v: neg_log_density(member(u, lambda n: 1e-3, False), v),
            "all rows, reg 0.01": lambda u, v: neg_log_density(member(u, lambda n: 0.01, False), v),
            "all rows, reg Scott/d": lambda u, v: neg_log_density(member(u, lambda n: scott(n) / d, False), v),
            "ledoit-wolf": lambda u, v: LedoitWolf().fit(u).mahalanobis(v),
        })
    return out


def evaluate(data, name, novelty, study):
    x, y, splits = load(data, name)
    runs = {}
    for train in splits:
        is_train = np.zeros(len(y), bool)
        is_train[train] = True
        rows = x[is_train & ~y] if novelty else x[is_train]
        center, scale = robust_standardization(rows)
        u, v, truth = (rows - center) / scale, (x[~is_train] - center) / scale, y[~is_train]
        for n, score in detectors(x.shape[1], study).items():
            runs.setdefault(n, []).append(roc_auc_score(truth, score(u, v)))
    return name, {n: float(np.mean(a)) for n, a in runs.items()}


def features(path):
    with (gzip.open if path.suffix == ".gz" else open)(path, "rt") as f:
        return len(f.readline().split(",")) - 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="comma-separated data directories")
    ap.add_argument("--novelty", action="store_true", help="fit on the normal train rows only")
    ap.add_argument("--study", action="store_true", help="the study's detectors too")
    args = ap.parse_args()
    jobs = []
    for data in map(pathlib.Path, args.data.split(",")):
        for p in sorted((data / "csv").glob("*.csv*")):
            members, k = shape(features(p), BUDGET)
            if members == 1 and k < K:
                jobs.append((data, p.name.split(".csv")[0]))
    results = Parallel(n_jobs=-1)(delayed(evaluate)(d, n, args.novelty, args.study) for d, n in jobs)
    print_results(results)


if __name__ == "__main__":
    main()
