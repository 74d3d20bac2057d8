"""float32 against int8 (`train export --int8`) of one checkpoint, side by side in one run.

Both files are exported from the same checkpoint in this run; the int8 one is
calibrated on generated training scenes (seed 1: `datasets/synthetic`'s own,
never a held-out seed). Accuracy: `infer evaluate` on the held-out scenes of
`bench.heldout_suite`, per scene and the mean over scenes. Speed, on the same
CPU and one generated scene: the whole `infer run` pipeline, and ONNX Runtime
alone on the same tiles, already read; medians of `--runs` runs, the two
models taking turns. The target (issue #24): int8 keeps the mean mAP@0.5
within 0.01 of float32.

`python -m bench.int8 [--checkpoint checkpoints/reference.ckpt] [--size 4096] [--runs 3]`
writes bench/results/int8.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.heldout_suite import heldout_scores
from bench.machine import describe
from infer.runtime.model import OnnxModel
from infer.runtime.options import RunOptions
from infer.runtime.pipeline import process_scene
from infer.runtime.reader import TileReader, open_grid
from synth.cli import main as synth
from train.data.config import load_dataset_config
from train.export import export_checkpoint

#: The largest drop of the mean mAP@0.5 over the held-out scenes int8 may cost.
MAP_DROP_ALLOWED = 0.01
#: Generated training scenes the int8 ranges are taken from (seed, count, side).
CALIBRATION = (1, 2, 2048)
#: The scene speed is measured on (seed; side from --size).
SPEED_SEED = 5


def _mean(rows: list[dict], key: str) -> float:
    return round(statistics.fmean(r[key] for r in rows), 4)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, default=Path("checkpoints/reference.ckpt"))
    p.add_argument("--dataset", type=Path, default=Path("datasets/synthetic.yaml"),
                   help="the smallest region areas come from here, as `make` exports the reference model")
    p.add_argument("--size", type=int, default=4096, help="side of the speed scene in pixels")
    p.add_argument("--heldout-size", type=int, default=2048, help="side of the held-out scenes in pixels")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        seed, count, side = CALIBRATION
        synth(["--out", str(tmp / "calibration"), "--scenes", str(count), "--size", str(side), "--seed", str(seed),
               "--quiet"])
        calibration = sorted((tmp / "calibration").glob("scene_*.tif"))
        areas = [(c.name, c.min_area_m2) for c in load_dataset_config(args.dataset).region_classes]
        exports = {"fp32": export_checkpoint(args.checkpoint, tmp / "fp32.onnx", min_area_m2=areas),
                   "int8": export_checkpoint(args.checkpoint, tmp / "int8.onnx", min_area_m2=areas, int8=calibration)}
        models = {name: OnnxModel(report.path) for name, report in exports.items()}
        accuracy = {name: heldout_scores(model, args.heldout_size) for name, model in models.items()}

        synth(["--out", str(tmp / "speed"), "--size", str(args.size), "--seed", str(SPEED_SEED), "--quiet"])
        scene = tmp / "speed" / "scene_000.tif"
        info = models["fp32"].info
        grid = open_grid(scene, len(info.bands), info.gsd_m)
        reads = list(TileReader(grid, info.tile, info.overlap))
        batches = [np.stack([r.pixels for r in reads[i:i + args.batch]]) for i in range(0, len(reads), args.batch)]
        options = RunOptions(batch=args.batch, progress=False)
        seconds: dict[str, dict[str, list[float]]] = {name: {"pipeline": [], "onnxruntime": []} for name in models}
        for run in range(args.runs + 1):  # the first round warms sessions and the page cache, not counted
            for name, model in models.items():
                out = tmp / f"run_{name}_{run}"
                out.mkdir()
                start = time.perf_counter()
                process_scene(model, scene, out, options)
                middle = time.perf_counter()
                for batch in batches:
                    model.run(batch)
                if run:
                    seconds[name]["pipeline"].append(middle - start)
                    seconds[name]["onnxruntime"].append(time.perf_counter() - middle)
    mpx = grid.megapixels
    systems = {}
    for name, report in exports.items():
        median = {k: statistics.median(v) for k, v in seconds[name].items()}
        systems[name] = {
            "size_mb": round(report.size_bytes / 1e6, 1),
            "parity": report.parity.summary(),
            "calibration": report.info.provenance.get("int8_calibration"),
            "mean_map@0.5": _mean(accuracy[name], "map@0.5"),
            "mean_map@[.5:.95]": _mean(accuracy[name], "map@[.5:.95]"),
            "scenes": accuracy[name],
            "median_seconds": {k: round(v, 3) for k, v in median.items()},
            "mpx_per_s": {k: round(mpx / v, 3) for k, v in median.items()},
        }
    drop = round(systems["fp32"]["mean_map@0.5"] - systems["int8"]["mean_map@0.5"], 4)
    result = {
        "benchmark": "int8", "machine": describe(), "checkpoint": str(args.checkpoint), "min_area_m2": dict(areas),
        "speed_scene": {"size_px": args.size, "seed": SPEED_SEED, "megapixels": round(mpx, 2)},
        "heldout_size_px": args.heldout_size, "tile": info.tile, "overlap": info.overlap, "batch": args.batch,
        "runs": args.runs, "systems": systems,
        "map@0.5_drop": drop, "map_drop_allowed": MAP_DROP_ALLOWED, "target_met": drop <= MAP_DROP_ALLOWED,
        "speedup": {k: round(systems["fp32"]["median_seconds"][k] / systems["int8"]["median_seconds"][k], 3)
                    for k in ("pipeline", "onnxruntime")},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "int8.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("map@0.5_drop", "target_met", "speedup")}
                     | {name: {k: s[k] for k in ("mean_map@0.5", "mean_map@[.5:.95]", "mpx_per_s")}
                        for name, s in systems.items()}, indent=1))


if __name__ == "__main__":
    main()
