"""One synthetic tile in memory: the busiest window of a generated scene, for checks that need real content.

`train export` compares PyTorch and ONNX Runtime on it: on random noise a
model finds nothing, and "identical detections" would say nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from synth.layout import SceneSpec, plan_scene
from synth.render import SceneRenderer

#: Band sets the generator draws, by band count.
BAND_SETS = {3: "rgb", 4: "rgbn"}
DTYPES = ("uint8", "uint16")
#: The scene the tile is cut from is this many tiles on a side.
SCENE_TILES = 4


@dataclass(frozen=True)
class SyntheticTile:
    """`pixels` (C, size, size) in the generator's dtype; `labels`: what lies in it, by class."""

    pixels: np.ndarray
    labels: dict[str, int]


def can_draw(bands: int, dtype: str | None) -> bool:
    """Whether the generator can draw a tile with these bands and pixel type."""
    return bands in BAND_SETS and (dtype or "uint8") in DTYPES


def busiest_tile(size: int, gsd_m: float, bands: int = 3, dtype: str | None = "uint8", seed: int = 0
                 ) -> SyntheticTile:
    """The `size` x `size` window, on a grid of half tiles, holding the most labeled things of a generated scene."""
    if not can_draw(bands, dtype):
        raise ValueError(f"the generator draws {sorted(BAND_SETS)} bands of {DTYPES}, not {bands} of {dtype}")
    side = SCENE_TILES * size
    layout = plan_scene(SceneSpec(side, side, gsd_m, BAND_SETS[bands], dtype or "uint8", seed))
    labels = [label for _, label in layout.labels(1)]
    centres = np.array([label.geom.centroid.coords[0] for label in labels]).reshape(-1, 2) / gsd_m
    step = size // 2
    origins = [(row, col) for row in range(0, side - size + 1, step) for col in range(0, side - size + 1, step)]

    def inside(row: int, col: int) -> np.ndarray:
        x, y = centres[:, 0], centres[:, 1]
        return (x >= col) & (x < col + size) & (y >= row) & (y < row + size)

    row, col = max(origins, key=lambda o: (len({labels[i].cls for i in np.flatnonzero(inside(*o))}),
                                           int(inside(*o).sum())))
    pixels = SceneRenderer(layout, layout.acquisitions[0]).render(Window(col, row, size, size))
    counts = Counter(labels[i].cls for i in np.flatnonzero(inside(row, col)))
    return SyntheticTile(pixels, dict(sorted(counts.items())))


__all__ = ["BAND_SETS", "DTYPES", "SyntheticTile", "busiest_tile", "can_draw"]
