"""Regenerate the README figures: `python -m docs.make_figures`."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import rasterio
import shapely
from PIL import Image
from rasterio.windows import Window

from bench.change_detection import DISTANCE_M, MIN_IOU
from infer.analysis.change_scoring import score_changes
from infer.cli.diff import main as diff_main
from infer.geo.crs import from_wgs84
from synth.cli import main as synth
from synth.preview import draw_labels

DOCS = Path(__file__).parent
CROP = 1000


def _window_around_most_storehouses(tif: Path, labels: Path) -> Window:
    """The CROP x CROP window holding the most storehouses and trucks: the busiest view."""
    features = json.loads(labels.read_text())["features"]
    with rasterio.open(tif) as src:
        inverse = ~src.transform
        centres = [inverse @ tuple(from_wgs84(shapely.geometry.shape(f["geometry"]), src.crs).centroid.coords[0])
                   for f in features if f["properties"]["class"] in ("storehouse", "truck")]
        width, height = src.width, src.height
    best = max(((c, r) for c in range(0, width - CROP + 1, 100) for r in range(0, height - CROP + 1, 100)),
               key=lambda o: sum(o[0] <= x < o[0] + CROP and o[1] <= y < o[1] + CROP for x, y in centres))
    return Window(best[0], best[1], CROP, CROP)


def shrink_png(path: Path, colors: int = 256) -> None:
    """Palette-quantize a figure so the repository stays small."""
    Image.open(path).convert("RGB").quantize(colors=colors, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)


def demo_overlay(run: Path = Path("demo_out/run"), side: int = 1000) -> None:
    """The top-left of `make demo`'s overview (legend included) and the demo's scores, if the demo has run.

    The demo runs the shipped reference model over its held-out 8192² scene (seed 99) and scores it with
    `infer evaluate`; those scores are kept as bench/results/reference_heldout_eval.json.
    """
    overlay, scores = run / "scene_000_overlay.png", run / "scene_000_eval.json"
    if not (overlay.exists() and scores.exists()):
        print(f"{overlay} or {scores} not found: run `make demo` first")
        return
    figure = DOCS / "demo_overlay.png"
    Image.open(overlay).convert("RGB").crop((0, 0, side, side)).save(figure)
    shrink_png(figure)
    record = json.loads(scores.read_text())
    out = Path("bench/results/reference_heldout_eval.json")
    out.write_text(json.dumps(record, indent=1) + "\n")
    print("make demo's held-out scene, AP@0.5:",
          {name: entry.get("ap@0.5") for name, entry in record["classes"].items()}, "->", out)


def changes_figures(pair: Path, model: Path = Path("checkpoints/reference.onnx")) -> None:
    """`infer diff --model` on the demo's scene pair: changes.png and the after date's contact sheet."""
    if not model.exists():
        print(f"{model} not found: export the reference run first")
        return
    out = pair / "diff"
    diff_main([str(pair / "scene_000.tif"), str(pair / "scene_000_t2.tif"), "--out", str(out), "--model", str(model)])
    for source, name in ((out / "changes.png", "changes.png"), (out / "after" / "scene_000_t2_detections.png",
                                                                 "detections.png")):
        Image.open(source).convert("RGB").save(DOCS / name)
        shrink_png(DOCS / name)
    truth = json.loads((pair / "scene_000_changes.geojson").read_text())["features"]
    found = json.loads((out / "changes.geojson").read_text())["features"]
    scores = score_changes(truth, found, distance_m=DISTANCE_M, min_iou=MIN_IOU)
    print("changes.png against the pair's true changes (true / found / matched):")
    for name, entry in scores["per_change"].items():
        print(f"  {name}: {entry['true']} / {entry['found']} / {entry['matched']}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        synth(["--out", tmp, "--size", "2048", "--seed", "7", "--second-date", "--quiet"])
        tif, labels = Path(tmp) / "scene_000.tif", Path(tmp) / "scene_000.geojson"
        window = _window_around_most_storehouses(tif, labels)
        figure = draw_labels(tif, labels, DOCS / "synthetic_scene.png", window=window, max_side=800)
        shrink_png(figure)
        changes_figures(Path(tmp))
    demo_overlay()


if __name__ == "__main__":
    main()
