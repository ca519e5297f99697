#!/usr/bin/env python3
"""Builds the fresh anomaly suite (`data/anomaly-fresh/README.md`) from the
ADRepository of Pang et al.

    python scripts/anomaly_fresh_data.py --repo DIR --out OUT [--sets PATH]

DIR is a checkout of GuansongPang/ADRepository-Anomaly-detection-datasets;
every file used is checked against its sha256 below. Nominal attributes
become one column per declared value (one-hot; a missing value `?` sets
none of them), attributes whose values are {0,1} stay one 0/1 column, and
the class attribute becomes the label (1 = the outlier class named below).
OUT receives, per set, `csv/NAME.csv.gz` (columns x0..x{d-1}, label),
`splits/NAME.txt` (10 random 60/40 splits of the PyOD protocol, one line
per split: the 0-based train row indices) and `SHA256SUMS`; with `--sets`
also the suite's table (`data/anomaly-fresh/sets.tsv`). Sets over 10,000
rows are subsampled to 10,000 rows, stratified, seed 0, as in
`anomaly_dev_data.py`, whose helpers this reuses. Deterministic output.
"""
import argparse
import csv as csvlib
import io
import lzma
import pathlib
import tarfile

import numpy as np

from anomaly_dev_data import Suite, sha256, subsample

CAT = "categorical data"
NUM = "numerical data/DevNet datasets"

# name, file in the repository, member inside a .tar.xz (or None), outlier
# class value, sha256 of the repository file
SETS = [
    ("AID362", f"{CAT}/AID362red_train_allpossiblenominal.arff", None, "Active",
     "b4ba8d89eaf90764e29f1b1177f808c0d25c263ba7abd46d96bfd909d79ca85a"),
    ("apascal", f"{CAT}/apascal_entire_trainvsall.arff", None, "1",
     "3dcf2f6b7ef4310db6c2b1480c7aedfbe3ba5d026701eee92b8f077d847f3c54"),
    ("backdoor", f"{NUM}/UNSW_NB15_traintest_backdoor.tar.xz",
     "UNSW_NB15_traintest_backdoor.csv", "1",
     "b3f703966c1cc952f55d73f707611be8157500f20a296a8598438a2f572bfdfe"),
    ("census", f"{CAT}/census-income-full-nominal.tar.xz",
     "census-income-full-nominal.arff", "50000+.",
     "de528ec7ee39163c18a397f915481524bcd45a5ae6e2f60135e560363b43dc62"),
    ("chess", f"{CAT}/chess_krkopt_zerovsall.arff", None, "1",
     "1dacd4794810fc0b66438e0ac96a4a5eb7158e7b76f999cc5f8a1168fab3edc6"),
    ("cmc", f"{CAT}/cmc-nominal.arff", None, "1",
     "8daa66c2c108bc4d9ae0d133dd8503be0fcc70d0774d884584e888a1f7093704"),
    ("probe", f"{CAT}/kddcup99-corrected-probevsnormal-nominal-cleaned.arff", None, "1",
     "d690c5cae5e9fd7996d04ba3491d14de2f1bdd347d9134ebb827d6e259f7639f"),
    ("R10", f"{CAT}/Reuters-corn-100.arff", None, "yes",
     "fdc4178ccdb5a4ed2b2ef230f283c91c9f30693445c84ad54080b8812ec7488b"),
    ("solar-flare", f"{CAT}/solar-flare_FvsAll-cleaned.arff", None, "1",
     "6c66349ac2aa437e1540fbbd6158fe0ca05eadba1ccfcdfe01c825dc84660631"),
    ("u2r", f"{CAT}/kddcup99-corrected-u2rvsnormal-nominal-cleaned.arff", None, "1",
     "ca950fd87255a26d1a5e2fd7d80cf64a015a1a17bcd96edaa989c745e3a24a8c"),
    ("w7a", f"{CAT}/w7a-libsvm-nonsparse.tar.xz", "w7a-libsvm-nonsparse.arff", "1",
     "9a2e9ffead469d7b337c1f2b16256913efb5729977c3ced4993fae1e1cc75cdc"),
]


def read_text(raw, member):
    if member is None:
        return raw.decode()
    with tarfile.open(fileobj=io.BytesIO(lzma.decompress(raw)), mode="r:") as tar:
        return tar.extractfile(member).read().decode()


def attribute(line):
    """(name, declared values or None for a numeric attribute) of an ARFF line."""
    rest = line.split(None, 1)[1]
    if "{" in rest:
        name, values = rest.split("{", 1)
        values = values.split("}", 1)[0]
        return name.strip(), [v.strip().strip("'\"") for v in values.split(",")]
    return rest.split()[0], None


def parse_arff(text, outlier):
    """Encoded features (float64) and labels of an ARFF text whose last
    attribute is the class."""
    attrs, rows, in_data = [], [], False
    for line in text.splitlines():
        s = line.split("%", 1)[0].strip()
        if not s:
            continue
        if not in_data:
            if s.lower().startswith("@attribute"):
                attrs.append(attribute(s))
            elif s.lower().startswith("@data"):
                in_data = True
            continue
        rows.append([v.strip().strip("'\"") for v in s.split(",")])
    *features, (cls, classes) = attrs
    assert classes is not None and outlier in classes, cls
    columns = []
    for j, (name, values) in enumerate(features):
        cells = [r[j] for r in rows]
        if values is None:
            columns.append(np.array([float(c) for c in cells]))
        elif sorted(values) == ["0", "1"]:
            columns.append(np.array([float(c) for c in cells]))
        else:
            known = set(values) | {"?"}
            assert all(c in known for c in cells), f"{name}: undeclared value"
            columns += [np.array([c == v for c in cells], float) for v in values]
    y = np.array([r[-1] == outlier for r in rows], np.int64)
    assert all(len(r) == len(attrs) for r in rows)
    return np.column_stack(columns), y


def parse_csv(text, outlier):
    """Features and labels of a CSV with a header whose last column is the class."""
    rows = list(csvlib.reader(io.StringIO(text)))[1:]
    x = np.array([[float(v) for v in r[:-1]] for r in rows])
    y = np.array([r[-1].strip() == outlier for r in rows], np.int64)
    return x, y


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=pathlib.Path, required=True)
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--sets", type=pathlib.Path)
    args = ap.parse_args()
    suite = Suite(args.out, "source_file")
    for n, (name, file, member, outlier, digest) in enumerate(SETS):
        raw = (args.repo / file).read_bytes()
        assert sha256(raw) == digest, f"{file}: sha256 differs from the recorded one"
        text = read_text(raw, member)
        parse = parse_csv if (member or file).endswith(".csv") else parse_arff
        x, y = parse(text, outlier)
        assert x.ndim == 2 and len(x) == len(y) and set(np.unique(y)) == {0, 1}, name
        assert np.isfinite(x).all(), name
        keep = subsample(y, 0)
        x, y = x[keep], y[keep]
        x = x.astype(np.float64)
        suite.add(name, "fresh", x, y, pathlib.Path(file).name, 2000 + n)
    suite.finish(args.sets)


if __name__ == "__main__":
    main()
