"""Oriented rectangles ("rboxes") in pixel coordinates: corners, areas, IoU.

Conventions (shared with the model and `infer.contract.codec`):

* pixel coordinates: x = column, y = row, y points down;
* an rbox is `(cx, cy, length, width, angle)`: center, side along the angle,
  side across it, and the angle in radians measured from +x toward +y
  (clockwise on screen). `corners_to_rbox` returns `length >= width` and the
  axis angle in [0, pi); objects with a heading carry it in [0, 2 pi) instead.

Pure numpy/shapely, no torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

Array = NDArray[np.float64]


def wrap_angle(angle: ArrayLike, period: float = np.pi) -> Array:
    """Angles wrapped into [0, period), safe against `np.mod` returning `period`."""
    wrapped = np.mod(np.asarray(angle, dtype=np.float64), period)
    return np.where(wrapped >= period, wrapped - period, wrapped)


def _check_rboxes(rboxes: ArrayLike, name: str = "rboxes") -> Array:
    array = np.asarray(rboxes, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 5:
        raise ValueError(
            f"{name} must have shape (N, 5) as (cx, cy, length, width, angle), got {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    if (array[:, 2:4] < 0).any():
        raise ValueError(f"{name} have a negative length or width")
    return array


def rbox_to_corners(rboxes: ArrayLike) -> Array:
    """Corners of each rbox, `(N, 5)` → `(N, 4, 2)` as (x, y) pixels.

    Order: front-left, front-right, back-right, back-left, where "front" is the
    end the angle points to and "left"/"right" are as seen facing that way on
    screen (y down). The ring runs clockwise on screen (positive shoelace area
    in pixel coordinates). For an axis angle (no heading) "front" is just the
    +angle end.
    """
    boxes = _check_rboxes(rboxes)
    cx, cy, length, width, angle = boxes.T
    cos, sin = np.cos(angle), np.sin(angle)
    # Half-extents along the front direction and toward the right-hand side.
    front = np.stack([cos, sin], axis=-1) * (length / 2)[:, None]
    right = np.stack([-sin, cos], axis=-1) * (width / 2)[:, None]
    center = np.stack([cx, cy], axis=-1)
    return np.stack(
        [
            center + front - right,
            center + front + right,
            center - front + right,
            center - front - right,
        ],
        axis=1,
    )


def _polygons_from(corners: ArrayLike | shapely.Polygon | Sequence[shapely.Polygon]) -> np.ndarray:
    if isinstance(corners, shapely.Polygon):
        return np.array([corners], dtype=object)
    if isinstance(corners, Sequence) and corners and isinstance(corners[0], shapely.Geometry):
        polygons = np.array(corners, dtype=object)
        if not all(isinstance(p, shapely.Polygon) for p in polygons):
            raise ValueError("corners_to_rbox accepts shapely Polygons only")
        return polygons
    points = np.asarray(corners, dtype=np.float64)
    if points.ndim != 3 or points.shape[1] < 3 or points.shape[2] != 2:
        raise ValueError(
            f"corners must have shape (N, 4, 2) (or (N, K>=3, 2) rings), got {points.shape}"
        )
    if not np.isfinite(points).all():
        raise ValueError("corners contain NaN or infinite values")
    return shapely.polygons(points)


def corners_to_rbox(corners: ArrayLike | shapely.Polygon | Sequence[shapely.Polygon]) -> Array:
    """Rboxes `(N, 5)` from corner rings `(N, 4, 2)` or shapely polygons.

    Each ring or polygon is replaced by its minimum-area enclosing rectangle
    (exactly itself for a rectangle), so slightly skewed hand-drawn labels work
    too. Returns `(cx, cy, length, width, theta)` with `length >= width` and
    theta, the direction of the long side, in [0, pi): the corner order cannot
    tell front from back, so no heading comes back.

    Raises:
        ValueError: bad shape, non-finite values, or a polygon of zero area.
    """
    polygons = _polygons_from(corners)
    if len(polygons) == 0:
        return np.zeros((0, 5))
    envelopes = shapely.oriented_envelope(polygons)
    flat = np.flatnonzero(shapely.get_type_id(envelopes) != shapely.GeometryType.POLYGON)
    if flat.size or (shapely.area(envelopes) <= 0).any():
        bad = flat[0] if flat.size else int(np.flatnonzero(shapely.area(envelopes) <= 0)[0])
        raise ValueError(f"polygon {bad} has zero area: an rbox needs a length and a width")
    ring = shapely.get_coordinates(shapely.get_exterior_ring(envelopes)).reshape(
        len(polygons), 5, 2
    )[:, :4]
    side_a = ring[:, 1] - ring[:, 0]
    side_b = ring[:, 2] - ring[:, 1]
    len_a = np.hypot(side_a[:, 0], side_a[:, 1])
    len_b = np.hypot(side_b[:, 0], side_b[:, 1])
    a_is_long = len_a >= len_b
    long_side = np.where(a_is_long[:, None], side_a, side_b)
    theta = wrap_angle(np.arctan2(long_side[:, 1], long_side[:, 0]))
    center = ring.mean(axis=1)
    return np.stack(
        [
            center[:, 0],
            center[:, 1],
            np.maximum(len_a, len_b),
            np.minimum(len_a, len_b),
            theta,
        ],
        axis=1,
    )


def snap_axis_aligned(rboxes: ArrayLike) -> Array:
    """Oriented boxes (N, 5) turned to the nearer of the two axis-aligned ones: angle 0 (length along x) or
    pi/2 (along y). An unoriented class is trained on axis-aligned boxes, so its predicted angle only says
    which side is the longer one."""
    boxes = _check_rboxes(rboxes).copy()
    along_y = np.abs(np.sin(boxes[:, 4])) > np.abs(np.cos(boxes[:, 4]))
    boxes[:, 4] = np.where(along_y, np.pi / 2, 0.0)
    return boxes


def rbox_area(rboxes: ArrayLike) -> Array:
    """Areas `(N,)` in square pixels of rboxes `(N, 5)`."""
    boxes = _check_rboxes(rboxes)
    return boxes[:, 2] * boxes[:, 3]


def rbox_polygons(rboxes: ArrayLike) -> np.ndarray:
    """Shapely polygons `(N,)` (object array) of rboxes `(N, 5)`."""
    corners = rbox_to_corners(rboxes)
    if len(corners) == 0:
        return np.zeros(0, dtype=object)
    return shapely.polygons(corners)


def rbox_iou(a: ArrayLike, b: ArrayLike) -> Array:
    """Pairwise IoU matrix `(N, M)` of rboxes `a` `(N, 5)` and `b` `(M, 5)`.

    Exact polygon intersection (shapely); only pairs whose polygons touch are
    intersected (STRtree), so large sets stay cheap. Zero-area pairs give 0.
    """
    poly_a, poly_b = rbox_polygons(_check_rboxes(a, "a")), rbox_polygons(_check_rboxes(b, "b"))
    iou = np.zeros((len(poly_a), len(poly_b)))
    if len(poly_a) == 0 or len(poly_b) == 0:
        return iou
    index_a, index_b = shapely.STRtree(poly_b).query(poly_a, predicate="intersects")
    if index_a.size == 0:
        return iou
    inter = shapely.area(shapely.intersection(poly_a[index_a], poly_b[index_b]))
    union = shapely.area(poly_a[index_a]) + shapely.area(poly_b[index_b]) - inter
    iou[index_a, index_b] = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return iou


def elongated_length(geom: shapely.Geometry) -> float:
    """Length of a long thin shape: the long side of the rectangle with the same area and perimeter."""
    p, a = geom.length, geom.area
    return p / 4 + float(np.sqrt(max(p * p / 16 - a, 0.0)))


__all__ = [
    "elongated_length",
    "corners_to_rbox",
    "rbox_area",
    "rbox_iou",
    "snap_axis_aligned",
    "rbox_polygons",
    "rbox_to_corners",
    "wrap_angle",
]
