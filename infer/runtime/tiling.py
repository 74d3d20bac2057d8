"""Tiles over a scene and the core region each one owns.

Tiles overlap; the core regions partition the scene exactly (every pixel in
exactly one core), so a detection kept only by the tile whose core holds its
centre is found once, with no cross-tile NMS (docs/design.md, decision 3). A core
boundary sits in the middle of the overlap between two tiles, so each tile
sees at least `overlap // 2` pixels of context beyond its core, except at
the scene border.

All coordinates are pixels of the grid the model sees, `[start, stop)`.
"""

from __future__ import annotations

from dataclasses import dataclass

from infer.contract.schema import INPUT_MULTIPLE


@dataclass(frozen=True)
class Tile:
    """A model input window and its core, in scene pixels.

    `row`, `col`: the window's top-left; it spans `height` x `width` (the
    part past the scene's edge is padding). `core`: `(row0, col0, row1,
    col1)`, half-open, always inside both the window and the scene.
    """

    row: int
    col: int
    height: int
    width: int
    core: tuple[int, int, int, int]

    def owns(self, row: float, col: float) -> bool:
        r0, c0, r1, c1 = self.core
        return r0 <= row < r1 and c0 <= col < c1


def axis_origins(length: int, tile: int, overlap: int) -> list[int]:
    """Tile starts along one axis: every `tile - overlap`, the last one flush with the end."""
    if length <= 0:
        raise ValueError(f"scene length must be positive, got {length}")
    if tile <= 0 or not 0 <= overlap < tile:
        raise ValueError(f"need tile > 0 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}")
    if length <= tile:
        return [0]
    step = tile - overlap
    origins = list(range(0, length - tile, step))
    origins.append(length - tile)
    return sorted(set(origins))


def axis_cores(length: int, tile: int, origins: list[int]) -> list[tuple[int, int]]:
    """Split [0, length) at the middle of each overlap between consecutive tiles."""
    bounds = [0]
    for left, right in zip(origins[:-1], origins[1:], strict=True):
        bounds.append((right + min(left + tile, length)) // 2)
    bounds.append(length)
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def fitted_side(length: int, tile: int) -> int:
    """A tile's side along an axis of `length`: `tile`, or, where the scene is shorter, its length rounded up
    to the model's input multiple. A strip 8 px high is run as 32 px tiles, not 1024 px of padding."""
    return tile if length > tile else min(tile, -(-length // INPUT_MULTIPLE) * INPUT_MULTIPLE)


def tile_grid(width: int, height: int, tile: int, overlap: int) -> list[Tile]:
    """Row-major tiles covering a `width` x `height` scene, each with its core; all of one shape
    (`fitted_side` along each axis), so they batch."""
    rows, cols = axis_origins(height, tile, overlap), axis_origins(width, tile, overlap)
    row_cores, col_cores = axis_cores(height, tile, rows), axis_cores(width, tile, cols)
    tile_height, tile_width = fitted_side(height, tile), fitted_side(width, tile)
    return [
        Tile(r, c, tile_height, tile_width, (rc[0], cc[0], rc[1], cc[1]))
        for r, rc in zip(rows, row_cores, strict=True)
        for c, cc in zip(cols, col_cores, strict=True)
    ]
