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


def fit_to_size(raw: RawSample, size: int, rng: np.random.Generator | None) -> RawSample:
    """Crop (randomly when `rng` is given, else from the top-left) or zero-pad a chip to size x size."""
    _, rows, cols = raw.image.shape
    r0 = int(rng.integers(0, rows - size + 1)) if rng is not None and rows > size else 0
    c0 = int(rng.integers(0, cols - size + 1)) if rng is not None and cols > size else 0
    image = np.zeros((raw.image.shape[0], size, size), np.float32)
    valid = np.zeros((size, size), bool)
    masks = np.zeros((raw.masks.shape[0], size, size), np.uint8)
    h, w = min(size, rows - r0), min(size, cols - c0)
    image[:, :h, :w] = raw.image[:, r0:r0 + h, c0:c0 + w]
    valid[:h, :w] = raw.valid[r0:r0 + h, c0:c0 + w]
    masks[:, :h, :w] = raw.masks[:, r0:r0 + h, c0:c0 + w]
    corners = raw.corners - np.array([c0, r0], dtype=np.float64)
    return RawSample(image, valid, corners, raw.classes, raw.directional, masks)


class DetectionSamples(Dataset):
    """Samples for training (random draws, augmented) or validation (a fixed list).

    Each item: `image` (C, S, S) float32 normalized, the dense targets of
    `encode_targets`, and `objects` (ObjectLabels) for metrics.
    """

    def __init__(self, sources: list[ChipSource], stats: BandStats, chip_size: int, num_object_classes: int,
                 train: bool, samples_per_epoch: int = 512, augmentation: A.Compose | None = None,
                 seed: int = 0, stride: int = 4) -> None:
        self.sources, self.stats, self.chip_size, self.stride = sources, stats, chip_size, stride
        self.num_object_classes, self.train = num_object_classes, train
        self.samples_per_epoch, self.augmentation, self.seed = samples_per_epoch, augmentation, seed
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
            source = self.sources[int(rng.integers(len(self.sources)))]
            raw = fit_to_size(source.draw(rng), self.chip_size, rng)
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


def collate(items: list[dict]) -> dict:
    """Stack tensors; keep per-image `objects` as a list."""
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0] if k != "objects"}
    batch["objects"] = [it["objects"] for it in items]
    return batch
