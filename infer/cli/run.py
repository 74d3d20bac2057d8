"""`python -m infer run MODEL.onnx SCENE [SCENE ...] --out DIR`: the batch job.

Exit codes for schedulers: 0 every scene done, 1 some scene failed (recorded
in the summary, the others still done), 2 the job could not start.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from infer.cli.console import (
    OneLineArgumentParser,
    class_area,
    ensure_writable_folder,
    finite_float,
)
from infer.contract.defaults import DEFAULT_SCORE, REGION_CLOSING_M
from infer.errors import InputError, UsageError
from infer.files import remove_stale_partials
from infer.runtime.decoder import available_cores
from infer.runtime.job import SceneJob, SceneOutcome
from infer.runtime.model import OnnxModel
from infer.runtime.options import RunOptions
from infer.runtime.ray_job import run_on_ray, validate_plan
from infer.runtime.runfolder import (
    OUTPUT_SUFFIXES,
    RECORD_OUTPUT,
    previous_entries,
    refuse_other_owners,
    run_settings,
    summary_path,
)
from infer.runtime.scenes import scene_list, scene_name, scene_path


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="python -m infer run",
                              description="Find storehouses, trucks, earth berms and cleared sites in scenes of "
                                          "any size; write GeoJSON, a GeoPackage for QGIS, a mask COG and overlay "
                                          "PNGs per scene.")
    p.add_argument("model", type=Path, help="the exported .onnx file")
    p.add_argument("scenes", type=scene_path, nargs="+",
                   help="GeoTIFF scenes (or PNG/JPEG pictures, in pixel coordinates), folders of them, .txt files "
                        "listing them one a line, quoted globs ('scenes/**/*.tif'), URLs (https://, s3://, gs://, "
                        "az://), or rasters in GDAL's virtual file systems ('/vsizip/{/data/scenes.zip}/a.tif')")
    p.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="ONNX Runtime device (default: cpu)")
    p.add_argument("--batch", type=int, default=RunOptions.batch,
                   help=f"tiles per model call (default: {RunOptions.batch})")
    p.add_argument("--tile", type=int, help="largest tile side in pixels (default: the model's recommendation); tiles are "
                        "shrunk to the fewest that cover the scene, e.g. 960 px for a 4096 px side at 1024")
    p.add_argument("--overlap", type=int, help="tile overlap in pixels (default: the model's recommendation)")
    p.add_argument("--score", type=finite_float, default=DEFAULT_SCORE,
                   help=f"lowest object score kept (default: {DEFAULT_SCORE:g})")
    p.add_argument("--region-closing", type=finite_float, default=None, metavar="METRES",
                   help="close region masks with a disc of this radius, bridging gaps that break a berm into "
                        f"pieces; 0 keeps them as thresholded (default: {REGION_CLOSING_M:g}, or the radius a "
                        "model exported with --regions-in-graph closes by, the only one it can)")
    p.add_argument("--min-area", type=class_area, action="append", default=[], metavar="CLASS=M2",
                   help="report no piece of region CLASS smaller than M2 square metres (also removed from the "
                        "mask); repeat for several classes (default: each class's own, from the model)")
    p.add_argument("--max-objects", type=int, metavar="N",
                   help="keep at most N objects per tile, the highest scores (default: as many as the tile's "
                        "outputs can hold, one per 2 x 2 cells per object class: no dense stand is cut short)")
    p.add_argument("--outputs", type=output_kinds, default=tuple(OUTPUT_SUFFIXES), metavar="KIND,...",
                   help=f"the outputs each scene gets, from {', '.join(OUTPUT_SUFFIXES)} ({RECORD_OUTPUT} always "
                        "among them: the scene's record); a scene is done when those exist (default: all)")
    p.add_argument("--engine-cache", type=Path, metavar="DIR",
                   help="with TensorRT (onnxruntime-gpu built with it): keep built engines here "
                        "(default: $XDG_CACHE_HOME/sitewatch/tensorrt, else ~/.cache/sitewatch/tensorrt)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes that decode tiles while the model runs; 1 decodes in a thread of the main process "
                        "(default: 1 with --device cpu, where the model takes every core; with cuda, the cores "
                        "this job may use less one)")
    p.add_argument("--shard", default="0/1", help="I/N: this node's share of the scene list, 0 <= I < N (default: 0/1)")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run on a Ray cluster (pip install 'sitewatch[ray]'): no ADDRESS starts one on this machine, "
                        "'auto' joins the one it belongs to, else the head's address (host:port); scenes go to "
                        "whichever worker is free, one summary for the job")
    p.add_argument("--ray-workers", type=int, metavar="N",
                   help="with --ray: workers to start (default: one per GPU with --device cuda, else one per "
                        "--ray-cpus CPUs of the cluster)")
    p.add_argument("--ray-cpus", type=int, default=1, metavar="K",
                   help="with --ray --device cpu: CPUs (ONNX Runtime threads) per worker (default: 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def output_kinds(text: str) -> tuple[str, ...]:
    """`--outputs`' comma-separated kinds (checked by `RunOptions.resolve`)."""
    return tuple(kind.strip() for kind in text.split(",") if kind.strip())


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
                         region_closing_m=args.region_closing, progress=not args.quiet, workers=workers,
                         min_area_m2=tuple(args.min_area), max_objects=args.max_objects, outputs=args.outputs)
    ray_plan = None
    if args.ray is not None:
        if shards != 1:
            raise UsageError("--ray hands scenes out itself: give --shard or --ray, not both")
        ray_plan = validate_plan(args.ray, args.ray_workers, args.ray_cpus)
    scenes = scene_list(args.scenes)[shard::shards]
    try:  # with --ray the workers open it on their device; here it is only checked (a head may have no GPU)
        model = OnnxModel(args.model, device="cpu" if ray_plan else args.device, engine_cache=args.engine_cache)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    settings = run_settings(model.sha256, options.resolve(model.info))
    if args.out.is_dir():
        refuse_other_owners(args.out, scenes, settings)
    ensure_writable_folder(args.out)
    summary = summary_path(args.out, shard, shards)
    remove_stale_partials(summary)  # a run killed while writing it left one, even if nothing is left to do
    if ray_plan is not None:
        out = args.out.resolve()
        outcomes = run_on_ray(args.model.resolve(), args.device, args.engine_cache, scenes, out,
                              replace(options, progress=False), out / summary.name, ray_plan, not args.quiet)
        for outcome in outcomes:
            report_failure(outcome)
        return final_line(scenes, outcomes, summary)
    job = SceneJob(model, args.out, options, summary)
    try:
        outcomes = job.run(tqdm(scenes, desc="scenes", unit="scene", disable=args.quiet or len(scenes) < 2),
                           report=report_failure)
    finally:
        job.close()
    return final_line(scenes, outcomes, summary)


def report_failure(outcome: SceneOutcome) -> None:
    if outcome.status == "failed":
        print(f"error: {scene_name(outcome.scene)}: {outcome.error}", file=sys.stderr)


def final_line(scenes: list[Path], outcomes: list[SceneOutcome], summary: Path) -> int:
    """Print how the job went (what the summary says of its scenes, what this run did); the exit code."""
    entries = previous_entries(summary)
    done = sum(1 for s in scenes if entries.get(str(s), {}).get("status") == "done")
    processed = sum(1 for o in outcomes if o.status == "done")
    failed = sum(1 for o in outcomes if o.status == "failed")
    print(f"{done} scene(s) done ({processed} by this run), {failed} failed; summary: {summary}")
    return 1 if failed else 0


def default_workers(device: str) -> int:
    """Decoding processes when --workers is not given: on a CPU the model already takes every core."""
    return 1 if device == "cpu" else max(1, available_cores() - 1)
