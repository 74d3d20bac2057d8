"""Vector files other than RFC 7946 GeoJSON read as GeoJSON in WGS84 (`infer.geo.vector_files`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely

from infer.errors import InputError
from infer.geo.crs import to_wgs84
from infer.geo.geojson import read_feature_collection

SQUARE = shapely.box(677000, 3823000, 677010, 3823010)  # 10 m in UTM 37N


def _old_style(path: Path, crs_name: str, geom: shapely.Geometry) -> Path:
    """A GeoJSON of the 2008 kind, with a `crs` member, as QGIS writes one for a layer in UTM."""
    path.write_text(json.dumps({"type": "FeatureCollection", "name": "labels",
                                "crs": {"type": "name", "properties": {"name": crs_name}},
                                "features": [{"type": "Feature", "properties": {"class": "storehouse", "note": None},
                                              "geometry": shapely.geometry.mapping(geom)}]}))
    return path


def test_a_geojson_naming_a_utm_crs_is_read_in_wgs84(tmp_path):
    path = _old_style(tmp_path / "utm.geojson", "urn:ogc:def:crs:EPSG::32637", SQUARE)
    (feature,) = read_feature_collection(path)["features"]
    got = shapely.geometry.shape(feature["geometry"])
    assert got.symmetric_difference(to_wgs84(SQUARE, "EPSG:32637")).area < 1e-14  # square degrees: a few mm²
    assert feature["properties"] == {"class": "storehouse"}  # the null field left out


def test_a_geojson_naming_wgs84_is_read_as_it_is(tmp_path):
    square = to_wgs84(SQUARE, "EPSG:32637")
    path = _old_style(tmp_path / "lonlat.geojson", "urn:ogc:def:crs:OGC:1.3:CRS84", square)
    collection = read_feature_collection(path)
    assert collection["name"] == "labels"  # its own members kept: not rewritten through OGR
    assert collection["features"][0]["geometry"] == json.loads(path.read_text())["features"][0]["geometry"]


def test_a_geojson_naming_a_crs_nobody_knows_is_one_line(tmp_path):
    path = _old_style(tmp_path / "odd.geojson", "urn:ogc:def:crs:EPSG::999999", SQUARE)
    with pytest.raises(InputError) as err:
        read_feature_collection(path)
    assert "odd.geojson names a CRS that PROJ does not know (urn:ogc:def:crs:EPSG::999999)" in str(err.value)
