"""`python -m infer gpkg RUN_DIR [--changes FILE …] [--out FILE]`: a whole run in one GeoPackage for QGIS.

Layers `objects` and `regions` hold every finished scene's detections (a
`scene` field says whose), `sites` the run's sites when `infer sites` has
written them into the folder, and `changes` the changes of each `--changes`
file (`infer diff`'s changes.geojson, `infer track`'s
changes_over_time.geojson). Each is styled as the overlay and the change
pictures colour it, the styles stored inside. Scenes are written one at a
time, so memory holds one scene.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from infer.cli.console import OneLineArgumentParser, ensure_writable_folder
from infer.cli.run_results import finished_results, kind_of, scene_collections
from infer.cli.sites import DEFENCE_COLORS
from infer.errors import InputError, UsageError
from infer.geo.geojson import located_features, read_feature_collection
from infer.geo.geopackage import StreamedLayer, write_streamed_geopackage
from infer.pictures.changes_picture import CHANGE_COLORS

OBJECT_FIELDS = (("scene", "str"), ("class", "str"), ("score", "float"), ("length_m", "float"),
                 ("width_m", "float"), ("heading_deg", "float"))
REGION_FIELDS = (("scene", "str"), ("class", "str"), ("score", "float"), ("area_m2", "float"))
SITE_FIELDS = (("scene", "str"), ("site", "int"), ("defence", "str"), ("area_m2", "float"), ("length_m", "float"),
               ("width_m", "float"), ("storehouses", "int"), ("fortified_storehouses", "int"), ("berm_m", "float"),
               ("cleared_m2", "float"), ("trucks_inside", "int"), ("trucks_near", "int"), ("summary", "str"))
CHANGE_FIELDS = (("source", "str"), ("class", "str"), ("change", "str"), ("area_m2", "float"),
                 ("length_m", "float"), ("from_date_index", "int"), ("to_date_index", "int"))


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="python -m infer gpkg",
                              description="Write a whole run into one GeoPackage for QGIS: layers objects and "
                                          "regions (every scene), sites (when `infer sites` ran there) and changes "
                                          "(of --changes files), each styled by class or kind of change.")
    p.add_argument("folder", type=Path, help="an `infer run` output folder")
    p.add_argument("--changes", type=Path, action="append", default=[], metavar="FILE",
                   help="a changes GeoJSON (`infer diff`'s or `infer track`'s) for the changes layer; repeatable")
    p.add_argument("--out", type=Path, help="the file to write (default: FOLDER/run.gpkg)")
    return p


def _scenes(results: Sequence[tuple[str, Path]], kind: str, colors: dict[str, str],
            georeferenced: bool) -> Iterator[list[dict]]:
    """Each scene's features of `kind`, its scene name added; the colours of its classes go to `colors`."""
    for name, collection in scene_collections(results, georeferenced):
        chosen = [f for f in collection["features"] if kind_of(collection, f["properties"]) == kind]
        colors.update({c: v for c, v in (collection.get("colors") or {}).items()
                       if kind_of(collection, {"class": c}) == kind})
        yield [{**f, "properties": {**f["properties"], "scene": name}} for f in chosen]


def _features_of(path: Path, extra: dict) -> Iterator[list[dict]]:
    yield [{**f, "properties": {**f["properties"], **extra}} for f in read_feature_collection(path)["features"]]


def _changes(path: Path) -> list[dict]:
    """The features of a changes GeoJSON that have a place; `InputError` for a file that is not one (a feature
    without a `change`: a run's detections or labels given by mistake)."""
    located = [feat for _, feat, _ in located_features(path, read_feature_collection(path))]
    if any("change" not in (feat["properties"] or {}) for feat in located):
        raise InputError(f"{path} is not a changes GeoJSON: its features have no 'change' "
                         "(write one with `infer diff` or `infer track`)")
    return located


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    results, georeferenced = finished_results(args.folder)
    changes = []  # a bad file stops the job before anything is written
    for path in args.changes:
        if not path.is_file():
            raise UsageError(f"not found: {path}")
        try:
            changes.append([{**f, "properties": {**f["properties"], "source": path.name}} for f in _changes(path)])
        except InputError as exc:
            raise UsageError(str(exc)) from None
    object_colors: dict[str, str] = {}
    region_colors: dict[str, str] = {}
    # the colour maps fill as the scenes are read; the styles are written after every batch
    layers = [StreamedLayer("objects", OBJECT_FIELDS, _scenes(results, "object", object_colors, georeferenced),
                            object_colors, filled=False),
              StreamedLayer("regions", REGION_FIELDS, _scenes(results, "region", region_colors, georeferenced),
                            region_colors, filled=True)]
    sites = args.folder / "sites.geojson"
    if sites.is_file():
        layers.append(StreamedLayer("sites", SITE_FIELDS, _features_of(sites, {}), DEFENCE_COLORS, filled=True,
                                    styled_by="defence"))
    if changes:
        layers.append(StreamedLayer("changes", CHANGE_FIELDS, iter(changes), CHANGE_COLORS, filled=True,
                                    styled_by="change"))
    out = args.out or args.folder / "run.gpkg"
    ensure_writable_folder(out.parent)
    count = write_streamed_geopackage(out, layers, crs="EPSG:4326" if georeferenced else None)
    print(f"wrote {out}: {count} feature(s) from {len(results)} scene(s), layers {', '.join(layer.name for layer in layers)}")
    return 0
