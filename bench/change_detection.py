"""How well `infer diff --model` finds the changes in generated two-date pairs, whose changes are known.

`python -m bench.change_detection --model checkpoints/reference.onnx --pairs 3`
synthesizes scene pairs with `--second-date` (seeds 100, 101, …), runs the
model on both dates and the diff, and scores the found changes against each
pair's `_changes.geojson` (objects within the diff tolerance, region changes
by IoU). Writes bench/results/change_detection.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.machine import describe
from infer.analysis.change_scoring import score_changes
from infer.cli.diff import main as diff_main
from infer.contract.defaults import DEFAULT_SCORE
from synth.cli import main as synth

DISTANCE_M = 5.0
MIN_IOU = 0.3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=Path("checkpoints/reference.onnx"))
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--score", type=float, default=DEFAULT_SCORE)
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args()
    totals = {"true": 0, "found": 0, "matched": 0}
    per_change: dict[str, dict[str, int]] = {}
    pairs = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.pairs):
            folder = Path(tmp) / f"pair{k}"
            synth(["--out", str(folder), "--size", str(args.size), "--seed", str(100 + k), "--second-date", "--quiet"])
            diff_main([str(folder / "scene_000.tif"), str(folder / "scene_000_t2.tif"), "--out", str(folder / "diff"),
                       "--model", str(args.model), "--score", str(args.score)])
            truth = json.loads((folder / "scene_000_changes.geojson").read_text())["features"]
            found = json.loads((folder / "diff" / "changes.geojson").read_text())["features"]
            scores = score_changes(truth, found, distance_m=DISTANCE_M, min_iou=MIN_IOU)
            pairs.append({"seed": 100 + k, **{key: scores[key] for key in ("precision", "recall", "true", "found")}})
            for key in totals:
                totals[key] += scores[key]
            for name, entry in scores["per_change"].items():
                mine = per_change.setdefault(name, {"true": 0, "found": 0, "matched": 0})
                for key in mine:
                    mine[key] += entry[key]
    result = {
        "benchmark": "change_detection",
        "machine": describe(),
        "model": str(args.model),
        "pairs": args.pairs, "size": args.size, "score": args.score,
        "match": {"object_distance_m": DISTANCE_M, "region_min_iou": MIN_IOU},
        "precision": round(totals["matched"] / max(1, totals["found"]), 3),
        "recall": round(sum(e["matched"] for e in per_change.values()) / max(1, totals["true"]), 3),
        "totals": totals,
        "per_change": {name: {**e, "precision": round(e["matched"] / max(1, e["found"]), 3),
                              "recall": round(e["matched"] / max(1, e["true"]), 3)}
                       for name, e in sorted(per_change.items())},
        "per_pair": pairs,
        "seconds": round(time.perf_counter() - start, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "change_detection.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("precision", "recall", "totals", "per_change")}, indent=1))


if __name__ == "__main__":
    main()
