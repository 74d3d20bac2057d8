"""GeoParquet 1.1 for runs too large for GeoJSON: one file, written a row group at a time.

Geometries are WKB in the column `geometry`, WGS84 longitude/latitude
(`OGC:CRS84`, the GeoJSON order) or, for unreferenced scenes, pixels with no
CRS. A `bbox` struct column is declared as the geometry's covering, so
readers that filter by area (GDAL, DuckDB, GeoPandas with `bbox=`) skip
row groups without decoding geometries. Each batch handed to the writer
becomes row groups of its own, so memory holds one batch (one scene), not
the run. Needs pyarrow (`pip install 'sitewatch[parquet]'`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import shapely

from infer.errors import UsageError
from infer.files import atomic_write
from infer.geo.geojson import shapes

GEOPARQUET_VERSION = "1.1.0"

#: The property columns and their Arrow types; a feature without one leaves it null.
PROPERTY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("scene", "string"), ("class", "string"), ("kind", "string"), ("score", "float32"),
    ("length_m", "float32"), ("width_m", "float32"), ("heading_deg", "float32"), ("area_m2", "float64"),
)


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise UsageError("GeoParquet needs pyarrow: pip install 'sitewatch[parquet]'") from None
    return pyarrow, pyarrow.parquet


def _schema(pa, georeferenced: bool):
    from pyproj import CRS

    columns = [pa.field(name, getattr(pa, kind)()) for name, kind in PROPERTY_COLUMNS]
    bbox = pa.struct([pa.field(k, pa.float64()) for k in ("xmin", "ymin", "xmax", "ymax")])
    column = {"encoding": "WKB", "geometry_types": ["Polygon", "MultiPolygon"],
              "crs": CRS("OGC:CRS84").to_json_dict() if georeferenced else None,
              "covering": {"bbox": {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}}}
    geo = {"version": GEOPARQUET_VERSION, "primary_column": "geometry", "columns": {"geometry": column}}
    return pa.schema([*columns, pa.field("bbox", bbox), pa.field("geometry", pa.binary())],
                     metadata={b"geo": json.dumps(geo).encode()})


def _table(pa, schema, features: Sequence[Mapping[str, Any]], extra: Mapping[str, Any]):
    geoms = shapes(features)
    bounds = shapely.bounds(geoms).reshape(-1, 4)
    props = [{**(f.get("properties") or {}), **extra} for f in features]
    arrays = [pa.array([p.get(name) for p in props], type=schema.field(name).type) for name, _ in PROPERTY_COLUMNS]
    arrays.append(pa.StructArray.from_arrays([pa.array(bounds[:, i], pa.float64()) for i in range(4)],
                                             names=["xmin", "ymin", "xmax", "ymax"]))
    arrays.append(pa.array(shapely.to_wkb(geoms) if len(geoms) else [], type=pa.binary()))
    return pa.Table.from_arrays(arrays, schema=schema)


def write_geoparquet(path: Path, batches: Iterable[tuple[Sequence[Mapping[str, Any]], Mapping[str, Any]]],
                     georeferenced: bool = True, row_group_size: int = 100_000) -> int:
    """Write `batches` of (GeoJSON features, properties added to each) to `path`; returns the features written.
    The file appears only when complete."""
    pa, pq = _pyarrow()
    schema = _schema(pa, georeferenced)
    written = 0
    with atomic_write(path, ".parquet") as temporary:
        with pq.ParquetWriter(temporary, schema, compression="zstd") as writer:
            for features, extra in batches:
                if features:
                    writer.write_table(_table(pa, schema, features, extra), row_group_size=row_group_size)
                    written += len(features)
    return written


__all__ = ["GEOPARQUET_VERSION", "PROPERTY_COLUMNS", "write_geoparquet"]
