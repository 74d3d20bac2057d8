"""The GDAL environment, set in one place for every raster read and write.

A bounded block cache keeps memory flat however large the scene.
"""

from __future__ import annotations

import rasterio

GDAL_OPTIONS = {
    # In bytes: rasterio passes an integer to GDALSetCacheMax, which counts bytes,
    # so a bare 256 would mean a 256-byte cache and re-decompress every block.
    "GDAL_CACHEMAX": 256 * 2**20,
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_TIFF_INTERNAL_MASK": True,
}


def gdal_env() -> rasterio.Env:
    """A rasterio environment with sitewatch's GDAL settings."""
    return rasterio.Env(**GDAL_OPTIONS)
