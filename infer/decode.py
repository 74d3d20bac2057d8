"""Turn the model's dense outputs for one image into objects and region masks.

numpy only (no torch): the same code serves validation during training and
the deployed runtime. See `SiteDetector` (train.model.detector) for the
layout of the outputs; conventions of rboxes are in `infer.geometry`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from infer.geometry import wrap_angle

#: Radius in metres of the disc that closes region masks (see `decode_regions`).
REGION_CLOSING_M = 2.0

#: Number of channels of the box output: dx, dy, log_length, log_width, cos2t, sin2t, dir_logit.
BOX_CHANNELS = 7


@dataclass(frozen=True)
class ObjectDetections:
    """Objects found in one image, best score first.

    Attributes:
        rboxes: float32 `(N, 5)` `(cx, cy, length, width, heading)` in input
            pixels; length >= width; heading in [0, 2 pi) from the direction
            logit. For classes without a heading (storehouses) the direction
            is untrained: use `heading mod pi` as the axis angle.
        scores: float32 `(N,)` peak heatmap probabilities.
        classes: int64 `(N,)` object class indices.
    """

    rboxes: NDArray[np.float32]
    scores: NDArray[np.float32]
    classes: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.scores)


def decode_objects(
    heatmap: NDArray[np.floating],
    box: NDArray[np.floating],
    score_threshold: float = 0.3,
    max_objects: int = 500,
    stride: int = 4,
) -> ObjectDetections:
    """Objects of ONE image from its peak-suppressed heatmap and box maps.

    Args:
        heatmap: `(C, h, w)` center probabilities, already peak-suppressed
            (the model's `heatmap` output): every nonzero cell is a peak.
        box: `(7, h, w)` `[dx, dy, log_length, log_width, cos2t, sin2t,
            dir_logit]` as documented on `SiteDetector`.
        score_threshold: keep peaks with probability strictly above it (>= 0).
        max_objects: keep at most this many, the highest scores.
        stride: input pixels per cell.

    Returns `ObjectDetections` in input pixel coordinates, sorted by score.
    """
    heatmap = np.asarray(heatmap)
    box = np.asarray(box)
    if heatmap.ndim != 3:
        raise ValueError(f"heatmap must be (C, h, w) for one image, got shape {heatmap.shape}")
    if box.shape != (BOX_CHANNELS, *heatmap.shape[1:]):
        raise ValueError(
            f"box must be ({BOX_CHANNELS}, h, w) matching heatmap {heatmap.shape}, got {box.shape}"
        )
    if score_threshold < 0:
        raise ValueError(f"score_threshold must be >= 0, got {score_threshold}")
    if max_objects < 0:
        raise ValueError(f"max_objects must be >= 0, got {max_objects}")

    _, _, width = heatmap.shape
    flat = heatmap.reshape(-1)
    candidates = np.flatnonzero(flat > score_threshold)
    if candidates.size > max_objects:
        top = np.argpartition(-flat[candidates], max_objects - 1)[:max_objects]
        candidates = candidates[top]
    candidates = candidates[np.argsort(-flat[candidates], kind="stable")]

    classes, cell = np.divmod(candidates, heatmap.shape[1] * width)
    row, col = np.divmod(cell, width)
    values = box[:, row, col].astype(np.float64)  # (7, N)
    dx, dy, log_length, log_width, cos2t, sin2t, dir_logit = values

    cx = (col + 0.5 + dx) * stride
    cy = (row + 0.5 + dy) * stride
    length = np.exp(log_length) * stride
    size_across = np.exp(log_width) * stride
    # atan2 needs no unit-length pair: the predicted pair only gives a direction.
    theta = 0.5 * np.arctan2(sin2t, cos2t)
    # A network may predict width > length: the long side is then across theta.
    swapped = size_across > length
    # Into [0, pi) first: dir_logit refers to the axis angle in that range.
    theta = wrap_angle(theta + np.where(swapped, np.pi / 2, 0.0), np.pi)
    heading = wrap_angle(theta + np.where(dir_logit >= 0, 0.0, np.pi), 2 * np.pi)
    rboxes = np.stack(
        [cx, cy, np.maximum(length, size_across), np.minimum(length, size_across), heading],
        axis=1,
    )
    return ObjectDetections(
        rboxes=rboxes.astype(np.float32).reshape(-1, 5),
        scores=flat[candidates].astype(np.float32),
        classes=classes.astype(np.int64),
    )


def decode_regions(mask: NDArray[np.floating], threshold: float = 0.5, closing_px: float = 0.0) -> NDArray[np.bool_]:
    """Binary region masks `(R, H, W)` from the model's `mask` probabilities.

    `mask` is `(R, H, W)` for one image; a pixel belongs to a region when its
    probability is strictly above `threshold`. With `closing_px` > 0 each
    class mask is then closed by a disc of that radius. Why: the network
    often breaks a long berm or a ring into pieces a few metres apart, and
    each piece alone covers too little of the berm to count as finding it.
    Closing bridges such gaps and leaves convex shapes unchanged; between
    the ends of thin pieces it bridges less than the disc's diameter (radius
    12 px: 14 px between ridges 8 px wide, 8 px between ridges 4 px wide).
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"mask must be (R, H, W) for one image, got shape {mask.shape}")
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must lie in [0, 1), got {threshold}")
    if closing_px < 0:
        raise ValueError(f"closing_px must be >= 0, got {closing_px}")
    regions = mask > threshold
    if closing_px > 0 and regions.size:
        regions = np.stack([close_gaps(r, closing_px) for r in regions])
    return regions


def close_gaps(region: NDArray[np.bool_], radius: float) -> NDArray[np.bool_]:
    """Morphological closing of one 2-D mask by a disc of `radius` pixels (Euclidean distances).

    Outside the array counts as empty, so nothing is added along its edges.
    """
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    if rows.size == 0:
        return region
    # Only the box around the mask can change; distance transforms cost what their array holds.
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    pad = int(np.ceil(radius)) + 1
    padded = np.pad(region[r0:r1, c0:c1], pad)
    grown = ndimage.distance_transform_edt(~padded) <= radius
    closed = region.copy()
    closed[r0:r1, c0:c1] = (ndimage.distance_transform_edt(grown) > radius)[pad:-pad, pad:-pad]
    return closed


__all__ = ["BOX_CHANNELS", "REGION_CLOSING_M", "ObjectDetections", "close_gaps", "decode_objects", "decode_regions"]
