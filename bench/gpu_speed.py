"""Speed of the network on a CUDA GPU, side by side in one run: fp32 eager against bf16 and channels_last.

`python -m bench.gpu_speed` (after `make data-reference`), on a machine with a GPU.

- Training: one optimizer step (forward, loss, backward, AdamW) on a real batch
  of the reference recipe's chips, as `train fit` takes it.
- Inference: the exported graph's forward (`SiteDetector.forward`) on a batch of
  deployment tiles, without the pipeline around it.
- The data loader's own rate (the data module's training loader, as the fit
  uses it) with as many workers as the fit is given: whichever of it and the training step is slower
  bounds `train fit`.

Times are medians over several runs after warm-up, the device synchronized
around each run. The ONNX Runtime providers present are recorded too: without
CUDAExecutionProvider the batch pipeline runs on the CPU, and this is the GPU's
figure for the network itself.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import onnxruntime as ort
import torch
import yaml

from bench.machine import describe
from train.data.datamodule import SiteDataModule
from train.export import default_overlap, default_tile, load_checkpoint
from train.task import SiteDetectionTask

#: (name, autocast dtype or None, channels_last)
VARIANTS = (("fp32 eager", None, False), ("bf16", torch.bfloat16, False),
            ("bf16 + channels_last", torch.bfloat16, True))


def median_ms(run: Callable[[], object], device: torch.device, warmup: int, runs: int) -> float:
    """Median wall time of `run` in milliseconds, the device synchronized around each run."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _layout(tensor: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return tensor.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def _autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def _training_step(task: SiteDetectionTask, optimizer: torch.optim.Optimizer, image: torch.Tensor, batch: dict,
                   dtype: torch.dtype | None) -> None:
    optimizer.zero_grad(set_to_none=True)
    with _autocast(image.device, dtype):
        loss = task.loss(task.model.forward_train(image), batch)["loss"]
    loss.backward()
    optimizer.step()


@torch.inference_mode()
def _forward(model: torch.nn.Module, tiles: torch.Tensor, dtype: torch.dtype | None) -> None:
    with _autocast(tiles.device, dtype):
        model(tiles)


def training_steps(config: dict, batch_size: int, device: torch.device, warmup: int, runs: int) -> list[dict]:
    model_args = {k: v for k, v in config["model"].items() if k != "init_weights"}
    data_args = config["data"]
    data = SiteDataModule(data_args["dataset"], chip_size=data_args["chip_size"], batch_size=batch_size,
                          num_workers=0, object_stride=model_args.get("object_stride", 4))
    data.setup("fit")
    batch = data.transfer_batch_to_device(next(iter(data.train_dataloader())), device, 0)
    pristine = SiteDetectionTask(dataset=data_args["dataset"], channels_last=False, **model_args)
    rows = []
    for name, dtype, channels_last in VARIANTS:
        task = copy.deepcopy(pristine).to(device)
        task.model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        image = _layout(batch["image"], channels_last)
        optimizer = torch.optim.AdamW(task.model.parameters(), lr=1e-4)
        step = functools.partial(_training_step, task, optimizer, image, batch, dtype)
        ms = median_ms(step, device, warmup, runs)
        rows.append({"variant": name, "batch": batch_size, "chip": data_args["chip_size"], "ms_per_step": round(ms, 2),
                     "chips_per_s": round(batch_size / ms * 1000, 1)})
    return rows


def inference(checkpoint: Path, batch_size: int, device: torch.device, warmup: int, runs: int,
              tile: int | None = None) -> list[dict]:
    loaded = load_checkpoint(checkpoint)
    tile = tile or default_tile(loaded.sitewatch.get("chip_size"), default_overlap(loaded.sitewatch["gsd_m"]))
    bands = len(loaded.sitewatch["bands"])
    tiles = torch.randn(batch_size, bands, tile, tile, generator=torch.Generator().manual_seed(0)).to(device)
    rows = []
    for name, dtype, channels_last in VARIANTS:
        model = copy.deepcopy(loaded.model).to(device).eval()
        model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        forward = functools.partial(_forward, model, _layout(tiles, channels_last), dtype)
        ms = median_ms(forward, device, warmup, runs)
        rows.append({"variant": name, "batch": batch_size, "tile": tile, "ms_per_batch": round(ms, 2),
                     "mpx_per_s": round(batch_size * tile * tile / ms / 1000, 1)})
    return rows


def loader_rate(config: dict, workers: int, batch_size: int, batches: int) -> dict:
    data_args = config["data"]
    data = SiteDataModule(data_args["dataset"], chip_size=data_args["chip_size"], batch_size=batch_size,
                          num_workers=workers, samples_per_epoch=batch_size * (batches + 2),
                          object_stride=config["model"].get("object_stride", 4))
    data.setup("fit")
    iterator = iter(data.train_dataloader())
    next(iterator)  # workers started and warm
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    seconds = time.perf_counter() - start
    return {"workers": workers, "batch": batch_size, "chips_per_s": round(batches * batch_size / seconds, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=Path("train/configs/synthetic.yaml"))
    p.add_argument("--checkpoint", type=Path, default=Path("checkpoints/reference.ckpt"))
    p.add_argument("--train-batch", type=int, default=32)
    p.add_argument("--infer-batch", type=int, default=8)
    p.add_argument("--workers", type=int, default=14, help="data loader workers (as given to the fit)")
    p.add_argument("--tile", type=int, help="inference tile side (default: the exported model's tile)")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench.gpu_speed: no CUDA device here")
    torch.backends.cudnn.benchmark = True
    config = yaml.safe_load(args.config.read_text())
    result = {
        "benchmark": "gpu_speed",
        "machine": describe(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
        "training_step": training_steps(config, args.train_batch, device, 3, args.runs),
        "inference": inference(args.checkpoint, args.infer_batch, device, 3, args.runs, args.tile),
        "loader": loader_rate(config, args.workers, args.train_batch, 8),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    for row in result["training_step"]:
        print(f"train  {row['variant']:22s} {row['ms_per_step']:8.2f} ms/step  {row['chips_per_s']:8.1f} chips/s")
    for row in result["inference"]:
        print(f"infer  {row['variant']:22s} {row['ms_per_batch']:8.2f} ms/batch {row['mpx_per_s']:8.1f} Mpx/s")
    print(f"loader {result['loader']['workers']} workers: {result['loader']['chips_per_s']} chips/s")


if __name__ == "__main__":
    main()
