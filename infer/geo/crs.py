"""Georeferencing helpers: map coordinates to WGS84 and back.

GeoJSON output is RFC 7946: longitude, latitude in WGS84 (EPSG:4326) with
x = longitude first, whatever the source CRS, and a geometry that crosses the
antimeridian cut in two there (§3.1.9), so that no polygon of a few metres
spans the globe. Frames in metres are chosen with longitudes taken around the
circle, so things either side of the antimeridian share one.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import shapely
import shapely.affinity
from pyproj import CRS, Geod, Transformer
from shapely.geometry.base import BaseGeometry

WGS84 = CRS.from_epsg(4326)


@lru_cache(maxsize=32)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(CRS.from_user_input(src), CRS.from_user_input(dst), always_xy=True)


def _crs_key(crs) -> str:
    """A hashable name for a CRS given as a string, a pyproj or a rasterio CRS, without parsing strings: a
    pyproj CRS by the input it was made from (`srs`; its `to_string` costs 9 µs, paid per geometry when
    thousands of objects are reprojected one by one)."""
    if isinstance(crs, str):
        return crs
    return crs.srs if isinstance(crs, CRS) else crs.to_string()


def transform_geometry(geom: BaseGeometry, src_crs: str | CRS, dst_crs: str | CRS) -> BaseGeometry:
    """Reproject a shapely geometry (coordinates x, y in each CRS's axis order east, north)."""
    t = _transformer(_crs_key(src_crs), _crs_key(dst_crs))

    def reproject(coords: np.ndarray) -> np.ndarray:
        x, y = t.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, reproject)


def to_wgs84(geom: BaseGeometry, src_crs: str | CRS) -> BaseGeometry:
    """Reproject a geometry (or an array of them) from `src_crs` to WGS84 longitude/latitude, cut at the
    antimeridian where it crosses it (`cut_at_antimeridian`)."""
    return cut_at_antimeridian(transform_geometry(geom, src_crs, WGS84))


def cut_at_antimeridian(geoms):
    """Each WGS84 polygon that crosses the antimeridian as its parts either side of it (RFC 7946 §3.1.9); the
    others as they are. A geometry or an array of them.

    A polygon reprojected from a local frame keeps its vertices' longitudes in [-180, 180], so one that
    crosses spans more than 180 degrees: it is joined (`_joined`) and cut at 180. A polygon holding a pole
    is not handled.
    """
    return _across_antimeridian(geoms, _cut)


def _across_antimeridian(geoms, change):
    """`geoms` (a geometry or an array of them) with `change` applied to those spanning over 180 degrees."""
    bounds = shapely.bounds(geoms)
    crossing = (bounds[..., 2] - bounds[..., 0]) > 180
    if not np.any(crossing):
        return geoms
    if not isinstance(geoms, np.ndarray):
        return change(geoms)
    changed = geoms.copy()
    changed[crossing] = [change(g) for g in geoms[crossing]]
    return changed


def _eastwards(xy: np.ndarray) -> np.ndarray:
    return np.column_stack([np.where(xy[:, 0] < 0, xy[:, 0] + 360, xy[:, 0]), xy[:, 1]])


def _joined(geom: BaseGeometry) -> BaseGeometry:
    """A polygonal geometry that crosses the antimeridian in longitudes unwrapped eastwards (past 180, as
    PROJ reads them), the parts of an earlier cut joined into one; other geometries as they are."""
    if shapely.get_type_id(geom) not in (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON):
        return geom
    return shapely.union_all(shapely.get_parts(shapely.transform(geom, _eastwards)))


def _cut(geom: BaseGeometry) -> BaseGeometry:
    whole = _joined(geom)
    if whole is geom:
        return geom
    west_of = shapely.intersection(whole, shapely.box(0, -90, 180, 90))
    east_of = shapely.affinity.translate(shapely.intersection(whole, shapely.box(180, -90, 360, 90)), -360)
    parts = [p for p in shapely.get_parts([west_of, east_of])
             if shapely.get_type_id(p) == shapely.GeometryType.POLYGON and not p.is_empty]
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def centre_lonlat(geom: BaseGeometry) -> tuple[float, float]:
    """Longitude and latitude of a WGS84 geometry's centroid, taken whole where it is cut at the antimeridian."""
    centre = _across_antimeridian(geom, _joined).centroid
    return (centre.x + 180) % 360 - 180, centre.y


def metric_crs(geoms) -> CRS:
    """The UTM zone at the centre of WGS84 geometries (a sequence or array of them): a frame in metres for
    comparing them. Geometries either side of the antimeridian get the zone there, not one on the far side of
    the globe (their plain centroid)."""
    collection = shapely.GeometryCollection(list(geoms))
    x0, _, x1, _ = collection.bounds
    if x1 - x0 > 180:
        collection = shapely.transform(collection, _eastwards)
    centre = collection.centroid
    return utm_crs((centre.x + 180) % 360 - 180, centre.y)


def from_wgs84(geom: BaseGeometry, dst_crs: str | CRS) -> BaseGeometry:
    """Reproject a WGS84 longitude/latitude geometry (or an array of them) to `dst_crs`; a polygon cut at the
    antimeridian comes back whole."""
    return transform_geometry(_across_antimeridian(geom, _joined), WGS84, dst_crs)


def utm_point(lon: float, lat: float, crs: str | CRS) -> tuple[float, float]:
    """Easting and northing of a WGS84 point in a projected CRS."""
    t = _transformer(WGS84.to_string(), CRS.from_user_input(crs).to_string())
    x, y = t.transform(lon, lat)
    return float(x), float(y)


def utm_crs(lon: float, lat: float) -> CRS:
    """The WGS84 UTM zone holding a longitude/latitude: a frame in metres for comparing geometries."""
    zone = int((lon + 180) // 6) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


#: The WGS84 ellipsoid (its semi-major axis `a`, squared eccentricity `es`): metres per degree on the ground.
_ELLIPSOID = Geod(ellps="WGS84")
_STEP_DEG = 1e-5


def ground_axes(crs: str | CRS, x, y) -> tuple[np.ndarray, np.ndarray]:
    """The map-coordinate vectors (N, 2) of one metre east and one metre north on the ground at map points
    (x, y) of `crs`: the local Jacobian, found by stepping a little in longitude and latitude. Grid north and
    true north differ by the meridians' convergence (up to a few degrees at a UTM zone's edge, anything in a
    polar projection), and a non-conformal grid may skew angles; these axes hold both."""
    x, y = np.atleast_1d(np.asarray(x, np.float64)), np.atleast_1d(np.asarray(y, np.float64))
    to_geo = _transformer(_crs_key(crs), _crs_key(WGS84))
    to_map = _transformer(_crs_key(WGS84), _crs_key(crs))
    lon, lat = to_geo.transform(x, y)
    a, es = _ELLIPSOID.a, _ELLIPSOID.es
    w = np.sqrt(1 - es * np.sin(np.radians(lat)) ** 2)
    metres_north = np.radians(_STEP_DEG) * a * (1 - es) / w**3  # the meridian's radius of curvature
    metres_east = np.radians(_STEP_DEG) * a / w * np.cos(np.radians(lat))  # the parallel's
    xe, ye = to_map.transform(lon + _STEP_DEG, lat)
    xn, yn = to_map.transform(lon, lat + _STEP_DEG)
    east = np.column_stack([xe - x, ye - y]) / metres_east[:, None]
    north = np.column_stack([xn - x, yn - y]) / metres_north[:, None]
    return east, north


def bearing_deg(crs: str | CRS, x, y, dx, dy) -> np.ndarray:
    """Compass bearings (degrees clockwise from true north, [0, 360)) of map-frame directions (dx, dy) at map
    points (x, y) of `crs`."""
    east, north = ground_axes(crs, x, y)
    dx, dy = np.asarray(dx, np.float64), np.asarray(dy, np.float64)
    det = east[:, 0] * north[:, 1] - east[:, 1] * north[:, 0]
    ground_east = (dx * north[:, 1] - dy * north[:, 0]) / det
    ground_north = (east[:, 0] * dy - east[:, 1] * dx) / det
    return np.degrees(np.arctan2(ground_east, ground_north)) % 360.0


def map_direction(crs: str | CRS, x, y, bearing) -> np.ndarray:
    """Map-frame vectors (N, 2) pointing along compass `bearing`s (degrees from true north) at map points (x, y)."""
    east, north = ground_axes(crs, x, y)
    b = np.radians(np.asarray(bearing, np.float64)).reshape(-1, 1)
    return np.sin(b) * east + np.cos(b) * north


def north_in_pixels(transform, crs: str | CRS, col: float, row: float) -> tuple[float, float]:
    """Unit vector of true north at pixel (col, row), in pixel axes (x right, y down)."""
    x, y = transform @ (col, row)
    _, north = ground_axes(crs, x, y)
    inverse = ~transform
    v = np.array([inverse.a * north[0, 0] + inverse.b * north[0, 1], inverse.d * north[0, 0] + inverse.e * north[0, 1]])
    v /= max(float(np.linalg.norm(v)), 1e-12)
    return float(v[0]), float(v[1])
