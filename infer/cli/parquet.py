"""`python -m infer parquet RUN_DIR [--out FILE]`: every detection of a run in one GeoParquet file.

For runs too large for GeoJSON (thousands of scenes, millions of features):
the finished scenes' detections go into one file, a scene at a time
(`infer.geo.geoparquet`), with the scene's name on each row. GeoPandas,
QGIS (GDAL ≥ 3.8 with Arrow), DuckDB and Spark read it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from infer.cli.console import OneLineArgumentParser, ensure_writable_folder
from infer.errors import InputError, UsageError
from infer.geo.geojson import read_feature_collection
from infer.geo.geoparquet import write_geoparquet
from infer.runtime.runfolder import read_summaries


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="python -m infer parquet",
                              description="Write every detection of an `infer run` folder into one GeoParquet "
                                          "file (WGS84, a bbox column for fast area filters), a scene at a time.")
    p.add_argument("folder", type=Path, help="an `infer run` output folder")
    p.add_argument("--out", type=Path, help="the file to write (default: FOLDER/detections.parquet)")
    return p


def _scenes(geojsons: Sequence[Path], names: Sequence[str], georeferenced: bool) -> Iterator[tuple[list, dict]]:
    for path, name in zip(geojsons, names, strict=True):
        collection = read_feature_collection(path)
        if ("coordinates" not in collection) != georeferenced:
            raise UsageError("the run mixes georeferenced scenes and scenes in pixel coordinates: "
                             "write them to two files")
        kinds = collection.get("classes") or {}
        for f in collection["features"]:
            props = f.setdefault("properties", {})
            props["kind"] = kinds.get(props.get("class"), "object" if "length_m" in props else "region")
        yield collection["features"], {"scene": name}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.folder.is_dir():
        raise UsageError(f"not a folder: {args.folder}")
    try:
        done = [e for e in read_summaries(args.folder) if e.get("status") == "done"]
        if not done:
            raise InputError(f"{args.folder} has no finished scene")
        geojsons = [Path(e["outputs"]["geojson"]) for e in done]
        georeferenced = "coordinates" not in read_feature_collection(geojsons[0])
    except InputError as exc:
        raise UsageError(str(exc)) from None
    out = args.out or args.folder / "detections.parquet"
    ensure_writable_folder(out.parent)
    names = [Path(e["scene"]).name for e in done]
    try:
        count = write_geoparquet(out, _scenes(geojsons, names, georeferenced), georeferenced)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {out}: {count} detection(s) from {len(done)} scene(s)")
    return 0
