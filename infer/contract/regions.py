"""Region masks as detections: each connected piece of a class mask, with a score.

So that every class, objects and regions alike, gets a box mAP
(docs/design.md, decision 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class RegionPieces:
    """Connected pieces of region masks.

    boxes: float32 (N, 4) pixel `[x1, y1, x2, y2]` (pixel edges, x2/y2 exclusive).
    scores: float32 (N,) mean probability inside the piece (1.0 for truth masks).
    classes: int64 (N,) region class index. areas: int64 (N,) pixels.
    """

    boxes: NDArray[np.float32]
    scores: NDArray[np.float32]
    classes: NDArray[np.int64]
    areas: NDArray[np.int64]

    @classmethod
    def empty(cls) -> RegionPieces:
        """No pieces (and what a model without region classes finds)."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64),
                   np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.scores)


def region_pieces(masks: NDArray, probabilities: NDArray | None = None, min_area: int = 8) -> RegionPieces:
    """Split (K, H, W) boolean masks into 8-connected pieces of at least `min_area` pixels.

    `probabilities` (K, H, W), when given, scores each piece by its mean.
    """
    boxes, scores, classes, areas = [], [], [], []
    for k, mask in enumerate(np.asarray(masks, dtype=bool)):
        labels, n = ndimage.label(mask, structure=EIGHT_CONNECTED)
        if n == 0:
            continue
        index = np.arange(1, n + 1)
        size = ndimage.sum_labels(np.ones_like(labels), labels, index).astype(np.int64)
        mean = (ndimage.mean(probabilities[k], labels, index) if probabilities is not None
                else np.ones(n))
        for slices, area, score in zip(ndimage.find_objects(labels), size, mean, strict=True):
            if area < min_area or slices is None:
                continue
            rows, cols = slices
            boxes.append([cols.start, rows.start, cols.stop, rows.stop])
            scores.append(score)
            classes.append(k)
            areas.append(area)
    return RegionPieces(
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(scores, np.float32),
        np.asarray(classes, np.int64),
        np.asarray(areas, np.int64),
    )
