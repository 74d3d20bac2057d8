"""The overview's imagery made from the tiles a run reads is the mean of each block's valid pixels."""

from __future__ import annotations

import numpy as np
import pytest

from infer.pictures.overlay import OverviewCanvas
from infer.runtime.reader import TileReader, open_grid
from tests.infer.oracle import write_scene


def _block_means(pixels: np.ndarray, valid: np.ndarray, row_edges: np.ndarray, col_edges: np.ndarray) -> np.ndarray:
    """Each block's mean of its valid pixels, one block at a time in float64 (0 where none is valid)."""
    out = np.zeros((len(pixels), len(row_edges) - 1, len(col_edges) - 1))
    for i, (r0, r1) in enumerate(zip(row_edges[:-1], row_edges[1:], strict=True)):
        for j, (c0, c1) in enumerate(zip(col_edges[:-1], col_edges[1:], strict=True)):
            weights = valid[r0:r1, c0:c1]
            if weights.any():
                out[:, i, j] = pixels[:, r0:r1, c0:c1][:, weights].mean(axis=1)
    return out


@pytest.mark.parametrize(("height", "width", "max_side"), [
    (600, 800, 200),  # blocks of 4 x 4: the strided sums
    (601, 803, 256),  # blocks of 3 and 4 pixels: reduceat
    (300, 400, 512),  # not shrunk: blocks of one pixel
])
def test_the_canvas_holds_the_mean_of_the_valid_pixels_of_every_block(tmp_path, height, width, max_side):
    rng = np.random.default_rng(height)
    pixels = rng.integers(1, 255, (3, height, width)).astype(np.uint8)
    pixels[:, 100:180, 50:333] = 0  # no data, cutting blocks and tiles
    scene = write_scene(tmp_path / "scene.tif", pixels, nodata=0)
    grid = open_grid(scene, 3, 0.5)
    canvas = OverviewCanvas(grid, max_side)
    for read in TileReader(grid, 256, 64):
        canvas.add(read.tile, read.pixels, read.valid)
    valid = (pixels != 0).all(axis=0)
    expected = _block_means(pixels.astype(np.float64), valid, canvas.row_edges, canvas.col_edges)
    np.testing.assert_allclose(canvas.means, expected, rtol=1e-6)
    assert canvas.means.shape == (3, round(height * min(1, max_side / width)), round(width * min(1, max_side / width)))
    np.testing.assert_array_equal(canvas.covered, _block_means(valid[None].astype(float), np.ones_like(valid),
                                                               canvas.row_edges, canvas.col_edges)[0] > 0)


def test_a_crop_reads_the_scene_pixels_inside_and_zeros_past_its_edge(tmp_path):
    """The contact sheet's crops: a window inside the scene is read directly, one past its edge boundless."""
    from rasterio.windows import Window

    from infer.geo.rasterenv import open_raster
    from infer.pictures.drawing import read_window

    pixels = np.arange(3 * 200 * 300, dtype=np.uint16).reshape(3, 200, 300) % 4000 + 1
    scene = write_scene(tmp_path / "scene.tif", pixels)
    with open_raster(scene) as src:
        inside, dtype = read_window(src, Window(40, 30, 64, 64), (64, 64))
        past, _ = read_window(src, Window(260, 170, 64, 64), (64, 64))
    assert dtype == "uint16"
    np.testing.assert_array_equal(inside, pixels[:, 30:94, 40:104])
    np.testing.assert_array_equal(past[:, :30, :40], pixels[:, 170:, 260:])
    assert not past[:, 30:].any() and not past[:, :, 40:].any()
