"""`python -m train import FORMAT SOURCE --dataset YAML --out DIR`: a labeled image set as chip folders."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from infer.cli.console import OneLineArgumentParser, class_pair, finite_float
from infer.contract.label_formats import READERS
from infer.errors import UsageError
from train.data.config import load_dataset_config
from train.data.importer import import_images


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(
        prog="python -m train import",
        description="Turn a labeled image set (PASCAL VOC, YOLO, DOTA or COCO, in pixels) into chip folders "
        "OUT/train and OUT/val for `train fit`: point the dataset YAML's train: and val: at them. Source class "
        "names match the dataset's regardless of case, spaces and hyphens (Tree is tree).")
    p.add_argument("format", choices=sorted(READERS), help="the source's format")
    p.add_argument("source", type=Path,
                   help="voc: a folder of .xml (images beside them or in JPEGImages/); yolo: a folder with "
                        "images/ and labels/ and a data.yaml or classes.txt; dota: a folder with images/ and "
                        "labelTxt/; coco: the JSON file (images beside it or in images/)")
    p.add_argument("--dataset", type=Path, required=True, help="dataset YAML whose classes the labels map to")
    p.add_argument("--out", type=Path, required=True, help="folder for train/ and val/ (must not hold them yet)")
    p.add_argument("--class", dest="classes", type=class_pair, action="append", default=[], metavar="NAME=CLASS",
                   help="map source class NAME to dataset CLASS, or leave it out with NAME=; repeat for several")
    p.add_argument("--val-fraction", type=finite_float, default=0.2,
                   help="share of the images, chosen by a seeded shuffle, kept for validation (default: 0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split (default: 0)")
    p.add_argument("--max-side", type=int, default=1024,
                   help="images larger than this many pixels on a side are cut into tiles of it (default: 1024)")
    p.add_argument("--overlap", type=int, default=0, help="pixels shared by neighbouring tiles (default: 0)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.source.exists():
        raise UsageError(f"{args.source} does not exist")
    start = time.perf_counter()
    config = load_dataset_config(args.dataset)
    images = READERS[args.format](args.source)
    report = import_images(images, config, args.out, val_fraction=args.val_fraction, seed=args.seed,
                           max_side=args.max_side, overlap=args.overlap, explicit=dict(args.classes))
    print("\n".join(report.lines()))
    print(f"{len(images)} {args.format} images imported in {time.perf_counter() - start:.1f} s")
    return 0
