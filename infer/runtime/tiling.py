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
    """Starts along one axis of the tiles of `fitted_side(length, tile, overlap)`: every side minus
    `overlap`, the last one flush with the end."""
    if length <= 0:
        raise ValueError(f"scene length must be positive, got {length}")
    if tile <= 0 or not 0 <= overlap < tile:
        raise ValueError(f"need tile > 0 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}")
    side = fitted_side(length, tile, overlap)
    if length <= side:
        return [0]
    origins = list(range(0, length - side, side - overlap))
    origins.append(length - side)
    return sorted(set(origins))


def axis_cores(length: int, tile: int, origins: list[int]) -> list[tuple[int, int]]:
    """Split [0, length) at the middle of each overlap between consecutive tiles."""
    bounds = [0]
    for left, right in zip(origins[:-1], origins[1:], strict=True):
        bounds.append((right + min(left + tile, length)) // 2)
    bounds.append(length)
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def fitted_side(length: int, tile: int, overlap: int = 0) -> int:
    """A tile's side along an axis of `length`: the fewest tiles of at most `tile` that cover it with
    `overlap`, each as short as that count allows (rounded up to the model's input multiple). Where the
    scene is shorter than a tile, its length rounded up: a strip 8 px high is run as 32 px tiles, not
    1024 px of padding; a 4096 px side takes five tiles of 960 px, not five of 1024 of which the last
    lies mostly over the fourth."""
    if length <= tile:
        return min(tile, _input_multiple(length))
    count = -(-(length - overlap) // (tile - overlap))
    return min(tile, _input_multiple(-(-(length + (count - 1) * overlap) // count)))


def _input_multiple(length: int) -> int:
    return -(-length // INPUT_MULTIPLE) * INPUT_MULTIPLE


def tile_grid(width: int, height: int, tile: int, overlap: int) -> list[Tile]:
    """Row-major tiles of at most `tile` a side covering a `width` x `height` scene, each with its core;
    all of one shape (`fitted_side` along each axis), so they batch."""
    rows, cols = axis_origins(height, tile, overlap), axis_origins(width, tile, overlap)
    tile_height, tile_width = fitted_side(height, tile, overlap), fitted_side(width, tile, overlap)
    row_cores, col_cores = axis_cores(height, tile_height, rows), axis_cores(width, tile_width, cols)
    return [
        Tile(r, c, tile_height, tile_width, (rc[0], cc[0], rc[1], cc[1]))
        for r, rc in zip(rows, row_cores, strict=True)
        for c, cc in zip(cols, col_cores, strict=True)
    ]
