"""Scene detections as GeoJSON features: WGS84 (RFC 7946), sizes in metres, compass headings.

Objects become their oriented rectangle (four corners counter-clockwise, as
RFC 7946 wants, the first two the front) with `length_m`, `width_m`,
`heading_deg`; regions their polygon with `area_m2`. A picture without
georeferencing keeps pixel coordinates.
"""

from __future__ import annotations

import numpy as np
import shapely
from affine import Affine
from rasterio.features import shapes
from shapely.geometry import shape

from infer.contract.geometry import rbox_to_corners
from infer.geo.crs import bearing_deg, to_wgs84
from infer.geo.geojson import features, geometry
from infer.runtime.reader import SceneGrid

SIMPLIFY_PX = 0.5


def _to_map(grid: SceneGrid):
    """Scene-grid pixel coordinates (N, 2) → map coordinates, as `affinity.affine_transform` computes them."""
    t = grid.transform

    def to_map(xy: np.ndarray) -> np.ndarray:
        x, y = xy[:, 0], xy[:, 1]
        return np.column_stack([t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f])

    return to_map


def _output_polygons(corners: np.ndarray, grid: SceneGrid) -> np.ndarray:
    """Polygons (N,) in output coordinates from corner rings (N, 4, 2) in scene-grid pixels."""
    polygons = shapely.polygons(corners)
    if grid.georeferenced:
        polygons = to_wgs84(shapely.transform(polygons, _to_map(grid)), grid.crs)
    return polygons


def _to_output(geom, grid: SceneGrid):
    """Scene-grid pixels → map coordinates → WGS84 (or pixels, without georeferencing); a geometry or an
    array of them (pointwise, so the same either way)."""
    if not grid.georeferenced:
        return geom
    return to_wgs84(shapely.transform(geom, _to_map(grid)), grid.crs)


def compass_deg(rboxes: np.ndarray, grid: SceneGrid) -> np.ndarray:
    """Objects' pixel-frame directions (rboxes (N, 5+): centre x, y, …, angle in radians from +x toward +y) →
    compass bearings from true north at each object (0 north, 90 east), whatever the grid's rotation and its
    CRS's convergence; an unreferenced picture is taken as north-up."""
    dx, dy = np.cos(rboxes[:, 4]), np.sin(rboxes[:, 4])
    if not grid.georeferenced:
        return np.degrees(np.arctan2(dx, -dy)) % 360.0
    t = grid.transform
    x, y = t.a * rboxes[:, 0] + t.b * rboxes[:, 1] + t.c, t.d * rboxes[:, 0] + t.e * rboxes[:, 1] + t.f
    return bearing_deg(grid.crs, x, y, t.a * dx + t.b * dy, t.d * dx + t.e * dy)


def object_features(rboxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, names: list[str],
                    directional: list[bool], grid: SceneGrid, oriented: list[bool] | None = None) -> list[dict]:
    """One feature per oriented object; `names`/`directional`/`oriented` are indexed by object class. An
    object of a class that is not `oriented` has no `heading_deg`.

    All corners go through the map transform and the reprojection at once: per-object calls cost
    more than the arithmetic, and the result is the same, point for point.
    """
    if len(scores) == 0:
        return []
    corners = rbox_to_corners(rboxes)  # (N, 4, 2) pixels: front-left, front-right, back-right, back-left
    headings = compass_deg(rboxes, grid)
    polygons = _output_polygons(corners, grid)
    # RFC 7946 wants exterior rings counter-clockwise; the same corners the other way round, still
    # front first: front-right, front-left, back-left, back-right.
    clockwise = ((shapely.get_type_id(polygons) == shapely.GeometryType.POLYGON)  # not those cut at the antimeridian
                 & ~shapely.is_ccw(shapely.get_exterior_ring(polygons)))
    if clockwise.any():
        polygons[clockwise] = _output_polygons(corners[clockwise][:, [1, 0, 3, 2]], grid)
    properties = []
    for k in range(len(scores)):
        cls = int(classes[k])
        period = 360.0 if directional[cls] else 180.0
        heading = round(float(headings[k]) % period, 1) % period  # 359.97 is 0.0, not 360.0
        props = {
            "class": names[cls],
            "score": round(float(scores[k]), 4),
            "length_m": round(float(rboxes[k, 2]) * grid.gsd_m, 2),
            "width_m": round(float(rboxes[k, 3]) * grid.gsd_m, 2),
        }
        if oriented is None or oriented[cls]:
            props["heading_deg"] = heading
        properties.append(props)
    return features(list(polygons), properties)


def region_features(pieces: list[tuple[int, shapely.Geometry, float]], names: list[str],
                    grid: SceneGrid) -> list[dict]:
    """One feature per merged region piece: (class index, polygon in grid pixels, score).

    Outlines traced from pixels are staircases; they are simplified within
    half a pixel (topology kept), which keeps the shape and drops most
    vertices. `area_m2` is the area of the pixels themselves.
    """
    properties = [{"class": names[k], "score": round(float(score), 4), "area_m2": round(geom.area * grid.gsd_m**2, 1)}
                  for k, geom, score in pieces]
    if not pieces:
        return []
    outlines = shapely.simplify(np.array([geom for _, geom, _ in pieces], dtype=object), SIMPLIFY_PX)
    return features(list(_to_output(outlines, grid)), properties)


def footprint(covered: np.ndarray, factor: float, grid: SceneGrid) -> dict | None:
    """The scene's valid area as a GeoJSON geometry in output coordinates; None when nothing is valid.

    Traced on the overview's blocks (`covered`, with `factor` overview pixels per grid pixel) and
    simplified within a block: `infer diff` compares two dates only where both saw the ground.
    """
    if not covered.any():
        return None
    to_grid = Affine.scale(1 / factor)
    pieces = [shape(g) for g, _ in shapes(covered.view(np.uint8), mask=covered, transform=to_grid, connectivity=8)]
    return geometry(_to_output(shapely.union_all(pieces).simplify(1 / factor), grid))


def outline(grid: SceneGrid) -> shapely.Geometry:
    """The scene grid's rectangle in output coordinates (WGS84, or pixels)."""
    return _to_output(shapely.box(0, 0, grid.width, grid.height), grid)


#: The top-level member of a file in pixel coordinates (readers key on its presence, `evaluate.read_in_pixels`).
PIXEL_COORDINATES = {"coordinates": "pixel (x right, y down): the input has no georeferencing"}


def output_crs_note(grid: SceneGrid) -> dict:
    """Top-level members saying which coordinates a file holds."""
    return {} if grid.georeferenced else dict(PIXEL_COORDINATES)
