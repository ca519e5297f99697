#!/usr/bin/env python3
"""Builds the PMLB anomaly suite (`data/anomaly-pmlb/README.md`): anomaly
sets derived from classification sets of the Penn Machine Learning
Benchmarks by one fixed recipe.

    python scripts/anomaly_pmlb_data.py --pmlb DIR --out OUT [--sets PATH]

DIR is a git clone of EpistasisLab/pmlb (no Git LFS needed): each set is
read from the repository's history by the git blob id below, the last
version before PMLB moved its data to Git LFS (commit e447f565, 2020), and
checked against its sha256. The recipe, fixed before any detector ran on
these sets:

- the outliers are every class holding under 5 % of the rows, or, if no
  class is that rare, the smallest class (ties: the lowest label);
- outliers beyond 10 % of the normal rows are dropped at random (numpy
  `default_rng(0)`), so they are at most about 9 % of a set;
- the features are PMLB's, unchanged (every set here has only numeric and
  0/1 features).

OUT receives, per set, `csv/NAME.csv.gz` (columns x0..x{d-1}, label),
`splits/NAME.txt` (10 random 60/40 splits, one line per split: the 0-based
train row indices) and `SHA256SUMS`; with `--sets` also the suite's table
(`data/anomaly-pmlb/sets.tsv`). Writes through `anomaly_dev_data.py`'s `Suite`;
deterministic output.
"""
import argparse
import gzip
import pathlib
import subprocess

import numpy as np

from anomaly_dev_data import Suite, sha256

RARE = 0.05
MAX_OUTLIERS = 0.10

# name (PMLB's), git blob id of datasets/NAME/NAME.tsv.gz, sha256 of the blob
SETS = [
    ("haberman", "8ca3e5053c3f063c8c3fe92324d4070c8b4ce613",
     "2f44ac12e09d2fd09d9ac70231cecbfbc333356339dec0509ad1ed96e36e94c0"),
    ("ecoli", "5e28893b52f116866daf30ca8c40553b54d81acd",
     "65b5b5ccc50a20d50008e94c78d1bc1a56aa1e02869a3d3f66d8e57c5aa8619e"),
    ("schizo", "092ee848a4946c5461f95e938d40ad2eca47e0b9",
     "596303e877cb91ec3f96cab8c0eac3205f8c50d2e56debdde6a6b4bcffe57ccd"),
    ("bupa", "d547a4f51f316762ad6078250bfd103915071130",
     "bc1e92277d88aa9c20f342ad05b3079a118d76f2511c47e233ba45a604e91300"),
    ("spectf", "4cbe6e87ffd0c2025b9b324e419c8cecb7cd8819",
     "664081130aa48fc189b2e1d3c44332f0b3eb1ee6d31b79af1643c137697677e4"),
    ("movement_libras", "405d2d850df30515728f0069d033d41a04017bee",
     "77c9c61118e72c3f49f52fd5eda8ec95ce9a573cb2f1a51b15480966f320fc85"),
    ("saheart", "f3753596765219646f97f7f2f1c203dfcb0d4400",
     "bd0e747cb0a16d9f68843ccd6fa0b0d382bb21f2c83ccbc222712426ee42274b"),
    ("vehicle", "7be3521973a616b230e33091af9ae0a7adc2f095",
     "dad03273414ae7127e30b6e4e66df90319a148b37ead5dd376dd140be5baedc4"),
    ("vowel", "77ba4717ebedca63958e6421a00239394cd6f167",
     "98d0239c98afa3d94847cd792ce07a316e67927b5e7a178a521fea6a14914eea"),
    ("wine_quality_red", "28dfec63ca21e8f3506ef93838946b61fec66cf6",
     "6402396156d04f7269074f4e58fa40ad1147f9298179bf388962d6ef9f916824"),
    ("wine_quality_white", "8fd672620d966295c393c194638f444ae1e6f337",
     "0d39f17afc3a1712bd6c460aa941aed7835b3feb142538adfdd31ddc2451d60d"),
    ("mfeat_factors", "d7b517485adf01c9ae2f1add36e8f5bd240575d0",
     "fece3ba48bd6fec6598a60377f0fbf8405e12273e369df96e55913e301f52c02"),
    ("dna", "a8a0130b2c160c15f3cae73d83a015ae2b958e63",
     "017e1ff56435818b639cc788ee35df6cee7ac2aea19cc62dcb10a3a0c60b6340"),
    ("phoneme", "ff946435fea798a494570c2ab8a66996f02055df",
     "2e1c31a2c560f3539be5bda1084939765c80ddd814bd6919fd8a3465f9b8aee6"),
    ("texture", "b714117dbd28ef0426e13e6c929692d1406c41a4",
     "94abf897fcd6d93b0f78ea309b10ef5b83a8b95e46aa29974a43dbefb3741c0c"),
]


def read_blob(repo, blob):
    return subprocess.run(
        ["git", "-C", str(repo), "cat-file", "blob", blob], check=True, capture_output=True
    ).stdout


def parse_tsv(raw):
    """Features (float64), class labels and feature names of a PMLB
    `.tsv.gz` (a header; the class in the column `target`)."""
    lines = gzip.decompress(raw).decode().splitlines()
    header = lines[0].split("\t")
    t = header.index("target")
    rows = [line.split("\t") for line in lines[1:] if line]
    assert all(len(r) == len(header) for r in rows)
    x = np.array([[float(v) for j, v in enumerate(r) if j != t] for r in rows])
    classes = np.array([int(float(r[t])) for r in rows])
    return x, classes, [h for j, h in enumerate(header) if j != t]


def outlier_classes(classes):
    """The classes under RARE of the rows, or else the smallest class."""
    values, counts = np.unique(classes, return_counts=True)
    rare = values[counts < RARE * len(classes)]
    return rare if len(rare) else values[[np.argmin(counts)]]


def derive(x, classes, seed, max_outliers=MAX_OUTLIERS):
    """The anomaly set: labels 1 for the outlier classes, and the rows kept
    (outliers beyond `max_outliers` of the normal rows dropped at random)."""
    y = np.isin(classes, outlier_classes(classes)).astype(np.int64)
    outliers = np.flatnonzero(y == 1)
    cap = int(max_outliers * (len(y) - len(outliers)))
    if len(outliers) > cap:
        drop = np.random.default_rng(seed).choice(outliers, len(outliers) - cap, replace=False)
        keep = np.setdiff1d(np.arange(len(y)), drop)
        x, y = x[keep], y[keep]
    return x, y


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pmlb", type=pathlib.Path, required=True)
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--sets", type=pathlib.Path)
    args = ap.parse_args()
    suite = Suite(args.out, "pmlb_blob")
    for n, (name, blob, digest) in enumerate(SETS):
        raw = read_blob(args.pmlb, blob)
        assert sha256(raw) == digest, f"{name}: sha256 differs from the recorded one"
        x, classes, _ = parse_tsv(raw)
        assert np.isfinite(x).all(), name
        x, y = derive(x, classes, 0)
        assert y.sum() >= 10, f"{name}: fewer than 10 outliers"
        suite.add(name, "pmlb", x, y, blob, 3000 + n)
    suite.finish(args.sets)


if __name__ == "__main__":
    main()
