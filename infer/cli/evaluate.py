"""`python -m infer evaluate PRED.geojson TRUTH.geojson --scene SCENE.tif`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from infer.analysis.evaluate import evaluate
from infer.cli.console import OneLineArgumentParser, class_pair, finite_float
from infer.contract.defaults import DEFAULT_SCORE
from infer.contract.label_formats import READERS
from infer.errors import UsageError
from infer.files import write_text_atomic
from infer.geo.rasterenv import is_virtual
from infer.geo.vector_files import LABEL_SUFFIXES


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="python -m infer evaluate",
                              description="Score predictions against truth for one scene: per class AP, "
                                          "precision, recall, F1, IoU of region classes, and the median heading "
                                          "error of the objects found (for a class with a front, the share "
                                          "whose front is the right end).")
    p.add_argument("pred", type=Path, help="predicted GeoJSON (from `infer run`)")
    p.add_argument("truth", type=Path,
                   help="truth: a GeoJSON (or a GeoPackage, Shapefile, FlatGeobuf in any CRS), or for a picture in "
                        "pixels its PASCAL VOC .xml, YOLO or DOTA .txt, or a COCO .json listing it "
                        "(see --truth-format)")
    p.add_argument("--truth-format", choices=("geojson", *sorted(READERS)),
                   help="format of TRUTH (default: from its suffix: .geojson, .xml voc, .json coco or GeoJSON; "
                        "a .txt needs yolo or dota); class names match regardless of case, spaces and hyphens")
    p.add_argument("--scene", type=Path, required=True, help="the scene both refer to (its pixel grid is used)")
    p.add_argument("--class", dest="classes", type=class_pair, action="append", default=[], metavar="NAME=CLASS",
                   help="with truth in pixels: count truth class NAME as CLASS (as `train import --class`); repeat "
                        "for several")
    p.add_argument("--iou", type=finite_float, default=0.5, help="IoU for AP, precision and recall (default: 0.5)")
    p.add_argument("--score", type=finite_float, default=DEFAULT_SCORE,
                   help=f"score threshold for precision/recall (default: {DEFAULT_SCORE:g})")
    p.add_argument("--regions", help="comma-separated region classes (default: classes without heading_deg)")
    p.add_argument("--out", type=Path, help="JSON report (default: PRED with _eval.json)")
    return p


def truth_format(path: Path) -> str:
    """The format of a truth file from its suffix (and, for .json, whether it is a GeoJSON)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return "geojson" if json.loads(path.read_text()).get("type") == "FeatureCollection" else "coco"
        except (OSError, ValueError, AttributeError):
            return "coco"
    if suffix in LABEL_SUFFIXES:
        return "geojson"
    if suffix == ".xml":
        return "voc"
    raise UsageError(f"cannot tell the format of {path.name} from its suffix: give --truth-format yolo or dota")


def _cell(row: dict, key: str, width: int) -> str:
    return f"{row[key]:>{width}.3f}" if key in row else " " * (width - 1) + "-"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 < args.iou < 1:
        raise UsageError(f"--iou must be between 0 and 1, got {args.iou}")
    if not 0 <= args.score <= 1:
        raise UsageError(f"--score must be between 0 and 1, got {args.score}")
    for path in (args.pred, args.truth, args.scene):
        if not path.exists() and not (path is args.scene and is_virtual(path)):  # GDAL opens those, or says why
            raise UsageError(f"not found: {path}")
    regions = set(args.regions.split(",")) if args.regions else None
    report = evaluate(args.pred, args.truth, args.scene, args.iou, args.score, regions,
                      args.truth_format or truth_format(args.truth), dict(args.classes))
    out = args.out or args.pred.with_name(f"{args.pred.stem}_eval.json")
    write_text_atomic(out, json.dumps(report, indent=1) + "\n")
    key = f"ap@{args.iou:g}"
    print(f"{'class':<14} {'truth':>5} {'pred':>5} {key:>8} {'ap@[.5:.95]':>11} {'prec':>6} {'recall':>6} "
          f"{'f1':>6} {'iou':>6} {'head°':>6} {'front':>6}")
    for name, r in report["classes"].items():
        heading = f"{r['heading_error_deg']:>6.1f}" if "heading_error_deg" in r else " " * 5 + "-"
        print(f"{name:<14} {r.get('truth', 0):>5} {r.get('predicted', 0):>5} {_cell(r, key, 8)} "
              f"{_cell(r, 'ap@[.5:.95]', 11)} {_cell(r, 'precision', 6)} {_cell(r, 'recall', 6)} "
              f"{_cell(r, 'f1', 6)} {_cell(r, 'iou', 6)} {heading} {_cell(r, 'front_right', 6)}")
    print(f"mAP@{args.iou:g} {report[f'map@{args.iou:g}']:.3f}  mAP@[.5:.95] {report['map@[.5:.95]']:.3f}  -> {out}")
    return 0
