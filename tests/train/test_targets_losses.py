import numpy as np
import pytest
import shapely
import torch

from infer.contract.codec import REGRESSION_THRESHOLD, ObjectLabels, decode_objects, encode_targets
from infer.contract.geometry import rbox_to_corners
from train.losses import DetectionLoss, heatmap_focal_loss, soft_dice_loss
from train.model import suppress_peaks

SIZE = (128, 128)
NO_REGIONS = np.zeros((1, *SIZE), np.uint8)


def encode(rboxes, classes=None, headings=None, masks=NO_REGIONS, num_classes=2, stride=4):
    rboxes = np.asarray(rboxes, np.float64).reshape(-1, 5)
    n = len(rboxes)
    classes = np.zeros(n, np.int64) if classes is None else np.asarray(classes)
    headings = np.full(n, np.nan) if headings is None else np.asarray(headings, np.float64)
    return encode_targets(ObjectLabels(rboxes, classes, headings), masks, SIZE, num_classes, stride)


def batch(targets: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {key: torch.from_numpy(value)[None] for key, value in targets.items()}


def test_shapes_and_dtypes():
    masks = np.zeros((3, *SIZE), bool)
    masks[1, 10:20, 30:50] = True
    targets = encode([[50, 60, 30, 10, 0.5]], masks=masks, num_classes=2)
    assert targets["heatmap"].shape == (2, 32, 32)
    assert targets["box"].shape == (7, 32, 32)
    assert targets["box_weight"].shape == targets["dir_weight"].shape == (32, 32)
    assert targets["mask"].shape == (3, *SIZE)
    assert all(value.dtype == np.float32 for value in targets.values())
    assert targets["mask"].sum() == 200 and targets["mask"][1, 15, 40] == 1


def test_heatmap_peak_at_center_cell_and_elongated_along_axis():
    theta = 0.5
    targets = encode([[51.3, 29.1, 60.0, 16.0, theta]], classes=[1])
    heatmap = targets["heatmap"]
    assert heatmap[0].max() == 0  # other class untouched
    assert heatmap.max() == 1.0
    assert np.argwhere(heatmap == 1.0).tolist() == [[1, 7, 12]]  # row 29.1 // 4, col 51.3 // 4
    # Second moments of the Gaussian: the principal axis follows the object.
    rows, cols = np.mgrid[0:32, 0:32]
    weight = heatmap[1] / heatmap[1].sum()
    dx, dy = cols - 12, rows - 7
    cov = np.array(
        [
            [(weight * dx * dx).sum(), (weight * dx * dy).sum()],
            [(weight * dx * dy).sum(), (weight * dy * dy).sum()],
        ]
    )
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    major = eigenvectors[:, 1]
    assert eigenvalues[1] > 4 * eigenvalues[0]
    assert abs(np.cos(np.arctan2(major[1], major[0]) - theta)) > np.cos(np.deg2rad(3))


def test_box_targets_at_center_and_direction():
    rbox = [51.3, 29.1, 60.0, 16.0, 0.5]
    forward = encode([rbox], headings=[0.5])
    backward = encode([rbox], headings=[0.5 + np.pi])
    box = forward["box"][:, 7, 12]
    np.testing.assert_allclose(
        box,
        [51.3 / 4 - 12.5, 29.1 / 4 - 7.5, np.log(15), np.log(4), np.cos(1.0), np.sin(1.0), 1.0],
        rtol=1e-6,
        atol=1e-6,
    )
    assert backward["box"][6, 7, 12] == 0.0
    np.testing.assert_array_equal(forward["box"][:6], backward["box"][:6])
    # Every regressing cell points at the same center.
    cells = np.argwhere(forward["box_weight"] > 0)
    centers_x = (cells[:, 1] + 0.5 + forward["box"][0][tuple(cells.T)]) * 4
    np.testing.assert_allclose(centers_x, 51.3, atol=1e-4)
    assert len(cells) > 5


def test_regression_area_weights_and_unknown_heading():
    targets = encode([[64, 64, 80, 24, 1.0], [20, 100, 20, 8, 0.0]], headings=[np.nan, 0.0])
    weight = targets["box_weight"]
    np.testing.assert_allclose(weight.sum(), 2.0, rtol=1e-5)  # each object sums to 1
    # Cells regress only where the object's Gaussian reaches the threshold.
    assert (targets["heatmap"][0][weight > 0] >= REGRESSION_THRESHOLD - 1e-6).all()
    # Direction is learned only from the object whose heading is known.
    assert targets["dir_weight"][16, 16] == 0 and weight[16, 16] > 0
    np.testing.assert_allclose(targets["dir_weight"].sum(), 1.0, rtol=1e-5)
    assert targets["dir_weight"][25, 5] > 0


def test_width_longer_than_length_and_outside_centers():
    swapped = encode([[64, 64, 10, 30, 0.2]])
    normal = encode([[64, 64, 30, 10, 0.2 + np.pi / 2]])
    np.testing.assert_allclose(swapped["box"], normal["box"], atol=1e-6)
    np.testing.assert_allclose(swapped["heatmap"], normal["heatmap"], atol=1e-6)
    outside = encode([[-3, 64, 30, 10, 0.0], [64, 128.5, 30, 10, 0.0]])
    assert outside["heatmap"].max() == 0 and outside["box_weight"].sum() == 0


def test_empty_objects():
    targets = encode_targets(ObjectLabels.empty(), NO_REGIONS, SIZE, 3)
    assert targets["heatmap"].shape == (3, 32, 32) and targets["heatmap"].max() == 0
    assert targets["box_weight"].sum() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": [5]}, r"classes must lie in \[0, 2\)"),
        ({"rboxes": [[10, 10, 0, 4, 0]]}, "positive length"),
        ({"rboxes": [[10, np.inf, 4, 4, 0]]}, "NaN or infinite"),
        ({"headings": [0.0, 1.0]}, "headings"),
        ({"masks": np.zeros((1, 64, 64))}, "region_masks must have shape"),
    ],
)
def test_validation_errors(kwargs, message):
    args = {"rboxes": [[10, 10, 8, 4, 0]], **kwargs}
    with pytest.raises(ValueError, match=message):
        encode(**args)


def test_image_size_must_be_a_multiple_of_the_stride():
    with pytest.raises(ValueError, match="multiples of stride"):
        encode_targets(ObjectLabels.empty(), np.zeros((1, 30, 32)), (30, 32), 1)


def test_focal_loss_near_zero_when_perfect_and_larger_when_wrong():
    target = torch.from_numpy(encode([[40, 40, 30, 12, 0.3], [90, 100, 20, 8, 2.0]])["heatmap"])[
        None
    ]
    peaks = target.eq(1)
    perfect = torch.where(peaks, 15.0, -15.0)
    wrong = torch.where(peaks.roll(8, dims=-1), 15.0, -15.0)
    unsure = torch.zeros_like(target)
    assert heatmap_focal_loss(perfect, target) < 1e-3
    assert heatmap_focal_loss(wrong, target) > 10
    assert heatmap_focal_loss(unsure, target) > heatmap_focal_loss(perfect, target) + 0.1


def _outputs_from_targets(targets: dict[str, torch.Tensor], noise: float = 0.0):
    box = targets["box"].clone() + noise
    box[:, 6] = 3.0
    return {
        "heatmap_logits": torch.where(targets["heatmap"].eq(1), 15.0, -15.0),
        "box": box,
        "mask_logits": targets["mask"] * 30 - 15,
    }


def test_angle_loss_is_symmetric_under_half_turn_and_direction_is_not():
    loss = DetectionLoss()
    a = batch(encode([[60, 60, 40, 12, 0.4]], headings=[0.4]))
    b = batch(encode([[60, 60, 40, 12, 0.4 + np.pi]], headings=[0.4 + np.pi]))
    prediction = _outputs_from_targets(a, noise=0.1)
    terms_a, terms_b = loss(prediction, a), loss(prediction, b)
    for name in ("heatmap", "offset", "size", "angle"):
        assert terms_a[name] == pytest.approx(float(terms_b[name]), abs=1e-6), name
    assert terms_a["angle"] > 0
    assert terms_b["direction"] > terms_a["direction"] + 1.0


def test_perfect_outputs_give_small_loss_and_perturbed_larger():
    masks = np.zeros((2, *SIZE), np.uint8)
    masks[0, 20:60, 30:90] = 1
    targets = batch(encode([[40, 40, 30, 12, 0.3]], headings=[0.3], masks=masks))
    loss = DetectionLoss()
    perfect = loss(_outputs_from_targets(targets), targets)
    assert perfect["loss"] < 0.1
    assert perfect["mask_dice"] < 0.01
    worse = loss(_outputs_from_targets(targets, noise=0.5), targets)
    assert worse["offset"] > 0.9 and worse["size"] > 0.9 and worse["angle"] > 0.9


def test_mask_pos_weight_scales_the_bce_of_each_region_class_own_pixels():
    masks = np.zeros((2, *SIZE), np.uint8)
    masks[0, :, :32] = 1  # a quarter of class 0 is region
    masks[1, :, :64] = 1  # half of class 1
    targets = batch(encode([], masks=masks))
    outputs = {"heatmap_logits": torch.zeros(1, 2, 32, 32), "box": torch.zeros(1, 7, 32, 32),
               "mask_logits": torch.zeros(1, 2, *SIZE)}
    plain = DetectionLoss()(outputs, targets)["mask_bce"]
    weighted = DetectionLoss(mask_pos_weight=[4.0, 1.0])(outputs, targets)["mask_bce"]
    # At logit 0 every pixel costs log 2; a positive pixel of class 0 now costs four times that.
    assert float(plain) == pytest.approx(np.log(2), rel=1e-5)
    assert float(weighted) == pytest.approx(np.log(2) * (0.25 * 4 + 0.75 + 1) / 2, rel=1e-5)


def test_losses_finite_with_zero_objects():
    targets = batch(encode_targets(ObjectLabels.empty(), NO_REGIONS, SIZE, 2))
    outputs = {
        "heatmap_logits": torch.randn(1, 2, 32, 32, requires_grad=True),
        "box": torch.randn(1, 7, 32, 32, requires_grad=True),
        "mask_logits": torch.randn(1, 1, *SIZE, requires_grad=True),
    }
    terms = DetectionLoss()(outputs, targets)
    assert all(torch.isfinite(value) for value in terms.values())
    assert terms["offset"] == 0 and terms["size"] == 0 and terms["direction"] == 0
    terms["loss"].backward()
    assert all(torch.isfinite(t.grad).all() for t in outputs.values())


def test_soft_dice_empty_mask_rewards_empty_prediction():
    target = torch.zeros(1, 1, 16, 16)
    assert soft_dice_loss(torch.full_like(target, -20.0), target) < 1e-3
    assert soft_dice_loss(torch.full_like(target, 20.0), target) > 0.9


def test_trucks_side_by_side_keep_their_own_regression_cells_at_stride_2():
    """Two 23 x 5.5 px trucks in neighbouring lanes, centres 7 px apart. At stride 4 their regression
    areas overlap (cells between them are trained on one truck only and sit next to the other); at
    stride 2 they do not, and decoding the stride-2 targets gives both trucks back."""
    across = np.array([np.cos(1.2 + np.pi / 2), np.sin(1.2 + np.pi / 2)])
    trucks = np.array([[60.3, 61.0, 23.0, 5.5, 1.2], [*(np.array([60.3, 61.0]) + 7 * across), 23.0, 5.5, 1.2]])

    def regressing_cells(rboxes, stride):
        return int((encode(rboxes, stride=stride)["box_weight"] > 0).sum())

    for stride, overlap in ((4, True), (2, False)):
        apart = regressing_cells(trucks[:1], stride) + regressing_cells(trucks[1:], stride)
        assert (regressing_cells(trucks, stride) < apart) == overlap, stride

    targets = encode(trucks, stride=2)
    assert targets["heatmap"].shape == (2, 64, 64)
    logits = torch.logit(torch.from_numpy(targets["heatmap"]).clamp(1e-6, 1 - 1e-6))[None]
    found = decode_objects(suppress_peaks(logits)[0].numpy(), targets["box"], score_threshold=0.5, stride=2)
    assert len(found) == 2
    for truck in trucks:
        truth = shapely.Polygon(rbox_to_corners(truck[None])[0])
        best = max(truth.intersection(p).area / truth.union(p).area
                   for p in map(shapely.Polygon, rbox_to_corners(found.rboxes)))
        assert best > 0.95
