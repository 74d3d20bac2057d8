"""Score a finished training run and record it.

`python -m bench.train_reference --run runs/synthetic --config train/configs/synthetic.yaml`
writes bench/results/train_reference.json: the best checkpoint's (or `--checkpoint`'s) per-class
AP@0.5, AP@[.5:.95] and region mask IoU on the validation scenes (which chose
that checkpoint), and the same checkpoint exported to ONNX and run by
`infer run` over a held-out scene no training step or checkpoint choice has
seen (seed 4242, the peers' scene), scored by `infer evaluate`; with the
steps, the training wall time (summed over the run's sessions, so a resumed
run counts each once, and over the runs it was fine-tuned from with
`model.init_weights`) and the machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

import torch

from bench.heldout import HELDOUT_SEED, synth_heldout
from bench.machine import describe
from infer.analysis.evaluate import evaluate, found_by_crowding, read_in_pixels
from infer.contract.defaults import DEFAULT_SCORE, REGION_CLOSING_M
from infer.runtime.model import OnnxModel
from infer.runtime.pipeline import RunOptions, process_scene
from train.cli import SitewatchCLI
from train.data.datamodule import SiteDataModule
from train.export import export_checkpoint
from train.task import SiteDetectionTask


def _best_checkpoint(run: Path) -> Path:
    candidates = sorted([*run.rglob("best.ckpt"), *run.rglob("best-*.ckpt")], key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise SystemExit(f"no best checkpoint under {run}")
    return candidates[-1]


def _log_versions(run: Path) -> list[Path]:
    """The run's CSV log folders in order: one per fresh start or `--ckpt_path` resume."""
    versions = [v for v in (run / "csv").glob("version_*") if (v / "metrics.csv").exists()]
    return sorted(versions, key=lambda p: int(p.name.split("_")[-1]))


def _rows(version: Path) -> list[dict]:
    with open(version / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def training_sessions(run: Path) -> list[dict]:
    """One entry per session: its log, first and last epoch, wall seconds.

    A session runs from its `hparams.yaml` (written at start) to the last write
    of its `metrics.csv`.
    """
    sessions = []
    for version in _log_versions(run):
        metrics, hparams = version / "metrics.csv", version / "hparams.yaml"
        epochs = sorted({int(row["epoch"]) for row in _rows(version) if row.get("epoch")})
        if epochs and hparams.exists():
            sessions.append({"log": str(version), "epochs": [epochs[0], epochs[-1]],
                             "wall_seconds": round(metrics.stat().st_mtime - hparams.stat().st_mtime, 1)})
    return sessions


def run_folder(checkpoint: Path) -> Path:
    """The run a checkpoint belongs to: `runs/X` for `runs/X/checkpoints/best.ckpt`."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def earlier_runs(checkpoint: dict) -> list[Path]:
    """Runs a checkpoint was fine-tuned from (`model.init_weights`), nearest first, as far as they exist."""
    runs: list[Path] = []
    start = checkpoint.get("hyper_parameters", {}).get("init_weights")
    while start and Path(start).exists() and run_folder(Path(start)) not in runs:
        runs.append(run_folder(Path(start)))
        start = torch.load(start, map_location="cpu", weights_only=False).get("hyper_parameters", {}).get("init_weights")
    return runs


def validation_curve(run: Path) -> list[dict]:
    """Validation mAP@0.5 and mAP@[.5:.95], overall and per class, of every epoch, over all sessions."""
    curve = []
    for version in _log_versions(run):
        for row in _rows(version):
            if row.get("val/map_50"):
                curve.append({"epoch": int(row["epoch"]) + 1, **{
                    key.removeprefix("val/"): round(float(value), 4) for key, value in row.items()
                    if value and key.startswith(("val/map", "val/ap50/", "val/ap/"))}})
    return curve


#: IoU thresholds besides 0.5 at which the held-out run is also scored: how much of
#: what is missed at 0.5 is found but badly placed. `found_by_crowding` says which.
LOOSER_IOUS = (0.1, 0.3)


def score_heldout(checkpoint: Path, size: int, seed: int, score: float = 0.05) -> dict:
    """Export `checkpoint`, run the batch pipeline over a fresh synthetic scene, score it."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        export_checkpoint(checkpoint, tmp / "model.onnx")
        scene, truth = synth_heldout(tmp / "scene", size, seed)
        model = OnnxModel(tmp / "model.onnx", device="cpu")
        (tmp / "run").mkdir()
        process_scene(model, scene, tmp / "run", RunOptions(score=score, progress=False))
        found = tmp / "run" / "scene_000.geojson"
        report = evaluate(found, truth, scene, iou=0.5, score=DEFAULT_SCORE)
        looser = {f"{iou:g}": {name: entry.get(f"ap@{iou:g}")
                               for name, entry in evaluate(found, truth, scene, iou=iou)["classes"].items()}
                  for iou in LOOSER_IOUS}
        truth_items, _, _ = read_in_pixels(truth, scene)
        found_items, _, _ = read_in_pixels(found, scene)
        objects = sorted({t.cls for t in truth_items if t.oriented})
        crowding = found_by_crowding(truth_items, found_items, objects, iou=0.5, score=DEFAULT_SCORE)
        (tmp / "unclosed").mkdir()
        process_scene(model, scene, tmp / "unclosed", RunOptions(score=score, region_closing_m=0.0, progress=False))
        unclosed = evaluate(tmp / "unclosed" / "scene_000.geojson", truth, scene, iou=0.5, score=DEFAULT_SCORE)["classes"]
    regions = sorted({t.cls for t in truth_items if not t.oriented})
    return {"scene": {"size_px": size, "seed": seed}, "score_threshold": score,
            "region_closing_m": REGION_CLOSING_M, **report, "ap_at_looser_iou": looser,
            "found_by_crowding": crowding,
            "regions_without_closing": {name: {k: unclosed[name].get(k) for k in ("predicted", "ap@0.5", "iou")}
                                        for name in regions}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, default=Path("runs/synthetic"))
    p.add_argument("--config", type=Path, default=Path("train/configs/synthetic.yaml"))
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    p.add_argument("--training-command", default="python -m train fit --config train/configs/synthetic.yaml",
                   help="the command that trained the run, recorded with the result")
    p.add_argument("--training-hardware", default="this machine (see machine)",
                   help="where the run trained, when not on the machine that scores it")
    p.add_argument("--name", default="train_reference", help="result file name (default: train_reference)")
    p.add_argument("--heldout-size", type=int, default=4096, help="held-out scene side in pixels (0: skip)")
    p.add_argument("--heldout-seed", type=int, default=HELDOUT_SEED)
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="score this checkpoint of the run (e.g. its last.ckpt) instead of the newest best.ckpt")
    args = p.parse_args()
    best = args.checkpoint or _best_checkpoint(args.run)
    if not best.is_file():
        raise SystemExit(f"no such checkpoint: {best}")
    checkpoint = torch.load(best, map_location="cpu", weights_only=False)
    cli = SitewatchCLI(SiteDetectionTask, SiteDataModule, run=False, save_config_callback=None,
                       args=["--config", str(args.config), "--trainer.logger", "false",
                             "--trainer.enable_progress_bar", "false", "--model.object_stride",
                             str(checkpoint["hyper_parameters"].get("object_stride", 4))])
    metrics = cli.trainer.validate(cli.model, datamodule=cli.datamodule, ckpt_path=str(best))[0]
    # A fine-tuned model's training time includes the runs it started from.
    sessions = [s for run in [*reversed(earlier_runs(checkpoint)), args.run] for s in training_sessions(run)]
    result = {
        "benchmark": args.name,
        "machine": describe(),
        "config": str(args.config),
        "training_command": args.training_command,
        "training_hardware": args.training_hardware,
        "checkpoint": str(best),
        "epoch": checkpoint["epoch"],
        "global_step": checkpoint["global_step"],
        "train_wall_seconds": round(sum(x["wall_seconds"] for x in sessions), 1),
        "training_sessions": sessions,
        "validation_curve": validation_curve(args.run),
        "hyper_parameters": {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")},
        "metrics": {k.removeprefix("val/"): round(float(v), 4) for k, v in sorted(metrics.items())},
    }
    if args.heldout_size:
        result["heldout"] = score_heldout(best, args.heldout_size, args.heldout_seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["metrics"], indent=1))
    if "heldout" in result:
        print("held out:", json.dumps({c: r.get("ap@0.5") for c, r in result["heldout"]["classes"].items()}))


if __name__ == "__main__":
    main()
