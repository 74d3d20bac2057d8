"""Per-band normalization statistics, from the dataset YAML or computed once and cached.

Statistics are in the raster's own units (digital numbers): a model input is
`(pixels - mean) / std`. `scale` maps DNs to roughly [0, 1] for photometric
augmentation (the 99.9th percentile of valid pixels).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError

from infer.errors import InputError
from infer.geo.rasterenv import damaged_raster, open_raster, valid_pixels
from train.data.config import DatasetConfig

SAMPLE_SIDE = 1024  # each scene is read decimated to at most this many pixels a side


@dataclass(frozen=True)
class BandStats:
    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: float

    def as_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std), "scale": self.scale}


def _cache_key(scenes: list[Path]) -> str:
    h = hashlib.sha256()
    for s in sorted(scenes):
        h.update(f"{s}:{s.stat().st_size}:{s.stat().st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def compute_stats(scenes: list[Path], bands: int | None = None) -> BandStats:
    """Mean, std and 99.9th percentile of the first `bands` (all without it) over the valid pixels (GDAL's mask,
    as training and `infer run` read them) of decimated reads of `scenes`."""
    samples = []
    for path in scenes:
        with open_raster(path) as src:
            count = bands or src.count
            factor = max(1.0, max(src.width, src.height) / SAMPLE_SIDE)
            shape = (max(1, int(src.height / factor)), max(1, int(src.width / factor)))
            try:
                pixels = src.read(list(range(1, count + 1)), out_shape=(count, *shape),
                                  resampling=Resampling.nearest).reshape(count, -1)
                valid = valid_pixels(src, count, out_shape=shape).reshape(-1)
            except RasterioIOError as exc:
                raise damaged_raster(Path(path), exc) from None
            samples.append(pixels[:, valid].astype(np.float64))
    if not samples or sum(s.shape[1] for s in samples) == 0:
        raise InputError("no valid pixels to compute normalization statistics from")
    if len({s.shape[0] for s in samples}) != 1:
        raise InputError("training scenes have different band counts")
    data = np.concatenate(samples, axis=1)
    std = np.maximum(data.std(axis=1), 1e-6)
    return BandStats(tuple(data.mean(axis=1).tolist()), tuple(std.tolist()), float(np.percentile(data, 99.9)))


def dataset_stats(config: DatasetConfig, scenes: list[Path]) -> BandStats:
    """The YAML's statistics if given, else computed from `scenes` and cached beside the YAML."""
    cache = config.source.parent / ".sitewatch-cache" / f"{config.name}-stats.json"
    if config.mean is not None and config.std is not None:
        scale = float(config.extra.get("scale", max(m + 3 * s for m, s in zip(config.mean, config.std, strict=True))))
        return BandStats(config.mean, config.std, scale)
    key = _cache_key(scenes)
    if cache.exists():
        cached = json.loads(cache.read_text())
        if cached.get("key") == key:
            return BandStats(tuple(cached["mean"]), tuple(cached["std"]), float(cached["scale"]))
    stats = compute_stats(scenes, len(config.bands))
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"key": key, **stats.as_dict()}, indent=1))
    except OSError:
        pass  # a read-only dataset folder only costs recomputing next time
    return stats
