#!/usr/bin/env python3
"""Builds the high-dimensional anomaly suite (`data/anomaly-embedding/README.md`)
from ADBench's image and text embeddings.

    python scripts/anomaly_embedding_data.py --adbench DIR --out OUT [--sets PATH]

DIR is ADBench's `adbench/datasets` (repository Minqi824/ADBench,
BSD-2-Clause), holding `CV_by_ResNet18/*.npz` (512 ResNet-18 features per
image) and `NLP_by_BERT/*.npz`, `NLP_by_RoBERTa/*.npz` (768 features per
text); every file used is checked against its sha256 below. OUT receives
the same layout as `anomaly_dev_data.py` writes (`csv/`, `splits/`,
`SHA256SUMS`; 10 random 60/40 splits), with `--sets` the suite's table.
No set has more than 10,000 rows, so none is subsampled. Deterministic.
"""
import argparse
import pathlib

from anomaly_dev_data import Suite, read_adbench

# name, file under DIR, sha256
SETS = [
    ("CIFAR10_0", "CV_by_ResNet18/CIFAR10_0.npz", "f0e89be5576c37e5c2f7393f7a478d8ec0cc348559fc177c273ff076ef10db00"),
    ("CIFAR10_4", "CV_by_ResNet18/CIFAR10_4.npz", "13fe6ac27684cadd0b223a48dcb532474e4eb69592b159d21d8f6d195ec48512"),
    ("CIFAR10_6", "CV_by_ResNet18/CIFAR10_6.npz", "f38334eec73be985612685b3efb99c58faaba7b154ecb5ed9b809acdc4cae9c9"),
    ("MVTec-AD_bottle", "CV_by_ResNet18/MVTec-AD_bottle.npz", "9eb7a78f1f6ecfcd00391ea01fe06f998e3fb7b8e89a34c06d69786ee38a8059"),
    ("MVTec-AD_cable", "CV_by_ResNet18/MVTec-AD_cable.npz", "65f36182cf75ba1b2629af7bee3eec87ed9b050796e0b7c06493993e0ba4cee1"),
    ("MVTec-AD_capsule", "CV_by_ResNet18/MVTec-AD_capsule.npz", "b5d97c3b3c08b0c25fdb3b0fd50e9b9fd24bd75b4e36956d47159e715d52470d"),
    ("MVTec-AD_carpet", "CV_by_ResNet18/MVTec-AD_carpet.npz", "7c9e1f06b185baae2c72b922aa29cb219d2b8d6a9fe1b03f86ccf1fd34a0b6c0"),
    ("MVTec-AD_grid", "CV_by_ResNet18/MVTec-AD_grid.npz", "376fe5d7568fb3c1b9056a03aef6c0c350476a11b4f4579e6b7d8f8e5405f837"),
    ("MVTec-AD_hazelnut", "CV_by_ResNet18/MVTec-AD_hazelnut.npz", "3c40cf88d6c16827c9609c5ef4f0c7d81f8b8509905c9c4c68a79d8ba1696bdf"),
    ("MVTec-AD_leather", "CV_by_ResNet18/MVTec-AD_leather.npz", "c4615f05409b0ae785a007889b4521cf3c3a43ce5b7ff7623f2255c121ef1e29"),
    ("MVTec-AD_metal_nut", "CV_by_ResNet18/MVTec-AD_metal_nut.npz", "c00f29018bbf304c8e50d366fccc635ded7da90dea7e4a2fd41afb1a62609796"),
    ("MVTec-AD_pill", "CV_by_ResNet18/MVTec-AD_pill.npz", "878407b2700e3414dec26f2bae153f28d9b8e9e2367a0775b082efe641531188"),
    ("MVTec-AD_screw", "CV_by_ResNet18/MVTec-AD_screw.npz", "a143cbb84cb2a8bbd5b86065bf56fffbc5c9a52d5da4ba9826c844fe35ef68fa"),
    ("MVTec-AD_tile", "CV_by_ResNet18/MVTec-AD_tile.npz", "6d4564cd2844ff91274612b0dba39c3cfbabedf4535ec3573889bbd575075086"),
    ("MVTec-AD_toothbrush", "CV_by_ResNet18/MVTec-AD_toothbrush.npz", "798a5edef4291e0466d2a7234101ee496927ddd96d0cbb620da008f4ed06753e"),
    ("MVTec-AD_transistor", "CV_by_ResNet18/MVTec-AD_transistor.npz", "4c045fa018a2f4ffd828683b1d35580533662b2336c356e7e579c04da899b98e"),
    ("MVTec-AD_wood", "CV_by_ResNet18/MVTec-AD_wood.npz", "5fb9b4b57f6d66ab06ca3575d51359b0110943d4df4a20b495b1583730fc8d98"),
    ("MVTec-AD_zipper", "CV_by_ResNet18/MVTec-AD_zipper.npz", "d60591ab34dced348b32574c4c0ff680068bbf5017d06d2bc5f9b15521f38bb8"),
    ("SVHN_0", "CV_by_ResNet18/SVHN_0.npz", "3526704c19ae4c62337a37f1f9294e3ec065d9f7a8e21f9e7c881b5acab13579"),
    ("SVHN_8", "CV_by_ResNet18/SVHN_8.npz", "92ea43b44af4876466e840cdcef7fe9cba294cd3be9907a05c9bad1fa5f41e97"),
    ("SVHN_9", "CV_by_ResNet18/SVHN_9.npz", "a0b16b76c29aa70a7eef0c266635f83f0be2fdb06ee6a0fbe1c76841f2f8f7ce"),
    ("20news_3_BERT", "NLP_by_BERT/20news_3.npz", "b5a1d572cac7c81ebc3cf485649c45b7580cb326edf07a1681679984d016831d"),
    ("20news_3_RoBERTa", "NLP_by_RoBERTa/20news_3.npz", "5b713d047e5deb1bd557507457f2e7fc70eaa7a29d9df2bcaf71a2c69a3e38de"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adbench", type=pathlib.Path, required=True)
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--sets", type=pathlib.Path)
    args = ap.parse_args()
    suite = Suite(args.out, "adbench_file")
    for n, (name, file, digest) in enumerate(SETS):
        x, y = read_adbench(args.adbench / file, digest, name)
        suite.add(name, "embedding", x, y, file, 3000 + n, compresslevel=6)
    suite.finish(args.sets)


if __name__ == "__main__":
    main()
