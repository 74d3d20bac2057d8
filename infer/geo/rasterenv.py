"""The GDAL environment, set in one place for every raster read and write, and what a raster's bands are.

A bounded block cache keeps memory flat however large the scene. The size is
in bytes: rasterio passes an integer to GDALSetCacheMax, which counts bytes,
so a bare 256 would mean a 256-byte cache and re-decompress every block.

Which pixels are valid is GDAL's mask of the first band, wherever a scene is
read (`infer run`, training): its no-data value, an internal mask, or an
alpha band after the model's bands (`holds_bands`); never a band the model
reads as data (`valid_pixels`).
"""

from __future__ import annotations

import ctypes
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from infer.errors import InputError

# 64 MiB keeps peak memory flat as scenes grow (bench.infer_memory); 256 MiB let a 16384²
# inference peak at 1.26x a 4096² one, the cache filling up. It costs the generator about 15 %.
CACHE_BYTES = 64 * 2**20

GDAL_OPTIONS = {
    "GDAL_CACHEMAX": CACHE_BYTES,
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_TIFF_INTERNAL_MASK": True,
}


def quiet_libtiff() -> None:
    """Stop the libtiff libraries this process has loaded (rasterio's GDAL's, loaded with rasterio) printing
    errors to stderr themselves.

    GDAL's TIFF file procedures report a failed write or seek (a full disk) through libtiff's global
    handler, which prints "_tiffWriteProc: No space left on device." lines ahead of the one line of
    our error; GDAL then raises its own error for the same failure, which is what the user is told.
    The libraries are found among this process's mappings (Linux); elsewhere nothing changes.
    """
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return
    for path in sorted(set(re.findall(r"(/\S*/libtiff[^/\s]*\.so[^/\s]*)", maps))):
        try:
            handler = ctypes.CDLL(path).TIFFSetErrorHandler
        except (OSError, AttributeError):
            continue
        handler.restype, handler.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
        handler(None)


quiet_libtiff()


def gdal_env() -> rasterio.Env:
    """A rasterio environment with sitewatch's GDAL settings."""
    return rasterio.Env(**GDAL_OPTIONS)


@contextmanager
def open_raster(path: str | Path) -> Iterator[rasterio.DatasetReader]:
    """`path` opened for reading with sitewatch's GDAL settings, without rasterio's warning for a picture
    that has no georeferencing (a labeled set's PNG: its pixels are its coordinates). The warning comes
    as the file opens, so the filter is set before. A file GDAL cannot open is an `InputError` giving
    GDAL's reason."""
    with gdal_env(), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            src = rasterio.open(path)
        except RasterioIOError as exc:
            raise InputError(f"cannot read {path}: {gdal_reason(exc)}") from None
        with src:
            yield src


def gdal_reason(exc: BaseException) -> str:
    """The first line of a GDAL error's own reason.

    rasterio often raises "Read failed. See previous exception for details." from the GDAL error that
    says what failed; that one is what a user can act on.
    """
    text = str(exc).strip()
    cause = exc.__cause__ or exc.__context__
    if "previous exception" in text and cause is not None and str(cause).strip():
        text = str(cause).strip()
    return (text.splitlines() or [type(exc).__name__])[0]


def damaged_raster(path: Path, exc: BaseException, near: tuple[int, int] | None = None) -> InputError:
    """The error for a raster that opens but whose pixels cannot be read (damaged or truncated): its name,
    where (row, column) when known, and GDAL's reason."""
    reason = gdal_reason(exc).removeprefix(f"{path}, ").removeprefix(f"{path.name}, ")
    where = f" near pixel ({near[0]}, {near[1]})" if near is not None else ""
    return InputError(f"{path.name} is damaged or truncated{where}: {reason}")


#: The side of the window at a raster's centre that `holds_transparency` looks at.
ALPHA_SAMPLE_SIDE = 512
#: Above this share of the sample's pixels neither transparent nor opaque, an "alpha" band holds data.
ALPHA_DATA_SHARE = 0.5


def holds_bands(src: rasterio.io.DatasetReader, bands: int) -> bool:
    """Whether the raster is `bands` bands, or those and then an alpha band (RGBA: a drone orthomosaic, an image
    saved from QGIS), which GDAL reads as the mask: its transparent pixels are no-data. The first `bands` are
    read either way. A band GDAL calls alpha that holds data is not one (`holds_transparency`)."""
    return src.count == bands or (src.count == bands + 1 and src.colorinterp[bands] == ColorInterp.alpha
                                  and holds_transparency(src, bands + 1))


def holds_transparency(src: rasterio.io.DatasetReader, band: int) -> bool:
    """Whether `band` (an integer alpha band) looks like transparency: at the raster's centre (one window, a few
    blocks), at most `ALPHA_DATA_SHARE` of its pixels lie between transparent (0) and opaque (the type's
    maximum). Anti-aliased edges are a thin line; a near-infrared band GDAL calls alpha (the fourth band of
    a four-band 8-bit GeoTIFF written with the defaults) is nearly all between."""
    if not np.issubdtype(np.dtype(src.dtypes[band - 1]), np.integer):
        return True
    side = min(ALPHA_SAMPLE_SIDE, src.width), min(ALPHA_SAMPLE_SIDE, src.height)
    window = Window((src.width - side[0]) // 2, (src.height - side[1]) // 2, *side)
    sample = src.read(band, window=window)
    between = (sample > 0) & (sample < np.iinfo(sample.dtype).max)
    return float(between.mean()) <= ALPHA_DATA_SHARE


def alpha_read_as_data(src: rasterio.io.DatasetReader, bands: int) -> bool:
    """Whether GDAL takes the raster's mask from one of the first `bands`, which a model of `bands` bands reads
    as data. GDAL calls the fourth band of a four-band 8-bit GeoTIFF alpha unless its writer said otherwise,
    so an 8-bit red, green, blue, near-infrared file written with the defaults would lose its NIR zeros."""
    return MaskFlags.alpha in src.mask_flag_enums[0] and ColorInterp.alpha in src.colorinterp[:bands]


def valid_pixels(src: rasterio.io.DatasetReader, bands: int, window: Window | None = None,
                 out_shape: tuple[int, int] | None = None) -> np.ndarray:
    """(rows, cols) bool: which pixels of `window` (all the raster when None), read at `out_shape`, hold imagery
    for a reader of the first `bands`: GDAL's mask of the first band, nearest-resampled; all of them when that
    mask is a band read as data (`alpha_read_as_data`: GDAL gives no other mask then, no no-data value being
    set)."""
    if alpha_read_as_data(src, bands):
        if out_shape is None:
            out_shape = (src.height, src.width) if window is None else (round(window.height), round(window.width))
        return np.ones(out_shape, bool)
    return src.read_masks(1, window=window, out_shape=out_shape, resampling=Resampling.nearest) > 0


def is_virtual(path: str | Path) -> bool:
    """Whether `path` names a raster in one of GDAL's virtual file systems (`/vsizip/scenes.zip/a.tif`,
    `/vsis3/bucket/a.tif`, `/vsigs/`, `/vsiaz/`): GDAL reads it, the local file system knows nothing of it."""
    return str(path).startswith("/vsi")


def virtual_raster_problem(path: str | Path) -> str | None:
    """Why GDAL cannot open the virtual `path` (its reason), or None when it can."""
    try:
        with open_raster(str(path)):
            return None
    except InputError as exc:
        return str(exc).removeprefix(f"cannot read {path}: ")
