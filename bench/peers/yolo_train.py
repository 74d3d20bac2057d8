"""Train an Ultralytics YOLO detector on our synthetic training scenes, offline, from its model YAML.

`python -m bench.peers.yolo_train --model yolo11n.yaml --epochs 12 --out runs/yolo`
builds the YOLO dataset (see `yolo_data`) and trains with random init on the
CPU or GPU; the best weights land in `OUT/train/weights/best.pt` and
`OUT/training.json` records the budget and the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from bench.machine import describe
from bench.peers.yolo_data import build_yolo_dataset
from train.data.config import load_dataset_config


def train_yolo(model_yaml: str, data_yaml: Path, out: Path, epochs: int, imgsz: int, batch: int,
               device: str, workers: int) -> Path:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    model = YOLO(model_yaml)
    model.train(data=str(data_yaml), epochs=epochs, imgsz=imgsz, batch=batch, device=device, workers=workers,
                pretrained=False, amp=False, plots=False, project=str(out.resolve()), name="train", exist_ok=True,
                seed=0, deterministic=False, verbose=False)
    return out / "train" / "weights" / "best.pt"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", type=Path, default=Path("datasets/synthetic.yaml"))
    p.add_argument("--model", default="yolo11n.yaml", help="Ultralytics model YAML (random init)")
    p.add_argument("--out", type=Path, default=Path("runs/yolo"))
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--imgsz", type=int, default=256, help="chip side, as our recipe's chip_size")
    p.add_argument("--train-overlap", type=int, default=96,
                   help="overlap of training chips; 96 at 256 px gives about our 1024 samples per epoch")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    config = load_dataset_config(args.dataset)
    args.out.mkdir(parents=True, exist_ok=True)
    data_yaml = build_yolo_dataset(config, args.out / "data", args.imgsz, args.train_overlap)
    start = time.perf_counter()
    best = train_yolo(args.model, data_yaml, args.out, args.epochs, args.imgsz, args.batch, args.device, args.workers)
    record = {"machine": describe(), "model": args.model, "dataset": config.name, "epochs": args.epochs,
              "imgsz": args.imgsz,
              "batch": args.batch, "train_chips": len(list((args.out / "data" / "images" / "train").glob("*.png"))),
              "train_wall_seconds": round(time.perf_counter() - start, 1), "weights": str(best)}
    (args.out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
