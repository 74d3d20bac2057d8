"""Ours vs Ultralytics YOLO (+ OBB) + SAHI on held-out scenes: accuracy and whole-pipeline speed, one run.

`python -m bench.peers.compare --ours checkpoints/reference.onnx runs/race_fast/fast.onnx
--yolo runs/race_yolo runs/race_yolo_obb` scores every system on the held-out
suite's five scenes (`bench.heldout_suite.SCENES`: 0.3, 0.5 and 0.7 m, a
no-data edge, a second date; none seen in training), each run at a low score
threshold so AP sees the whole precision-recall curve, and precision and
recall at each system's own default threshold, with `infer evaluate`. Speed:
both whole pipelines on a 4096² held-out scene (seed 4242), scene file to
GeoJSON on disk (ours with `--outputs geojson`, and again writing every output),
each at its default threshold as users run it, at the same tile and overlap
(the first of `--ours`' recommendation), median of `--runs`, all timed in turn.
A YOLO system is a folder of `bench.peers.yolo_train` (its `training.json`
says the budget and the chips seen; ours say theirs with `--budget NAME=TEXT`).
Writes bench/results/peers.json (`--name` for another file).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.heldout import HELDOUT_SEED, synth_heldout
from bench.heldout_suite import SCENES
from bench.machine import describe
from bench.peers.sahi_run import export_yolo_onnx, load_sahi_model, sahi_scene, scale_file_of
from bench.pipeline_ceiling import interleaved_times
from infer.analysis.evaluate import evaluate
from infer.contract.defaults import DEFAULT_SCORE
from infer.runtime.model import OnnxModel
from infer.runtime.pipeline import RunOptions, process_scene
from infer.runtime.runfolder import OUTPUT_SUFFIXES, RECORD_OUTPUT
from synth.cli import main as synth

SCORE = 0.05  # accuracy runs: low, so AP sees the whole precision-recall curve of each
YOLO_DEFAULT_CONF = 0.25  # Ultralytics' default `conf`
#: Suffix of our systems timed writing every output (GeoJSON, GeoPackage, mask COG, pictures), not the GeoJSON alone.
EVERY_OUTPUT = "+every_output"
KEPT = ("truth", "predicted", "ap@0.5", "ap@[.5:.95]", "precision", "recall", "iou")

#: A system runs a scene into a folder, at a low score (accuracy) or at its default one (as users run it),
#: and leaves `scene_000.geojson` there.
Runner = Callable[[Path, Path, bool], None]


def our_runner(model: OnnxModel, tile: int, overlap: int, batch: int,
               outputs: tuple[str, ...] = (RECORD_OUTPUT,)) -> Runner:
    """Ours writing `outputs` (`infer run --outputs`): the GeoJSON alone, as the peer writes, by default."""
    def run(scene: Path, out: Path, low: bool) -> None:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        entry = process_scene(model, scene, out, RunOptions(tile=tile, overlap=overlap, batch=batch, progress=False,
                                                            score=SCORE if low else DEFAULT_SCORE, outputs=outputs))
        written = Path(entry["outputs"]["geojson"])
        if written.name != "scene_000.geojson":
            written.replace(out / "scene_000.geojson")
    return run


def yolo_runner(onnx: Path, yolo_run: Path, tile: int, overlap: int, batch: int) -> Runner:
    models = {low: load_sahi_model(onnx, SCORE if low else YOLO_DEFAULT_CONF, tile) for low in (True, False)}

    def run(scene: Path, out: Path, low: bool) -> None:
        out.mkdir(parents=True, exist_ok=True)
        sahi_scene(models[low], scene, out / "scene_000.geojson", scale_file_of(yolo_run), tile, overlap, batch)
    return run


def suite_scores(runners: dict[str, Runner], thresholds: dict[str, float], size: int, tmp: Path
                 ) -> dict[str, list[dict]]:
    """Each system's `infer evaluate` scores on each held-out suite scene, one row per scene."""
    rows: dict[str, list[dict]] = {name: [] for name in runners}
    for scene_name, flags, seed, stem in SCENES:
        folder = tmp / f"suite{seed}"
        synth(["--out", str(folder), "--size", str(size), "--seed", str(seed), "--quiet", *flags])
        scene, truth = folder / f"{stem}.tif", folder / f"{stem}.geojson"
        for name, run in runners.items():
            out = folder / name
            run(scene, out, True)
            s = evaluate(out / "scene_000.geojson", truth, scene, iou=0.5, score=thresholds[name])
            rows[name].append({"scene": scene_name, "seed": seed, "map@0.5": s["map@0.5"],
                               "map@[.5:.95]": s["map@[.5:.95]"],
                               "classes": {c: {k: v for k, v in r.items() if k in KEPT}
                                           for c, r in s["classes"].items()}})
        print(scene_name, {name: r[-1]["map@0.5"] for name, r in rows.items()})
    return rows


def summarize(rows: list[dict]) -> dict:
    """Mean over the scenes, and the worst scene, of each figure."""
    classes = sorted({c for r in rows for c in r["classes"]})

    def over(values: list[float]) -> dict[str, float]:
        return {"mean": round(float(np.mean(values)), 4), "worst": round(float(np.min(values)), 4)}

    return {"map@0.5": over([r["map@0.5"] for r in rows]), "map@[.5:.95]": over([r["map@[.5:.95]"] for r in rows]),
            "classes": {c: {k: over([r["classes"][c][k] for r in rows if k in r["classes"].get(c, {})])
                            for k in ("ap@0.5", "ap@[.5:.95]", "precision", "recall")} for c in classes}}


def _speed(megapixels: float, median: float, all_runs: list[float], timings: dict, peers: list[str]) -> dict:
    return {"median_seconds": round(median, 2), "seconds": [round(t, 2) for t in all_runs],
            "mpx_per_s": round(megapixels / median, 3),
            "speed_vs": {peer: round(timings[peer][0] / median, 3) for peer in peers}}


def _budget(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=TEXT, got {text!r}")
    return name, value


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ours", type=Path, nargs="+", default=[Path("checkpoints/reference.onnx")],
                   help="our exported model(s); the first one's tile and overlap are used by all")
    p.add_argument("--yolo", type=Path, nargs="+", default=[Path("runs/yolo")],
                   help="folder(s) of `bench.peers.yolo_train`")
    p.add_argument("--budget", type=_budget, action="append", default=[], metavar="NAME=TEXT",
                   help="how one of --ours (by file stem) was trained, recorded with it")
    p.add_argument("--size", type=int, default=4096, help="side in pixels of the timed held-out scene")
    p.add_argument("--suite-size", type=int, default=2048, help="side in pixels of each accuracy scene")
    p.add_argument("--runs", type=int, default=3, help="timed runs of each pipeline (median reported)")
    p.add_argument("--batch", type=int, default=4, help="tiles per model call, both")
    p.add_argument("--name", default="peers", help="result file name")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args()
    budgets = dict(args.budget)
    ours = {path.stem: OnnxModel(path, device="cpu") for path in args.ours}
    first = next(iter(ours.values())).info
    tile, overlap = first.tile, first.overlap
    runners: dict[str, Runner] = {name: our_runner(m, tile, overlap, args.batch) for name, m in ours.items()}
    thresholds = dict.fromkeys(ours, DEFAULT_SCORE)
    systems = {name: {"model": str(path), "training": budgets.get(name), "provenance": {
        **{k: ours[name].info.provenance.get(k) for k in ("backbone", "fpn_channels", "head_channels", "dataset",
                                                          "head_norm")},
        "stride": ours[name].info.stride}} for name, path in zip(ours, args.ours, strict=True)}
    for run in args.yolo:
        training = json.loads((run / "training.json").read_text())
        onnx = export_yolo_onnx(Path(training["weights"]), tile)
        name = f"{Path(training['model']).stem}_sahi"
        runners[name] = yolo_runner(onnx, run, tile, overlap, args.batch)
        thresholds[name] = YOLO_DEFAULT_CONF
        systems[name] = {"model": training["model"], "onnx": str(onnx), "training": training}
    megapixels = args.size**2 / 1e6
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rows = suite_scores(runners, thresholds, args.suite_size, tmp)
        scene, _ = synth_heldout(tmp / "speed", args.size)
        every = {f"{name}{EVERY_OUTPUT}": our_runner(m, tile, overlap, args.batch, tuple(OUTPUT_SUFFIXES))
                 for name, m in ours.items()}
        times = interleaved_times({name: lambda run=run, out=tmp / "speed" / name: run(scene, out, False)
                                   for name, run in {**runners, **every}.items()}, args.runs)
    timings = {name: (statistics.median(t), t) for name, t in times.items()}
    peers = [name for name in runners if name not in ours]
    result = {
        "benchmark": args.name,
        "machine": describe(),
        "suite": {"size_px": args.suite_size, "scenes": [s[0] for s in SCENES]},
        "speed_scene": {"size_px": args.size, "megapixels": megapixels, "seed": HELDOUT_SEED, "held_out": True},
        "tile": tile, "overlap": overlap, "batch": args.batch, "score_threshold": SCORE, "runs": args.runs,
        "default_thresholds": thresholds,
        "systems": systems,
        "accuracy": {name: {**summarize(r), "scenes": r} for name, r in rows.items()},
        "speed": {name: {**_speed(megapixels, *timings[name], timings, peers),
                         **({"every_output": _speed(megapixels, *timings[f"{name}{EVERY_OUTPUT}"], timings, peers)}
                            if name in ours else {})} for name in runners},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"mean map@0.5": {n: a["map@0.5"]["mean"] for n, a in result["accuracy"].items()},
                      "mpx_per_s": {n: v["mpx_per_s"] for n, v in result["speed"].items()}}, indent=1))


if __name__ == "__main__":
    main()
