"""`samples.mosaic`: four draws in one chip, each object with the pixels it was labeled on."""

from __future__ import annotations

import numpy as np
import pytest

from train.data.samples import mosaic
from train.data.scenes import RawSample

SIZE, SIDE = 64, 96  # the chip, and each draw (larger, so every piece is a random crop of its draw)


def _draw(ident: int, rng: np.random.Generator, regions: int = 1) -> RawSample:
    """Band 0 says which draw a pixel came from, bands 1 and 2 its row and column there; 12 square objects."""
    rows, cols = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    image = np.stack([np.full((SIDE, SIDE), ident, np.float32), rows, cols])
    centres = rng.uniform(4, SIDE - 4, size=(12, 2))
    corners = centres[:, None, :] + np.array([[-3, -3], [3, -3], [3, 3], [-3, 3]], np.float64)
    masks = np.zeros((regions, SIDE, SIDE), np.uint8)
    masks[:, ::2] = 1
    return RawSample(image, np.ones((SIDE, SIDE), bool), corners, np.full(12, ident), np.zeros(12, bool), masks)


@pytest.mark.parametrize("seed", range(5))
def test_each_object_lands_on_the_pixels_it_was_labeled_on_and_every_shown_centre_is_kept(seed):
    rng = np.random.default_rng(seed)
    draws = [_draw(ident, rng) for ident in (1, 2, 3, 4)]
    chip = mosaic(draws, SIZE, rng)
    assert chip.image.shape == (3, SIZE, SIZE) and chip.masks.shape == (1, SIZE, SIZE) and chip.valid.all()
    for ident, draw in enumerate(draws, start=1):
        rows, cols = np.nonzero(chip.image[0] == ident)
        # where this draw's piece sits in the chip, and the shift from chip to draw coordinates
        shift = np.array([chip.image[2, rows[0], cols[0]] - cols[0], chip.image[1, rows[0], cols[0]] - rows[0]])
        in_chip = draw.corners.mean(axis=1) - shift
        shown = ((in_chip[:, 0] >= cols.min()) & (in_chip[:, 0] < cols.max() + 1)
                 & (in_chip[:, 1] >= rows.min()) & (in_chip[:, 1] < rows.max() + 1))
        kept = chip.corners[chip.classes == ident]
        assert len(kept) == shown.sum() and shown.sum() < len(draw.corners)
        np.testing.assert_allclose(kept, draw.corners[shown] - shift)
    np.testing.assert_array_equal(chip.masks[0], (chip.image[1].astype(int) % 2 == 0).astype(np.uint8))


def test_the_four_pieces_are_split_at_one_point_inside_the_middle_half():
    rng = np.random.default_rng(7)
    for _ in range(20):
        chip = mosaic([_draw(ident, rng) for ident in (1, 2, 3, 4)], SIZE, rng)
        ids = chip.image[0]
        split_row = int(np.argmax(ids[:, 0] == 3))
        split_col = int(np.argmax(ids[0] == 2))
        assert SIZE // 4 <= split_row <= 3 * SIZE // 4 and SIZE // 4 <= split_col <= 3 * SIZE // 4
        np.testing.assert_array_equal(ids[:split_row, :split_col], 1)
        np.testing.assert_array_equal(ids[:split_row, split_col:], 2)
        np.testing.assert_array_equal(ids[split_row:, :split_col], 3)
        np.testing.assert_array_equal(ids[split_row:, split_col:], 4)
