#!/usr/bin/env python3
"""Builds the anomaly development suite (`data/anomaly-dev/README.md`) from
ADBench's classical `.npz` files.

    python scripts/anomaly_dev_data.py --adbench DIR --out OUT

DIR holds ADBench's `adbench/datasets/Classical/*.npz` (repository
Minqi824/ADBench, BSD-2-Clause); every file used is checked against its
sha256 below. OUT receives, per set, `csv/NAME.csv.gz` (columns x0..x{d-1},
label; label 1 = outlier) and `splits/NAME.txt` (10 random 60/40 splits of
the PyOD protocol, one line per split: the 0-based train row indices), and
`SHA256SUMS` of what it wrote; with `--sets PATH` also the suite's table
(`data/anomaly-dev/sets.tsv`: name, part, rows, features, outliers, file,
sha256 of the CSV). The part (choice or confirmation) comes from a seeded
shuffle of the set names (seed 16; the first 10 choose the rule, the other
11 confirm it), fixed before any detector ran on these sets. Sets over 10,000 rows are subsampled to
10,000 rows, stratified (the outlier fraction kept to the row), seed 0.
The output is deterministic: the same inputs give the same bytes (gzip
without a timestamp).
"""
import argparse
import gzip
import hashlib
import pathlib

import numpy as np

MAX_ROWS = 10_000
PART_SEED = 16
CHOICE_SETS = 10
SPLITS = 10
TRAIN_FRACTION = 0.6

# name, ADBench file, sha256 of the .npz
SETS = [
    ("ALOI", "1_ALOI.npz", "792d0b5bd1147bfc9574a1974f157b39fbd4cbed8ecd04cf983fd554498ed477"),
    ("annthyroid", "2_annthyroid.npz", "e738f7c58a8740d2c4aac4c71ff49ce5e1d1aa16f44178135fc9c09df05fad1b"),
    ("breastw", "4_breastw.npz", "4f37ce07dbc25ddad8178fdc6d664ab46d2d0000ee28c2787c3c7ff3c03ef9f6"),
    ("campaign", "5_campaign.npz", "74dd4d0072d6c6f1aabab63bc102f9633454f32bb936fa9bcfbd38f9f2386bcd"),
    ("celeba", "8_celeba.npz", "1cadfdea14cd8d240eca715a70c09c88af8621d086a7478c63f602d97adef0b5"),
    ("cover", "10_cover.npz", "945a097c3542ae81a551bf1c06dcad78a755d94f84fcaf1d60687e42d1a656df"),
    ("donors", "11_donors.npz", "5824ec854465f2763b4bfe3da1ae9f25ed5433b5c6e265d42e37da4f82a58679"),
    ("fault", "12_fault.npz", "ec27301f9a4cf7c5d8b22c360cf37ddb043b7fb062465723dfd8b34e2771e5dd"),
    ("Hepatitis", "15_Hepatitis.npz", "4a87a2f7d8013e5bfde63294fae61ec7a612322de72f338a7f9491749025ad98"),
    ("http", "16_http.npz", "9d98710091551587f4740cfc851a6b064fff6319a337c2dc77ee6da4bcc2e02c"),
    ("magic.gamma", "22_magic.gamma.npz", "0be375984d7af9ea7a63b12206c240840d8b7daa3607021c5fb8756407dd86f1"),
    ("mammography", "23_mammography.npz", "a0308ac9712d78321073b1c2dc98dc37665c0f35c1cc33019416fe8f8d7de7ea"),
    ("PageBlocks", "27_PageBlocks.npz", "10a9b4d5bb5d3b9083caab4c4062f665610eada703c3d927bf7c34b1f2d0d223"),
    ("skin", "33_skin.npz", "d02aa01ffc1b6bf2b8b1ac250c90e8a8eacd0cefc962940ed5cc4bf5deac9c95"),
    ("SpamBase", "35_SpamBase.npz", "d0c46c7928e43f6496bcd06e09de0b70f6bc8143792dfa0a43f450263d254e9b"),
    ("Stamps", "37_Stamps.npz", "99fe739447284f613fa54bf2dccdb51c5120175ce6260adec6dad77576c42509"),
    ("Waveform", "41_Waveform.npz", "6c9d867337ad1a2f8372c1d27f4c032f0401237e2041b7c45f00de8d319ff30f"),
    ("Wilt", "44_Wilt.npz", "c70b72aa611ec87b20efb400943ef3ce4f8bf7aa58fcef825fbd28cc5cee3cc9"),
    ("wine", "45_wine.npz", "d5ad8965d92cc57122fe1e6572bb301adbaf795b3e166d187ae00a704d8f6e20"),
    ("WPBC", "46_WPBC.npz", "68a6d67242643855713bcdad07d89ecc472bd00000dccc17ba87916eb2693d19"),
    ("yeast", "47_yeast.npz", "bbb15c873d78a4f6a589f46d0f75814595e2282d2ae7ce7779c750f276c3770d"),
]


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def subsample(y, seed):
    """Row indices (sorted) of a stratified subsample of MAX_ROWS rows."""
    if len(y) <= MAX_ROWS:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    outliers = np.flatnonzero(y != 0)
    normal = np.flatnonzero(y == 0)
    k = int(round(MAX_ROWS * len(outliers) / len(y)))
    keep = np.concatenate(
        [rng.choice(outliers, k, replace=False), rng.choice(normal, MAX_ROWS - k, replace=False)]
    )
    return np.sort(keep)


def fmt(v):
    return repr(float(v)) if isinstance(v, np.floating) else str(int(v))


def write_set(out, name, x, y, split_seed, compresslevel=9):
    """Writes `csv/NAME.csv.gz` (columns x0..x{d-1}, label) and
    `splits/NAME.txt` (SPLITS random train parts of TRAIN_FRACTION, numpy
    `default_rng(split_seed)`, each test part holding both classes) under
    `out`; returns the CSV's sha256 and the two files' SHA256SUMS lines."""
    (out / "csv").mkdir(parents=True, exist_ok=True)
    (out / "splits").mkdir(parents=True, exist_ok=True)
    lines = [",".join([f"x{j}" for j in range(x.shape[1])] + ["label"])]
    lines += [",".join([fmt(v) for v in row] + [str(label)]) for row, label in zip(x, y)]
    text = ("\n".join(lines) + "\n").encode()
    csv = gzip.compress(text, compresslevel=compresslevel, mtime=0)
    (out / f"csv/{name}.csv.gz").write_bytes(csv)
    rng = np.random.default_rng(split_seed)
    n_train = int(round(TRAIN_FRACTION * len(y)))
    split_lines = []
    for _ in range(SPLITS):
        train = np.sort(rng.permutation(len(y))[:n_train])
        test = np.setdiff1d(np.arange(len(y)), train)
        assert 0 < y[test].sum() < len(test), f"{name}: a test part has one class"
        split_lines.append(" ".join(map(str, train)))
    splits = ("\n".join(split_lines) + "\n").encode()
    (out / f"splits/{name}.txt").write_bytes(splits)
    return sha256(csv), [f"{sha256(csv)}  csv/{name}.csv.gz", f"{sha256(splits)}  splits/{name}.txt"]


def read_adbench(path, digest, name):
    """Features and 0/1 labels of an ADBench `.npz` file, checked against
    its recorded sha256 and for shape, labels and finite values."""
    assert sha256(path.read_bytes()) == digest, f"{path.name}: sha256 differs from the recorded one"
    d = np.load(path, allow_pickle=False)
    x, y = d["X"], d["y"].astype(np.int64).ravel()
    assert x.ndim == 2 and len(x) == len(y) and set(np.unique(y)) == {0, 1}, name
    assert np.isfinite(x.astype(np.float64)).all(), name
    return x, y


class Suite:
    """A suite being written under `out`: each set's files (`write_set`),
    then `SHA256SUMS` and the suite's table (name, part, rows, features,
    outliers, the source column, the CSV's sha256)."""

    def __init__(self, out, source_column):
        self.out = out
        self.sums = []
        self.table = [f"name\tpart\trows\tfeatures\toutliers\t{source_column}\tcsv_sha256"]

    def add(self, name, part, x, y, source, split_seed, compresslevel=9):
        csv_sha, sums = write_set(self.out, name, x, y, split_seed, compresslevel)
        self.sums += sums
        row = [name, part, x.shape[0], x.shape[1], int(y.sum()), source, csv_sha]
        self.table.append("\t".join(map(str, row)))
        print(self.table[-1], flush=True)

    def finish(self, sets):
        """Writes `SHA256SUMS` and, if `sets` is given, the table there."""
        (self.out / "SHA256SUMS").write_text("\n".join(self.sums) + "\n")
        if sets:
            sets.write_text("\n".join(self.table) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adbench", type=pathlib.Path, required=True)
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--sets", type=pathlib.Path)
    args = ap.parse_args()
    order = np.random.default_rng(PART_SEED).permutation(len(SETS))
    part = {SETS[i][0]: "choice" if r < CHOICE_SETS else "confirmation" for r, i in enumerate(order)}
    suite = Suite(args.out, "adbench_file")
    for n, (name, file, digest) in enumerate(SETS):
        x, y = read_adbench(args.adbench / file, digest, name)
        keep = subsample(y, 0)
        x, y = x[keep], y[keep]
        suite.add(name, part[name], x, y, file, 1000 + n)
    suite.finish(args.sets)


if __name__ == "__main__":
    main()
