"""A model scored on several held-out scenes, so a figure is not one scene's luck.

Five scenes synthesized fresh from seeds no training or validation scene uses:
0.5 m, 0.3 m and 0.7 m (run at the model's GSD, so resampled), one with an
irregular no-data edge, and the second date of a two-date pair. Each goes
through `process_scene` with the default options, then `infer evaluate`'s
scoring against its truth. Reported per scene and per class, with the worst
scene per class, against the targets: AP@0.5 >= 0.95 and precision >= 0.9
for every class, storehouse AP@[.5:.95] >= 0.75.

`python -m bench.heldout_suite [--model checkpoints/reference.onnx] [--size 2048]`
writes bench/results/heldout_suite.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench.machine import describe
from infer.analysis.evaluate import evaluate
from infer.runtime.model import OnnxModel
from infer.runtime.options import RunOptions
from infer.runtime.pipeline import process_scene
from synth.cli import main as synth

#: (name, generator flags, seed, the file to run: the first date or the second).
SCENES = (
    ("0.5 m", [], 4501, "scene_000"),
    ("0.3 m", ["--gsd", "0.3"], 4502, "scene_000"),
    ("0.7 m", ["--gsd", "0.7"], 4503, "scene_000"),
    ("no-data edge", ["--nodata-border"], 4504, "scene_000"),
    ("second date", ["--second-date"], 4505, "scene_000_t2"),
)
TARGETS = {"ap@0.5": 0.95, "precision": 0.9, "storehouse ap@[.5:.95]": 0.75}


def heldout_runs(model: OnnxModel, size: int, tmp: Path) -> Iterator[tuple[str, int, list[str], Path, Path, dict]]:
    """Each scene of `SCENES` generated at `size` in `tmp` and run with the default options: (name, seed,
    flags, scene, its truth GeoJSON, the run's summary entry)."""
    for name, flags, seed, stem in SCENES:
        folder = tmp / f"seed{seed}"
        synth(["--out", str(folder), "--size", str(size), "--seed", str(seed), "--quiet", *flags])
        scene, run = folder / f"{stem}.tif", folder / "run"
        run.mkdir()
        yield name, seed, flags, scene, folder / f"{stem}.geojson", process_scene(model, scene, run,
                                                                                  RunOptions(progress=False))


def heldout_scores(model: OnnxModel, size: int) -> list[dict]:
    """`infer evaluate`'s scores of `model` on each scene of `SCENES`, one row per scene."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        for name, seed, flags, scene, truth, entry in heldout_runs(model, size, Path(tmp_name)):
            scores = evaluate(Path(entry["outputs"]["geojson"]), truth, scene)
            rows.append({"scene": name, "seed": seed, "flags": flags, "megapixels": entry["megapixels"],
                         "map@0.5": scores["map@0.5"], "map@[.5:.95]": scores["map@[.5:.95]"],
                         "classes": scores["classes"]})
            print(name, {k: (v.get("ap@0.5"), v.get("precision")) for k, v in scores["classes"].items()})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=Path("checkpoints/reference.onnx"))
    p.add_argument("--size", type=int, default=2048, help="scene side in the generator's pixels")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args()
    rows = heldout_scores(OnnxModel(args.model), args.size)
    classes = sorted({c for r in rows for c in r["classes"]})
    worst = {c: {key: min(r["classes"][c][key] for r in rows if key in r["classes"].get(c, {}))
                 for key in ("ap@0.5", "ap@[.5:.95]", "precision", "recall")} for c in classes}
    missed = [f"{c} {key} {worst[c][key]:.3f} < {TARGETS[key]}" for c in classes for key in ("ap@0.5", "precision")
              if worst[c][key] < TARGETS[key]]
    if "storehouse" in worst and worst["storehouse"]["ap@[.5:.95]"] < TARGETS["storehouse ap@[.5:.95]"]:
        missed.append(f"storehouse ap@[.5:.95] {worst['storehouse']['ap@[.5:.95]']:.3f} < 0.75")
    result = {"benchmark": "heldout_suite", "machine": describe(), "model": str(args.model), "size_px": args.size,
              "scenes": rows, "worst": worst, "targets": TARGETS, "targets_missed": missed}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "heldout_suite.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"worst": worst, "targets_missed": missed}, indent=1))


if __name__ == "__main__":
    main()
