#!/usr/bin/env python3
"""Builds the categorical anomaly suite (`data/anomaly-categorical/README.md`):
anomaly sets derived by one fixed recipe from classification sets of the Penn
Machine Learning Benchmarks that have categorical features.

    python scripts/anomaly_categorical_data.py --pmlb DIR --out OUT [--sets PATH]

DIR is a git clone of EpistasisLab/pmlb (no Git LFS needed): each set is read
from the repository's history by the git blob id below, the last version
before PMLB moved its data to Git LFS (commit e447f565, 2020), and checked
against its sha256; its feature types come from PMLB's `metadata.yaml` at
commit META. The recipe, fixed before any detector ran on these sets:

- a feature is categorical if the set's `metadata.yaml` at META (that of
  `_deprecated_NAME` for sets PMLB has since renamed) names exactly the
  blob's feature columns, in order, and gives it the type `categorical` or
  `nominal`; if the names differ, or there is no such file, a feature is
  categorical if all its values are integers and it has 3 to 20 distinct
  values (only the features' values and names are used, never the labels);
- a set over 10,000 rows keeps 10,000 of them at random (numpy
  `default_rng(0)`) before anything else;
- every categorical feature with 3 or more distinct values becomes one 0/1
  column per value (the sorted distinct values in the set), in its place;
  every other feature (numeric, binary, or categorical with under 3 values)
  is kept unchanged; a set must have at least one one-hot encoded feature
  and at most 128 features after encoding;
- the outliers are every class holding under 5 % of the rows, or, if no
  class is that rare, the smallest class (ties: the lowest label); outliers
  beyond 5 % of the normal rows are dropped at random (numpy
  `default_rng(0)`); a set must keep at least 10 outliers.

The sets below are every PMLB classification set (its 2020 list) of at least
300 rows with data before the move to LFS that is real data (not generated),
has no missing values, passes the rules above and shares no source with a
set seen before (the other suites of issue 16 and the 17 ODDS sets, counting
sets derived from the same original data); of several sets from one source,
the first by name. The README lists the rejected ones and why.

OUT receives, per set, `csv/NAME.csv.gz` (columns x0..x{d-1}, label),
`splits/NAME.txt` (10 random 60/40 splits, one line per split: the 0-based
train row indices) and `SHA256SUMS`; with `--sets` also the suite's table
(`data/anomaly-categorical/sets.tsv`). Writes through `anomaly_dev_data.py`'s
`Suite` and reads PMLB as `anomaly_pmlb_data.py` does; deterministic output.
"""
import argparse
import pathlib
import re

import numpy as np

from anomaly_dev_data import MAX_ROWS, Suite, sha256
from anomaly_pmlb_data import derive, parse_tsv, read_blob

MAX_OUTLIERS = 0.05
MAX_FEATURES = 128
MIN_OUTLIERS = 10
META = "7c1f4bdc00136dc2e55c87fa6b8ba6e8af6d1a68"  # PMLB master, 2025-02-25

# name (PMLB's, before LFS), git blob id of datasets/NAME/NAME.tsv.gz, sha256
# of the blob, PMLB's directory of the set's metadata.yaml at META
SETS = [
    ("agaricus_lepiota", "5b2f3151f0515ea4d178e9733e5714d9400ba5c4",
     "cd9fc8d6cdc07793f16b8455caef2522528727a40e0ecc1d4f83cf506769b1be", "agaricus_lepiota"),
    ("analcatdata_authorship", "20d78b3af48f646ef8024c5accfc7f88ccc720f4",
     "1b26db950ef47fb34fb31958dd18912e279e6a668b0b88834182d303d616b88d", "analcatdata_authorship"),
    ("analcatdata_dmft", "2f365fc032594c91706924ca3552db697bd14e77",
     "2bdda1022a866fd7fa6307e667173c821c206ae007308fb54cf580d668e01e6c", "analcatdata_dmft"),
    ("analcatdata_germangss", "39319c1433cfadbba44ad4564937aac0f86721e3",
     "4addd55e891f926323ea9563b70754607f9ea0e14862a18bde1aa385ed27bfdb", "analcatdata_germangss"),
    ("australian", "ae0c4ecf2d2da054c54b07dd6ff7520c879927e2",
     "7f3e5e96b80f5217830cdd198d33b4262cbded4f7cc22981daaa5d61fdcb8329", "_deprecated_australian"),
    ("cars", "1b6cc287e13337aa4115d70b0c43ae1c8e4f6b53",
     "05d57ad53203e4f5ed4f278e08cc6e810127c151c9e4ac4be61fef56414f70e9", "cars"),
    ("cleveland", "ea703c5bc223cf7c0d0c59e3322346a29871e41b",
     "d63898a804e7ba51230b693cd9ab9d5b381806a783dd87ca36c98f73164183b1", "_deprecated_cleveland"),
    ("colic", "82b0f2ce5fcc2b9982b5b79da4aae4c22f29d370",
     "3259e9d93e965bb6b5e45cca737d96f7c676f3562411c3ae4bd247e773f85ada", "_deprecated_colic"),
    ("credit_g", "3362136798b8d807fcfd2da844bee5e540baa327",
     "039c48aaf10d8ca444c2799123ff37f99c5a98402884e2df66d92cdaac09f53b", "_deprecated_credit_g"),
    ("fars", "c1e2b941529cf5b4e500affa103a95f087fc7af2",
     "aa9ed26f7111c3998e867d30986075f26f0fb0a35bf70645fa482713e2cf5c71", "fars"),
    ("house_votes_84", "6481194cdc136ac89281325e263be7dfeecf5cad",
     "9def90abb62c1b9872ae2dbed3e425850ae44f98d3664e8b29e2444548e9fec9", "_deprecated_house_votes_84"),
    ("irish", "5e255cac7c590a13b087f881f4f3da2613b0a52e",
     "b83ed3585be7a593faa1ae58d7021bed6ffa1af2e3d8298cdfb8f1bc2a0f2879", "irish"),
    ("profb", "7deba9157defc5f578cd7e4a4994c96da1a5233c",
     "dee348826f188c8aaa54cb4537f9dc27afd14b077d8484f451f92f46ee255675", "profb"),
    ("sleep", "8d54c38f6d84aebcd7a166e4849a4c44a73d3d5c",
     "da326113ba8074a5931eb92db0c9acbe8a0ffff62aa916b11a761bdef11231ce", "sleep"),
]


def feature_types(text):
    """(name, type) of each feature listed in a PMLB `metadata.yaml`."""
    out = []
    body = text.split("\nfeatures:", 1)[1]
    for m in re.finditer(r"^  - name: *(.*?)\s*$|^    type: *(\S+)", body, re.M):
        if m.group(1) is not None:
            name = m.group(1)
            if len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"":
                name = name[1:-1]
            out.append([name, None])
        else:
            out[-1][1] = m.group(2)
    return [tuple(f) for f in out]


def categorical(x, names, types):
    """Which features are categorical: by the metadata's types where its
    feature names are the blob's, else integer features of 3 to 20 values."""
    if [name for name, _ in types] == names:
        return np.array([t in ("categorical", "nominal") for _, t in types])
    distinct = np.array([len(np.unique(c)) for c in x.T])
    return (x == np.round(x)).all(axis=0) & (distinct >= 3) & (distinct <= 20)


def one_hot(x, cat):
    """Each categorical feature of 3 or more distinct values replaced, in
    place, by one 0/1 column per sorted distinct value; returns the new
    features and how many were encoded."""
    cols, encoded = [], 0
    for j in range(x.shape[1]):
        values = np.unique(x[:, j])
        if cat[j] and len(values) >= 3:
            cols += [(x[:, j] == v).astype(np.float64) for v in values]
            encoded += 1
        else:
            cols.append(x[:, j])
    return np.column_stack(cols), encoded


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pmlb", type=pathlib.Path, required=True)
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--sets", type=pathlib.Path)
    args = ap.parse_args()
    suite = Suite(args.out, "pmlb_blob")
    for n, (name, blob, digest, meta_dir) in enumerate(SETS):
        raw = read_blob(args.pmlb, blob)
        assert sha256(raw) == digest, f"{name}: sha256 differs from the recorded one"
        x, classes, names = parse_tsv(raw)
        meta = read_blob(args.pmlb, f"{META}:datasets/{meta_dir}/metadata.yaml")
        types = feature_types(meta.decode())
        if len(x) > MAX_ROWS:
            rows = np.sort(np.random.default_rng(0).choice(len(x), MAX_ROWS, replace=False))
            x, classes = x[rows], classes[rows]
        x, encoded = one_hot(x, categorical(x, names, types))
        assert encoded >= 1 and x.shape[1] <= MAX_FEATURES, f"{name}: {x.shape[1]} features"
        x, y = derive(x, classes, 0, MAX_OUTLIERS)
        assert np.isfinite(x).all() and y.sum() >= MIN_OUTLIERS, name
        suite.add(name, "categorical", x, y, blob, 4000 + n)
    suite.finish(args.sets)


if __name__ == "__main__":
    main()
