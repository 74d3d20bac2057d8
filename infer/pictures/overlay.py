"""The overview picture analysts open first: the scene with what was found drawn on it.

A decimated read keeps memory flat for any scene size. Regions are outlined
and lightly filled, objects drawn as their oriented rectangle with the front
edge in white; an object too small to see at the overview's scale gets a
ring around it. Title with scene and date, legend with counts per class,
scale bar in metres and a north arrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from PIL import Image, ImageDraw

from infer.contract.defaults import REGION_FILL_ALPHA
from infer.contract.geometry import rbox_to_corners
from infer.contract.schema import hex_rgb
from infer.geo.crs import north_in_pixels
from infer.pictures.drawing import (
    display_scale,
    draw_legend,
    draw_north_arrow,
    draw_scale_bar,
    fill_polygon,
    line_width,
    read_pixels,
    read_valid,
    save_png,
    to_rgb,
)
from infer.runtime.reader import SceneGrid
from infer.runtime.tiling import Tile

MIN_VISIBLE_PX = 8  # an object shorter than this in the overview gets a ring
OVERVIEW_SIDE = 2048  # the overview's longer side, pixels


@dataclass(frozen=True)
class Overview:
    """The scene's imagery at the overview's scale: RGB (rows, cols, 3) uint8, `factor` = its pixels per grid
    pixel; `covered` (rows, cols) bool: blocks holding any valid pixel (the scene's footprint)."""

    rgb: np.ndarray
    factor: float
    covered: np.ndarray


def overview_shape(grid: SceneGrid, max_side: int = OVERVIEW_SIDE) -> tuple[tuple[int, int], float]:
    """(rows, cols) of the overview and its pixels per grid pixel."""
    factor = min(1.0, max_side / max(grid.width, grid.height))
    return (max(1, round(grid.height * factor)), max(1, round(grid.width * factor))), factor


def read_overview(grid: SceneGrid, max_side: int = OVERVIEW_SIDE) -> Overview:
    """The imagery the overview is drawn on, in one decimated read of the scene."""
    shape, factor = overview_shape(grid, max_side)
    pixels, dtype = read_pixels(grid.path, None, shape)
    return Overview(to_rgb(pixels, display_scale(pixels, dtype)), factor, read_valid(grid.path, grid.count, shape))


class OverviewCanvas:
    """The overview's imagery built from the tiles a run reads anyway, instead of reading the scene again.

    Each overview pixel is the mean of the valid grid pixels of its block (block edges at
    `round(k / factor)`), taken from the tile whose core holds the block's first pixel: a tile
    reaches past its core by half the overlap, more than a block, so it holds the whole block.
    Tiles may be added from several threads at once; each writes only the blocks it owns.
    """

    def __init__(self, grid: SceneGrid, max_side: int = OVERVIEW_SIDE) -> None:
        (rows, cols), self.factor = overview_shape(grid, max_side)
        self.dtype = grid.dtype
        self.row_edges = np.minimum(np.round(np.arange(rows + 1) / self.factor).astype(np.int64), grid.height)
        self.col_edges = np.minimum(np.round(np.arange(cols + 1) / self.factor).astype(np.int64), grid.width)
        self.row_edges[-1], self.col_edges[-1] = grid.height, grid.width
        self.means = np.zeros((min(3, grid.count), rows, cols), np.float32)
        self.covered = np.zeros((rows, cols), bool)

    @staticmethod
    def fits(grid: SceneGrid, overlap: int, max_side: int = OVERVIEW_SIDE) -> bool:
        """Whether a block fits in the reach of a tile past its core (not for scenes of many thousand pixels
        a side with a small overlap: then `read_overview`)."""
        _, factor = overview_shape(grid, max_side)
        return int(np.ceil(1 / factor)) + 1 <= overlap // 2

    def add(self, tile: Tile, pixels: np.ndarray, valid: np.ndarray) -> None:
        """One tile's raw (C, T, T) pixels and (T, T) valid mask, placed at `tile`."""
        r0, c0, r1, c1 = tile.core
        rows = np.flatnonzero((self.row_edges[:-1] >= r0) & (self.row_edges[:-1] < r1))
        cols = np.flatnonzero((self.col_edges[:-1] >= c0) & (self.col_edges[:-1] < c1))
        if rows.size == 0 or cols.size == 0:
            return
        # Block edges in the tile's own pixels; the last block ends where the next owner's begins.
        row_cuts = self.row_edges[rows[0]:rows[-1] + 2] - tile.row
        col_cuts = self.col_edges[cols[0]:cols[-1] + 2] - tile.col
        window = (slice(row_cuts[0], row_cuts[-1]), slice(col_cuts[0], col_cuts[-1]))
        row_cuts, col_cuts = row_cuts - row_cuts[0], col_cuts - col_cuts[0]
        values = pixels[: len(self.means)][(slice(None), *window)]
        if valid[window].all():  # most tiles: the counts are the blocks' sizes, the sums need no weights
            counts = np.outer(np.diff(row_cuts), np.diff(col_cuts)).astype(np.float32)
        else:
            weights = valid[window].astype(np.float32)
            values = values * weights
            counts = _block_sums(weights, row_cuts, col_cuts)
        sums = _block_sums(values, row_cuts, col_cuts)
        self.means[:, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = np.divide(
            sums, counts, out=np.zeros_like(sums), where=counts > 0)
        self.covered[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = counts > 0

    def finish(self) -> Overview:
        return Overview(to_rgb(self.means, display_scale(self.means, self.dtype)), self.factor, self.covered)


def _block_sums(array: np.ndarray, row_cuts: np.ndarray, col_cuts: np.ndarray) -> np.ndarray:
    """Float32 sums over the blocks [row_cuts[i], row_cuts[i + 1]) x [col_cuts[j], col_cuts[j + 1]) of the last
    two axes (`row_cuts[0]` and `col_cuts[0]` 0), of pixels in any dtype, each taken as float32.

    Blocks of one size (a scene whose side the overview divides, or one it does not shrink) are summed
    as the sum of the strided views of their offsets, an order of magnitude faster than `reduceat`, which
    takes the others. Both are exact for integer pixels, whose sums float32 holds.
    """
    heights, widths = np.diff(row_cuts), np.diff(col_cuts)
    if (heights == heights[0]).all() and (widths == widths[0]).all():
        (rows, height), (cols, width) = (len(heights), int(heights[0])), (len(widths), int(widths[0]))
        sums = np.zeros((*array.shape[:-2], rows, cols), np.float32)
        for i in range(height):
            for j in range(width):
                sums += array[..., i:rows * height:height, j:cols * width:width]
        return sums
    summed = np.add.reduceat(array, row_cuts[:-1], axis=-2, dtype=np.float32)
    return np.add.reduceat(summed, col_cuts[:-1], axis=-1, dtype=np.float32)


def write_overlay(path: Path, grid: SceneGrid, rboxes: np.ndarray, classes: np.ndarray,
                  pieces: list[tuple[int, shapely.Geometry, float]], object_names: list[str],
                  region_names: list[str], colors: dict[str, str], title: str,
                  overview: Overview | None = None) -> Path:
    """The overview picture at `path`; `overview` is `read_overview(grid)`, read here when not given."""
    overview = overview or read_overview(grid)
    factor = overview.factor
    image = Image.fromarray(overview.rgb).convert("RGBA")
    fill = Image.new("RGBA", image.size, (0, 0, 0, 0))
    line = line_width(max(image.size))
    outlines = []
    for k, geom, _ in pieces:
        for poly in getattr(geom, "geoms", [geom]):
            scaled = shapely.affinity.scale(poly, factor, factor, origin=(0, 0))
            fill_polygon(fill, scaled, (*hex_rgb(colors[region_names[k]]), REGION_FILL_ALPHA))
            outlines += [(list(ring.coords), colors[region_names[k]]) for ring in (scaled.exterior, *scaled.interiors)]
    image = Image.alpha_composite(image, fill).convert("RGB")
    draw = ImageDraw.Draw(image)
    for ring, color in outlines:
        draw.line(ring, fill=color, width=line)
    if len(rboxes):
        for corners, k, length in zip(rbox_to_corners(rboxes) * factor, classes, rboxes[:, 2] * factor, strict=True):
            color = colors[object_names[int(k)]]
            draw.line([tuple(p) for p in corners] + [tuple(corners[0])], fill=color, width=line)
            draw.line([tuple(corners[0]), tuple(corners[1])], fill="white", width=max(1, line // 2))
            if length < MIN_VISIBLE_PX:
                cx, cy = corners.mean(axis=0)
                r = MIN_VISIBLE_PX / 2 + 2 * line
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=color, width=line)
    text_size = max(12, max(image.size) // 60)
    counts = [(f"{n}: {int((classes == k).sum())}", colors[n]) for k, n in enumerate(object_names)]
    counts += [(f"{n}: {sum(1 for k, _, _ in pieces if k == j)}", colors[n]) for j, n in enumerate(region_names)]
    draw_legend(draw, title, counts, (0, 0), text_size)
    if grid.georeferenced:
        draw_scale_bar(draw, grid.gsd_m / factor, image.size, text_size)
        north = north_in_pixels(grid.transform, grid.crs, grid.width / 2, grid.height / 2)
        draw_north_arrow(draw, north, (image.size[0] - 3 * text_size, 3 * text_size), text_size)
    return save_png(image, path)
