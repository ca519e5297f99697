#!/usr/bin/env python3
"""scikit-learn baselines of the anomaly benchmark, in tinygen's protocol.

    python scripts/anomaly_baselines.py --data DIR [--sets a,b,..] [--novelty] [--detectors a,b]

DIR holds `csv/NAME.csv[.gz]` (columns x0.., label; label != 0 = outlier) and
`splits/NAME.txt` (one line per split: the 0-based train row indices); the
sets are every CSV in DIR, or those named. For every split: standardize with
the fitted rows' mean and population standard deviation (a constant feature
gets scale 1), fit on the train part (all of it; with --novelty only its
normal rows), score the test part, ROC-AUC of the outlier score. Prints one
tab-separated line per set: name, then the mean ROC-AUC over the splits of

- `gmm1`: GaussianMixture(1, full, reg_covar=1e-6): PyOD's GMM detector;
- `gmm4`: GaussianMixture(4, full, reg_covar=1e-3), random_state=0;
- `iforest`: IsolationForest() with its defaults, random_state=0.

The GMMs score -score_samples (-log p), the forest -score_samples.
"""
import argparse
import pathlib

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture

DETECTORS = {
    "gmm1": lambda: GaussianMixture(1, covariance_type="full", reg_covar=1e-6, random_state=0),
    "gmm4": lambda: GaussianMixture(4, covariance_type="full", reg_covar=1e-3, random_state=0),
    "iforest": lambda: IsolationForest(random_state=0),
}


def standardize(fit_rows, *others):
    mean = fit_rows.mean(axis=0)
    std = fit_rows.std(axis=0)
    std[std == 0] = 1.0
    return [(x - mean) / std for x in (fit_rows, *others)]


def evaluate(x, y, splits, novelty, detectors=DETECTORS):
    aucs = {name: [] for name in detectors}
    for train in splits:
        is_train = np.zeros(len(y), bool)
        is_train[train] = True
        fit_rows = x[is_train & (y == 0)] if novelty else x[is_train]
        fit_rows, test = standardize(fit_rows, x[~is_train])
        for name in detectors:
            model = DETECTORS[name]().fit(fit_rows)
            aucs[name].append(roc_auc_score(y[~is_train] != 0, -model.score_samples(test)))
    return {name: float(np.mean(v)) for name, v in aucs.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=pathlib.Path, required=True)
    ap.add_argument("--sets", help="comma-separated set names (default: every CSV)")
    ap.add_argument("--novelty", action="store_true", help="fit on the normal train rows only")
    ap.add_argument("--detectors", default=",".join(DETECTORS), help="comma-separated (default: all)")
    args = ap.parse_args()
    detectors = args.detectors.split(",")
    unknown = set(detectors) - set(DETECTORS)
    if unknown:
        ap.error(f"unknown detectors: {', '.join(sorted(unknown))}")
    csvs = {p.name.split(".csv")[0]: p for p in (args.data / "csv").glob("*.csv*")}
    names = args.sets.split(",") if args.sets else sorted(csvs, key=str.lower)
    print("set\t" + "\t".join(detectors))
    for name in names:
        table = pd.read_csv(csvs[name])
        y = table.pop("label").to_numpy()
        x = table.to_numpy(dtype=np.float64)
        lines = (args.data / f"splits/{name}.txt").read_text().split("\n")
        splits = [np.array(line.split(), dtype=np.int64) for line in lines if line.strip()]
        result = evaluate(x, y, splits, args.novelty, detectors)
        print(name + "\t" + "\t".join(f"{result[d]:.4f}" for d in detectors), flush=True)


if __name__ == "__main__":
    main()
