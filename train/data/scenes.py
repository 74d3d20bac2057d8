"""Training samples cut straight from scenes: windows read with rasterio, no pre-cutting.

Training draws random windows, half of them centred near a labeled thing;
validation walks a fixed grid. A scene whose GSD differs from the dataset's
is resampled on read, so a chip always shows the same ground size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from infer.errors import InputError
from infer.geo.gsd import check_rectified, check_upsampling, scene_gsd
from infer.geo.rasterenv import damaged_raster, gdal_env, holds_bands, open_raster, valid_pixels
from infer.geo.vector_files import LABEL_SUFFIXES
from train.data.config import DatasetConfig
from train.data.labels import (
    SceneLabels,
    object_sides,
    read_scene_labels,
    window_objects,
    window_region_masks,
)


@dataclass(frozen=True)
class SceneInfo:
    path: Path
    width: int
    height: int
    transform: Affine
    bands: int  # the file's first bands, the dataset's (an alpha band after them is read as the mask)
    scale: float  # source pixels per chip pixel (dataset GSD / scene GSD)
    labels: SceneLabels


@dataclass
class RawSample:
    """One chip before augmentation: image (C, S, S) float32 DNs, valid (S, S) bool,
    object corners (N, 4, 2) in chip pixels, classes, directional flags, region masks (K, S, S)."""

    image: np.ndarray
    valid: np.ndarray
    corners: np.ndarray
    classes: np.ndarray
    directional: np.ndarray
    masks: np.ndarray


def find_scenes(folders: tuple[Path, ...]) -> list[tuple[Path, Path]]:
    """(raster, labels) pairs: every `*.tif` with labels of the same stem (`.geojson`, or a GeoPackage,
    Shapefile or FlatGeobuf in any CRS; the first of `LABEL_SUFFIXES` there is)."""
    pairs = []
    for folder in folders:
        if not folder.exists():
            raise InputError(f"data folder not found: {folder}")
        candidates = [folder] if folder.is_file() else sorted(folder.glob("*.tif"))
        for tif in candidates:
            labels = next((tif.with_suffix(s) for s in LABEL_SUFFIXES if tif.with_suffix(s).exists()), None)
            if labels is not None:
                pairs.append((tif, labels))
    if not pairs:
        raise InputError(f"no scenes (*.tif with labels of the same name: {', '.join(LABEL_SUFFIXES)}) in "
                         f"{', '.join(map(str, folders))}")
    return pairs


def open_scene(tif: Path, labels: Path, config: DatasetConfig) -> SceneInfo:
    """Check a scene against the dataset definition and read its labels."""
    try:
        with open_raster(tif) as src:
            if not holds_bands(src, len(config.bands)):
                raise InputError(f"{tif} has {src.count} bands, the dataset expects {len(config.bands)} "
                                 f"({', '.join(config.bands)})")
            check_rectified(str(tif), src, config.gsd_m)
            if src.crs is None:
                raise InputError(f"{tif} has no CRS: scenes with labels in map coordinates must be georeferenced")
            gsd = scene_gsd(str(tif), src.transform, src.crs, src.width, src.height, config.gsd_m)
            check_upsampling(str(tif), gsd, config.gsd_m, "the dataset's")
            return SceneInfo(tif, src.width, src.height, src.transform, len(config.bands), config.gsd_m / gsd,
                             read_scene_labels(labels, src.crs, config))
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"cannot read {tif}: {exc}") from None


class SceneWindows:
    """Reads chip-sized windows from scenes. Each worker process opens its own file handles."""

    def __init__(self, scenes: list[SceneInfo], chip_size: int) -> None:
        self.scenes = scenes
        self.chip_size = chip_size
        self._handles: dict[Path, rasterio.io.DatasetReader] = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_handles"] = {}
        return state

    def object_sides_px(self, gsd_m: float) -> np.ndarray:
        """(N, 2) length and width of every labeled object, in pixels at `gsd_m` (labels are in metres)."""
        return np.concatenate([object_sides(s.labels.corners) for s in self.scenes] or [np.zeros((0, 2))]) / gsd_m

    def _open(self, path: Path) -> rasterio.io.DatasetReader:
        if path not in self._handles:
            self._handles[path] = rasterio.open(path)
        return self._handles[path]

    def read(self, scene_index: int, col: float, row: float) -> RawSample:
        """The chip whose top-left corner is at (col, row) in the scene's source pixels."""
        scene = self.scenes[scene_index]
        size = self.chip_size
        span = size * scene.scale
        with gdal_env():
            src = self._open(scene.path)
            try:
                image, valid = _read_padded(src, col, row, span, size, scene.scale, scene.bands)
            except RasterioIOError as exc:
                raise damaged_raster(scene.path, exc, (int(row), int(col))) from None
        chip_transform = scene.transform @ Affine.translation(col, row) @ Affine.scale(scene.scale)
        corners, classes, directional = window_objects(scene.labels, ~chip_transform)
        centre = corners.mean(axis=1) if len(corners) else np.zeros((0, 2))
        near = (centre[:, 0] > -size) & (centre[:, 0] < 2 * size) & (centre[:, 1] > -size) & (centre[:, 1] < 2 * size)
        masks = window_region_masks(scene.labels, chip_transform, (size, size))
        return RawSample(image.astype(np.float32), valid, corners[near], classes[near], directional[near], masks)

    def draw(self, rng: np.random.Generator) -> RawSample:
        return self.read(*self.random_origin(rng))

    def fixed(self) -> list[tuple[int, float, float]]:
        return self.grid()

    def read_fixed(self, key: tuple[int, float, float]) -> RawSample:
        return self.read(*key)

    def grid(self, overlap: int = 0) -> list[tuple[int, float, float]]:
        """Fixed (scene, col, row) origins covering every scene, for validation."""
        out = []
        for k, scene in enumerate(self.scenes):
            step = (self.chip_size - overlap) * scene.scale
            span = self.chip_size * scene.scale
            cols = np.arange(0, max(1.0, scene.width - span) + step, step)
            rows = np.arange(0, max(1.0, scene.height - span) + step, step)
            out += [(k, float(round(min(c, max(0.0, scene.width - span)))),
                     float(round(min(r, max(0.0, scene.height - span))))) for r in rows for c in cols]
        return list(dict.fromkeys(out))

    def random_origin(self, rng: np.random.Generator) -> tuple[int, float, float]:
        """A random chip origin; half the time near a labeled object or region."""
        k = int(rng.integers(len(self.scenes)))
        scene = self.scenes[k]
        span = self.chip_size * scene.scale
        max_col, max_row = max(0.0, scene.width - span), max(0.0, scene.height - span)
        targets = _label_points(scene)
        if len(targets) and rng.random() < 0.5:
            px = ~scene.transform @ tuple(targets[int(rng.integers(len(targets)))])
            col = px[0] - span / 2 + rng.uniform(-0.35, 0.35) * span
            row = px[1] - span / 2 + rng.uniform(-0.35, 0.35) * span
        else:
            col, row = rng.uniform(0, max_col + 1e-9), rng.uniform(0, max_row + 1e-9)
        # Whole-pixel origins: GDAL reads a fractional window through its slow resampling path.
        return k, float(round(np.clip(col, 0, max_col))), float(round(np.clip(row, 0, max_row)))


def _read_padded(src: rasterio.io.DatasetReader, col: float, row: float, span: float, size: int,
                 scale: float, bands: int) -> tuple[np.ndarray, np.ndarray]:
    """Read a chip of the first `bands`; the part outside the raster is 0 and not valid, inside it the valid
    pixels are GDAL's mask's (as `infer run` reads them: no-data value, internal mask or alpha band).

    A boundless read would do this too, through a VRT that costs seconds a chip.
    """
    image = np.zeros((bands, size, size), dtype=src.dtypes[0])
    valid = np.zeros((size, size), dtype=bool)
    c0, r0 = max(col, 0.0), max(row, 0.0)
    c1, r1 = min(col + span, src.width), min(row + span, src.height)
    if c1 <= c0 or r1 <= r0:
        return image, valid
    out_c0, out_r0 = round((c0 - col) / scale), round((r0 - row) / scale)
    out_c1, out_r1 = round((c1 - col) / scale), round((r1 - row) / scale)
    if out_c1 <= out_c0 or out_r1 <= out_r0:
        return image, valid
    resampling = Resampling.bilinear if scale != 1 else Resampling.nearest
    window, shape = Window(c0, r0, c1 - c0, r1 - r0), (out_r1 - out_r0, out_c1 - out_c0)
    image[:, out_r0:out_r1, out_c0:out_c1] = src.read(list(range(1, bands + 1)), window=window,
                                                      out_shape=(bands, *shape), resampling=resampling)
    flags = src.mask_flag_enums[0]
    if flags == [MaskFlags.all_valid]:
        valid[out_r0:out_r1, out_c0:out_c1] = True
    elif flags == [MaskFlags.nodata] and scale == 1 and not np.isnan(src.nodata):
        # GDAL's no-data mask is band 1 against the value: read already (reading it again cost 13 % a chip)
        valid[out_r0:out_r1, out_c0:out_c1] = image[0, out_r0:out_r1, out_c0:out_c1] != src.nodata
    else:
        valid[out_r0:out_r1, out_c0:out_c1] = valid_pixels(src, bands, window, shape)
    return image, valid


def _label_points(scene: SceneInfo) -> np.ndarray:
    points = [scene.labels.centres] if len(scene.labels.corners) else []
    for polygons in scene.labels.regions:
        points += [np.array([p.representative_point().coords[0] for p in polygons]).reshape(-1, 2)]
    return np.concatenate(points) if points else np.zeros((0, 2))
