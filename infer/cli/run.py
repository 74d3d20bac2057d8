"""`python -m infer run MODEL.onnx SCENE [SCENE ...] --out DIR`: the batch job.

Exit codes for schedulers: 0 every scene done, 1 some scene failed (recorded
in the summary, the others still done), 2 the job could not start.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from tqdm import tqdm

from infer.cli.console import OneLineArgumentParser, ensure_writable_folder, finite_float
from infer.contract.defaults import DEFAULT_SCORE, REGION_CLOSING_M
from infer.errors import InputError, UsageError
from infer.runtime.claims import scene_claim
from infer.runtime.decoder import available_cores, start_pool
from infer.runtime.model import OnnxModel
from infer.runtime.options import RunOptions
from infer.runtime.pipeline import process_scene
from infer.runtime.runfolder import (
    is_done,
    previous_entries,
    refuse_other_owners,
    summary_path,
    update_summary,
)
from infer.runtime.scenes import scene_list


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="python -m infer run",
                              description="Find storehouses, trucks, earth berms and cleared sites in scenes of "
                                          "any size; write GeoJSON, a mask COG and an overlay PNG per scene.")
    p.add_argument("model", type=Path, help="the exported .onnx file")
    p.add_argument("scenes", type=Path, nargs="+", help="GeoTIFF scenes (or PNG/JPEG pictures, in pixel coordinates)")
    p.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="ONNX Runtime device (default: cpu)")
    p.add_argument("--batch", type=int, default=RunOptions.batch,
                   help=f"tiles per model call (default: {RunOptions.batch})")
    p.add_argument("--tile", type=int, help="tile side in pixels (default: the model's recommendation)")
    p.add_argument("--overlap", type=int, help="tile overlap in pixels (default: the model's recommendation)")
    p.add_argument("--score", type=finite_float, default=DEFAULT_SCORE,
                   help=f"lowest object score kept (default: {DEFAULT_SCORE:g})")
    p.add_argument("--region-closing", type=finite_float, default=REGION_CLOSING_M, metavar="METRES",
                   help="close region masks with a disc of this radius, bridging gaps that break a berm into "
                        f"pieces; 0 keeps them as thresholded (default: {REGION_CLOSING_M:g})")
    p.add_argument("--engine-cache", type=Path, metavar="DIR",
                   help="with TensorRT (onnxruntime-gpu built with it): keep built engines here "
                        "(default: $XDG_CACHE_HOME/sitewatch/tensorrt, else ~/.cache/sitewatch/tensorrt)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes that decode tiles while the model runs; 1 decodes in the main process "
                        "(default: 1 with --device cpu, where the model takes every core; with cuda, the cores "
                        "this job may use less one)")
    p.add_argument("--shard", default="0/1", help="I/N: this node's share of the scene list, 0 <= I < N (default: 0/1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard must look like I/N, got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise UsageError(f"--shard I/N needs 0 <= I < N, got {text!r}")
    return i, n


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    shard, shards = parse_shard(args.shard)
    workers = args.workers if args.workers is not None else default_workers(args.device)
    options = RunOptions(tile=args.tile, overlap=args.overlap, batch=args.batch, score=args.score,
                         region_closing_m=args.region_closing, progress=not args.quiet, workers=workers)
    scenes = scene_list(args.scenes)[shard::shards]
    try:
        model = OnnxModel(args.model, device=args.device, engine_cache=args.engine_cache)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    options.resolve(model.info)
    if args.out.is_dir():
        refuse_other_owners(args.out, scenes)
    ensure_writable_folder(args.out)
    summary = summary_path(args.out, shard, shards)
    pools = _Pools(workers)
    try:
        job = _Job(model, args.out, options, pools, summary, quiet=args.quiet)
        job.run(scenes)
    finally:
        pools.close()
    entries = previous_entries(summary)
    done = sum(1 for s in scenes if entries.get(str(s), {}).get("status") == "done")
    print(f"{done} scene(s) done ({job.processed} by this run), {job.failed} failed; summary: {summary}")
    return 1 if job.failed else 0


class _Pools:
    """The decoding workers of a run, started again after one of them died (killed, out of memory)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.current = start_pool(workers)

    def restart(self) -> None:
        self.close()
        self.current = start_pool(self.workers)

    def close(self) -> None:
        if self.current is not None:
            self.current.shutdown(wait=False, cancel_futures=True)


class _Job:
    """The scenes of one run, each claimed before it is done (runs may share the folder, see
    `infer.runtime.claims`); the summary is merged after each scene."""

    def __init__(self, model: OnnxModel, out: Path, options: RunOptions, pools: _Pools, summary: Path,
                 quiet: bool) -> None:
        self.model, self.out, self.options, self.pools, self.summary = model, out, options, pools, summary
        self.quiet = quiet
        self.processed = self.failed = 0

    def run(self, scenes: list[Path]) -> None:
        """Every scene not done yet: those another run holds are left to the end, then waited for."""
        held_elsewhere = []
        for scene in tqdm(scenes, desc="scenes", unit="scene", disable=self.quiet or len(scenes) < 2):
            with scene_claim(self.out, scene, wait=False) as claimed:
                if claimed:
                    self._scene(scene)
                else:
                    held_elsewhere.append(scene)
        for scene in held_elsewhere:
            with scene_claim(self.out, scene, wait=True):
                self._scene(scene)

    def _scene(self, scene: Path) -> None:
        """One claimed scene: skipped when done (by an earlier run or the one that held it), else run."""
        key = str(scene)
        if is_done(self.out, scene) and previous_entries(self.summary).get(key, {}).get("status") == "done":
            return
        try:
            entry = process_scene(self.model, scene, self.out, self.options, pool=self.pools.current)
            self.processed += 1
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a bad scene is recorded and skipped, never fatal to the batch
            self.failed += 1
            if isinstance(exc, BrokenProcessPool):
                message = "a decoding worker process died (killed, or out of memory?); workers restarted"
                self.pools.restart()
            else:
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            entry = {"scene": key, "status": "failed", "error": message}
            print(f"error: {scene.name}: {message}", file=sys.stderr)
        update_summary(self.summary, {key: entry})


def default_workers(device: str) -> int:
    """Decoding processes when --workers is not given: on a CPU the model already takes every core."""
    return 1 if device == "cpu" else max(1, available_cores() - 1)
