"""`python -m synth` (or `python -m train synth`): write synthetic scenes with exact labels."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from infer.cli.console import OneLineArgumentParser, ensure_writable_folder, finite_float
from infer.errors import UsageError
from synth.layout import SceneSpec, plan_scene
from synth.preview import draw_labels
from synth.writer import write_scene

MAX_SIDE = 200_000
MAX_DATES = 12


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(
        prog="python -m synth",
        description="Generate georeferenced synthetic scenes (GeoTIFF) with their labels (GeoJSON, WGS84): "
        "storehouses, trucks, earth berms and cleared sites among roads, fields and villages.",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    p.add_argument("--scenes", type=int, default=1, help="number of scenes (default: 1)")
    p.add_argument("--size", type=int, help="square scene side in pixels (default: 2048)")
    p.add_argument("--width", type=int, help="scene width in pixels (with --height)")
    p.add_argument("--height", type=int, help="scene height in pixels (with --width)")
    p.add_argument("--gsd", type=finite_float, default=0.5, help="ground sample distance, metres per pixel (default: 0.5)")
    p.add_argument("--bands", choices=["rgb", "rgbn"], default="rgb", help="band set (default: rgb)")
    p.add_argument("--dtype", choices=["uint8", "uint16"], default="uint8",
                   help="pixel type; uint16 uses an 11-bit range like real sensors (default: uint8)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes (default: 0)")
    p.add_argument("--nodata-border", action="store_true", help="add an irregular no-data edge (value 0)")
    p.add_argument("--second-date", action="store_true",
                   help="also write the scene at a later date with changes, and the list of changes")
    p.add_argument("--dates", type=int, default=1, metavar="N",
                   help="write the scene at N dates (2 to 12) with construction progressing: a site cleared, "
                        "storehouses rising row by row, its berm ring closed and extended, trucks visiting; each "
                        "date with its own sun and radiometry and georeferenced up to 3 m off the first; "
                        "scene_NNN_tK.tif/.geojson for date K and scene_NNN_changes_tK.geojson for what changed "
                        "since date K-1 (default: 1)")
    p.add_argument("--preview", action="store_true",
                   help="also write <name>_preview.png: a downsampled view with the labels drawn on it")
    p.add_argument("--workers", type=int, default=1,
                   help="scenes written at once, one process each; same bytes as one at a time (default: 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _size(args) -> tuple[int, int]:
    if args.size is not None and (args.width is not None or args.height is not None):
        raise UsageError("give either --size or --width/--height, not both")
    if (args.width is None) != (args.height is None):
        raise UsageError("--width and --height go together")
    width, height = (args.width, args.height) if args.width is not None else (args.size if args.size is not None else 2048,) * 2
    for name, value in (("width", width), ("height", height)):
        if not 1 <= value <= MAX_SIDE:
            raise UsageError(f"scene {name} must be between 1 and {MAX_SIDE} pixels, got {value}")
    return width, height


def scene_spec(args) -> SceneSpec:
    """The scenes that parsed arguments ask for; `UsageError` when they cannot be made."""
    width, height = _size(args)
    if not 0.05 <= args.gsd <= 10.0:
        raise UsageError(f"--gsd must be between 0.05 and 10 metres, got {args.gsd}")
    if args.scenes < 1:
        raise UsageError(f"--scenes must be at least 1, got {args.scenes}")
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if not 1 <= args.dates <= MAX_DATES:
        raise UsageError(f"--dates must be between 1 and {MAX_DATES}, got {args.dates}")
    if args.dates > 1 and args.second_date:
        raise UsageError("give either --second-date (a pair with changes) or --dates N (a series), not both")
    return SceneSpec(width, height, args.gsd, args.bands, args.dtype, args.seed, args.nodata_border,
                     args.second_date, args.dates)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    spec = scene_spec(args)
    ensure_writable_folder(args.out)
    for lines in _written_scenes(spec, args):
        print("\n".join(lines))
    return 0


def _written_scenes(spec: SceneSpec, args) -> Iterator[list[str]]:
    """Each scene's report lines, in scene order; several processes write scenes when asked."""
    if args.workers == 1 or args.scenes == 1:
        for index in range(args.scenes):
            yield _write_one(spec, index, args.out, not args.quiet, args.preview)
        return
    with ProcessPoolExecutor(max_workers=min(args.workers, args.scenes)) as pool:
        jobs = [pool.submit(_write_one, spec, index, args.out, False, args.preview) for index in range(args.scenes)]
        for job in jobs:
            yield job.result()


def _write_one(spec: SceneSpec, index: int, out: Path, progress: bool, preview: bool) -> list[str]:
    start = time.perf_counter()
    layout = plan_scene(spec, index)
    paths = write_scene(layout, out, progress=progress)
    counts: dict[str, int] = {}
    for _, label in layout.labels(1):
        counts[label.cls] = counts.get(label.cls, 0) + 1
    summary = ", ".join(f"{n} {c}" for c, n in sorted(counts.items())) or "no labels"
    lines = [f"{paths[0]}  {spec.width}x{spec.height} px @ {spec.gsd} m  ({summary})  "
             f"{time.perf_counter() - start:.1f} s"]
    if preview:
        for tif in [p for p in paths if p.suffix == ".tif"]:
            paths.append(draw_labels(tif, tif.with_suffix(".geojson"), tif.with_name(f"{tif.stem}_preview.png")))
    lines += [f"  {extra}" for extra in paths[1:]]
    return lines
