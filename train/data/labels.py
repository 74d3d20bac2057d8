"""Labels of a scene, read once from GeoJSON and cut per window into pixel space.

Objects are kept as four corners with the front edge first (corners 0 and 1)
so that any geometric augmentation can move them as keypoints; regions as
polygons in the scene's map CRS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import rasterize
from shapely.geometry.base import BaseGeometry

from infer.contract.codec import ObjectLabels
from infer.errors import InputError
from infer.geo.crs import from_wgs84, map_direction
from infer.geo.geojson import finite_number, located_features, read_feature_collection
from train.data.config import DatasetConfig


@dataclass(frozen=True)
class SceneLabels:
    """One scene's labels in its map CRS.

    corners: (N, 4, 2) map coordinates, corners 0-1 the front (or a short) edge.
    classes: (N,) object class index. directional: (N,) bool, heading known.
    regions: per region class, a list of polygons.
    """

    corners: np.ndarray
    classes: np.ndarray
    directional: np.ndarray
    regions: tuple[tuple[BaseGeometry, ...], ...]

    @property
    def centres(self) -> np.ndarray:
        return self.corners.mean(axis=1)


def _front_first(corners: np.ndarray, heading: np.ndarray | None) -> np.ndarray:
    """Rotate the corner order so corners 0-1 are the edge `heading` (a map-frame vector) points at.

    Without a heading, the first short edge goes first (either end will do).
    """
    centre = corners.mean(axis=0)
    mids = (corners + np.roll(corners, -1, axis=0)) / 2 - centre
    if heading is not None:
        scores = mids @ heading
    else:
        scores = np.linalg.norm(mids, axis=1)  # the short edges' midpoints are farthest
    start = int(np.argmax(scores))
    return np.roll(corners, -start, axis=0)


def object_sides(corners: np.ndarray) -> np.ndarray:
    """(N, 2) length and width (length >= width) of objects' corners (N, 4, 2), in their units."""
    corners = np.asarray(corners, np.float64).reshape(-1, 4, 2)
    sides = np.linalg.norm(np.diff(corners[:, :3], axis=1), axis=-1)
    return np.sort(sides, axis=1)[:, ::-1]


def read_scene_labels(path: Path, crs: CRS, config: DatasetConfig) -> SceneLabels:
    """Read a GeoJSON label file (WGS84) into the scene CRS; unknown classes are an error."""
    collection = read_feature_collection(path)
    index = config.class_index()
    directional = {c.name for c in config.classes if c.directional}
    corners, classes, heading_known = [], [], []
    regions: list[list[BaseGeometry]] = [[] for _ in config.region_classes]
    for n, feat, shape in located_features(path, collection):
        props = feat.get("properties") or {}
        name = props.get("class")
        if name not in index:
            raise InputError(f"{path}: feature {n} has unknown class {name!r} (known: {', '.join(index)})")
        geom = from_wgs84(shape, crs)
        kind, k = index[name]
        if kind == "region":
            regions[k].append(geom if geom.is_valid else geom.buffer(0))
            continue
        rect = geom.minimum_rotated_rectangle if geom.geom_type != "Polygon" or len(geom.exterior.coords) != 5 else geom
        pts = np.asarray(rect.exterior.coords)[:4]
        heading = props.get("heading_deg") if name in directional else None
        if heading is not None and not finite_number(heading):
            raise InputError(f"{path}: feature {n} ({name}) has heading_deg {heading!r}: a bearing in degrees from "
                             "true north, a number")
        # a bearing from true north, as a direction in the scene's map frame where the object is
        direction = None if heading is None else map_direction(crs, *pts.mean(axis=0), float(heading))[0]
        corners.append(_front_first(pts, direction))
        classes.append(k)
        heading_known.append(heading is not None)
    return SceneLabels(
        corners=np.asarray(corners, dtype=np.float64).reshape(-1, 4, 2),
        classes=np.asarray(classes, dtype=np.int64),
        directional=np.asarray(heading_known, dtype=bool),
        regions=tuple(tuple(r) for r in regions),
    )


def window_objects(labels: SceneLabels, to_pixels: Affine) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Object corners in a window's pixel frame (all objects; the caller filters)."""
    flat = labels.corners.reshape(-1, 2)
    a = np.array([[to_pixels.a, to_pixels.b], [to_pixels.d, to_pixels.e]])
    offset = np.array([to_pixels.c, to_pixels.f])
    pixels = (flat @ a.T + offset).reshape(-1, 4, 2)
    return pixels, labels.classes, labels.directional


def window_region_masks(labels: SceneLabels, window_transform: Affine, shape: tuple[int, int]) -> np.ndarray:
    """(n_region_classes, rows, cols) uint8 masks of the region labels under a window."""
    rows, cols = shape
    bounds = shapely.geometry.box(*_bounds(window_transform, rows, cols))
    masks = np.zeros((len(labels.regions), rows, cols), dtype=np.uint8)
    for k, polygons in enumerate(labels.regions):
        hits = [p for p in polygons if p.intersects(bounds)]
        if hits:
            masks[k] = rasterize([(p, 1) for p in hits], out_shape=shape, transform=window_transform, fill=0,
                                 dtype="uint8")
    return masks


def _bounds(transform: Affine, rows: int, cols: int) -> tuple[float, float, float, float]:
    xs, ys = zip(*(transform @ (c, r) for c, r in ((0, 0), (cols, 0), (0, rows), (cols, rows))), strict=True)
    return min(xs), min(ys), max(xs), max(ys)


def corners_to_labels(corners: np.ndarray, classes: np.ndarray, directional: np.ndarray,
                      size: tuple[int, int]) -> ObjectLabels:
    """Pixel corners (front edge first) → `ObjectLabels` for the objects centred inside `size`."""
    if len(corners) == 0:
        return ObjectLabels.empty()
    rows, cols = size
    centre = corners.mean(axis=1)
    inside = (centre[:, 0] >= 0) & (centre[:, 0] < cols) & (centre[:, 1] >= 0) & (centre[:, 1] < rows)
    corners, classes, directional, centre = corners[inside], classes[inside], directional[inside], centre[inside]
    front = (corners[:, 0] + corners[:, 1]) / 2 - centre
    side = (corners[:, 1] + corners[:, 2]) / 2 - centre
    half_length, half_width = np.linalg.norm(front, axis=1), np.linalg.norm(side, axis=1)
    along = np.where(half_length >= half_width, 0, 1)
    axis_vec = np.where(along[:, None] == 0, front, side)
    angle = np.arctan2(axis_vec[:, 1], axis_vec[:, 0])
    length = 2 * np.maximum(half_length, half_width)
    width = 2 * np.minimum(half_length, half_width)
    heading = np.arctan2(front[:, 1], front[:, 0]) % (2 * np.pi)
    rboxes = np.column_stack([centre, length, width, angle]).astype(np.float32)
    headings = np.where(directional, heading, np.nan).astype(np.float32)
    return ObjectLabels(rboxes, classes.astype(np.int64), headings)
