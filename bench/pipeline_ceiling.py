"""How fast the scene pipeline can go when the network costs nothing: the CPU ceiling of a node.

On the same scenes, in one run: raw rasterio reads of the tiles the
pipeline reads (one thread), the pipeline's own tile reader (its threads,
as a run uses them, without the model's input made), the free model (`bench.free_model`, the
reference model's interface and metadata) alone on those tiles, and
`process_scene` with it with 1 worker (a decoding thread beside the model) and with N worker
processes, medians of several runs, each run writing every output. CPU time
is counted over the process and its worker processes, so "per core" means
megapixels per CPU-second. "host" leaves out the CPU time of the free model
itself, which a GPU node spends on its GPU: the CPU ceiling of such a node.
The same again with the free model exported as `--regions-in-graph` does
(its graph thresholds, closes and picks region classes): on a CPU that work
is the model's, on a GPU node it is the GPU's, so its "host" figure is the
CPU ceiling of a node that decodes regions on its GPU. Last, a job of
`--job-scenes` copies of the largest scene with the free model, 1 worker: the
scenes one after another through `process_scene`, then as `infer run` does them
(`SceneJob`: each scene's outputs written while the next is detected).

`python -m bench.pipeline_ceiling [--like checkpoints/reference.onnx] [--sizes 4096 8192] [--workers 1 2] [--runs 3]
[--job-scenes 3]`
writes bench/results/pipeline_ceiling.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from bench.free_model import write_free_model
from bench.machine import describe
from infer.contract.defaults import MASK_THRESHOLD, REGION_CLOSING_M
from infer.contract.schema import RegionDecode
from infer.geo.rasterenv import open_raster
from infer.runtime.decoder import start_pool
from infer.runtime.job import SceneJob
from infer.runtime.model import OnnxModel
from infer.runtime.options import RunOptions
from infer.runtime.pipeline import process_scene
from infer.runtime.reader import TileReader, open_grid
from infer.runtime.runfolder import previous_entries
from infer.runtime.tiling import tile_grid
from synth.cli import main as synth

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> float:
    """CPU seconds of this process and of its live children (the decoding workers) so far."""
    own = os.times()
    total = own.user + own.system
    for child in multiprocessing.active_children():
        try:
            fields = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICKS
        except (OSError, IndexError, ValueError):
            pass
    return total


def raw_read(scene: Path, tile: int, overlap: int) -> None:
    """Every tile window of the scene read once, one thread, as the pipeline's reader reads them."""
    with open_raster(scene) as src:
        for t in tile_grid(src.width, src.height, tile, overlap):
            window = Window(t.col, t.row, min(t.width, src.width - t.col), min(t.height, src.height - t.row))
            src.read(window=window)
            src.read_masks(1, window=window)


def model_alone(model: OnnxModel, scene: Path, batch: int):
    """A function that runs `model` on every tile of `scene`, read beforehand, `batch` tiles at a time."""
    info = model.info
    reads = [r.pixels for r in TileReader(open_grid(scene, len(info.bands), info.gsd_m, info.dtype), info.tile,
                                          info.overlap)]
    batches = [model.prepare(np.stack(reads[i:i + batch])) for i in range(0, len(reads), batch)]

    def run() -> None:
        for b in batches:
            model.run(b)  # a graph that decodes regions: every pixel valid

    return run


def measure(fn, runs: int) -> dict:
    """Median wall and CPU seconds of `fn` over `runs` runs (after one warm-up run)."""
    fn()
    walls, cpus, last = [], [], None
    for _ in range(runs):
        c0, t0 = cpu_seconds(), time.perf_counter()
        last = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu_seconds() - c0)
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus), "last": last}


def measure_pipeline(model: OnnxModel, scene: Path, workers: int, runs: int, tmp: Path) -> dict:
    """`measure` of `process_scene` on `scene` with `workers` (a pool started once, outside the timing)."""
    pool = start_pool(workers)
    options = RunOptions(progress=False, workers=workers)

    def run() -> dict:
        out = tmp / f"out-{time.perf_counter_ns()}"
        out.mkdir()
        return process_scene(model, scene, out, options, pool=pool)

    try:
        return measure(run, runs)
    finally:
        pool.shutdown()


def interleaved_times(forms: dict, runs: int) -> dict[str, list[float]]:
    """Wall seconds of each run of each of `forms` (name: function), run in turn `runs` times over: each run
    of one sits between runs of the others, so a machine that slows for a while slows them all alike."""
    times: dict[str, list[float]] = {name: [] for name in forms}
    for _ in range(runs):
        for name, fn in forms.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def interleaved_medians(forms: dict, runs: int) -> dict[str, float]:
    """The median of each form's `interleaved_times`."""
    return {name: statistics.median(t) for name, t in interleaved_times(forms, runs).items()}


def job_of(model: OnnxModel, scene: Path, copies: int, tmp: Path, options: RunOptions | None = None):
    """A function that runs `copies` copies of `scene` as `infer run` does (`SceneJob`: each scene's outputs
    written while the next one is detected), into a new folder each time."""
    folder = Path(tempfile.mkdtemp(dir=tmp))
    scenes = [Path(shutil.copy(scene, folder / f"copy_{i}.tif")) for i in range(copies)]
    options = options or RunOptions(progress=False)

    def run() -> None:
        out = Path(tempfile.mkdtemp(dir=tmp))
        job = SceneJob(model, out, options, out / "summary.json")
        try:
            if any(o.status != "done" for o in job.run(scenes)):
                raise RuntimeError(f"a scene of the job failed: {previous_entries(out / 'summary.json')}")
        finally:
            job.close()

    return run


def measure_job(model: OnnxModel, scene: Path, size: int, copies: int, runs: int, tmp: Path) -> dict:
    """Median wall seconds of `copies` copies of `scene` run one after another (`process_scene` each) and as
    a job (`job_of`), the two in turn, one decoding worker (a thread)."""
    options = RunOptions(progress=False, workers=1)
    as_a_job = job_of(model, scene, copies, tmp, options)
    scenes = [Path(shutil.copy(scene, tmp / f"alone_{i}.tif")) for i in range(copies)]

    def one_after_another() -> None:
        out = Path(tempfile.mkdtemp(dir=tmp))
        for s in scenes:
            process_scene(model, s, out, options)

    as_a_job()
    seconds = {name: round(v, 3) for name, v in
               interleaved_medians({"one_after_another": one_after_another, "job": as_a_job}, runs).items()}
    return {"scenes": copies, "size_px": size, "wall_s": seconds,
            "speedup": round(seconds["one_after_another"] / seconds["job"], 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--like", type=Path, default=Path("checkpoints/reference.onnx"),
                   help="the exported model whose interface the free model copies")
    p.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--job-scenes", type=int, default=3, help="scenes of the job measured last (0: none)")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        like = OnnxModel(args.like).info
        models = {"pipeline": OnnxModel(write_free_model(like, tmp / "free.onnx")),
                  "pipeline_regions_in_graph": OnnxModel(write_free_model(
                      replace(like, region_decode=RegionDecode(MASK_THRESHOLD, REGION_CLOSING_M)), tmp / "decoding.onnx"))}
        info = models["pipeline"].info
        for size in args.sizes:
            synth(["--out", str(tmp / str(size)), "--size", str(size), "--seed", "5", "--quiet"])
            scene = tmp / str(size) / "scene_000.tif"
            mpx = size * size / 1e6
            read = measure(lambda scene=scene: raw_read(scene, info.tile, info.overlap), args.runs)
            grid = open_grid(scene, len(info.bands), info.gsd_m, info.dtype)
            reader = measure(lambda grid=grid: list(TileReader(grid, info.tile, info.overlap,
                                                               threads=RunOptions().reader_threads)), args.runs)
            row = {"size_px": size, "megapixels": round(mpx, 2),
                   "raw_read": {"wall_s": round(read["wall_s"], 3), "mpx_per_s_per_core": round(mpx / read["cpu_s"], 2)},
                   "reader": {"threads": RunOptions().reader_threads, "wall_s": round(reader["wall_s"], 3),
                              "mpx_per_s_per_core": round(mpx / reader["cpu_s"], 2)}}
            for form, model in models.items():
                alone = measure(model_alone(model, scene, RunOptions().batch), args.runs)
                row["model_alone" + form.removeprefix("pipeline")] = {"wall_s": round(alone["wall_s"], 3),
                                                                      "cpu_s": round(alone["cpu_s"], 3)}
                row[form] = {}
                for workers in args.workers:
                    got = measure_pipeline(model, scene, workers, args.runs, tmp)
                    row[form][str(workers)] = {
                        "wall_s": round(got["wall_s"], 3), "cpu_s": round(got["cpu_s"], 3),
                        "mpx_per_s": round(mpx / got["wall_s"], 2), "mpx_per_s_per_core": round(mpx / got["cpu_s"], 2),
                        "host_mpx_per_s_per_core": round(mpx / max(got["cpu_s"] - alone["cpu_s"], 1e-9), 2),
                        "split_seconds": got["last"]["split_seconds"], "counts": got["last"]["counts"]}
                    print(size, form, workers, row[form][str(workers)])
            rows.append(row)
        job = measure_job(models["pipeline"], scene, size, args.job_scenes, args.runs, tmp) if args.job_scenes else None
    largest = rows[-1]
    one, most = largest["pipeline"][str(min(args.workers))], largest["pipeline"][str(max(args.workers))]
    result = {
        "benchmark": "pipeline_ceiling",
        "machine": describe(),
        "model": {"like": str(args.like), "tile": info.tile, "overlap": info.overlap, "stride": info.stride,
                  "batch": RunOptions().batch},
        "runs": args.runs,
        "results": rows,
        "pipeline_mpx_per_s_per_core": max(v["mpx_per_s_per_core"] for v in largest["pipeline"].values()),
        "host_mpx_per_s_per_core": max(v["host_mpx_per_s_per_core"] for v in largest["pipeline"].values()),
        "raw_read_mpx_per_s_per_core": largest["raw_read"]["mpx_per_s_per_core"],
        f"speedup_{max(args.workers)}_workers_vs_{min(args.workers)}": round(one["wall_s"] / most["wall_s"], 3),
        "split": {"one_worker": one["split_seconds"], f"{max(args.workers)}_workers": most["split_seconds"]},
        "one_worker_decodes_in": "a thread beside the model",
    }
    result["pipeline_vs_raw_read"] = round(result["pipeline_mpx_per_s_per_core"]
                                           / result["raw_read_mpx_per_s_per_core"], 3)
    result["host_vs_raw_read"] = round(result["host_mpx_per_s_per_core"] / result["raw_read_mpx_per_s_per_core"], 3)
    in_graph = largest["pipeline_regions_in_graph"]
    result["host_mpx_per_s_per_core_regions_in_graph"] = max(v["host_mpx_per_s_per_core"] for v in in_graph.values())
    result["host_vs_raw_read_regions_in_graph"] = round(result["host_mpx_per_s_per_core_regions_in_graph"]
                                                        / result["raw_read_mpx_per_s_per_core"], 3)
    if job is not None:
        result["job"] = job
        result["job_speedup_writing_overlapped"] = job["speedup"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pipeline_ceiling.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("results", "machine")}))


if __name__ == "__main__":
    main()
