"""The box codec: training targets from labels, and detections from the model's outputs, in one place.

docs/design.md, decisions 2 and 5. The model's `box` output has the
channels `BOX_CHANNELS` at each heatmap cell of stride s: `dx`, `dy` (the
centre's offset from the cell centre, in cells), `log_length`, `log_width`
(log of the sides in cells), `cos2t`, `sin2t` (the axis angle doubled, so a
box and its half-turn are the same target) and `dir` (the front points along
+theta: 1, else 0; a logit in the output). `encode_targets` writes that
layout for training, `decode_objects` reads it back for validation and
inference alike; `decode_regions` thresholds and closes region masks.

Objects get CenterNet-style center heatmaps with an oriented elliptical
Gaussian each, and TTFNet-style box regression: every cell where an object's
Gaussian is >= `REGRESSION_THRESHOLD` regresses that object's box, weighted by
the Gaussian, which gives many more positive samples than the peak cell alone
and speeds up convergence. Regions are trained on their full-resolution masks.

numpy, SciPy and OpenCV (no torch): conventions of rboxes are in `infer.contract.geometry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from infer.contract.defaults import DEFAULT_SCORE, MASK_THRESHOLD
from infer.contract.geometry import snap_axis_aligned, wrap_angle

#: Channels of the `box` output, in order.
BOX_CHANNELS: tuple[str, ...] = ("dx", "dy", "log_length", "log_width", "cos2t", "sin2t", "dir")
#: Gaussian sigma per object axis, in cells: `max(SIGMA_MIN, SIGMA_SCALE * size / stride)`.
SIGMA_SCALE: float = 0.15
SIGMA_MIN: float = 0.8
#: Largest ratio of the two sigmas; see `gaussian_sigmas`.
SIGMA_MAX_RATIO: float = 3.0
#: Cells whose Gaussian value reaches this regress the object's box.
REGRESSION_THRESHOLD: float = 0.3


@dataclass(frozen=True)
class ObjectLabels:
    """Labeled objects of one sample, in the sample's pixel coordinates.

    Attributes:
        rboxes: float `(N, 5)` `(cx, cy, length, width, angle)`; angle in
            radians from +x toward +y. Only its axis (angle mod pi) is used;
            length and width are swapped if needed so length >= width.
        classes: int `(N,)` object class indices in `[0, num_object_classes)`.
        headings: float `(N,)` direction the front points, radians, NaN where
            unknown (storehouses). The front end of the long axis is the one
            within 90 degrees of the heading.
    """

    rboxes: NDArray[np.floating]
    classes: NDArray[np.integer]
    headings: NDArray[np.floating]

    @classmethod
    def empty(cls) -> ObjectLabels:
        """No objects."""
        return cls(np.zeros((0, 5), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.classes)


def gaussian_sigmas(
    length: NDArray[np.floating], width: NDArray[np.floating], stride: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Gaussian sigmas in cells along and across each object's axis.

    With sigma = 0.15 x size, the object's edge lies 3.3 sigma from its center
    (Gaussian ~0.004), so the heatmap stays inside the object and neighbors in
    a row of storehouses keep separate peaks; the regression area (Gaussian
    >= 0.3, i.e. within 1.55 sigma) covers the central ~45% of each side, close
    to TTFNet's choice. The 0.8-cell floor keeps small trucks from collapsing
    to a single cell, which a 3x3 peak picker and the focal loss handle badly.

    The across sigma is raised to at least `along / SIGMA_MAX_RATIO`: a thinner
    Gaussian ridge at an oblique angle has extra 3x3 local maxima on the cell
    grid (from a ratio of about 4.5), i.e. false peaks in the target; up to 4
    an exhaustive search over angles and sizes finds exactly one, and 3
    leaves a margin. Objects thinner than 3:1 thus get a Gaussian (and a
    regression area) that spills a little over their long sides.
    """
    along = np.maximum(SIGMA_MIN, SIGMA_SCALE * np.asarray(length, np.float64) / stride)
    across = np.maximum(SIGMA_MIN, SIGMA_SCALE * np.asarray(width, np.float64) / stride)
    return along, np.maximum(across, along / SIGMA_MAX_RATIO)


def _validate(objects: ObjectLabels, num_classes: int) -> tuple[np.ndarray, ...]:
    rboxes = np.asarray(objects.rboxes, np.float64)
    if rboxes.size == 0:
        rboxes = rboxes.reshape(0, 5)
    classes = np.asarray(objects.classes)
    headings = np.asarray(objects.headings, np.float64)
    n = len(classes)
    if rboxes.shape != (n, 5) or headings.shape != (n,):
        raise ValueError(
            f"objects need rboxes (N, 5), classes (N,) and headings (N,); got "
            f"{rboxes.shape}, {classes.shape}, {headings.shape}"
        )
    if not np.isfinite(rboxes).all():
        raise ValueError("object rboxes contain NaN or infinite values")
    if (rboxes[:, 2:4] <= 0).any():
        raise ValueError("object rboxes need a positive length and width")
    if n and (classes.min() < 0 or classes.max() >= num_classes):
        raise ValueError(f"object classes must lie in [0, {num_classes}), got {np.unique(classes)}")
    return rboxes, classes.astype(np.int64), headings


def encode_targets(
    objects: ObjectLabels,
    region_masks: NDArray[np.bool_] | NDArray[np.uint8],
    image_size: tuple[int, int],
    num_object_classes: int,
    stride: int = 4,
) -> dict[str, NDArray[np.float32]]:
    """Training targets of one sample (numpy, meant for `Dataset.__getitem__`).

    Args:
        objects: the sample's objects. Objects whose center is outside the
            image are dropped: the chip next door owns them.
        region_masks: `(num_region_classes, H, W)` bool/uint8, nonzero inside.
        image_size: `(H, W)` of the sample in pixels, multiples of `stride`.
        num_object_classes: heatmap channels.
        stride: output stride of the heatmap and box maps.

    Returns float32 arrays, with h, w = H / stride, W / stride:
        `heatmap` `(num_object_classes, h, w)`: max over objects of their
            Gaussians, exactly 1.0 at each object's center cell.
        `box` `(7, h, w)`: `BOX_CHANNELS`, `dir` being 1 when the front points along
            +theta, else 0.
        `box_weight` `(h, w)`: Gaussian weight of each regressing cell, scaled
            so every object's weights sum to 1 (0 where nothing regresses).
            Where regression areas overlap the smaller object wins, and every
            object keeps its own center cell.
        `dir_weight` `(h, w)`: `box_weight` restricted to objects with a
            known heading.
        `mask` `(num_region_classes, H, W)`: the region masks as 0/1.
    """
    height, width = image_size
    if height % stride or width % stride or height <= 0 or width <= 0:
        raise ValueError(f"image_size {image_size} must be positive multiples of stride {stride}")
    masks = np.asarray(region_masks)
    if masks.ndim != 3 or masks.shape[1:] != (height, width):
        raise ValueError(
            f"region_masks must have shape (num_region_classes, {height}, {width}), got {masks.shape}"
        )
    if num_object_classes < 0:
        raise ValueError(f"num_object_classes must be >= 0, got {num_object_classes}")
    rboxes, classes, headings = _validate(objects, num_object_classes)

    h, w = height // stride, width // stride
    heatmap = np.zeros((num_object_classes, h, w), np.float32)
    box = np.zeros((len(BOX_CHANNELS), h, w), np.float32)
    box_weight = np.zeros((h, w), np.float32)
    dir_weight = np.zeros((h, w), np.float32)

    inside = (
        (rboxes[:, 0] >= 0) & (rboxes[:, 0] < width) & (rboxes[:, 1] >= 0) & (rboxes[:, 1] < height)
    )
    rboxes, classes, headings = rboxes[inside], classes[inside], headings[inside]
    length = np.maximum(rboxes[:, 2], rboxes[:, 3])
    size_across = np.minimum(rboxes[:, 2], rboxes[:, 3])
    theta = wrap_angle(rboxes[:, 4] + np.where(rboxes[:, 3] > rboxes[:, 2], np.pi / 2, 0.0))
    known = np.isfinite(headings)
    front_is_theta = np.cos(np.where(known, headings, 0.0) - theta) >= 0
    sigma_along, sigma_across = gaussian_sigmas(length, size_across, stride)
    center_col = np.floor(rboxes[:, 0] / stride).astype(np.int64)
    center_row = np.floor(rboxes[:, 1] / stride).astype(np.int64)

    # Per-object target values that do not depend on the cell.
    shape_targets = np.stack(
        [
            np.log(length / stride),
            np.log(size_across / stride),
            np.cos(2 * theta),
            np.sin(2 * theta),
            front_is_theta.astype(np.float64),
        ],
        axis=1,
    )

    def write_box(k: int, rows: np.ndarray, cols: np.ndarray) -> None:
        box[0, rows, cols] = rboxes[k, 0] / stride - (cols + 0.5)
        box[1, rows, cols] = rboxes[k, 1] / stride - (rows + 0.5)
        box[2:, rows, cols] = shape_targets[k][:, None]

    # Larger objects first, so smaller ones overwrite shared regression cells.
    order = np.argsort(-(length * size_across), kind="stable")
    for k in order:
        radius = int(np.ceil(3.0 * max(sigma_along[k], sigma_across[k])))
        r0, r1 = max(center_row[k] - radius, 0), min(center_row[k] + radius + 1, h)
        c0, c1 = max(center_col[k] - radius, 0), min(center_col[k] + radius + 1, w)
        dy = (np.arange(r0, r1) - center_row[k])[:, None].astype(np.float64)
        dx = (np.arange(c0, c1) - center_col[k])[None, :].astype(np.float64)
        cos_t, sin_t = np.cos(theta[k]), np.sin(theta[k])
        along = (dx * cos_t + dy * sin_t) / sigma_along[k]
        across = (-dx * sin_t + dy * cos_t) / sigma_across[k]
        gauss = np.exp(-0.5 * (along**2 + across**2))  # exactly 1 at the center cell
        window = heatmap[classes[k], r0:r1, c0:c1]
        np.maximum(window, gauss, out=window)

        rows, cols = np.nonzero(gauss >= REGRESSION_THRESHOLD)
        weight = gauss[rows, cols] / gauss[rows, cols].sum()
        write_box(k, rows + r0, cols + c0)
        box_weight[rows + r0, cols + c0] = weight
        dir_weight[rows + r0, cols + c0] = weight if known[k] else 0.0

    # Each center cell regresses its own object even inside a smaller one's area.
    for k in order:
        row, col = center_row[k : k + 1], center_col[k : k + 1]
        write_box(k, row, col)
        box_weight[row, col] = np.maximum(box_weight[row, col], 1e-3)
        dir_weight[row, col] = box_weight[row, col] if known[k] else 0.0

    return {
        "heatmap": heatmap,
        "box": box,
        "box_weight": box_weight,
        "dir_weight": dir_weight,
        "mask": (masks != 0).astype(np.float32),
    }



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

    @classmethod
    def empty(cls) -> ObjectDetections:
        """Nothing found (and what a model without object classes finds)."""
        return cls(np.zeros((0, 5), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.scores)


def decode_objects(
    heatmap: NDArray[np.floating],
    box: NDArray[np.floating],
    score_threshold: float = DEFAULT_SCORE,
    max_objects: int = 500,
    stride: int = 4,
    axis_aligned: Sequence[bool] = (),
) -> ObjectDetections:
    """Objects of ONE image from its peak-suppressed heatmap and box maps.

    Args:
        heatmap: `(C, h, w)` center probabilities, already peak-suppressed
            (the model's `heatmap` output): every nonzero cell is a peak.
        box: `(7, h, w)` in `BOX_CHANNELS` order.
        score_threshold: keep peaks with probability strictly above it (>= 0).
        max_objects: keep at most this many, the highest scores.
        stride: input pixels per cell.
        axis_aligned: per object class, True for a class without an axis (`ClassInfo.oriented`
            False): its boxes come back axis-aligned (`snap_axis_aligned`).

    Returns `ObjectDetections` in input pixel coordinates, sorted by score.
    """
    heatmap = np.asarray(heatmap)
    box = np.asarray(box)
    if heatmap.ndim != 3:
        raise ValueError(f"heatmap must be (C, h, w) for one image, got shape {heatmap.shape}")
    if box.shape != (len(BOX_CHANNELS), *heatmap.shape[1:]):
        raise ValueError(
            f"box must be ({len(BOX_CHANNELS)}, h, w) matching heatmap {heatmap.shape}, got {box.shape}"
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
    values = box[:, row, col].astype(np.float64)  # (len(BOX_CHANNELS), N)
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
    rboxes = rboxes.reshape(-1, 5)
    snap = np.asarray(axis_aligned, bool)[classes] if any(axis_aligned) else np.zeros(len(classes), bool)
    if snap.any():
        rboxes[snap] = snap_axis_aligned(rboxes[snap])
    return ObjectDetections(
        rboxes=rboxes.astype(np.float32),
        scores=flat[candidates].astype(np.float32),
        classes=classes.astype(np.int64),
    )


def decode_regions(mask: NDArray[np.floating], threshold: float = MASK_THRESHOLD, closing_px: float = 0.0) -> NDArray[np.bool_]:
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
    """Morphological closing of one 2-D mask by a disc of `radius` pixels (`disc`, Euclidean distances).

    Outside the array counts as empty, so nothing is added along its edges. OpenCV's closing by the
    disc as its kernel, on the box around the mask (only it can change) padded past the disc's reach,
    so that OpenCV's own rule for its border never decides a pixel.
    """
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    if rows.size == 0:
        return region
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    pad = int(np.ceil(radius)) + 1
    padded = np.pad(region[r0:r1, c0:c1], pad).view(np.uint8)
    closed = region.copy()
    closed[r0:r1, c0:c1] = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, disc(radius).view(np.uint8)
                                            )[pad:-pad, pad:-pad].view(bool)
    return closed


def disc(radius: float) -> NDArray[np.bool_]:
    """The disc `close_gaps` closes by, {dx² + dy² <= radius²}, as a (2R + 1, 2R + 1) array, R = floor(radius)."""
    reach = int(np.floor(radius))
    yy, xx = np.mgrid[-reach:reach + 1, -reach:reach + 1]
    return xx * xx + yy * yy <= radius * radius


__all__ = ["BOX_CHANNELS", "REGRESSION_THRESHOLD", "SIGMA_MAX_RATIO", "SIGMA_MIN", "SIGMA_SCALE",
           "ObjectDetections", "ObjectLabels", "close_gaps", "decode_objects", "disc", "decode_regions", "encode_targets",
           "gaussian_sigmas"]
