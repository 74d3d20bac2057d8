"""Put tile results together into scene results, by core region.

`SceneStitcher.add_tile` is the per-tile body of a run: decode the tile's
outputs, keep what its core owns, stitch it to the rest. A tile keeps only
the objects whose centre lies in its core and contributes only the core of
its masks: no duplicates at seams and no cross-tile NMS (docs/design.md,
decision 3). Region pieces cut by core boundaries are merged when the scene
is finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from affine import Affine
from rasterio.features import shapes
from scipy import ndimage
from shapely.geometry import shape

from infer.contract.codec import ObjectDetections, decode_objects, decode_regions
from infer.contract.defaults import MASK_THRESHOLD
from infer.runtime.options import ResolvedOptions
from infer.runtime.reader import TileRead
from infer.runtime.tiling import Tile


@dataclass
class SceneObjects:
    """Objects found so far, in scene-grid pixels: rboxes (N, 5), scores (N,), classes (N,)."""

    rboxes: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    classes: list[np.ndarray] = field(default_factory=list)

    def add_tile(self, tile: Tile, found: ObjectDetections) -> int:
        """Keep the tile's objects centred in its core; returns how many."""
        rboxes = found.rboxes.astype(np.float64).copy()
        rboxes[:, 0] += tile.col
        rboxes[:, 1] += tile.row
        r0, c0, r1, c1 = tile.core
        keep = (rboxes[:, 0] >= c0) & (rboxes[:, 0] < c1) & (rboxes[:, 1] >= r0) & (rboxes[:, 1] < r1)
        self.rboxes.append(rboxes[keep])
        self.scores.append(found.scores[keep])
        self.classes.append(found.classes[keep])
        return int(keep.sum())

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.scores:
            return np.zeros((0, 5)), np.zeros(0, np.float32), np.zeros(0, np.int64)
        return np.concatenate(self.rboxes), np.concatenate(self.scores), np.concatenate(self.classes)


def core_slices(tile: Tile) -> tuple[slice, slice]:
    """Rows and columns of a tile's core, in the tile's own pixels."""
    r0, c0, r1, c1 = tile.core
    return slice(r0 - tile.row, r1 - tile.row), slice(c0 - tile.col, c1 - tile.col)


def core_class_map(mask: np.ndarray, tile: Tile, threshold: float = MASK_THRESHOLD, closing_px: float = 0.0,
                   valid: np.ndarray | None = None) -> np.ndarray:
    """The core of a tile's (K, T, T) region probabilities as class indices: 0 none, k + 1 region k.

    Regions are decoded on the whole tile (`decode_regions`, so closing sees
    past the core's edge); where classes overlap, the most probable wins.
    `valid` (T, T): pixels outside it stay 0 even where closing would fill them.
    """
    regions = decode_regions(mask, threshold, closing_px)
    if valid is not None:
        regions &= valid
    core = core_slices(tile)
    inside = regions[:, core[0], core[1]]
    best = np.where(inside, mask[:, core[0], core[1]], -1.0).argmax(axis=0)
    return np.where(inside.any(axis=0), best + 1, 0).astype(np.uint8)


@dataclass
class ScenePieces:
    """Region polygons per class from core class maps, in scene-grid pixels, with probability sums."""

    polygons: dict[int, list[shapely.Geometry]] = field(default_factory=dict)
    weights: dict[int, list[tuple[float, float]]] = field(default_factory=dict)  # (probability sum, area)

    def add_core(self, classes: np.ndarray, probabilities: np.ndarray, tile: Tile) -> None:
        """classes: (h, w) core class map; probabilities: (K, h, w) of the same core."""
        if not classes.any():
            return
        r0, c0 = tile.core[0], tile.core[1]
        offset = Affine.translation(c0, r0)
        labels, count = _label(classes)
        index = np.arange(1, count + 1)
        # Per piece, in one pass each: its class, its pixel count, its probability sum per class.
        piece_class = ndimage.maximum(classes, labels, index).astype(int) - 1
        areas = np.bincount(labels.ravel(), minlength=count + 1)
        sums = np.stack([ndimage.sum_labels(p, labels, index) for p in probabilities])
        for geom, value in shapes(labels, mask=labels > 0, transform=offset, connectivity=8):
            n = int(value)
            k = int(piece_class[n - 1])
            self.polygons.setdefault(k, []).append(shape(geom))
            self.weights.setdefault(k, []).append((float(sums[k, n - 1]), float(areas[n])))

    def merged(self) -> list[tuple[int, shapely.Geometry, float]]:
        """(class, polygon, score) with pieces that touch across seams merged; score = mean probability."""
        out = []
        for k, polys in self.polygons.items():
            tree = shapely.STRtree(polys)
            for merged in getattr(shapely.union_all(polys), "geoms", [shapely.union_all(polys)]):
                parts = tree.query(merged, predicate="intersects")
                prob = sum(self.weights[k][i][0] for i in parts)
                area = sum(self.weights[k][i][1] for i in parts)
                out.append((k, merged, prob / max(area, 1.0)))
        return out


class SceneStitcher:
    """A scene's objects and region pieces, built tile by tile from the model's outputs."""

    def __init__(self, options: ResolvedOptions, stride: int) -> None:
        self.options, self.stride = options, stride
        self.objects, self.pieces = SceneObjects(), ScenePieces()

    def add_tile(self, read: TileRead, heatmap: np.ndarray, box: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Decode one tile's outputs (heatmap (C, h, w), box (7, h, w), mask (R, T, T)) and keep what its core
        owns; returns the core's class map for the mask writer. `mask` is changed: nodata pixels become 0."""
        found = decode_objects(heatmap, box, self.options.score, stride=self.stride)
        self.objects.add_tile(read.tile, found)
        mask[:, ~read.valid] = 0.0
        classes = core_class_map(mask, read.tile, self.options.mask_threshold, self.options.closing_px, read.valid)
        rows, cols = core_slices(read.tile)
        self.pieces.add_core(classes, mask[:, rows, cols], read.tile)
        return classes


def _label(classes: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected pieces of equal class (8-connected), numbered from 1."""
    labels = np.zeros(classes.shape, np.int32)
    count = 0
    for value in np.unique(classes[classes > 0]):
        pieces, n = ndimage.label(classes == value, structure=np.ones((3, 3), bool))
        labels[pieces > 0] = pieces[pieces > 0] + count
        count += n
    return labels, count
