import numpy as np
import pytest
import shapely
from shapely import affinity

from infer.contract.geometry import (
    corners_to_rbox,
    rbox_area,
    rbox_iou,
    rbox_polygons,
    rbox_to_corners,
    wrap_angle,
)


def test_corner_order_front_left_first_clockwise_on_screen():
    corners = rbox_to_corners([[10.0, 20.0, 8.0, 4.0, 0.0]])[0]
    # Facing +x on screen (y down), the left-hand side is toward -y.
    np.testing.assert_allclose(corners, [[14, 18], [14, 22], [6, 22], [6, 18]])
    # Facing +y (down the screen) the left-hand side is +x.
    corners = rbox_to_corners([[0.0, 0.0, 8.0, 4.0, np.pi / 2]])[0]
    np.testing.assert_allclose(corners, [[2, 4], [-2, 4], [-2, -4], [2, -4]], atol=1e-12)
    assert shapely.Polygon(corners).exterior.is_ccw  # positive shoelace area in pixels


def test_round_trip_recovers_axis_angle_and_sizes():
    rng = np.random.default_rng(1)
    n = 200
    length = rng.uniform(2, 100, n)
    width = length * rng.uniform(0.1, 0.95, n)
    heading = rng.uniform(0, 2 * np.pi, n)
    heading[:4] = [0.0, np.pi - 1e-9, np.pi, 2 * np.pi - 1e-9]
    rboxes = np.stack(
        [rng.uniform(-50, 500, n), rng.uniform(-50, 500, n), length, width, heading], 1
    )

    back = corners_to_rbox(rbox_to_corners(rboxes))

    np.testing.assert_allclose(back[:, :4], rboxes[:, :4], rtol=1e-9, atol=1e-9)
    assert ((back[:, 4] >= 0) & (back[:, 4] < np.pi)).all()
    # Axis angles agree modulo pi (compare on the circle, not numerically).
    diff = np.angle(np.exp(2j * (back[:, 4] - heading))) / 2
    np.testing.assert_allclose(diff, 0, atol=1e-9)


def test_width_longer_than_length_is_normalized():
    back = corners_to_rbox(rbox_to_corners([[0.0, 0.0, 2.0, 6.0, 0.25]]))[0]
    np.testing.assert_allclose(back, [0, 0, 6, 2, 0.25 + np.pi / 2], atol=1e-9)


def test_corner_start_and_direction_do_not_matter():
    corners = rbox_to_corners([[5.0, 7.0, 10.0, 3.0, 2.5]])
    expected = corners_to_rbox(corners)
    for variant in (np.roll(corners, 1, axis=1), corners[:, ::-1]):
        np.testing.assert_allclose(corners_to_rbox(variant), expected, atol=1e-9)


def test_polygon_inputs_and_skewed_quad():
    square = shapely.Polygon([(0, 0), (4, 0), (4, 2), (0, 2)])
    np.testing.assert_allclose(corners_to_rbox(square), [[2, 1, 4, 2, 0]], atol=1e-12)
    both = corners_to_rbox([square, affinity.rotate(square, 90, origin=(2, 1))])
    np.testing.assert_allclose(both[1], [2, 1, 4, 2, np.pi / 2], atol=1e-9)
    # A slightly skewed label gets its minimum enclosing rectangle.
    skewed = corners_to_rbox([[[0, 0], [10, 0.2], [10, 4], [0, 4]]])[0]
    assert skewed[2] >= 10 and skewed[3] >= 3.8


def test_area():
    np.testing.assert_allclose(rbox_area([[0, 0, 4, 3, 1.0], [1, 1, 2, 2, 0]]), [12, 4])
    np.testing.assert_allclose(shapely.area(rbox_polygons([[0, 0, 4, 3, 1.0]])), [12])


def test_iou_identity_rotation_disjoint_and_partial():
    a = np.array([[10.0, 10.0, 8.0, 4.0, 0.3]])
    assert rbox_iou(a, a)[0, 0] == pytest.approx(1.0)
    square = np.array([[0.0, 0.0, 5.0, 5.0, 0.0]])
    square_turned = np.array([[0.0, 0.0, 5.0, 5.0, np.pi / 2]])
    assert rbox_iou(square, square_turned)[0, 0] == pytest.approx(1.0)
    # The same box pointing the other way is the same area.
    flipped = a.copy()
    flipped[0, 4] += np.pi
    assert rbox_iou(a, flipped)[0, 0] == pytest.approx(1.0)
    far = np.array([[100.0, 100.0, 8.0, 4.0, 0.3]])
    assert rbox_iou(a, far)[0, 0] == 0.0
    # Two 4x2 boxes shifted by 2 along x share half of each: 4 / (8 + 8 - 4).
    left = np.array([[0.0, 0.0, 4.0, 2.0, 0.0]])
    right = np.array([[2.0, 0.0, 4.0, 2.0, 0.0]])
    assert rbox_iou(left, right)[0, 0] == pytest.approx(1 / 3)


def test_iou_matrix_shape_and_empty():
    boxes = np.array([[0, 0, 4, 2, 0.0], [2, 0, 4, 2, 0.0], [50, 50, 4, 2, 0.0]])
    iou = rbox_iou(boxes, boxes[:2])
    assert iou.shape == (3, 2)
    np.testing.assert_allclose(iou, [[1, 1 / 3], [1 / 3, 1], [0, 0]])
    assert rbox_iou(np.zeros((0, 5)), boxes).shape == (0, 3)
    assert rbox_to_corners(np.zeros((0, 5))).shape == (0, 4, 2)


def test_wrap_angle_never_returns_the_period():
    wrapped = wrap_angle(np.array([-1e-17, -np.pi, 3 * np.pi, 7.0]), np.pi)
    assert ((wrapped >= 0) & (wrapped < np.pi)).all()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: rbox_to_corners([[0, 0, 4, 2]]), r"shape \(N, 5\)"),
        (lambda: rbox_to_corners([[0, 0, 4, np.nan, 0]]), "NaN"),
        (lambda: rbox_area([[0, 0, -4, 2, 0]]), "negative"),
        (lambda: rbox_iou([[0, 0, 4, 2, 0]], [[0, 0, 4]]), r"b must have shape"),
        (lambda: corners_to_rbox(np.zeros((2, 4, 3))), r"shape \(N, 4, 2\)"),
        (lambda: corners_to_rbox([[[0, 0], [1, 1], [2, 2], [3, 3]]]), "zero area"),
    ],
)
def test_validation_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
