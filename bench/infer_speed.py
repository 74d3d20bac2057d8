"""Inference speed on the CPU or one CUDA GPU, side by side in one run, medians of several runs.

1. the whole `infer run` pipeline (read, model, decode, stitch, write) in Mpx/s, on one scene and on a
   job of `--job-scenes` copies of it (where each scene's outputs are written while the next is detected);
2. ONNX Runtime alone on the same tiles (already read, as the graph takes them);
3. PyTorch eager on the same batches with the same weights and thread count.

`python -m bench.infer_speed --checkpoint runs/synthetic/checkpoints/best.ckpt [--size 4096] [--runs 3]`
writes bench/results/infer_speed.json. The forms run in turn, run after run, so that
a machine that slows for a while slows them all alike. Speed does not depend on what the
weights learned, only on the architecture, which the checkpoint fixes.

`--device cuda` runs all three on the GPU (onnxruntime-gpu; PyTorch's batches are copied to the GPU inside
the timing, as ONNX Runtime's are), `--fp16` and `--regions-in-graph` export the graph so, and
`--no-io-binding` runs the GPU session without I/O binding (`OnnxModel`'s `io_binding`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.machine import describe
from bench.pipeline_ceiling import interleaved_medians, job_of
from infer.cli.run import default_workers
from infer.runtime.model import DEVICES, OnnxModel
from infer.runtime.pipeline import RunOptions, process_scene
from infer.runtime.reader import TileReader, open_grid
from synth.cli import main as synth
from train.export import export_checkpoint, load_checkpoint


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, default=Path("runs/demo/checkpoints/best.ckpt"))
    p.add_argument("--size", type=int, default=4096, help="side of the synthetic scene in pixels")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--job-scenes", type=int, default=3, help="scenes of the job measured (0: none)")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    p.add_argument("--name", default="infer_speed", help="result file name (default: infer_speed)")
    p.add_argument("--device", choices=DEVICES, default="cpu")
    p.add_argument("--fp16", action="store_true", help="export the graph in float16")
    p.add_argument("--regions-in-graph", action="store_true", help="export a graph that decodes its regions")
    p.add_argument("--no-io-binding", action="store_true", help="a GPU session without I/O binding")
    args = p.parse_args()
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        onnx_path = tmp / "model.onnx"
        export_checkpoint(args.checkpoint, onnx_path, check=False, fp16=args.fp16,
                          regions_in_graph=args.regions_in_graph)
        synth(["--out", str(tmp / "scene"), "--size", str(args.size), "--seed", "5", "--quiet"])
        scene = tmp / "scene" / "scene_000.tif"
        model = OnnxModel(onnx_path, device=args.device, io_binding=False if args.no_io_binding else None)
        info = model.info
        grid = open_grid(scene, len(info.bands), info.gsd_m)
        options = RunOptions(batch=args.batch, progress=False, workers=default_workers(args.device))  # as `infer run`
        reads = list(TileReader(grid, info.tile, info.overlap))
        raw = [np.stack([r.pixels for r in reads[i:i + args.batch]]) for i in range(0, len(reads), args.batch)]
        batches = [model.prepare(b) for b in raw]  # what the graph takes
        normalized = [model.normalize(b) for b in raw]  # what the network takes
        network = load_checkpoint(args.checkpoint).model.eval().to(device)

        def pipeline() -> None:
            out = tmp / f"out{time.perf_counter_ns()}"
            out.mkdir()
            process_scene(model, scene, out, options)

        ort_busy: list[float] = []  # CPU-seconds per second of ONNX Runtime alone, per call

        def ort_alone() -> None:
            wall, cpu = time.perf_counter(), time.process_time()
            for batch in batches:
                model.run(batch)
            ort_busy.append((time.process_time() - cpu) / (time.perf_counter() - wall))

        def torch_eager() -> None:
            with torch.inference_mode():
                for batch in normalized:
                    network(torch.from_numpy(batch).to(device))
            if device.type == "cuda":
                torch.cuda.synchronize()

        forms = {"pipeline": pipeline, "onnxruntime": ort_alone, "pytorch_eager": torch_eager}
        if args.job_scenes:
            forms["job"] = job_of(model, scene, args.job_scenes, tmp, options)
        for name, fn in forms.items():  # warm-up: first session run, page cache (the job runs the same scene)
            if name != "job":
                fn()
        mpx = grid.megapixels
        seconds = interleaved_medians(forms, args.runs)
        job = seconds.pop("job", None)
    result = {
        "benchmark": args.name,
        "machine": describe(),
        "scene_px": args.size,
        "megapixels": round(mpx, 2),
        "tile": info.tile,
        "overlap": info.overlap,
        "batch": args.batch,
        "runs": args.runs,
        "threads": threads,
        "decoding_workers": options.workers,
        "device": args.device,
        "providers": model.providers,
        "graph": {"fp16": args.fp16, "regions_in_graph": args.regions_in_graph, "io_binding": model.io_binding},
        "model": {**{k: info.provenance.get(k) for k in ("backbone", "fpn_channels", "head_channels")},
                  "stride": info.stride},
        "median_seconds": {k: round(v, 3) for k, v in seconds.items()},
        "mpx_per_s": {k: round(mpx / v, 3) for k, v in seconds.items()},
        "pipeline_efficiency": round(seconds["onnxruntime"] / seconds["pipeline"], 3),
        "onnxruntime_vs_pytorch": round(seconds["pytorch_eager"] / seconds["onnxruntime"], 3),
        # How many cores ONNX Runtime alone keeps busy (median of the timed runs, not the warm-up): on a CPU,
        # what is left of the cores for the pipeline's own work to hide in.
        "onnxruntime_cores_busy": round(statistics.median(ort_busy[1:]), 2),
    }
    if job is not None:
        result["job"] = {"scenes": args.job_scenes, "median_seconds": round(job, 3),
                         "mpx_per_s": round(args.job_scenes * mpx / job, 3)}
        result["job_efficiency"] = round(result["job"]["mpx_per_s"] / result["mpx_per_s"]["onnxruntime"], 3)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result.get(k) for k in ("mpx_per_s", "pipeline_efficiency", "job_efficiency",
                                                  "onnxruntime_vs_pytorch")}))


if __name__ == "__main__":
    main()
