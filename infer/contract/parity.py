"""Do two runs of a model decide the same? The check `train export` makes (docs/design.md, decision 6).

PyTorch against ONNX Runtime, or CPU against GPU: both runs' outputs are
decoded with the contract's codec and the decisions compared, not the raw
floats, since only decisions reach a user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from infer.contract.codec import ObjectDetections, decode_objects
from infer.contract.defaults import DEFAULT_SCORE, MASK_THRESHOLD
from infer.contract.geometry import rbox_iou


@dataclass(frozen=True)
class DetectionComparison:
    """How the decoded detections of two runs differ (see `compare_detections`).

    `objects`, `region_pixels`: what the reference run found. Mismatches:
    objects without a partner in the other run, pixels decided differently.
    `borderline`: differing decisions whose reference score or probability
    lies within the comparison's margin of the threshold, where rounding alone
    can flip them; not counted as mismatches.
    """

    objects: int
    object_mismatches: int
    region_pixels: int
    pixel_mismatches: int
    borderline: int

    @property
    def identical(self) -> bool:
        return self.object_mismatches == 0 and self.pixel_mismatches == 0


def compare_detections(reference: Sequence[NDArray[np.floating]], candidate: Sequence[NDArray[np.floating]],
                       score_threshold: float = DEFAULT_SCORE, mask_threshold: float = MASK_THRESHOLD, position_px: float = 1e-2,
                       angle_rad: float = 1e-3, margin: float = 0.0, stride: int = 4,
                       min_iou: float | None = None) -> DetectionComparison:
    """Do two runs of a model (e.g. PyTorch and ONNX Runtime, or CPU and GPU) decide the same?

    `reference`, `candidate`: `(heatmap (C, h, w), box (7, h, w), mask (R, H, W))`
    of ONE image each, from a model of output `stride`; None for a kind the model lacks. Objects are decoded
    with `infer.contract.codec.decode_objects` at `score_threshold`, in input
    pixels; two match when class agrees, centre, length and width within
    `position_px` and heading within `angle_rad`; or, given `min_iou`, when class agrees and their
    rectangles overlap by at least that IoU (outlines: for a run that rounds coarsely, whose error
    grows with an object's size, and which may pick the other end of a nearly symmetric object).
    Regions are pixels above `mask_threshold`.
    """
    a, b = (ObjectDetections.empty() if run[0] is None else decode_objects(run[0], run[1], score_threshold,
                                                                             stride=stride)
            for run in (reference, candidate))
    near = a.classes[:, None] == b.classes[None, :]
    if min_iou is not None:
        near &= rbox_iou(a.rboxes, b.rboxes) >= min_iou
    else:
        near &= np.all(np.abs(a.rboxes[:, None, :4] - b.rboxes[None, :, :4]) <= position_px, axis=-1)
        turn = np.abs(a.rboxes[:, None, 4] - b.rboxes[None, :, 4]).astype(np.float64) % (2 * np.pi)
        near &= np.minimum(turn, 2 * np.pi - turn) <= angle_rad
    unmatched = np.concatenate([a.scores[~near.any(axis=1)], b.scores[~near.any(axis=0)]])
    edge_objects = int(np.sum(np.abs(unmatched - score_threshold) <= margin))
    ref_mask, cand_mask = (np.zeros((0, 1, 1), np.float32) if run[2] is None else np.asarray(run[2])
                           for run in (reference, candidate))
    flips = (ref_mask > mask_threshold) != (cand_mask > mask_threshold)
    edge_pixels = int(np.sum(flips & (np.abs(ref_mask - mask_threshold) <= margin)))
    return DetectionComparison(len(a), len(unmatched) - edge_objects, int(np.sum(ref_mask > mask_threshold)),
                               int(flips.sum()) - edge_pixels, edge_objects + edge_pixels)


__all__ = ["DetectionComparison", "compare_detections"]
