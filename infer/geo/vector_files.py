"""Vector files other than GeoJSON (GeoPackage, Shapefile, FlatGeobuf, KML, …) read as a GeoJSON
FeatureCollection in WGS84, so that labels digitized in QGIS go wherever GeoJSON goes.

Read through OGR (pyogrio), in whatever CRS the file is in: the geometries are
reprojected to WGS84 (and cut at the antimeridian, as every GeoJSON here is),
the fields become each feature's properties, a null one left out as a GeoJSON
feature lacks that member (a berm has no `heading_deg`). A file must hold one
layer and say its CRS: which layer, or where its coordinates are, would
otherwise be a guess.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from infer.errors import InputError
from infer.geo.crs import to_wgs84

#: Suffixes read as GeoJSON text; any other goes through OGR.
GEOJSON_SUFFIXES = (".geojson", ".json")
#: Label fields whose names a Shapefile cuts to 10 characters (dBase's limit), by the name it keeps.
SHAPEFILE_FIELDS = {"heading_de": "heading_deg"}
#: The vector files that are taken for labels by their suffix (a scene's beside it, `infer evaluate`'s truth).
LABEL_SUFFIXES = (".geojson", ".gpkg", ".shp", ".fgb")


def read_ogr_collection(path: Path) -> dict[str, Any]:
    """The one layer of the vector file at `path` as a FeatureCollection dict in WGS84; `InputError` (one line)
    for a file OGR cannot read, one of several layers or none, or one without a CRS."""
    import pyogrio
    from pyogrio.raw import read

    try:
        layers = pyogrio.list_layers(path)
        if len(layers) != 1:
            names = ", ".join(str(name) for name, _ in layers) or "none"
            raise InputError(f"{path} has {len(layers)} layers ({names}), labels need one: write it alone, e.g. "
                             f"ogr2ogr -f GeoJSON {Path(path).stem}.geojson {Path(path).name} LAYER")
        meta, _, wkb, columns = read(path, datetime_as_string=True, force_2d=True)  # GPS heights: not ours
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, pyogrio.errors.FieldError) as exc:
        raise InputError(f"cannot read {path}: {str(exc).strip().splitlines()[0]}") from None
    if meta["crs"] is None:
        raise InputError(f"{path} does not say its CRS: assign it (in QGIS, or ogr2ogr -a_srs) and run again")
    geoms = to_wgs84(shapely.from_wkb(wkb), meta["crs"])
    names = list(meta["fields"])
    if Path(path).suffix.lower() == ".shp":  # a Shapefile's field names are cut to 10 characters
        names = [SHAPEFILE_FIELDS.get(name, name) for name in names]
    features = []
    for i, geom in enumerate(geoms):
        values = ((name, _python(column[i])) for name, column in zip(names, columns, strict=True))
        properties = {name: value for name, value in values if value is not None}  # a null field: not given
        features.append({"type": "Feature", "properties": properties,
                         "geometry": None if geom is None else shapely.geometry.mapping(geom)})
    return {"type": "FeatureCollection", "features": features}


def declares_other_crs(path: Path, collection: dict[str, Any]) -> bool:
    """Whether a GeoJSON object (read from `path`) names a CRS (the 2008 GeoJSON's `crs` member, which QGIS and
    older tools still write) other than WGS84 longitude/latitude: its coordinates are then not what RFC 7946
    says they are. A name PROJ does not know is an `InputError`: where the coordinates are would be a guess."""
    member = collection.get("crs")
    name = ((member.get("properties") or {}).get("name") if isinstance(member, dict) else None)
    if not isinstance(name, str):
        return False
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        return not CRS.from_user_input(name).equals(CRS.from_epsg(4326), ignore_axis_order=True)
    except CRSError:
        raise InputError(f"{path} names a CRS that PROJ does not know ({name}): give its coordinates in WGS84 "
                         "(RFC 7946) or in a CRS with an EPSG code") from None


def _python(value: Any) -> Any:
    """A field value as JSON would hold it: numpy scalars as Python numbers, a missing number (NaN) as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


__all__ = ["GEOJSON_SUFFIXES", "LABEL_SUFFIXES", "declares_other_crs", "read_ogr_collection"]
