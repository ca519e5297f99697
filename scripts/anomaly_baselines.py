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

With `pyod` installed (not needed otherwise), `--detectors` also takes
PyOD's detectors with their defaults, scored by `decision_function`:
`knn` (distance to the 5th neighbour), `lof`, `ocsvm`, `ecod`, `copod`,
`hbos`, `pca`, `inne` (random_state=0 where they take one). Scores are
ranked before the ROC-AUC, NaN and infinity as most anomalous. `--jobs N`
evaluates N sets at a time.
"""
import argparse
import importlib
import pathlib

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture

DETECTORS = {
    "gmm1": lambda: GaussianMixture(1, covariance_type="full", reg_covar=1e-6, random_state=0),
    "gmm4": lambda: GaussianMixture(4, covariance_type="full", reg_covar=1e-3, random_state=0),
    "iforest": lambda: IsolationForest(random_state=0),
}


def pyod_detector(module, name, **kw):
    """A factory of PyOD's `pyod.models.<module>.<name>(**kw)`, imported
    when first called (PyOD is optional)."""
    return lambda: getattr(importlib.import_module(f"pyod.models.{module}"), name)(**kw)


PYOD = {
    "knn": pyod_detector("knn", "KNN"),
    "lof": pyod_detector("lof", "LOF"),
    "ocsvm": pyod_detector("ocsvm", "OCSVM"),
    "ecod": pyod_detector("ecod", "ECOD"),
    "copod": pyod_detector("copod", "COPOD"),
    "hbos": pyod_detector("hbos", "HBOS"),
    "pca": pyod_detector("pca", "PCA", random_state=0),
    "inne": pyod_detector("inne", "INNE", random_state=0),
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
            if name in PYOD:
                score = PYOD[name]().fit(fit_rows).decision_function(test)
            else:
                score = -DETECTORS[name]().fit(fit_rows).score_samples(test)
            # Ranks, so that an infinite score (PyOD's PCA on a constant
            # feature) counts as the most anomalous and a NaN as well.
            score = rankdata(np.nan_to_num(score, nan=np.inf))
            aucs[name].append(roc_auc_score(y[~is_train] != 0, score))
    return {name: float(np.mean(v)) for name, v in aucs.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=pathlib.Path, required=True)
    ap.add_argument("--sets", help="comma-separated set names (default: every CSV)")
    ap.add_argument("--novelty", action="store_true", help="fit on the normal train rows only")
    ap.add_argument("--detectors", default=",".join(DETECTORS), help="comma-separated (default: gmm1,gmm4,iforest)")
    ap.add_argument("--jobs", type=int, default=1, help="sets evaluated at a time")
    args = ap.parse_args()
    detectors = args.detectors.split(",")
    unknown = set(detectors) - set(DETECTORS) - set(PYOD)
    if unknown:
        ap.error(f"unknown detectors: {', '.join(sorted(unknown))}")
    csvs = {p.name.split(".csv")[0]: p for p in (args.data / "csv").glob("*.csv*")}
    names = args.sets.split(",") if args.sets else sorted(csvs, key=str.lower)

    def one_set(name):
        table = pd.read_csv(csvs[name])
        y = table.pop("label").to_numpy()
        x = table.to_numpy(dtype=np.float64)
        lines = (args.data / f"splits/{name}.txt").read_text().split("\n")
        splits = [np.array(line.split(), dtype=np.int64) for line in lines if line.strip()]
        result = evaluate(x, y, splits, args.novelty, detectors)
        return name + "\t" + "\t".join(f"{result[d]:.4f}" for d in detectors)

    print("set\t" + "\t".join(detectors))
    if args.jobs > 1:
        from joblib import Parallel, delayed

        for line in Parallel(n_jobs=args.jobs)(delayed(one_set)(n) for n in names):
            print(line, flush=True)
    else:
        for name in names:
            print(one_set(name), flush=True)


if __name__ == "__main__":
    main()
