"""Ours vs Ultralytics YOLO + SAHI on the same held-out scene: accuracy and whole-pipeline speed, one run.

`python -m bench.peers.compare --ours checkpoints/reference.onnx checkpoints/fast.onnx --yolo runs/yolo`
synthesizes a held-out scene neither model has seen (seed 4242), runs our
`infer run` pipeline and YOLO + SAHI over it at the same tile and overlap
(ours: the model's recommendation) on the CPU, scores both with
`infer evaluate` (per class AP@0.5 and AP@[.5:.95], from a run at the same low
score threshold), and times both whole pipelines, scene file to GeoJSON on
disk, each at its default threshold as users run it, median of `--runs`. Writes bench/results/peers.json (`--name` for another file).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.heldout import HELDOUT_SEED, synth_heldout
from bench.machine import describe
from bench.peers.sahi_run import export_yolo_onnx, load_sahi_model, sahi_scene, scale_file_of
from infer.analysis.evaluate import evaluate
from infer.contract.defaults import DEFAULT_SCORE
from infer.runtime.model import OnnxModel
from infer.runtime.pipeline import RunOptions, process_scene

SCORE = 0.05  # accuracy runs: low, so AP sees the whole precision-recall curve of each
YOLO_DEFAULT_CONF = 0.25  # Ultralytics' default `conf`


def _timed(fn, runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ours", type=Path, nargs="+", default=[Path("checkpoints/reference.onnx")],
                   help="our exported model(s); the first one's tile and overlap are used by all")
    p.add_argument("--yolo", type=Path, default=Path("runs/yolo"), help="folder of `bench.peers.yolo_train`")
    p.add_argument("--size", type=int, default=4096, help="held-out scene side in pixels")
    p.add_argument("--runs", type=int, default=3, help="timed runs of each pipeline (median reported)")
    p.add_argument("--batch", type=int, default=4, help="tiles per model call, both")
    p.add_argument("--name", default="peers", help="result file name")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args()
    ours = {path.stem: OnnxModel(path, device="cpu") for path in args.ours}
    first = next(iter(ours.values())).info
    tile, overlap = first.tile, first.overlap
    yolo_training = json.loads((args.yolo / "training.json").read_text())
    yolo_onnx = export_yolo_onnx(Path(yolo_training["weights"]), tile)
    yolo = {SCORE: load_sahi_model(yolo_onnx, SCORE, tile),
            YOLO_DEFAULT_CONF: load_sahi_model(yolo_onnx, YOLO_DEFAULT_CONF, tile)}
    megapixels = args.size**2 / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        scene, truth = synth_heldout(tmp / "scene", args.size)
        runners = {}
        for name, model in ours.items():
            def run_ours(low: bool, model=model, out=tmp / name) -> None:
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                score = SCORE if low else DEFAULT_SCORE
                process_scene(model, scene, out, RunOptions(tile=tile, overlap=overlap, score=score, batch=args.batch,
                                                            progress=False))
            runners[name] = (run_ours, tmp / name)

        def run_theirs(low: bool, out=tmp / "yolo_sahi") -> None:
            out.mkdir(exist_ok=True)
            sahi_scene(yolo[SCORE if low else YOLO_DEFAULT_CONF], scene, out / "scene_000.geojson",
                       scale_file_of(args.yolo), tile, overlap, args.batch)

        runners["yolo_sahi"] = (run_theirs, tmp / "yolo_sahi")
        scores = {}
        for name, (fn, out) in runners.items():
            fn(low=True)
            scores[name] = evaluate(out / "scene_000.geojson", truth, scene, iou=0.5, score=DEFAULT_SCORE)
        timings = {name: _timed(lambda fn=fn: fn(low=False), args.runs) for name, (fn, _) in runners.items()}
    systems = {name: {"model": str(path), "provenance": {
        **{k: ours[name].info.provenance.get(k) for k in ("backbone", "fpn_channels", "head_channels", "dataset")},
        "stride": ours[name].info.stride}} for name, path in zip(ours, args.ours, strict=True)}
    systems["yolo_sahi"] = {"model": yolo_training["model"], "onnx": str(yolo_onnx), "training": yolo_training}
    result = {
        "benchmark": args.name,
        "machine": describe(),
        "scene": {"size_px": args.size, "megapixels": megapixels, "seed": HELDOUT_SEED, "held_out": True},
        "tile": tile, "overlap": overlap, "batch": args.batch, "score_threshold": SCORE, "runs": args.runs,
        "speed_thresholds": {"ours": DEFAULT_SCORE, "yolo_sahi": YOLO_DEFAULT_CONF},
        "systems": systems,
        "accuracy": {name: {"map@0.5": s["map@0.5"], "map@[.5:.95]": s["map@[.5:.95]"],
                            "classes": {c: {k: v for k, v in r.items() if k in ("truth", "predicted", "ap@0.5",
                                                                               "ap@[.5:.95]", "iou")}
                                        for c, r in s["classes"].items()}}
                     for name, s in scores.items()},
        "speed": {name: {"median_seconds": round(median, 2), "seconds": [round(t, 2) for t in all_runs],
                         "mpx_per_s": round(megapixels / median, 3),
                         "vs_yolo_sahi": round(timings["yolo_sahi"][0] / median, 3)}
                  for name, (median, all_runs) in timings.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"map@0.5": {n: a["map@0.5"] for n, a in result["accuracy"].items()},
                      "mpx_per_s": {n: v["mpx_per_s"] for n, v in result["speed"].items()}}, indent=1))


if __name__ == "__main__":
    main()
