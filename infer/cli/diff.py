"""`python -m infer diff BEFORE AFTER --out DIR`: what changed at a site between two dates.

BEFORE and AFTER are result GeoJSONs (or `infer run` folders with one scene
each) of the same area; with `--model`, they are two scenes and inference
runs first. Writes DIR/changes.geojson, DIR/changes.gpkg (for QGIS), DIR/changes.png and DIR/changes.txt,
and prints the summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from infer.analysis.changes import DiffOptions, diff, read_side, summary_lines
from infer.cli.console import OneLineArgumentParser, ensure_writable_folder, finite_float
from infer.cli.dated_runs import open_model_for, run_dates
from infer.contract.defaults import DEFAULT_SCORE
from infer.errors import InputError, UsageError
from infer.files import output_set, write_text_atomic
from infer.geo.geojson import feature, write_feature_collection
from infer.geo.geopackage import Layer, write_geopackage
from infer.geo.rasterenv import is_virtual
from infer.pictures.changes_picture import CHANGE_COLORS, write_changes_picture
from infer.runtime.options import RunOptions
from infer.runtime.scenes import scene_path


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="python -m infer diff",
                              description="Compare two dates of the same area: objects new, gone or persisting, "
                                          "region area added and removed; writes changes.geojson, changes.gpkg, "
                                          "changes.png and changes.txt.")
    p.add_argument("before", type=scene_path, help="result GeoJSON or `infer run` folder of the earlier date "
                                             "(a scene with --model)")
    p.add_argument("after", type=scene_path, help="the same for the later date")
    p.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    p.add_argument("--model", type=Path, help="an exported .onnx model: BEFORE and AFTER are scenes to run it on")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="with --model (default: cpu)")
    p.add_argument("--score", type=finite_float, default=DEFAULT_SCORE,
                   help=f"with --model: lowest object score kept (default: {DEFAULT_SCORE:g})")
    p.add_argument("--tolerance", type=finite_float, default=DiffOptions.tolerance_m,
                   help="metres between an object's two positions for it to count as the same one, after "
                        f"registration (default: {DiffOptions.tolerance_m:g})")
    p.add_argument("--search", type=finite_float, default=DiffOptions.search_m,
                   help=f"largest misregistration looked for, metres (default: {DiffOptions.search_m:g})")
    p.add_argument("--no-align", action="store_true", help="do not estimate and remove a shift between the dates")
    p.add_argument("--min-area", type=finite_float, default=DiffOptions.min_area_m2,
                   help=f"smallest region change reported, m² (default: {DiffOptions.min_area_m2:g}, or a class's "
                        "smallest reported region when the inputs record a larger one)")
    p.add_argument("--pixel-size", type=finite_float, default=1.0,
                   help="metres per pixel when the inputs are in pixel coordinates (default: 1)")
    p.add_argument("--before-scene", type=Path, help="imagery of the earlier date for changes.png")
    p.add_argument("--after-scene", type=Path, help="imagery of the later date for changes.png")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """One job: any bad input stops it before anything is written (exit 2)."""
    try:
        return _diff(build_parser().parse_args(argv))
    except InputError as exc:
        raise UsageError(str(exc)) from None


def _diff(args) -> int:
    if args.tolerance <= 0 or args.search < 0 or args.min_area < 0 or args.pixel_size <= 0:
        raise UsageError("--tolerance and --pixel-size must be positive, --search and --min-area not negative")
    for path in (args.before, args.after):
        if not path.exists() and not (args.model is not None and is_virtual(path)):  # GDAL opens those, or says
            raise UsageError(f"not found: {path}")
    options = RunOptions(score=args.score)
    before_scene, after_scene = args.before_scene, args.after_scene
    if args.model is not None:
        model = open_model_for(args.model, args.device, options, [args.before, args.after])
        ensure_writable_folder(args.out)
        before_scene, after_scene = before_scene or args.before, after_scene or args.after
        before_path, after_path = run_dates(model, [args.before, args.after],
                                            [args.out / "before", args.out / "after"], options)
        before, after = read_side(before_path, before_scene), read_side(after_path, after_scene)
    else:
        before, after = read_side(args.before, before_scene), read_side(args.after, after_scene)
    options = DiffOptions(tolerance_m=args.tolerance, search_m=args.search, min_area_m2=args.min_area,
                          align=not args.no_align)
    result = diff(before, after, options, pixel_m=args.pixel_size)
    ensure_writable_folder(args.out)
    extra = {"before": str(before.source), "after": str(after.source), "dates": [before.date, after.date],
             "registration_offset_m": [round(v, 2) for v in result.offset],
             "registration_support": result.offset_support, "tolerance_m": args.tolerance,
             "common_area_m2": result.common_area_m2, "objects_outside_common_area": result.outside,
             "classes": dict(result.classes), "colors": {**before.colors, **after.colors}}
    if before.checkpoint or after.checkpoint:
        extra["checkpoint_sha256"] = [before.checkpoint, after.checkpoint]
    if before.pixel_coordinates:
        extra["coordinates"] = "pixel (x right, y down): the inputs have no georeferencing"
    lines = summary_lines(result, before, after)
    with output_set(args.out) as staged:
        # The picture first: it reads the imagery, the step a bad file can stop, before anything else is written.
        write_changes_picture(staged / "changes.png", before, after, result)
        features = [feature(c.geom, c.properties) for c in result.changes]
        write_geopackage(staged / "changes.gpkg", [Layer("changes", features, CHANGE_COLORS, filled=True,
                                                         styled_by="change")],
                         crs=None if before.pixel_coordinates else "EPSG:4326")
        write_feature_collection(staged / "changes.geojson", features, extra)
        write_text_atomic(staged / "changes.txt", "\n".join(lines) + "\n")
    text = args.out / "changes.txt"
    print("\n".join(lines))
    print(f"wrote {args.out / 'changes.geojson'}, {args.out / 'changes.gpkg'}, {args.out / 'changes.png'}, {text}")
    return 0
