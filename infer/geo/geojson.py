"""Reading and writing GeoJSON FeatureCollections (RFC 7946).

Writes go to a temporary name and are renamed when complete, so a reader
never sees half a file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from infer.errors import InputError
from infer.files import write_text_atomic
from infer.geo.vector_files import GEOJSON_SUFFIXES, declares_other_crs, read_ogr_collection

COORDINATE_DECIMALS = 8  # about a millimetre in latitude: labels map back to the exact pixel


def geometry(geom: BaseGeometry) -> dict[str, Any]:
    """A GeoJSON geometry from a shapely one already in WGS84, rounded to `COORDINATE_DECIMALS`.

    Polygons follow RFC 7946's right-hand rule (§3.1.6): exterior rings counter-clockwise, holes
    clockwise, whatever order the geometry came in.
    """
    return shapely.geometry.mapping(_rounded(geom))


def feature(geom: BaseGeometry, properties: Mapping[str, Any]) -> dict[str, Any]:
    """One GeoJSON Feature from a shapely geometry already in WGS84 (see `geometry`)."""
    return {"type": "Feature", "geometry": geometry(geom), "properties": dict(properties)}


def features(geoms: Sequence[BaseGeometry], properties: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`feature` of each pair, the geometries rounded and oriented in one call (the same result; per-geometry
    calls cost more than the arithmetic)."""
    rounded = _rounded(np.asarray(geoms, dtype=object)) if len(geoms) else np.empty(0, dtype=object)
    return [{"type": "Feature", "geometry": g, "properties": dict(p)}
            for g, p in zip(_mappings(rounded), properties, strict=True)]


def _simple_polygons(geoms: np.ndarray) -> np.ndarray:
    """Which of `geoms` are non-empty polygons without holes: their GeoJSON is one ring of coordinates."""
    if not len(geoms):
        return np.zeros(0, bool)
    return ((shapely.get_type_id(geoms) == shapely.GeometryType.POLYGON) & ~shapely.is_empty(geoms)
            & (shapely.get_num_interior_rings(geoms) == 0))


def _mappings(geoms: np.ndarray) -> list[dict[str, Any]]:
    """`shapely.geometry.mapping` of each geometry, the same dicts; the rings of simple polygons (nearly every
    output) read in one call, since per-geometry mapping costs more than the rest of the writing."""
    out: list[dict[str, Any] | None] = [None] * len(geoms)
    simple = _simple_polygons(geoms)
    chosen = np.flatnonzero(simple)
    if len(chosen):
        coords, which = shapely.get_coordinates(shapely.get_exterior_ring(geoms[chosen]), return_index=True)
        for i, ring in zip(chosen, np.split(coords, np.flatnonzero(np.diff(which)) + 1), strict=True):
            out[i] = {"type": "Polygon", "coordinates": (tuple(map(tuple, ring.tolist())),)}
    for i in np.flatnonzero(~simple):
        out[i] = shapely.geometry.mapping(geoms[i])
    return out  # type: ignore[return-value]


def shapes(features: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """The shapely geometry of each GeoJSON feature (as `shapely.geometry.shape`), polygons of one ring made
    in one call."""
    geoms = np.empty(len(features), dtype=object)
    ring_features = [i for i, f in enumerate(features)
                     if f["geometry"]["type"] == "Polygon" and len(f["geometry"]["coordinates"]) == 1]
    if ring_features:
        rings = [np.asarray(features[i]["geometry"]["coordinates"][0], dtype=np.float64) for i in ring_features]
        index = np.repeat(np.arange(len(rings)), [len(r) for r in rings])
        geoms[ring_features] = shapely.polygons(shapely.linearrings(np.concatenate(rings), indices=index))
    for i in set(range(len(features))) - set(ring_features):
        geoms[i] = shapely.geometry.shape(features[i]["geometry"])
    return geoms


def _rounded(geoms):
    return shapely.orient_polygons(shapely.set_precision(geoms, 10.0**-COORDINATE_DECIMALS, mode="pointwise"))


def write_feature_collection(
    path: str | Path,
    features: Iterable[Mapping[str, Any]],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a FeatureCollection atomically; `extra` adds foreign members (RFC 7946 §6.1)."""
    path = Path(path)
    collection: dict[str, Any] = {"type": "FeatureCollection"}
    collection.update(extra or {})
    collection["features"] = list(features)
    # One shot: the C encoder, not the streaming one.
    return write_text_atomic(path, json.dumps(collection, separators=(",", ":")) + "\n")


def read_feature_collection(path: str | Path) -> dict[str, Any]:
    """Read a GeoJSON FeatureCollection, with a clear error when it is not one. Another vector file (a
    GeoPackage, a Shapefile), or a GeoJSON that names another CRS, is read through OGR into one, in WGS84
    (`infer.geo.vector_files`)."""
    path = Path(path)
    if path.suffix.lower() not in GEOJSON_SUFFIXES and path.exists():
        return read_ogr_collection(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise InputError(f"GeoJSON not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise InputError(f"{path} is not a GeoJSON FeatureCollection")
    if declares_other_crs(path, data):
        return read_ogr_collection(path)
    features = data.get("features")
    if not isinstance(features, list):
        raise InputError(f"{path}: its 'features' is not a list")
    for n, feat in enumerate(features):
        if not isinstance(feat, dict) or not isinstance(feat.get("properties") or {}, dict):
            raise InputError(f"{path}: feature {n} is not a GeoJSON Feature with a properties object")
    return data


def finite_number(value: object) -> bool:
    """Whether a property's value is a number a measure can be (JSON's `true` is not one, nor NaN)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


#: What a feature drawn as a line (a berm's ridge) needs to become an area.
_LINE_HINT = ("; buffer the lines to their width first (QGIS: Vector > Geoprocessing Tools > Buffer, with flat "
              "ends)")


def _named(feat: Mapping[str, Any]) -> str:
    cls = (feat.get("properties") or {}).get("class")
    return f" ({cls})" if cls is not None else ""


def located_features(path: str | Path, collection: Mapping[str, Any]) -> Iterator[tuple[int, dict, BaseGeometry]]:
    """(index, feature, its shapely geometry) of each feature of `collection` (read from `path`) that has a place.

    A feature whose geometry is null or empty has none (RFC 7946 §3.2 allows it: a record without a location)
    and is left out; a malformed geometry, one with coordinates that are not finite numbers, or one that is
    not a polygon (a point, a line: every feature here is an outline) is an `InputError` naming the file
    and the feature.
    """
    for n, feat in enumerate(collection["features"]):
        if "geometry" not in feat:
            raise InputError(f"{path}: feature {n} has no 'geometry' member")
        if feat["geometry"] is None:
            continue
        try:
            geom = shapely.geometry.shape(feat["geometry"])
        except (AttributeError, KeyError, IndexError, TypeError, ValueError, shapely.errors.ShapelyError) as exc:
            raise InputError(f"{path}: feature {n} has a malformed geometry ({str(exc).splitlines()[0]})") from None
        if geom.is_empty:
            continue
        if not np.isfinite(shapely.get_coordinates(geom)).all():
            raise InputError(f"{path}: feature {n} has coordinates that are not finite numbers")
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise InputError(f"{path}: feature {n}{_named(feat)} is a {geom.geom_type}: every feature is an outline "
                             f"(a polygon), an object the rectangle around it, a region its area"
                             f"{_LINE_HINT if 'LineString' in geom.geom_type else ''}")
        yield n, feat, geom


def feature_geometries(collection: Mapping[str, Any]) -> list[BaseGeometry]:
    """The shapely geometries of a FeatureCollection, in order."""
    return [shapely.geometry.shape(f["geometry"]) for f in collection["features"]]
