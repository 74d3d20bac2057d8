"""Tiles and cores: an exact partition with context around every core."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from infer.contract.schema import INPUT_MULTIPLE, ModelInfo
from infer.runtime.options import RunOptions
from infer.runtime.reader import TileReader, open_grid
from infer.runtime.stitch import core_objects
from infer.runtime.tiling import axis_origins, tile_grid
from tests.helpers import FOUR_CLASS_INFOS


@pytest.mark.parametrize("width,height,tile,overlap", [
    (1000, 700, 256, 64), (256, 256, 256, 64), (100, 60, 256, 64), (1025, 513, 512, 128),
    (4000, 300, 512, 96), (777, 777, 128, 0), (300, 300, 96, 95),
])
def test_cores_partition_the_scene_and_keep_context(width, height, tile, overlap):
    tiles = tile_grid(width, height, tile, overlap)
    owners = np.zeros((height, width), np.int32)
    for t in tiles:
        r0, c0, r1, c1 = t.core
        assert t.height <= tile and t.width <= tile
        assert t.row <= r0 < r1 <= t.row + t.height and t.col <= c0 < c1 <= t.col + t.width
        owners[r0:r1, c0:c1] += 1
        # Context: a core edge inside the scene is at least overlap // 2 from the tile's edge.
        for edge, tile_edge, scene_edge in ((r0, t.row, 0), (c0, t.col, 0)):
            assert edge == scene_edge or edge - tile_edge >= overlap // 2
        for edge, tile_edge, scene_edge in ((r1, t.row + t.height, height), (c1, t.col + t.width, width)):
            assert edge == scene_edge or tile_edge - edge >= overlap // 2
    np.testing.assert_array_equal(owners, 1)


def test_every_point_has_exactly_one_owner_including_seams():
    tiles = tile_grid(900, 650, 256, 64)
    seams = sorted(({t.core[1] for t in tiles} | {t.core[3] for t in tiles}) - {900})
    points = list(itertools.product([0.0, 0.5, 255.999, 256.0, 649.9], [float(s) for s in seams] + [899.99]))
    for row, col in points:
        assert sum(t.owns(row, col) for t in tiles) == 1, (row, col)


def test_tiles_stay_inside_scenes_larger_than_a_tile():
    assert axis_origins(1000, 256, 64) == [0, 192, 384, 576, 744]
    assert axis_origins(256, 256, 64) == [0]


@pytest.mark.parametrize("tile,overlap", [(0, 0), (256, 256), (256, -1)])
def test_bad_tiling_is_rejected(tile, overlap):
    with pytest.raises(ValueError):
        tile_grid(100, 100, tile, overlap)


def test_tiles_fit_a_scene_smaller_than_a_tile_along_each_axis():
    strip = tile_grid(30000, 8, 1024, 160)
    assert {(t.height, t.width) for t in strip} == {(32, 1024)}  # not 1024 x 1024 of padding per tile
    assert len(strip) == 35
    small = tile_grid(600, 2000, 1024, 160)
    assert {(t.height, t.width) for t in small} == {(800, 608)}  # three rows of 800 cover 2000 as three of 1024 do


@pytest.mark.parametrize("length,tile,overlap", [(4096, 1024, 160), (8192, 1024, 160), (2048, 1024, 160),
                                                 (3001, 512, 96), (1025, 1024, 0), (20000, 1024, 400)])
def test_tiles_are_as_few_as_full_tiles_need_and_no_longer_than_that_count_needs(length, tile, overlap):
    tiles = tile_grid(length, 64, tile, overlap)
    full = len(range(0, length - tile, tile - overlap)) + 1  # tiles of the full side, the last one flush
    side = tiles[0].width
    assert len(tiles) == full and side <= tile and side % INPUT_MULTIPLE == 0
    # One input multiple shorter and the same count would no longer cover the scene with the overlap.
    assert full * (side - INPUT_MULTIPLE) - (full - 1) * overlap < length
    starts = [t.col for t in tiles]
    assert starts[-1] + side == length and all(b - a <= side - overlap for a, b in zip(starts, starts[1:], strict=False))


def test_a_4096_scene_runs_five_tiles_of_960_a_side_at_the_reference_tiling():
    assert {(t.height, t.width) for t in tile_grid(4096, 4096, 1024, 160)} == {(960, 960)}


def test_objects_are_never_reported_on_nodata():
    options = RunOptions(tile=64, overlap=0, region_closing_m=0).resolve(
        ModelInfo(FOUR_CLASS_INFOS, ("r", "g", "b"), (0,) * 3, (1,) * 3, 0.5, 64, 0))
    (tile,) = tile_grid(64, 64, 64, 0)
    heatmap = np.zeros((2, 16, 16), np.float32)
    heatmap[0, 2, 2] = heatmap[0, 8, 8] = 0.9  # centres at rows 10 (valid) and 34 (a band of nodata)
    box = np.zeros((7, 16, 16), np.float32)
    valid = np.ones((tile.height, tile.width), bool)
    valid[30:40] = False
    rboxes, _, _ = core_objects(options, 4, tile, heatmap, box, valid)
    assert rboxes[:, :2].tolist() == [[10.0, 10.0]]
    everything, _, _ = core_objects(options, 4, tile, heatmap, box)
    assert len(everything) == 2  # the control: without the valid pixels both peaks decode


def test_padding_past_the_scene_edge_mirrors_the_ground_and_is_not_valid(tmp_path):
    from tests.infer.oracle import write_scene

    pixels = np.random.default_rng(0).integers(1, 255, (3, 40, 70), dtype=np.uint8)
    grid = open_grid(write_scene(tmp_path / "small.tif", pixels), 3, 0.5, "uint8")
    (read,) = list(TileReader(grid, 256, 64))
    assert read.pixels.shape == (3, 64, 96)  # fitted: 40 -> 64 rows, 70 -> 96 columns
    np.testing.assert_array_equal(read.pixels[:, :40, :70], pixels)
    np.testing.assert_array_equal(read.pixels[:, 40:64, :70], pixels[:, 39:15:-1])  # rows mirrored at the edge
    np.testing.assert_array_equal(read.pixels[:, :40, 70:96], pixels[:, :, 69:43:-1])
    assert read.valid[:40, :70].all() and not read.valid[40:].any() and not read.valid[:, 70:].any()
    assert read.pixels.dtype == np.uint8  # as the scene holds them: the graph normalizes


def test_no_data_is_shown_to_the_model_as_its_nearest_valid_pixel(tmp_path):
    from tests.infer.oracle import write_scene

    pixels = np.random.default_rng(1).integers(1, 255, (3, 64, 64), dtype=np.uint8)
    pixels[:, :, 40:] = 0  # a no-data edge on the right
    grid = open_grid(write_scene(tmp_path / "edge.tif", pixels, nodata=0), 3, 0.5, "uint8")
    (read,) = list(TileReader(grid, 256, 64))
    assert not read.valid[:, 40:].any() and read.valid[:, :40].all()
    np.testing.assert_array_equal(read.pixels[:, :, :40], pixels[:, :, :40])
    # every no-data pixel of a row repeats the row's last valid pixel, not a flat colour
    np.testing.assert_array_equal(read.pixels[:, :, 40:], np.repeat(pixels[:, :, 39:40], 24, axis=2))
