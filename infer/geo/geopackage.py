"""GeoPackages that QGIS opens as they are: one layer per kind of feature, each styled by class.

Written through pyogrio (GDAL's GPKG driver), not by hand: each layer from the
same features the GeoJSON holds, its fields typed from their values, and the
styles in the `layer_styles` table QGIS reads (`infer.geo.qgis_style`). The
file appears whole or not at all (`infer.files.atomic_write`).
"""

from __future__ import annotations

import errno
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from infer.files import atomic_write
from infer.geo.geojson import shapes
from infer.geo.qgis_style import class_style

#: Below this much free space a failed write is taken for a full disk.
FULL_DISK_BYTES = 1 << 20
# A picture without georeferencing is written in pixel coordinates, without a CRS, on purpose.
warnings.filterwarnings("ignore", message="'crs' was not provided", category=UserWarning)


@dataclass(frozen=True)
class Layer:
    """One layer: its `features` (GeoJSON Feature dicts, WGS84 or pixels), the colour of each value of the
    `styled_by` field, and whether its polygons are filled (regions) or outlined (objects)."""

    name: str
    features: Sequence[dict[str, Any]]
    colors: dict[str, str]
    filled: bool
    styled_by: str = "class"


def write_geopackage(path: Path, layers: Sequence[Layer], crs: str | None = "EPSG:4326",
                     changed: datetime | None = None) -> Path:
    """Write every layer and its style to `path`; `crs` None for pixel coordinates (no georeferencing).

    `changed`: the time the file records as its content's last change (`gpkg_contents`); given, the
    same content gives the same bytes, as every output of a run does (a resumed run's included).
    """
    import pyogrio

    stamp = None if changed is None else changed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    with atomic_write(path, ".gpkg") as temporary:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": stamp})
        try:
            for layer in layers:
                _write_layer(temporary, layer, crs)
            _write_styles(temporary, layers)
        except RuntimeError as exc:  # pyogrio's errors carry GDAL's text
            raise _as_os_error(exc, temporary.parent) from None
        finally:
            pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})
    return path


@dataclass(frozen=True)
class StreamedLayer:
    """A layer written a batch of GeoJSON features at a time, with fixed `fields` (name, "str" | "float" |
    "int"), for files too large to hold at once (a run's every scene); styled like `Layer`."""

    name: str
    fields: tuple[tuple[str, str], ...]
    batches: Iterable[Sequence[dict[str, Any]]]
    colors: dict[str, str]
    filled: bool
    styled_by: str = "class"


def write_streamed_geopackage(path: Path, layers: Sequence[StreamedLayer], crs: str | None = "EPSG:4326") -> int:
    """Write each layer batch by batch (GDAL appends), then the styles of those that got features; the
    file appears whole. Returns the features written."""
    from pyogrio.raw import write

    written, styled = 0, []
    with atomic_write(path, ".gpkg") as temporary:
        try:
            for layer in layers:
                started = False
                for batch in layer.batches:
                    if not batch:
                        continue
                    geometries = shapes(batch)
                    columns = [_typed([(f.get("properties") or {}).get(name) for f in batch], kind)
                               for name, kind in layer.fields]
                    write(temporary, shapely.to_wkb(geometries), field_data=columns,
                          fields=[name for name, _ in layer.fields], layer=layer.name, driver="GPKG", crs=crs,
                          geometry_type="MultiPolygon", promote_to_multi=True, append=started)
                    started, written = True, written + len(batch)
                if started:
                    styled.append(Layer(layer.name, (), layer.colors, layer.filled, layer.styled_by))
            if styled:
                _write_styles(temporary, styled)
        except RuntimeError as exc:
            raise _as_os_error(exc, temporary.parent) from None
    return written


def _typed(values: list[Any], kind: str) -> np.ndarray:
    if kind == "float":
        return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)
    if kind == "int":
        return np.array([0 if v is None else int(v) for v in values], dtype=np.int64)
    return np.array(["" if v is None else str(v) for v in values], dtype=object)


def _as_os_error(exc: RuntimeError, folder: Path) -> OSError:
    """A failed GeoPackage write as an `OSError`. SQLite on a full disk reports what failed next (a table
    that could not be made is "no such table"), so a folder left with almost no room says so."""
    try:
        room = os.statvfs(folder)
        full = room.f_bavail * room.f_frsize < FULL_DISK_BYTES
    except OSError:
        full = False
    if full:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return OSError(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)


def _write_layer(path: Path, layer: Layer, crs: str | None) -> None:
    from pyogrio.raw import write  # deferred: only runs that write a GeoPackage pay its import

    geometries = shapes(layer.features)
    names = list(dict.fromkeys(key for f in layer.features for key in (f.get("properties") or {})))
    columns = [_column([(f.get("properties") or {}).get(name) for f in layer.features]) for name in names]
    kinds = sorted(set(shapely.get_type_id(geometries))) if len(geometries) else []
    geometry_type = "MultiPolygon" if 6 in kinds else "Polygon"
    write(path, shapely.to_wkb(np.array(geometries, dtype=object)), field_data=columns, fields=names,
          layer=layer.name, driver="GPKG", crs=crs, geometry_type=geometry_type, promote_to_multi=6 in kinds)


def _column(values: list[Any]) -> np.ndarray:
    """A field's values as a typed array: integers, floats (missing as NaN), or text (missing as "")."""
    present = [v for v in values if v is not None]
    if present and len(present) == len(values) and all(isinstance(v, int) for v in present):
        return np.array(values, dtype=np.int64)
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)
    return np.array(["" if v is None else str(v) for v in values], dtype=object)


def _write_styles(path: Path, layers: Sequence[Layer]) -> None:
    """The `layer_styles` table QGIS looks for, one default style per layer."""
    from pyogrio.raw import write

    count = len(layers)
    columns = {
        "f_table_catalog": [""] * count, "f_table_schema": [""] * count,
        "f_table_name": [layer.name for layer in layers], "f_geometry_column": ["geom"] * count,
        "styleName": [layer.name for layer in layers],
        "styleQML": [class_style(layer.colors, layer.filled, layer.styled_by) for layer in layers],
        "styleSLD": [""] * count,
        "useAsDefault": [1] * count, "description": ["sitewatch class colours"] * count, "owner": [""] * count,
        "ui": [""] * count,
    }
    write(path, None, field_data=[np.array(v, dtype=np.int64 if k == "useAsDefault" else object)
                                  for k, v in columns.items()],
          fields=list(columns), layer="layer_styles", driver="GPKG")


__all__ = ["Layer", "StreamedLayer", "write_geopackage", "write_streamed_geopackage"]
