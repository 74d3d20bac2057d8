"""Torch datasets over raw chips: augmentation, normalization and dense targets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from infer.contract.codec import encode_targets
from train.data.augment import apply
from train.data.labels import corners_to_labels
from train.data.normalization import BandStats
from train.data.scenes import RawSample


class ChipSource(Protocol):
    """Anything that yields raw chips: scene windows or a chip folder."""

    def draw(self, rng: np.random.Generator) -> RawSample: ...

    def fixed(self) -> Sequence[object]: ...

    def read_fixed(self, key: object) -> RawSample: ...

    def object_sides_px(self, gsd_m: float) -> np.ndarray: ...


def fit_to_size(raw: RawSample, size: int, rng: np.random.Generator | None, cols: int | None = None) -> RawSample:
    """Crop (randomly when `rng` is given, else from the top-left) or zero-pad a chip to size x size, or to
    size rows x `cols` columns."""
    rows_out, cols_out = size, size if cols is None else cols
    _, rows, width = raw.image.shape
    r0 = int(rng.integers(0, rows - rows_out + 1)) if rng is not None and rows > rows_out else 0
    c0 = int(rng.integers(0, width - cols_out + 1)) if rng is not None and width > cols_out else 0
    image = np.zeros((raw.image.shape[0], rows_out, cols_out), np.float32)
    valid = np.zeros((rows_out, cols_out), bool)
    masks = np.zeros((raw.masks.shape[0], rows_out, cols_out), np.uint8)
    h, w = min(rows_out, rows - r0), min(cols_out, width - c0)
    image[:, :h, :w] = raw.image[:, r0:r0 + h, c0:c0 + w]
    valid[:h, :w] = raw.valid[r0:r0 + h, c0:c0 + w]
    masks[:, :h, :w] = raw.masks[:, r0:r0 + h, c0:c0 + w]
    corners = raw.corners - np.array([c0, r0], dtype=np.float64)
    return RawSample(image, valid, corners, raw.classes, raw.directional, masks)


def mosaic(draws: Sequence[RawSample], size: int, rng: np.random.Generator) -> RawSample:
    """One size x size chip of four draws, as YOLO's mosaic: a random point splits the chip into four
    rectangles and each is a random crop of its own draw. An object belongs to the rectangle its centre falls
    in, whole (the rule of a chip's edge, `encode_targets`); one whose centre falls outside is dropped."""
    split_row, split_col = (int(v) for v in rng.integers(size // 4, 3 * size // 4 + 1, size=2))
    pieces = []
    rectangles = [(r0, r1, c0, c1) for r0, r1 in ((0, split_row), (split_row, size))
                  for c0, c1 in ((0, split_col), (split_col, size))]
    for (r0, r1, c0, c1), raw in zip(rectangles, draws, strict=True):
        piece = fit_to_size(raw, r1 - r0, rng, cols=c1 - c0)
        centre = piece.corners.mean(axis=1)  # corners are (N, 4, 2), also when N is 0
        keep = ((centre[:, 0] >= 0) & (centre[:, 0] < c1 - c0) & (centre[:, 1] >= 0) & (centre[:, 1] < r1 - r0))
        pieces.append((r0, c0, piece, keep))
    image = np.zeros((draws[0].image.shape[0], size, size), np.float32)
    valid = np.zeros((size, size), bool)
    masks = np.zeros((draws[0].masks.shape[0], size, size), np.uint8)
    for r0, c0, piece, _ in pieces:
        rows, cols = piece.valid.shape
        image[:, r0:r0 + rows, c0:c0 + cols] = piece.image
        valid[r0:r0 + rows, c0:c0 + cols] = piece.valid
        masks[:, r0:r0 + rows, c0:c0 + cols] = piece.masks
    corners = np.concatenate([p.corners[k] + np.array([c0, r0], np.float64) for r0, c0, p, k in pieces]
                             ).reshape(-1, 4, 2)
    classes = np.concatenate([p.classes[k] for *_, p, k in pieces])
    directional = np.concatenate([p.directional[k] for *_, p, k in pieces])
    return RawSample(image, valid, corners, classes, directional, masks)


class DetectionSamples(Dataset):
    """Samples for training (random draws, augmented) or validation (a fixed list).

    Each item: `image` (C, S, S) float32 normalized, the dense targets of
    `encode_targets`, and `objects` (ObjectLabels) for metrics.
    """

    def __init__(self, sources: list[ChipSource], stats: BandStats, chip_size: int, num_object_classes: int,
                 train: bool, samples_per_epoch: int = 512, augmentation: A.Compose | None = None,
                 seed: int = 0, stride: int = 4, mosaic: float = 0.0) -> None:
        self.sources, self.stats, self.chip_size, self.stride = sources, stats, chip_size, stride
        self.num_object_classes, self.train = num_object_classes, train
        self.samples_per_epoch, self.augmentation, self.seed = samples_per_epoch, augmentation, seed
        self.mosaic_share = mosaic  # of training chips, made of four draws (`mosaic`)
        self.index = [] if train else [(s, key) for s, src in enumerate(sources) for key in src.fixed()]
        self._draws = 0  # per process: with persistent workers each worker keeps its own count
        scale = stats.scale
        self.mean01 = (np.asarray(stats.mean, np.float32) / scale)[:, None, None]
        self.std01 = (np.asarray(stats.std, np.float32) / scale)[:, None, None]

    def __len__(self) -> int:
        return self.samples_per_epoch if self.train else len(self.index)

    def __getitem__(self, i: int) -> dict:
        if self.train:
            rng = np.random.default_rng([self.seed, i, self._draws])
            self._draws += 1
            if self.mosaic_share and rng.random() < self.mosaic_share:
                raw = mosaic([self._draw(rng) for _ in range(4)], self.chip_size, rng)
            else:
                raw = fit_to_size(self._draw(rng), self.chip_size, rng)
        else:
            s, key = self.index[i]
            raw = fit_to_size(self.sources[s].read_fixed(key), self.chip_size, None)
        image = np.where(raw.valid, raw.image / self.stats.scale, 0).astype(np.float32)
        corners, masks, valid = raw.corners, raw.masks, raw.valid
        if self.train and self.augmentation is not None:
            self.augmentation.set_random_seed(int(rng.integers(2**31)))
            stacked = np.concatenate([masks, valid[None].astype(np.uint8)])
            image, corners, stacked = apply(self.augmentation, image, corners, stacked)
            masks, valid = stacked[:-1], stacked[-1].astype(bool)
        objects = corners_to_labels(corners, raw.classes, raw.directional, image.shape[1:])
        targets = encode_targets(objects, masks, image.shape[1:], self.num_object_classes, self.stride)
        normalized = np.where(valid, (image - self.mean01) / self.std01, 0).astype(np.float32)
        item = {"image": torch.from_numpy(normalized), "objects": objects}
        item.update({k: torch.from_numpy(v) for k, v in targets.items()})
        return item

    def _draw(self, rng: np.random.Generator) -> RawSample:
        return self.sources[int(rng.integers(len(self.sources)))].draw(rng)


def collate(items: list[dict]) -> dict:
    """Stack tensors; keep per-image `objects` as a list."""
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0] if k != "objects"}
    batch["objects"] = [it["objects"] for it in items]
    return batch
