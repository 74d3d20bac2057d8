"""Georeferencing helpers: map coordinates to WGS84 and back.

GeoJSON output is RFC 7946: longitude, latitude in WGS84 (EPSG:4326) with
x = longitude first, whatever the source CRS.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

WGS84 = CRS.from_epsg(4326)


@lru_cache(maxsize=32)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(CRS.from_user_input(src), CRS.from_user_input(dst), always_xy=True)


def _crs_key(crs) -> str:
    """A hashable name for a CRS given as a string, a pyproj or a rasterio CRS, without parsing strings."""
    return crs if isinstance(crs, str) else crs.to_string()


def transform_geometry(geom: BaseGeometry, src_crs: str | CRS, dst_crs: str | CRS) -> BaseGeometry:
    """Reproject a shapely geometry (coordinates x, y in each CRS's axis order east, north)."""
    t = _transformer(_crs_key(src_crs), _crs_key(dst_crs))

    def reproject(coords: np.ndarray) -> np.ndarray:
        x, y = t.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, reproject)


def to_wgs84(geom: BaseGeometry, src_crs: str | CRS) -> BaseGeometry:
    """Reproject a geometry from `src_crs` to WGS84 longitude/latitude."""
    return transform_geometry(geom, src_crs, WGS84)


def from_wgs84(geom: BaseGeometry, dst_crs: str | CRS) -> BaseGeometry:
    """Reproject a WGS84 longitude/latitude geometry to `dst_crs`."""
    return transform_geometry(geom, WGS84, dst_crs)


def utm_point(lon: float, lat: float, crs: str | CRS) -> tuple[float, float]:
    """Easting and northing of a WGS84 point in a projected CRS."""
    t = _transformer(WGS84.to_string(), CRS.from_user_input(crs).to_string())
    x, y = t.transform(lon, lat)
    return float(x), float(y)


def utm_crs(lon: float, lat: float) -> CRS:
    """The WGS84 UTM zone holding a longitude/latitude: a frame in metres for comparing geometries."""
    zone = int((lon + 180) // 6) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def north_in_pixels(transform, crs: str | CRS, col: float, row: float) -> tuple[float, float]:
    """Unit vector of true north at pixel (col, row), in pixel axes (x right, y down)."""
    x, y = transform @ (col, row)
    to_geo = _transformer(_crs_key(crs), _crs_key(WGS84))
    to_map = _transformer(_crs_key(WGS84), _crs_key(crs))
    lon, lat = to_geo.transform(x, y)
    x2, y2 = to_map.transform(lon, lat + 1e-4)
    c2, r2 = ~transform @ (x2, y2)
    v = np.array([c2 - col, r2 - row])
    v /= max(float(np.linalg.norm(v)), 1e-12)
    return float(v[0]), float(v[1])
