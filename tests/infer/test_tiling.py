"""Tiles and cores: an exact partition with context around every core."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from infer.runtime.tiling import axis_origins, tile_grid


@pytest.mark.parametrize("width,height,tile,overlap", [
    (1000, 700, 256, 64), (256, 256, 256, 64), (100, 60, 256, 64), (1025, 513, 512, 128),
    (4000, 300, 512, 96), (777, 777, 128, 0), (300, 300, 96, 95),
])
def test_cores_partition_the_scene_and_keep_context(width, height, tile, overlap):
    tiles = tile_grid(width, height, tile, overlap)
    owners = np.zeros((height, width), np.int32)
    for t in tiles:
        r0, c0, r1, c1 = t.core
        assert t.row <= r0 < r1 <= t.row + tile and t.col <= c0 < c1 <= t.col + tile
        owners[r0:r1, c0:c1] += 1
        # Context: a core edge inside the scene is at least overlap // 2 from the tile's edge.
        for edge, tile_edge, scene_edge in ((r0, t.row, 0), (c0, t.col, 0)):
            assert edge == scene_edge or edge - tile_edge >= overlap // 2
        for edge, tile_edge, scene_edge in ((r1, t.row + tile, height), (c1, t.col + tile, width)):
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
