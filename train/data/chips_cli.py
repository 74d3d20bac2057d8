"""`python -m train chips`: cut a scene and its labels into chips with a COCO annotations.json."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from infer.cli.console import OneLineArgumentParser
from infer.errors import UsageError
from train.data.chips import ANNOTATIONS, SCENE_KEY, cut_chips
from train.data.config import load_dataset_config

DEFAULT_DATASET = Path(__file__).resolve().parents[2] / "datasets" / "synthetic.yaml"
MAX_SIZE = 16384


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(
        prog="python -m train chips",
        description="Cut a scene (GeoTIFF) and its labels (GeoJSON, GeoPackage, Shapefile, …) into georeferenced "
        f"chips and a COCO {ANNOTATIONS}; a folder that already has one gains this scene's chips.",
    )
    p.add_argument("scene", type=Path, help="scene GeoTIFF")
    p.add_argument("labels", type=Path, help="the scene's labels: GeoJSON in WGS84, or any vector file OGR reads "
                                              "(GeoPackage, Shapefile, FlatGeobuf, …) in its own CRS")
    p.add_argument("--out", required=True, type=Path, help="chip folder (created if missing)")
    p.add_argument("--dataset", type=Path, default=DEFAULT_DATASET,
                   help="dataset definition: classes and bands (default: datasets/synthetic.yaml)")
    p.add_argument("--size", type=int, default=512, help="chip side in pixels at the dataset GSD (default: 512)")
    p.add_argument("--overlap", type=int, default=0, help="pixels shared by neighbouring chips (default: 0)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 1 <= args.size <= MAX_SIZE:
        raise UsageError(f"--size must be between 1 and {MAX_SIZE} pixels, got {args.size}")
    if not 0 <= args.overlap < args.size:
        raise UsageError(f"--overlap must be at least 0 and less than --size ({args.size}), got {args.overlap}")
    start = time.perf_counter()
    config = load_dataset_config(args.dataset)
    path = cut_chips(args.scene, args.labels, args.out, config, args.size, args.overlap)
    chips, counts, total = _summary(path, args.scene)
    per_class = ", ".join(f"{counts[c.name]} {c.name}" for c in config.classes)
    print(f"{args.scene.name}: {chips} chips of {args.size} px ({per_class}) -> {path} "
          f"({total} chips in all)  {time.perf_counter() - start:.1f} s")
    return 0


def _summary(path: Path, scene: Path) -> tuple[int, Counter, int]:
    """(chips of `scene`, its annotations per class name, chips in the folder) from annotations.json."""
    coco = json.loads(path.read_text())
    source = str(scene.resolve())
    mine = {im["id"] for im in coco["images"] if im.get(SCENE_KEY) == source}
    names = {c["id"]: c["name"] for c in coco["categories"]}
    counts = Counter(names[a["category_id"]] for a in coco["annotations"] if a["image_id"] in mine)
    return len(mine), counts, len(coco["images"])
