"""Draw a planned scene one window at a time.

Every pixel is a function of its ground position, the plan and the date, so
windows tile seamlessly and memory stays bounded by the window size.
"""

from __future__ import annotations

import numpy as np
import shapely
from affine import Affine
from rasterio.features import rasterize
from rasterio.windows import Window
from shapely.geometry import box

from synth.layout import Acquisition, SceneLayout
from synth.noise import fractal_noise, pixel_gaussian, value_noise
from synth.things import Layer, Primitive

SAND = np.array([0.37, 0.31, 0.24, 0.42], dtype=np.float32)
GRAVEL = np.array([0.30, 0.27, 0.23, 0.34], dtype=np.float32)
SCRUB = np.array([0.16, 0.17, 0.12, 0.36], dtype=np.float32)
ROCK = np.array([0.20, 0.18, 0.16, 0.22], dtype=np.float32)
PSF = np.array([0.12, 0.76, 0.12], dtype=np.float32)  # a slightly soft sensor, about 0.5 px sigma
PAD = 1
UINT16_FULL_SCALE = 2047  # 11-bit sensor


class _LayerIndex:
    """Primitives of one layer in drawing order, with a spatial index over them."""

    def __init__(self, prims: list[Primitive]) -> None:
        self.prims = sorted(prims, key=lambda p: p.z)  # stable: same z keeps planning order
        self.tree = shapely.STRtree([p.geom for p in self.prims])

    def query(self, window_box: shapely.Geometry) -> list[Primitive]:
        return [self.prims[i] for i in sorted(self.tree.query(window_box))]


class SceneRenderer:
    """Renders one acquisition of a `SceneLayout` into arrays of the spec's dtype."""

    def __init__(self, layout: SceneLayout, acquisition: Acquisition) -> None:
        self.layout, self.acq = layout, acquisition
        self.gsd = layout.spec.gsd
        self.n_bands = len(layout.spec.band_names)
        self.salt = layout.spec.seed * 7919 + layout.index * 104729
        prims: dict[Layer, list[Primitive]] = {layer: [] for layer in Layer}
        for thing in layout.things:
            if acquisition.index in thing.dates:
                for p in thing.primitives(acquisition.sun, acquisition.index):
                    if not p.geom.is_empty:
                        prims[p.layer].append(p)
        self.layers = {layer: _LayerIndex(ps) for layer, ps in prims.items()}

    def render(self, window: Window) -> np.ndarray:
        """Pixels of `window` as (bands, rows, cols) in the spec's dtype; 0 is nodata."""
        row0, col0 = int(window.row_off) - PAD, int(window.col_off) - PAD
        rows, cols = int(window.height) + 2 * PAD, int(window.width) + 2 * PAD
        xs = (col0 + np.arange(cols) + 0.5) * self.gsd
        ys = (row0 + np.arange(rows) + 0.5) * self.gsd
        transform = Affine(self.gsd, 0, col0 * self.gsd, 0, self.gsd, row0 * self.gsd)
        area = box(xs[0] - self.gsd, ys[0] - self.gsd, xs[-1] + self.gsd, ys[-1] + self.gsd)

        albedo = 1.0 + 0.45 * fractal_noise(xs, ys, (700.0, 350.0, 160.0, 70.0), self.salt + 1)
        fine = fractal_noise(xs, ys, (6.0, 2.5, 1.0), self.salt + 2)
        fine += 0.8 * (value_noise(xs, ys, 0.6, self.salt + 7) - 0.5)  # sub-metre grit
        gravel = np.clip((value_noise(xs, ys, 260.0, self.salt + 3) - 0.35) * 3.0, 0, 1)[..., None]
        img = (SAND * (1 - gravel) + GRAVEL * gravel) * (albedo * (1 + 0.3 * fine))[..., None]
        img = self._specks(img, xs, ys)

        surface = self._burn(Layer.SURFACE, area, transform, (rows, cols))
        if surface is not None:
            idx, lut = surface
            drawn = idx > 0
            color, texture, ground = lut
            shade = (1 + texture[idx] * 2.0 * fine) * (1 + ground[idx] * (albedo - 1))
            img = np.where(drawn[..., None], color[idx] * shade[..., None], img)
        shadow = self._burn(Layer.SHADOW, area, transform, (rows, cols))
        if shadow is not None:
            img *= np.where(shadow[0] > 0, self.acq.shadow, 1.0).astype(np.float32)[..., None]
        top = self._burn(Layer.TOP, area, transform, (rows, cols))
        if top is not None:
            idx, (color, texture, _) = top
            img = np.where((idx > 0)[..., None], color[idx] * (1 + texture[idx] * 2.0 * fine)[..., None], img)

        img = self._sensor(img, row0, col0)
        out = self._quantize(img)[:, PAD:-PAD, PAD:-PAD]
        if self.layout.footprint is not None:
            inside = rasterize([(self.layout.footprint, 1)], out_shape=(rows, cols), transform=transform,
                               fill=0, dtype="uint8")[PAD:-PAD, PAD:-PAD]
            out[:, inside == 0] = 0
        return out

    def _specks(self, img: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Scrub and rocks: 1-3 m dark dots whose density varies across the scene."""
        density = value_noise(xs, ys, 220.0, self.salt + 4)
        scrub = value_noise(xs, ys, 1.6, self.salt + 5) > 0.97 - 0.08 * density
        rock = value_noise(xs, ys, 1.1, self.salt + 6) > 0.985
        img = np.where(scrub[..., None], SCRUB * (0.8 + 0.4 * density[..., None]), img)
        return np.where(rock[..., None], ROCK, img)

    def _burn(self, layer: Layer, area, transform: Affine, shape: tuple[int, int]):
        prims = self.layers[layer].query(area)
        if not prims:
            return None
        idx = rasterize(((p.geom, i + 1) for i, p in enumerate(prims)), out_shape=shape, transform=transform,
                        fill=0, dtype="int32")
        color = np.zeros((len(prims) + 1, 4), dtype=np.float32)
        color[1:] = [p.color for p in prims]
        texture = np.array([0.0] + [p.texture for p in prims], dtype=np.float32)
        ground = np.array([0.0] + [p.ground for p in prims], dtype=np.float32)
        return idx, (color, texture, ground)

    def _sensor(self, img: np.ndarray, row0: int, col0: int) -> np.ndarray:
        """Radiometry of the date, a soft point-spread function and per-pixel noise."""
        img = img[..., : self.n_bands] * np.asarray(self.acq.gain[: self.n_bands], dtype=np.float32)
        img += np.asarray(self.acq.haze[: self.n_bands], dtype=np.float32)
        along_rows = img * PSF[1]
        along_rows[1:-1] += PSF[0] * (img[:-2] + img[2:])
        out = along_rows * PSF[1]
        out[:, 1:-1] += PSF[0] * (along_rows[:, :-2] + along_rows[:, 2:])
        rows = np.arange(row0, row0 + img.shape[0])
        cols = np.arange(col0, col0 + img.shape[1])
        for b in range(self.n_bands):
            salt = self.salt * 31 + self.acq.index * 977 + b
            out[..., b] += self.acq.noise * pixel_gaussian(rows, cols, salt)
        return out

    def _quantize(self, img: np.ndarray) -> np.ndarray:
        img = np.moveaxis(img, -1, 0)
        if self.layout.spec.dtype == "uint16":
            return np.clip(np.rint(img * 1500.0), 1, UINT16_FULL_SCALE).astype(np.uint16)
        return np.clip(np.rint(img * 380.0), 1, 255).astype(np.uint8)
