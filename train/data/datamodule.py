"""The Lightning data module: sources from a dataset YAML, normalization, loaders."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch.utils.data import DataLoader

from infer.errors import InputError
from infer.geo.rasterenv import open_raster
from train.data.augment import training_augmentation
from train.data.config import DatasetConfig, load_dataset_config
from train.data.normalization import BandStats, dataset_stats
from train.data.samples import ChipSource, DetectionSamples, collate
from train.data.scenes import SceneWindows, find_scenes, open_scene


def _is_chip_folder(path: Path) -> bool:
    return (path / "annotations.json").exists()


def build_sources(paths: tuple[Path, ...], config: DatasetConfig, chip_size: int) -> tuple[list[ChipSource], list[Path]]:
    """Chip folders (COCO) and scene folders (GeoTIFF + GeoJSON) named by a dataset split."""
    if not paths:
        raise InputError(f"{config.source}: the split has no paths")
    sources: list[ChipSource] = []
    rasters: list[Path] = []
    scene_paths = []
    for path in paths:
        if _is_chip_folder(path):
            from train.data.chip_folder import ChipFolder

            folder = ChipFolder(path, config)
            sources.append(folder)
            rasters += folder.image_paths()
        else:
            scene_paths.append(path)
    if scene_paths:
        scenes = [open_scene(tif, labels, config) for tif, labels in find_scenes(tuple(scene_paths))]
        sources.append(SceneWindows(scenes, chip_size))
        rasters += [s.path for s in scenes]
    return sources, rasters


class SiteDataModule(pl.LightningDataModule):
    """Data for `SiteDetectionTask`.

    Args:
        dataset: dataset YAML (classes, bands, GSD, train/val paths).
        chip_size: side of a training chip in pixels at the dataset GSD (a multiple of 32).
        batch_size, num_workers: loader settings.
        samples_per_epoch: random chips drawn per training epoch.
        augment: flips, 90° rotations, scale jitter, photometric changes, blur and noise.
        scale_jitter: relative scale (GSD) jitter, e.g. 0.1 for ±10 %.
        brightness_contrast, saturation: largest relative change of a chip's brightness and contrast, and
            of its bands' spread around their mean (0: off); raise them for scenes whose light and colours
            differ from the training imagery's (`augment.training_augmentation`).
        grey: share of training chips shown without colour (every band the mean of the pixel's bands), for
            objects whose colour changes with site and season (a dead tree is grey, a live one green).
        mosaic: share of training chips made of four random draws, each in one of four rectangles split at a
            random point (YOLO's mosaic): more objects and more contexts per chip (`samples.mosaic`).
        seed: base seed of the random chip draws.
        val_chip_size: validation chip side; larger than training chips so fewer objects are cut
            at chip borders (the network is fully convolutional). 0 = chip_size.
        object_stride: stride of the object targets; the CLI links it from `model.object_stride`.
    """

    def __init__(self, dataset: str = "datasets/synthetic.yaml", chip_size: int = 512, batch_size: int = 8,
                 num_workers: int = 2, samples_per_epoch: int = 1024, augment: bool = True,
                 scale_jitter: float = 0.1, brightness_contrast: float = 0.15, saturation: float = 0.0,
                 grey: float = 0.0, mosaic: float = 0.0, seed: int = 0, val_chip_size: int = 512,
                 object_stride: int = 4) -> None:
        super().__init__()
        for name, value in (("chip_size", chip_size), ("val_chip_size", val_chip_size)):
            if value % 32 or value <= 0:
                raise InputError(f"{name} must be a positive multiple of 32, got {value}")
        for name, value, least in (("batch_size", batch_size, 1), ("samples_per_epoch", samples_per_epoch, 1),
                                   ("num_workers", num_workers, 0)):
            if value < least:
                raise InputError(f"data: {name} must be at least {least}, got {value}")
        for name, value in (("scale_jitter", scale_jitter), ("brightness_contrast", brightness_contrast),
                            ("saturation", saturation)):
            if not (math.isfinite(value) and 0 <= value < 1):
                raise InputError(f"data: {name} must be a finite number in [0, 1), got {value:g}")
        for name, value in (("grey", grey), ("mosaic", mosaic)):
            if not (math.isfinite(value) and 0 <= value <= 1):
                raise InputError(f"data: {name} is a share of chips, a finite number in [0, 1], got {value:g}")
        self.save_hyperparameters()
        self.config = load_dataset_config(dataset)
        self.stats: BandStats | None = None
        self.dtype: str | None = None
        self.largest_object_m: float | None = None  # longest side of any training object; None: no objects
        self.typical_object_px: list[float] | None = None  # median training length and width, pixels
        self._train: DetectionSamples | None = None
        self._val: DetectionSamples | None = None

    def setup(self, stage: str | None = None) -> None:
        h = self.hparams
        n_obj = len(self.config.object_classes)
        train_sources, rasters = build_sources(self.config.train, self.config, h.chip_size)
        sides = np.concatenate([source.object_sides_px(self.config.gsd_m) for source in train_sources])
        largest = float(sides[:, 0].max()) if len(sides) else 0.0
        self.largest_object_m = round(largest * self.config.gsd_m, 3) if largest else None
        self.typical_object_px = [round(float(v), 2) for v in np.median(sides, axis=0)] if len(sides) else None
        if largest > h.chip_size:
            rank_zero_warn(f"the largest labeled object is {largest:.0f} px long, more than a training chip "
                           f"({h.chip_size} px) holds: raise --data.chip_size")
        self.stats = dataset_stats(self.config, rasters)
        with open_raster(rasters[0]) as src:
            self.dtype = src.dtypes[0]
        if stage in (None, "fit"):
            augmentation = (training_augmentation(h.scale_jitter, h.brightness_contrast, h.saturation, h.grey)
                            if h.augment else None)
            self._train = DetectionSamples(train_sources, self.stats, h.chip_size, n_obj, train=True,
                                           samples_per_epoch=h.samples_per_epoch, augmentation=augmentation,
                                           seed=h.seed, stride=h.object_stride, mosaic=h.mosaic)
        split = self.config.val or self.config.train
        val_size = h.val_chip_size or h.chip_size
        val_sources, _ = build_sources(split, self.config, val_size)
        self._val = DetectionSamples(val_sources, self.stats, val_size, n_obj, train=False,
                                     stride=h.object_stride)

    def info(self) -> dict:
        """What a checkpoint must carry to rebuild and export the model without the data."""
        stats = self.stats
        return {
            "dataset": self.config.name,
            "classes": [asdict(c) for c in self.config.classes],
            "bands": list(self.config.bands),
            "gsd_m": self.config.gsd_m,
            "normalization": stats.as_dict() if stats else None,
            "chip_size": self.hparams.chip_size,
            "dtype": self.dtype,
            "largest_object_m": self.largest_object_m,
            "typical_object_px": self.typical_object_px,
        }

    def transfer_batch_to_device(self, batch: dict, device: torch.device, dataloader_idx: int) -> dict:
        """Move the tensors; per-image `objects` stay numpy on the host for the metrics."""
        return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    def _loader(self, data: DetectionSamples, shuffle: bool) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(data, batch_size=self.hparams.batch_size, shuffle=shuffle, num_workers=workers,
                          collate_fn=collate, persistent_workers=workers > 0, pin_memory=False)

    def train_dataloader(self) -> DataLoader:
        assert self._train is not None
        return self._loader(self._train, shuffle=False)

    def val_dataloader(self) -> DataLoader:
        assert self._val is not None
        return self._loader(self._val, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()
