"""Region AP by closing radius: the sweep that chose `infer run --region-closing`'s default.

Runs the batch pipeline over one synthetic dev scene, once per radius, and
scores its region classes. The dev scene's seed is not the held-out
benchmark's, so the default is not tuned on the scene the model is judged on.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.heldout import synth_heldout
from bench.machine import describe
from infer.analysis.evaluate import evaluate
from infer.contract.defaults import DEFAULT_SCORE
from infer.runtime.model import OnnxModel
from infer.runtime.pipeline import RunOptions, process_scene
from train.export import export_checkpoint

DEV_SEED = 777


def sweep(checkpoint: Path, size: int, seed: int, radii: list[float], score: float = 0.05) -> list[dict]:
    """Per radius (metres): each region class's AP@0.5, pieces predicted and pixel IoU; the run's seconds."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        export_checkpoint(checkpoint, tmp / "model.onnx")
        scene, truth = synth_heldout(tmp / "scene", size, seed)
        model = OnnxModel(tmp / "model.onnx", device="cpu")
        regions = {c.name for c in model.info.region_classes}
        for radius in radii:
            out = tmp / f"run-{radius:g}"
            out.mkdir()
            start = time.perf_counter()
            process_scene(model, scene, out, RunOptions(score=score, region_closing_m=radius, progress=False))
            seconds = time.perf_counter() - start
            report = evaluate(out / "scene_000.geojson", truth, scene, iou=0.5, score=DEFAULT_SCORE, regions=regions)
            rows.append({"radius_m": radius, "seconds": round(seconds, 1), "classes": {
                name: {k: entry.get(k) for k in ("truth", "predicted", "ap@0.5", "iou")}
                for name, entry in report["classes"].items() if name in regions}})
            print(f"{radius:g} m: " + ", ".join(f"{n} AP@0.5 {e['ap@0.5']}" for n, e in rows[-1]["classes"].items()),
                  flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, default=Path("checkpoints/reference.ckpt"))
    p.add_argument("--size", type=int, default=4096, help="dev scene side in pixels (default: 4096)")
    p.add_argument("--seed", type=int, default=DEV_SEED, help=f"dev scene seed (default: {DEV_SEED})")
    p.add_argument("--radii", type=float, nargs="+", default=[0, 2, 4, 6, 8, 12], help="closing radii in metres")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args()
    result = {"benchmark": "region_closing", "machine": describe(), "checkpoint": str(args.checkpoint),
              "scene": {"size_px": args.size, "seed": args.seed},
              "sweep": sweep(args.checkpoint, args.size, args.seed, args.radii)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "region_closing.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
