"""Train an Ultralytics YOLO detector on our synthetic training scenes, offline, from its model YAML.

`python -m bench.peers.yolo_train --model yolo11n.yaml --epochs 12 --out runs/yolo`
builds the YOLO dataset (see `yolo_data`) and trains with random init on the
CPU or GPU; the best weights land in `OUT/train/weights/best.pt` and
`OUT/training.json` records the budget, the chips seen and the wall time.
An `-obb` model (`yolo11n-obb.yaml`) gets oriented labels. `--minutes M` gives
a wall-clock budget instead of epochs: Ultralytics' own `time` argument,
which fits its learning-rate schedule to the time left after each epoch.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

from bench.machine import describe
from bench.peers.yolo_data import build_yolo_dataset
from train.data.config import load_dataset_config


def is_oriented(model_yaml: str) -> bool:
    return "-obb" in Path(model_yaml).stem


def train_yolo(model_yaml: str, data_yaml: Path, out: Path, epochs: int, imgsz: int, batch: int,
               device: str, workers: int, minutes: float | None = None) -> tuple[Path, int, int]:
    """Train; returns the best weights, the number of epochs begun and the number of chips seen (a time budget
    can stop an epoch part way)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    model = YOLO(model_yaml)
    batches = [0]  # each batch started is trained, the one a time budget stops at included
    model.add_callback("on_train_batch_start", lambda trainer: batches.__setitem__(0, batches[0] + 1))
    budget = {"time": minutes / 60} if minutes else {}
    model.train(data=str(data_yaml), epochs=epochs, imgsz=imgsz, batch=batch, device=device, workers=workers,
                pretrained=False, amp=False, plots=False, project=str(out.resolve()), name="train", exist_ok=True,
                seed=0, deterministic=False, verbose=False, **budget)
    return out / "train" / "weights" / "best.pt", int(model.trainer.epoch) + 1, batches[0] * batch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", type=Path, default=Path("datasets/synthetic.yaml"))
    p.add_argument("--model", default="yolo11n.yaml", help="Ultralytics model YAML (random init)")
    p.add_argument("--out", type=Path, default=Path("runs/yolo"))
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget; replaces --epochs")
    p.add_argument("--imgsz", type=int, default=256, help="chip side, as our recipe's chip_size")
    p.add_argument("--train-overlap", type=int, default=96,
                   help="overlap of training chips; 96 at 256 px gives about our 1024 samples per epoch")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    if args.minutes is not None and not (math.isfinite(args.minutes) and args.minutes > 0):
        p.error(f"--minutes must be a positive number, got {args.minutes}")
    config = load_dataset_config(args.dataset)
    args.out.mkdir(parents=True, exist_ok=True)
    data_yaml = build_yolo_dataset(config, args.out / "data", args.imgsz, args.train_overlap,
                                   obb=is_oriented(args.model))
    start = time.perf_counter()
    best, epochs, seen = train_yolo(args.model, data_yaml, args.out, args.epochs, args.imgsz, args.batch, args.device,
                              args.workers, args.minutes)
    chips = len(list((args.out / "data" / "images" / "train").glob("*.png")))
    record = {"machine": describe(), "model": args.model, "dataset": config.name, "epochs": epochs,
              "budget_minutes": args.minutes, "imgsz": args.imgsz, "batch": args.batch, "train_chips": chips,
              "chips_seen": seen,
              "train_wall_seconds": round(time.perf_counter() - start, 1), "weights": str(best)}
    (args.out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
