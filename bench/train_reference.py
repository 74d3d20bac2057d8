"""Score a finished training run on its held-out validation scenes and record it.

`python -m bench.train_reference --run runs/synthetic --config train/configs/synthetic.yaml`
writes bench/results/train_reference.json: per-class AP@0.5, AP@[.5:.95],
region mask IoU of the best checkpoint, with the steps, the wall time of the
run (from its log files) and the machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from bench.machine import describe
from train.cli import SitewatchCLI
from train.data.datamodule import SiteDataModule
from train.task import SiteDetectionTask


def _best_checkpoint(run: Path) -> Path:
    candidates = sorted([*run.rglob("best.ckpt"), *run.rglob("best-*.ckpt")], key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise SystemExit(f"no best checkpoint under {run}")
    return candidates[-1]


def _wall_seconds(run: Path) -> float:
    """From the run's first log file (written at start) to its last checkpoint."""
    start = min(p.stat().st_mtime for p in run.rglob("hparams.yaml"))
    end = max(p.stat().st_mtime for p in run.rglob("*.ckpt"))
    return end - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, default=Path("runs/synthetic"))
    p.add_argument("--config", type=Path, default=Path("train/configs/synthetic.yaml"))
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    p.add_argument("--training-command", default="python -m train fit --config train/configs/synthetic.yaml",
                   help="the command that trained the run, recorded with the result")
    p.add_argument("--name", default="train_reference", help="result file name (default: train_reference)")
    args = p.parse_args()
    best = _best_checkpoint(args.run)
    checkpoint = torch.load(best, map_location="cpu", weights_only=False)
    cli = SitewatchCLI(SiteDetectionTask, SiteDataModule, run=False,
                       args=["--config", str(args.config), "--trainer.logger", "false",
                             "--trainer.enable_progress_bar", "false"])
    metrics = cli.trainer.validate(cli.model, datamodule=cli.datamodule, ckpt_path=str(best))[0]
    result = {
        "benchmark": args.name,
        "machine": describe(),
        "config": str(args.config),
        "training_command": args.training_command,
        "checkpoint": str(best),
        "epoch": checkpoint["epoch"],
        "global_step": checkpoint["global_step"],
        "train_wall_seconds": round(_wall_seconds(args.run), 1),
        "hyper_parameters": {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")},
        "metrics": {k.removeprefix("val/"): round(float(v), 4) for k, v in sorted(metrics.items())},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["metrics"], indent=1))


if __name__ == "__main__":
    main()
