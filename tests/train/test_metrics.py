"""Validation metrics: perfect predictions score 1, misses and misplacements score less."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from infer.contract.codec import ObjectLabels, encode_targets
from train.metrics import DetectionMetrics

SIZE = 128


def _truth() -> tuple[ObjectLabels, np.ndarray]:
    rboxes = np.array([[30.0, 40.0, 40.0, 16.0, 0.3], [90.0, 90.0, 14.0, 6.0, 1.2]], np.float32)
    objects = ObjectLabels(rboxes, np.array([0, 1]), np.array([np.nan, 1.2], np.float32))
    masks = np.zeros((2, SIZE, SIZE), np.uint8)
    masks[0, 100:106, 10:70] = 1
    masks[1, 5:30, 80:120] = 1
    return objects, masks


def _perfect_outputs(objects: ObjectLabels, masks: np.ndarray) -> tuple[torch.Tensor, ...]:
    t = encode_targets(objects, masks, (SIZE, SIZE), 2)
    heatmap = np.where(t["heatmap"] == 1.0, 0.95, 0.0).astype(np.float32)
    box = t["box"].copy()
    box[6] = np.where(box[6] > 0.5, 5.0, -5.0)  # direction as a logit
    return (torch.from_numpy(heatmap)[None], torch.from_numpy(box)[None],
            torch.from_numpy(masks.astype(np.float32))[None])


def test_perfect_predictions_score_one_for_every_class():
    objects, masks = _truth()
    metrics = DetectionMetrics(["storehouse", "truck"], ["earth_berm", "cleared_site"])
    metrics.update(*_perfect_outputs(objects, masks), [objects], torch.from_numpy(masks)[None])
    result = metrics.compute()
    for name in ("storehouse", "truck", "earth_berm", "cleared_site"):
        assert result[f"ap50/{name}"] == pytest.approx(1.0)
        assert result[f"ap/{name}"] > 0.9
    assert result["map"] > 0.9 and result["map_50"] == pytest.approx(1.0)
    assert result["iou/earth_berm"] == pytest.approx(1.0)


def test_one_region_class_is_scored_too():
    objects, masks = _truth()
    heatmap, box, mask = _perfect_outputs(objects, masks)
    metrics = DetectionMetrics(["storehouse", "truck"], ["earth_berm"])
    half = mask[:, :1].clone()
    half[..., 100:106, 40:70] = 0  # half the berm found
    metrics.update(heatmap, box, half, [objects], torch.from_numpy(masks[:1])[None])
    result = metrics.compute()
    assert result["iou/earth_berm"] == pytest.approx(0.5) and result["ap50/storehouse"] == pytest.approx(1.0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_metrics_moved_to_the_gpu_take_the_model_outputs_there():
    """As in `train fit` on a GPU: Lightning moves the metrics with the model, outputs come from the GPU."""
    objects, masks = _truth()
    metrics = DetectionMetrics(["storehouse", "truck"], ["earth_berm", "cleared_site"]).cuda()
    outputs = [t.cuda() for t in _perfect_outputs(objects, masks)]
    metrics.update(*outputs, [objects], torch.from_numpy(masks)[None].cuda())
    result = metrics.compute()
    assert result["map_50"] == pytest.approx(1.0)
    assert result["iou/cleared_site"] == pytest.approx(1.0)


def test_a_missed_class_scores_zero_and_a_shifted_box_loses_strict_ious():
    objects, masks = _truth()
    heatmap, box, mask = _perfect_outputs(objects, masks)
    heatmap[:, 1] = 0  # no truck found
    box[:, 0] += 1.0  # every centre a whole cell (4 px) to the right
    metrics = DetectionMetrics(["storehouse", "truck"], ["earth_berm", "cleared_site"])
    metrics.update(heatmap, box, mask, [objects], torch.from_numpy(masks)[None])
    result = metrics.compute()
    assert result["ap50/truck"] == 0.0 and result["ap/truck"] == 0.0
    assert result["ap50/storehouse"] == pytest.approx(1.0)
    assert result["ap/storehouse"] < 0.9  # 4 px off: fails the strict IoU thresholds


def test_an_overflowing_box_counts_as_a_miss_not_a_crash():
    """A diverging model (or batch-norm statistics not yet settled) predicts log sizes whose exp is
    infinite: validation goes on and scores that object as missed."""
    objects, masks = _truth()
    heatmap, box, mask = _perfect_outputs(objects, masks)
    truck_cells = heatmap[0, 1] > 0
    box[0, 2][truck_cells] = 1e4
    metrics = DetectionMetrics(["storehouse", "truck"], ["earth_berm", "cleared_site"])
    metrics.update(heatmap, box, mask, [objects], torch.from_numpy(masks)[None])
    result = metrics.compute()
    assert result["ap50/truck"] == 0.0
    assert result["ap50/storehouse"] == pytest.approx(1.0)


@pytest.mark.parametrize(("closing_px", "berm_ap50"), [(0.0, 0.0), (6.0, 1.0)])
def test_a_berm_predicted_in_two_pieces_counts_once_closing_bridges_the_gap(closing_px, berm_ap50):
    objects, masks = _truth()
    heatmap, box, mask = _perfect_outputs(objects, masks)
    mask[0, 0, :, 38:44] = 0.0  # the 60 px berm comes out as two pieces 6 px apart, neither IoU 0.5 with it
    metrics = DetectionMetrics(["storehouse", "truck"], ["earth_berm", "cleared_site"], region_closing_px=closing_px)
    metrics.update(heatmap, box, mask, [objects], torch.from_numpy(masks)[None])
    assert metrics.compute()["ap50/earth_berm"] == pytest.approx(berm_ap50)
