"""Reading and writing GeoJSON FeatureCollections (RFC 7946).

Writes go to a temporary name and are renamed when complete, so a reader
never sees half a file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from infer.errors import InputError
from infer.files import write_text_atomic

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
    rounded = _rounded(np.asarray(geoms, dtype=object)) if len(geoms) else []
    return [{"type": "Feature", "geometry": shapely.geometry.mapping(g), "properties": dict(p)}
            for g, p in zip(rounded, properties, strict=True)]


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
    """Read a GeoJSON FeatureCollection, with a clear error when it is not one."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise InputError(f"label file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise InputError(f"{path} is not a GeoJSON FeatureCollection")
    return data


def feature_geometries(collection: Mapping[str, Any]) -> list[BaseGeometry]:
    """The shapely geometries of a FeatureCollection, in order."""
    return [shapely.geometry.shape(f["geometry"]) for f in collection["features"]]
