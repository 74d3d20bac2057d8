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
from infer.cli.run_results import finished_results, kind_of, scene_collections
from infer.geo.geoparquet import write_geoparquet


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="python -m infer parquet",
                              description="Write every detection of an `infer run` folder into one GeoParquet "
                                          "file (WGS84, a bbox column for fast area filters), a scene at a time.")
    p.add_argument("folder", type=Path, help="an `infer run` output folder")
    p.add_argument("--out", type=Path, help="the file to write (default: FOLDER/detections.parquet)")
    return p


def _scenes(results: Sequence[tuple[str, Path]], georeferenced: bool) -> Iterator[tuple[list, dict]]:
    for name, collection in scene_collections(results, georeferenced):
        for f in collection["features"]:
            props = f.setdefault("properties", {})
            props["kind"] = kind_of(collection, props)
        yield collection["features"], {"scene": name}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    results, georeferenced = finished_results(args.folder)
    out = args.out or args.folder / "detections.parquet"
    ensure_writable_folder(out.parent)
    count = write_geoparquet(out, _scenes(results, georeferenced), georeferenced)
    print(f"wrote {out}: {count} detection(s) from {len(results)} scene(s)")
    return 0
