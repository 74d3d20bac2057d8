import subprocess
import sys

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from infer.contract.codec import (
    ObjectDetections,
    ObjectLabels,
    close_gaps,
    decode_objects,
    decode_regions,
    encode_targets,
)

SIZE = (192, 256)  # H, W in pixels


def suppress_peaks(heatmap: np.ndarray) -> np.ndarray:
    """numpy twin of the model's in-graph 3x3 peak suppression."""
    padded = np.pad(heatmap, ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    pooled = sliding_window_view(padded, (3, 3), axis=(1, 2)).max(axis=(-2, -1))
    return np.where(heatmap == pooled, heatmap, 0.0)


def perfect_prediction(labels: ObjectLabels, num_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    targets = encode_targets(labels, np.zeros((1, *SIZE), np.uint8), SIZE, num_classes)
    box = targets["box"].copy()
    box[6] = np.where(box[6] > 0.5, 6.0, -6.0)  # dir probability 0/1 -> a confident logit
    return suppress_peaks(targets["heatmap"]), box


def angle_error(a: np.ndarray, b: np.ndarray, period: float) -> np.ndarray:
    """Absolute angle difference on a circle of the given period."""
    d = np.mod(a - b, period)
    return np.minimum(d, period - d)


# (cx, cy, length, width, angle); headings NaN for storehouses (class 0).
RBOXES = np.array(
    [
        [30.3, 40.7, 48.0, 20.0, 0.004],  # near 0
        [100.0, 35.2, 36.0, 14.0, np.pi - 0.006],  # near pi
        [170.6, 50.1, 60.0, 30.0, 0.7],
        [40.2, 130.9, 24.0, 9.0, 2.2],
        [120.7, 140.4, 18.0, 7.0, 1.3],
        [215.1, 150.3, 30.0, 10.0, 3.0],
    ]
)
CLASSES = np.array([0, 0, 0, 1, 1, 1])
HEADINGS = np.array([np.nan, np.nan, np.nan, 2.2, 1.3 + np.pi, 3.0 + np.pi])


def test_perfect_prediction_is_recovered():
    labels = ObjectLabels(RBOXES, CLASSES, HEADINGS)
    heatmap, box = perfect_prediction(labels)

    found = decode_objects(heatmap, box, score_threshold=0.3)

    assert isinstance(found, ObjectDetections)
    assert len(found) == len(RBOXES)
    assert found.rboxes.dtype == np.float32 and found.rboxes.shape == (6, 5)
    np.testing.assert_allclose(found.scores, 1.0)
    # Match each label to the nearest detection center.
    distance = np.linalg.norm(RBOXES[:, None, :2] - found.rboxes[None, :, :2], axis=-1)
    match = distance.argmin(axis=1)
    assert len(set(match.tolist())) == len(RBOXES)
    got = found.rboxes[match].astype(np.float64)
    assert (distance.min(axis=1) < 0.5).all()
    np.testing.assert_allclose(got[:, 2:4], RBOXES[:, 2:4], rtol=0.01)
    np.testing.assert_array_equal(found.classes[match], CLASSES)
    assert ((got[:, 4] >= 0) & (got[:, 4] < 2 * np.pi)).all()
    one_degree = np.deg2rad(1.0)
    known = np.isfinite(HEADINGS)
    assert (angle_error(got[known, 4], HEADINGS[known], 2 * np.pi) < one_degree).all()
    assert (angle_error(got[~known, 4], RBOXES[~known, 4], np.pi) < one_degree).all()


def test_angle_pair_needs_no_unit_length_and_sizes_may_swap():
    labels = ObjectLabels(RBOXES[3:4], CLASSES[3:4], HEADINGS[3:4])
    heatmap, box = perfect_prediction(labels)
    box[4:6] *= 3.7
    reference = decode_objects(heatmap, box).rboxes
    np.testing.assert_allclose(reference[0, 4], 2.2, atol=1e-5)
    # Swapping the two size channels means the long side is across theta.
    box[2], box[3] = box[3].copy(), box[2].copy()
    swapped = decode_objects(heatmap, box).rboxes
    np.testing.assert_allclose(swapped[0, 2:4], reference[0, 2:4], rtol=1e-5)
    assert angle_error(swapped[0, 4], 2.2, np.pi) == pytest.approx(np.pi / 2, abs=1e-5)


def test_threshold_top_k_and_order():
    heatmap = np.zeros((2, 8, 8), np.float32)
    heatmap[0, 1, 1], heatmap[1, 5, 5], heatmap[0, 6, 2], heatmap[1, 2, 6] = 0.9, 0.8, 0.5, 0.2
    box = np.zeros((7, 8, 8), np.float32)

    found = decode_objects(heatmap, box, score_threshold=0.3, max_objects=2)
    np.testing.assert_allclose(found.scores, [0.9, 0.8])
    np.testing.assert_array_equal(found.classes, [0, 1])
    # Cell (row 5, col 5) with zero offsets is centered at pixel (22, 22); size 4 x 4.
    np.testing.assert_allclose(found.rboxes[1, :4], [22, 22, 4, 4])

    assert len(decode_objects(heatmap, box, score_threshold=0.0)) == 4
    empty = decode_objects(np.zeros_like(heatmap), box)
    assert (
        empty.rboxes.shape == (0, 5) and empty.scores.shape == (0,) and empty.classes.shape == (0,)
    )


def test_decode_regions():
    mask = np.array([[[0.2, 0.6], [0.5, 0.9]]], np.float32)
    regions = decode_regions(mask, threshold=0.5)
    assert regions.dtype == bool
    np.testing.assert_array_equal(regions, [[[False, True], [False, True]]])


def _ridges(gap: int, across: int = 8) -> np.ndarray:
    """(1, 60, 200) probabilities: two ridges `across` px wide, end to end with `gap` px between them."""
    mask = np.full((1, 60, 200), 0.1, np.float32)
    mask[0, 20:20 + across, 10:90] = 0.9
    mask[0, 20:20 + across, 90 + gap:190] = 0.9
    return mask


@pytest.mark.parametrize(("gap", "pieces"), [(10, 1), (14, 1), (30, 2)])
def test_closing_bridges_narrow_gaps_between_ridge_pieces(gap, pieces):
    regions = decode_regions(_ridges(gap), threshold=0.5, closing_px=12)
    assert ndimage.label(regions[0])[1] == pieces
    assert ndimage.label(decode_regions(_ridges(gap), threshold=0.5)[0])[1] == 2
    added = regions[0] & ~(_ridges(gap)[0] > 0.5)
    # Only the gap is filled: nothing beside the ridges or beyond their outer ends.
    rows, cols = np.nonzero(added)
    assert (pieces == 2) == (added.sum() == 0)
    if pieces == 1:
        assert rows.min() >= 20 and rows.max() < 28 and cols.min() >= 90 and cols.max() < 90 + gap


def test_closing_keeps_convex_shapes_and_adds_nothing_at_the_edges():
    mask = np.zeros((1, 50, 50), np.float32)
    mask[0, 0:12, 0:15] = 1.0  # in a corner
    mask[0, 25:40, 20:45] = 1.0
    np.testing.assert_array_equal(decode_regions(mask, 0.5, closing_px=6), mask > 0.5)
    assert not decode_regions(np.zeros((2, 9, 9)), 0.5, closing_px=6).any()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: decode_objects(np.zeros((8, 8)), np.zeros((7, 8, 8))), r"\(C, h, w\)"),
        (lambda: decode_objects(np.zeros((1, 8, 8)), np.zeros((6, 8, 8))), r"box must be \(7"),
        (lambda: decode_objects(np.zeros((1, 8, 8)), np.zeros((7, 8, 4))), r"box must be \(7"),
        (lambda: decode_objects(np.zeros((1, 8, 8)), np.zeros((7, 8, 8)), -0.1), "threshold"),
        (lambda: decode_regions(np.zeros((8, 8))), r"\(R, H, W\)"),
        (lambda: decode_regions(np.zeros((1, 8, 8)), 1.0), "threshold"),
        (lambda: decode_regions(np.zeros((1, 8, 8)), 0.5, -1.0), "closing_px"),
    ],
)
def test_validation_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_runtime_modules_do_not_import_torch():
    code = "import sys, infer.contract.codec, infer.contract.geometry; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_closing_matches_scipy_binary_closing_by_a_disc():
    rng = np.random.default_rng(3)
    region = np.zeros((90, 120), bool)
    for row, col in rng.integers(10, 80, (12, 2)):
        region[row:row + 4, col:col + rng.integers(5, 30)] = True
    radius = 5
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    disc = xx**2 + yy**2 <= radius**2
    pad = 2 * radius + 1  # scipy's closing, with the outside empty
    expected = ndimage.binary_closing(np.pad(region, pad), structure=disc)[pad:-pad, pad:-pad]
    np.testing.assert_array_equal(close_gaps(region, radius), expected)


def test_a_core_decoded_with_the_reach_of_closing_is_the_core_of_the_whole_tile():
    """`core_class_map` closes only the core and twice the radius around it; the core must come out as
    closing the whole tile would make it, for blobs cut by that reach and radii up to 14 px."""
    from infer.runtime.stitch import core_class_map, core_slices
    from infer.runtime.tiling import tile_grid

    rng = np.random.default_rng(4)
    tiles = tile_grid(2000, 2000, 512, 128)
    for trial in range(24):
        tile = tiles[rng.integers(len(tiles))]
        coarse = rng.random((2, tile.height // 8, tile.width // 8)).astype(np.float32)
        mask = ndimage.zoom(coarse, (1, 8, 8), order=1)
        mask = np.where(mask > 0.75, 0.9, mask * 0.4).astype(np.float32)
        radius = float(rng.uniform(0, 14))
        whole = decode_regions(mask, 0.5, radius)
        rows, cols = core_slices(tile)
        inside, probabilities = whole[:, rows, cols], mask[:, rows, cols]
        expected = np.where(inside[0] & (~inside[1] | (probabilities[0] >= probabilities[1])), 1,
                            np.where(inside[1], 2, 0)).astype(np.uint8)
        got, scores = core_class_map(mask, tile, 0.5, radius)
        assert got.any() and np.array_equal(got, expected), (trial, radius)
        own = np.where(got == 1, probabilities[0], np.where(got == 2, probabilities[1], 0))
        np.testing.assert_array_equal(scores, own)


def test_a_speck_off_the_core_edge_is_dropped_by_its_tile_and_one_on_the_edge_is_left_to_the_scene():
    """`core_pieces` drops pieces below their class's minimum that nothing outside the core can touch, from
    the pieces and the class map; a piece on the core's edge may continue in the next tile, so it stays."""
    from infer.runtime.stitch import core_pieces
    from infer.runtime.tiling import Tile

    classes = np.zeros((64, 64), np.uint8)
    classes[10:13, 10:13] = 1  # 9 px, inside: a speck of class 0 (minimum 10 px)
    classes[30:34, 30:34] = 1  # 16 px, inside, above the minimum
    classes[0:2, 40:44] = 1  # 8 px on the top edge: left to the scene
    classes[50:52, 50:52] = 2  # 4 px of class 1, whose minimum is 0
    scores = np.where(classes > 0, np.float32(0.8), np.float32(0.0))
    tile = Tile(100, 200, 64, 64, (100, 200, 164, 264))
    kept, pieces = core_pieces(classes, scores, tile, (10.0, 0.0))
    assert sorted((k, area, round(geom.area)) for k, geom, _, area in pieces) == [(0, 8, 8), (0, 16, 16), (1, 4, 4)]
    assert kept[10:13, 10:13].sum() == 0 and (kept != 0).sum() == 16 + 8 + 4
    assert classes[10:13, 10:13].all()  # the caller's map is left as it was
    assert min(geom.bounds[0] for _, geom, _, _ in pieces) == 200 + 30  # in scene pixels
    same, every = core_pieces(classes, scores, tile)
    assert same is classes and len(every) == 4
