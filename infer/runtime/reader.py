"""Read a scene tile by tile, ahead of the model, on the model's pixel grid.

The scene is never read whole: each tile is one windowed read (resampled
when the scene's GSD differs from the model's), done by reader threads while
the model runs. Pictures without georeferencing (PNG, JPEG) work in pixel
coordinates at the model's GSD.
"""

from __future__ import annotations

import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window
from scipy import ndimage

from infer.errors import InputError
from infer.geo.gsd import GSD_TOLERANCE, check_rectified, check_upsampling, scene_gsd
from infer.geo.rasterenv import (
    damaged_raster,
    gdal_env,
    gdal_reason,
    holds_bands,
    is_virtual,
    open_raster,
    valid_pixels,
)
from infer.runtime.scenes import scene_name, scene_source, scene_stem
from infer.runtime.tiling import Tile, tile_grid


@dataclass(frozen=True)
class SceneGrid:
    """A scene seen on the model's pixel grid.

    width, height: grid size in model pixels (`source_size`: the file's). scale: source pixels per model
    pixel. transform: model pixel → map coordinates (identity-based pixel
    coordinates when the scene is not georeferenced). crs: None when not
    georeferenced. gsd_m: metres per model pixel (the model's GSD). count: the bands read, the file's first
    (an alpha band after them is read as its mask).
    """

    path: Path
    width: int
    height: int
    scale: float
    transform: Affine
    crs: rasterio.crs.CRS | None
    gsd_m: float
    count: int
    dtype: str
    nodata: float | None
    source_size: tuple[int, int]  # the file's own width and height, in its pixels

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None

    @property
    def megapixels(self) -> float:
        """Megapixels of the grid the model sees (what a run's speed is counted in)."""
        return self.width * self.height / 1e6

    @property
    def source_megapixels(self) -> float:
        """Megapixels of the file itself (differs from `megapixels` for a resampled scene)."""
        return self.source_size[0] * self.source_size[1] / 1e6


def open_grid(path: Path, bands: int, model_gsd: float, dtype: str | None = None) -> SceneGrid:
    """Check a scene can be read for a model with `bands` bands of `dtype`; one clear error if not."""
    path = Path(path)
    name, stem = scene_name(path), scene_stem(path)  # a URL's file, not its percent-encoded path
    source = scene_source(path)  # what the suggested gdal_translate or gdalwarp reads
    if not is_virtual(path) and not path.exists():
        raise InputError(f"scene not found: {path}")
    try:
        with gdal_env(), warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                if not holds_bands(src, bands):
                    hint = (f"; pick {bands} in the model's order, e.g. gdal_translate -of VRT "
                            f"{' '.join(f'-b {b + 1}' for b in range(bands))} {source} {stem}_bands.vrt "
                            "(a .vrt runs as a scene)") if src.count > bands else ""
                    data = (f" (GDAL calls band {src.count} alpha, but it holds data, not transparency)"
                            if src.count == bands + 1 and src.colorinterp[-1] == ColorInterp.alpha else "")
                    raise InputError(f"{name} has {src.count} bands{data}, the model expects {bands}{hint}")
                if dtype is not None and src.dtypes[0] != dtype:
                    raise InputError(f"{name} has {src.dtypes[0]} pixels, the model was trained on {dtype}"
                                     f"{_to_bytes_hint(src, source, stem, bands) if dtype == 'uint8' else ''}")
                check_rectified(source, src, model_gsd)
                georeferenced = src.crs is not None and not src.transform.is_identity
                source_gsd = (scene_gsd(source, src.transform, src.crs, src.width, src.height, model_gsd)
                              if georeferenced else model_gsd)
                check_upsampling(name, source_gsd, model_gsd)
                # within the tolerance of the model's GSD a scene is read as it is
                scale = model_gsd / source_gsd if abs(model_gsd / source_gsd - 1) > GSD_TOLERANCE else 1.0
                transform = src.transform @ Affine.scale(scale) if georeferenced else Affine.identity()
                return SceneGrid(path, max(1, round(src.width / scale)), max(1, round(src.height / scale)), scale,
                                 transform, src.crs if georeferenced else None, model_gsd, bands,
                                 src.dtypes[0], src.nodata, (src.width, src.height))
    except RasterioIOError as exc:
        raise InputError(f"cannot read {name}: {gdal_reason(exc)}") from None


#: The share of a scene's valid pixels below the low end and above the high end of the 8-bit range suggested.
STRETCH_PERCENTILES = (2.0, 98.0)
#: The longest side of the decimated read those percentiles come from.
STRETCH_SAMPLE_SIDE = 512


def _to_bytes_hint(src: rasterio.io.DatasetReader, source: str, stem: str, bands: int) -> str:
    """How to show a deeper scene (11 or 16 bits: most satellite imagery) to an 8-bit model: a VRT stretching
    the range that holds its ground (`STRETCH_PERCENTILES` of its valid pixels, all bands together, from a
    decimated read) to 0-255, `source` its input (`scene_source`). Empty when it has no valid pixel."""
    factor = max(1.0, max(src.width, src.height) / STRETCH_SAMPLE_SIDE)
    shape = (max(1, int(src.height / factor)), max(1, int(src.width / factor)))
    count = min(bands, src.count)
    pixels = src.read(list(range(1, count + 1)), out_shape=(count, *shape), resampling=Resampling.nearest)
    valid = valid_pixels(src, count, out_shape=shape)
    if not valid.any():
        return ""
    low, high = (float(v) for v in np.percentile(pixels[:, valid], STRETCH_PERCENTILES))
    high = max(high, low + 1)
    return (f"; stretch it to 8 bits, e.g. gdal_translate -ot Byte -scale {low:g} {high:g} 0 255 -of VRT {source} "
            f"{stem}_8bit.vrt (its {STRETCH_PERCENTILES[0]:g}th to {STRETCH_PERCENTILES[1]:g}th percentiles; "
            "a .vrt runs as a scene)")


@dataclass
class TileRead:
    """One tile's pixels: (C, h, w) raw values in the scene's dtype, valid (h, w) bool (the tile's shape).

    `pixels` are what the model is shown; `valid` says which are the scene's own. Where the tile
    reaches past the scene's edge (a scene shorter than a tile, by less than the input multiple
    unless it is thinner than one), `pixels` mirror the scene's edge; where the scene has no data,
    they repeat the nearest valid pixel. Why not the mean colour: it reads as flat bare ground. The
    reference network called most of an 8 px strip a cleared site beside it (110,642 px against the
    13,328 px labeled; mirrored: 13,268), and saw 49 cleared sites for 3 along a no-data edge (21
    with the nearest valid pixel).

    `inputs`: the model's input made from them by the reader's `prepare`, in the reader's thread
    (None without one, and for a tile with no valid pixel).
    """

    tile: Tile
    pixels: np.ndarray
    valid: np.ndarray
    inputs: np.ndarray | None = None


class TileReader:
    """Reads the tiles of one scene with a few threads, in order, a bounded number ahead.

    The threads share one dataset handle, one read at a time, and GDAL decodes each read's blocks
    with `threads` threads of its own (`GDAL_NUM_THREADS`). Why not a handle per thread: GDAL
    caches blocks per handle, so neighbouring tiles read by different threads decoded their shared
    blocks twice (`bench.pipeline_ceiling` times the reader as it is).
    What follows a read (padding, filling no-data) runs in the threads in parallel, as does
    `prepare(read)`, when given (numpy releases the GIL), off the thread that runs the model; what
    it returns becomes the tile's `inputs`.
    """

    def __init__(self, grid: SceneGrid, tile: int, overlap: int, threads: int = 2, ahead: int = 8,
                 prepare: Callable[[TileRead], np.ndarray | None] | None = None) -> None:
        self.grid, self.tile, self.threads, self.ahead, self.prepare = grid, tile, threads, ahead, prepare
        self.tiles = tile_grid(grid.width, grid.height, tile, overlap)

    def read(self, src: rasterio.io.DatasetReader, tile: Tile, lock: threading.Lock | None = None) -> TileRead:
        """One tile from `src`, holding `lock` (when given) while GDAL reads."""
        g = self.grid
        rows, cols = min(tile.height, g.height - tile.row), min(tile.width, g.width - tile.col)
        window = Window(tile.col * g.scale, tile.row * g.scale, cols * g.scale, rows * g.scale)
        resampling = Resampling.bilinear if g.scale != 1 else Resampling.nearest
        try:
            with lock or nullcontext():
                data = src.read(list(range(1, g.count + 1)), window=window, out_shape=(g.count, rows, cols),
                                resampling=resampling, masked=False)
                inside = valid_pixels(src, g.count, window, (rows, cols))
        except RasterioIOError as exc:
            raise damaged_raster(g.path, exc, (tile.row, tile.col)) from None
        pixels, valid = data, inside
        if (rows, cols) != (tile.height, tile.width):
            padding = ((0, tile.height - rows), (0, tile.width - cols))
            pixels = np.pad(pixels, ((0, 0), *padding), mode="symmetric")
            valid = np.pad(valid, padding)
            mirrored = np.pad(inside, padding, mode="symmetric")
        else:
            mirrored = valid
        if mirrored.all() or not mirrored.any():
            return TileRead(tile, pixels, valid)
        # no-data shown as its nearest valid pixel, not as a flat colour
        nearest = ndimage.distance_transform_edt(~mirrored, return_distances=False, return_indices=True)
        return TileRead(tile, pixels[:, nearest[0], nearest[1]], valid)

    def __iter__(self) -> Iterator[TileRead]:
        """Tiles in order."""
        lock = threading.Lock()
        with gdal_env(), rasterio.Env(GDAL_NUM_THREADS=str(self.threads)), warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(self.grid.path)
        try:
            def read_in_thread(tile: Tile) -> TileRead:
                with gdal_env():
                    read = self.read(src, tile, lock)
                if self.prepare is not None:
                    read.inputs = self.prepare(read)
                return read

            with ThreadPoolExecutor(self.threads) as pool:
                pending: deque[Future] = deque()
                for tile in self.tiles:
                    pending.append(pool.submit(read_in_thread, tile))
                    if len(pending) >= self.ahead:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
        finally:
            src.close()


def acquisition_date(path: Path) -> str | None:
    """The scene's date from its tags (ACQUISITION_DATE, else TIFFTAG_DATETIME), as YYYY-MM-DD."""
    try:
        with open_raster(path) as src:
            tags = src.tags()
    except InputError:
        return None
    value = tags.get("ACQUISITION_DATE") or tags.get("TIFFTAG_DATETIME")
    if not value or len(value) < 10:
        return None
    return value[:10].replace(":", "-")
