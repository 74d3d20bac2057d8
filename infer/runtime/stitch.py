"""Put tile results together into scene results, by core region.

`core_objects` and `core_regions` are the per-tile body of a run: decode
the tile's outputs and keep what its core owns. They are pure functions of
one tile, so worker processes can run them for many tiles at once
(`infer.runtime.decoder`); `SceneStitcher.add` takes the results back in
tile order, so the scene comes out the same whichever ran them. A tile keeps only the objects whose centre lies in its core and
contributes only the core of its masks: no duplicates at seams and no
cross-tile NMS (docs/design.md, decision 3). Region pieces cut by core
boundaries are merged when the scene is finished.
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
from infer.contract.regions import EIGHT_CONNECTED
from infer.runtime.options import ResolvedOptions
from infer.runtime.tiling import Tile


@dataclass(frozen=True)
class TileResult:
    """What one tile's core owns, in scene-grid pixels.

    rboxes (N, 5) float64, scores (N,), classes (N,): objects centred in the core.
    core_classes (h, w) uint8: the core's class map (0 none, k + 1 region k), for the mask writer.
    pieces: (region class, polygon, probability sum, pixel count) of each connected piece of the core.
    """

    tile: Tile
    rboxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    core_classes: np.ndarray
    pieces: list[tuple[int, shapely.Geometry, float, float]]


def core_objects(options: ResolvedOptions, stride: int, tile: Tile, heatmap: np.ndarray | None,
                 box: np.ndarray | None, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """rboxes (N, 5) in scene-grid pixels, scores, classes of the objects centred in the tile's core and,
    given the tile's (h, w) `valid` pixels, on one of them: nothing is reported on nodata or padding.
    `heatmap` None: a model without object classes."""
    found = ObjectDetections.empty() if heatmap is None else decode_objects(
        heatmap, box, options.score, options.max_objects, stride=stride, axis_aligned=options.axis_aligned)
    rboxes = found.rboxes.astype(np.float64).copy()
    keep = np.ones(len(rboxes), bool)
    if valid is not None and len(rboxes) and not valid.all():
        rows = np.clip(rboxes[:, 1].astype(np.int64), 0, valid.shape[0] - 1)
        cols = np.clip(rboxes[:, 0].astype(np.int64), 0, valid.shape[1] - 1)
        keep = valid[rows, cols]
    rboxes[:, 0] += tile.col
    rboxes[:, 1] += tile.row
    r0, c0, r1, c1 = tile.core
    keep &= (rboxes[:, 0] >= c0) & (rboxes[:, 0] < c1) & (rboxes[:, 1] >= r0) & (rboxes[:, 1] < r1)
    return rboxes[keep], found.scores[keep], found.classes[keep]


@dataclass(frozen=True)
class RegionMaps:
    """A tile's regions as a graph that decodes them returns them (`ModelInfo.region_decode`).

    classes (h, w) uint8: 0 none, k + 1 region k. scores (h, w) float32: that class's probability, 0 none.
    """

    classes: np.ndarray
    scores: np.ndarray


def core_regions(options: ResolvedOptions, tile: Tile, valid: np.ndarray | None,
                 regions: np.ndarray | RegionMaps | None
                 ) -> tuple[np.ndarray, list[tuple[int, shapely.Geometry, float, float]]]:
    """The core's class map and its pieces (see `TileResult`) from the tile's (R, h, w) region probabilities,
    or from the maps of a graph that decoded them (None: a model without region classes, whose core is all 0).
    `valid` (h, w): the tile's pixels that hold imagery; the maps have already left out the others."""
    rows, cols = core_slices(tile)
    if regions is None:
        return np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.uint8), []
    if isinstance(regions, RegionMaps):
        return core_pieces(regions.classes[rows, cols], regions.scores[rows, cols], tile, options.min_area_px)
    everywhere = bool(valid.all())  # most tiles: then nothing needs masking
    if not everywhere:
        regions = np.where(valid, regions, np.float32(0.0))
    classes, scores = core_class_map(regions, tile, options.mask_threshold, options.closing_px,
                                     None if everywhere else valid)
    return core_pieces(classes, scores, tile, options.min_area_px)


def core_slices(tile: Tile) -> tuple[slice, slice]:
    """Rows and columns of a tile's core, in the tile's own pixels."""
    r0, c0, r1, c1 = tile.core
    return slice(r0 - tile.row, r1 - tile.row), slice(c0 - tile.col, c1 - tile.col)


def core_class_map(mask: np.ndarray, tile: Tile, threshold: float = MASK_THRESHOLD, closing_px: float = 0.0,
                   valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The core of a tile's (K, h, w) region probabilities as class indices (uint8: 0 none, k + 1 region k)
    and each pixel's probability of its class (float32, 0 where none).

    Regions are decoded on the core and the reach of closing around it (`decode_regions`, so closing
    sees past the core's edge); where classes overlap, the most probable wins.
    `valid` (h, w): pixels outside it stay 0 even where closing would fill them.
    """
    # Closing decides a pixel from what lies within twice its radius: only the core and that reach of
    # the tile are decoded, which gives the same core (past the tile's edge both see nothing).
    reach = 2 * int(np.ceil(closing_px)) + 1
    rows, cols = core_slices(tile)
    near = (slice(max(0, rows.start - reach), rows.stop + reach), slice(max(0, cols.start - reach), cols.stop + reach))
    regions = decode_regions(mask[(slice(None), *near)], threshold, closing_px)
    if valid is not None:
        regions &= valid[near]
    inside = regions[:, rows.start - near[0].start:rows.stop - near[0].start,
                     cols.start - near[1].start:cols.stop - near[1].start]
    probabilities = mask[:, rows, cols]
    if not inside.any():
        return np.zeros(inside.shape[1:], np.uint8), np.zeros(inside.shape[1:], np.float32)
    # Strictly more probable wins: ties go to the first class, as argmax would. -1: not in that class.
    best = np.where(inside[0], probabilities[0], np.float32(-1.0))
    classes = inside[0].astype(np.uint8)
    for k in range(1, len(inside)):
        held = np.where(inside[k], probabilities[k], np.float32(-1.0))
        np.copyto(classes, np.uint8(k + 1), where=held > best)
        np.maximum(best, held, out=best)
    np.maximum(best, np.float32(0.0), out=best)
    return classes, best


def core_pieces(classes: np.ndarray, scores: np.ndarray, tile: Tile, min_area_px: tuple[float, ...] = ()
                ) -> tuple[np.ndarray, list[tuple[int, shapely.Geometry, float, float]]]:
    """Connected pieces of a core class map (h, w), in scene-grid pixels, with (probability sum, area); and
    the class map without the pieces that are specks already.

    `scores` (h, w): of the same core, each pixel's probability of its class; a piece's sum is over them.
    A piece that does not reach the core's edge is whole here (nothing of another tile can touch it), so
    when it is smaller than its class's `min_area_px[k]` it is dropped now, from the pieces and from the
    class map (a new array; `classes` is left as it is), instead of being outlined, merged and erased from
    the mask at the end of the scene (`drop_specks`). Its pixel count is its outline's area.
    """
    rows, cols = np.flatnonzero(classes.any(axis=1)), np.flatnonzero(classes.any(axis=0))
    if rows.size == 0:
        return classes, []
    # Only the box around the pieces: labeling and outlining cost what their array holds.
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    labels, piece_class = _label(classes[box])
    # Counts and sums over the pieces' pixels alone, a few in a hundred of the box (bin 0 is not used).
    at = np.flatnonzero(labels)
    areas = np.bincount(labels.ravel()[at], minlength=len(piece_class) + 1)
    specks = _interior_specks(labels, piece_class, areas, min_area_px,
                              (rows[0] == 0, rows[-1] == len(classes) - 1, cols[0] == 0, cols[-1] == classes.shape[1] - 1))
    if specks[1:].any():
        gone = specks[labels]
        labels[gone] = 0
        classes = classes.copy()
        classes[box][gone] = 0
    sums = np.bincount(labels.ravel()[at], weights=scores[box][np.divmod(at, labels.shape[1])],
                       minlength=len(piece_class) + 1)
    offset = Affine.translation(tile.core[1] + cols[0], tile.core[0] + rows[0])
    return classes, [(int(piece_class[int(n) - 1]), shape(geom), float(sums[int(n)]), float(areas[int(n)]))
                     for geom, n in shapes(labels, mask=labels > 0, transform=offset, connectivity=8)]


def _interior_specks(labels: np.ndarray, piece_class: np.ndarray, areas: np.ndarray, min_area_px: tuple[float, ...],
                     at_edge: tuple[bool, bool, bool, bool]) -> np.ndarray:
    """Per label (0 first, never a speck): a piece off the core's edge smaller than its class's minimum.
    `at_edge`: whether `labels`' top, bottom, left, right side lies on the core's edge."""
    specks = np.zeros(len(areas), bool)
    if not any(min_area_px) or len(piece_class) == 0:
        return specks
    touching = np.zeros(len(areas), bool)
    for side, on_edge in zip((labels[0], labels[-1], labels[:, 0], labels[:, -1]), at_edge, strict=True):
        if on_edge:
            touching[side] = True
    specks[1:] = ~touching[1:] & (areas[1:] < np.asarray(min_area_px, np.float64)[piece_class])
    return specks


@dataclass
class SceneStitcher:
    """A scene's objects and region pieces, from its tiles' results taken in tile order."""

    rboxes: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    classes: list[np.ndarray] = field(default_factory=list)
    polygons: dict[int, list[shapely.Geometry]] = field(default_factory=dict)
    weights: dict[int, list[tuple[float, float]]] = field(default_factory=dict)  # (probability sum, area)

    def add(self, result: TileResult) -> None:
        self.rboxes.append(result.rboxes)
        self.scores.append(result.scores)
        self.classes.append(result.classes)
        for k, geom, probability, area in result.pieces:
            self.polygons.setdefault(k, []).append(geom)
            self.weights.setdefault(k, []).append((probability, area))

    def objects(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """rboxes (N, 5), scores (N,), classes (N,) of the whole scene."""
        if not self.scores:
            return np.zeros((0, 5)), np.zeros(0, np.float32), np.zeros(0, np.int64)
        return np.concatenate(self.rboxes), np.concatenate(self.scores), np.concatenate(self.classes)

    def regions(self) -> list[tuple[int, shapely.Geometry, float]]:
        """(class, polygon, score) with pieces that touch across seams merged; score = mean probability."""
        out = []
        for k, polys in self.polygons.items():
            tree = shapely.STRtree(polys)
            union = shapely.union_all(polys)
            for merged in getattr(union, "geoms", [union]):
                parts = tree.query(merged, predicate="intersects")
                probability = sum(self.weights[k][i][0] for i in parts)
                area = sum(self.weights[k][i][1] for i in parts)
                out.append((k, merged, probability / max(area, 1.0)))
        return out


def drop_specks(pieces: list[tuple[int, shapely.Geometry, float]], min_area_px: tuple[float, ...]
                ) -> tuple[list[tuple[int, shapely.Geometry, float]], list[tuple[int, shapely.Geometry, float]]]:
    """Merged region pieces (class index, polygon, score) split into those reported and the specks smaller
    than their class's `min_area_px[k]` (model-grid pixels), which are not."""
    kept, specks = [], []
    for piece in pieces:
        (specks if piece[1].area < min_area_px[piece[0]] else kept).append(piece)
    return kept, specks


def _label(classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected pieces of equal class (8-connected), numbered from 1; and each piece's class index (from 0)."""
    labels = np.zeros(classes.shape, np.int32)
    piece_class: list[int] = []
    for value in np.unique(classes[classes > 0]):
        pieces, n = ndimage.label(classes == value, structure=EIGHT_CONNECTED)
        np.add(pieces, len(piece_class), out=labels, where=pieces > 0)
        piece_class += [int(value) - 1] * n
    return labels, np.asarray(piece_class, np.int64)
