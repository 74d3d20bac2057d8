"""Region masks streamed to disk core by core, finished as a Cloud-Optimized GeoTIFF.

Pixel values: 0 none, k + 1 region class k; a colour table carries the class
colours for GIS tools. Nothing appears under the final name until it is
complete.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
import shapely
from affine import Affine
from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioIOError
from rasterio.features import rasterize
from rasterio.windows import Window

from infer.contract.schema import hex_rgb
from infer.errors import OutputError
from infer.files import atomic_write, partial_path, write_failure
from infer.geo.rasterenv import gdal_env
from infer.runtime.reader import SceneGrid
from infer.runtime.tiling import Tile

#: The working file is read once, by the copy: the cheapest compression that keeps it small (a class map
#: is mostly 0). The COG itself is deflate, which every GIS tool reads, compressed on every core.
WORKING_COMPRESSION = {"compress": "zstd", "zstd_level": 1}


class MaskWriter:
    def __init__(self, path: Path, grid: SceneGrid, colors: list[str]) -> None:
        self.path = path
        self.partial = partial_path(path, ".tif")  # the working GeoTIFF, copied as a COG at the end
        profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": 1, "dtype": "uint8",
                   "tiled": True, "blockxsize": 512, "blockysize": 512, "BIGTIFF": "IF_SAFER", **WORKING_COMPRESSION}
        if grid.georeferenced:
            profile.update(crs=grid.crs, transform=grid.transform)
        with gdal_env(), self._naming_the_mask():
            self._dst = rasterio.open(self.partial, "w+", **profile)  # w+: `erase` reads back
            self._dst.write_colormap(1, {0: (0, 0, 0, 0), **{k + 1: (*hex_rgb(c), 255) for k, c in enumerate(colors)}})

    def write_core(self, tile: Tile, classes: np.ndarray) -> None:
        r0, c0, r1, c1 = tile.core
        with gdal_env(), self._naming_the_mask():
            self._dst.write(classes[None], window=Window(c0, r0, c1 - c0, r1 - r0))

    def erase(self, pieces: list[tuple[int, shapely.Geometry, float]]) -> None:
        """Set the pixels of region pieces (class index, polygon in grid pixels, score) back to 0: specks
        that are not reported (`infer.runtime.stitch.drop_specks`). Only each piece's own box is touched,
        and only its own class's pixels."""
        with gdal_env(), self._naming_the_mask():
            for k, geom, _ in pieces:
                x0, y0, x1, y1 = geom.bounds
                c0, r0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
                c1, r1 = min(self._dst.width, int(np.ceil(x1))), min(self._dst.height, int(np.ceil(y1)))
                if c1 <= c0 or r1 <= r0:
                    continue
                window = Window(c0, r0, c1 - c0, r1 - r0)
                block = self._dst.read(1, window=window)
                inside = rasterize([geom], out_shape=block.shape, transform=Affine.translation(c0, r0)) > 0
                block[inside & (block == k + 1)] = 0
                self._dst.write(block[None], window=window)

    def finish(self) -> Path:
        with gdal_env(), atomic_write(self.path) as cog, self._naming_the_mask():
            self._dst.close()
            rasterio.shutil.copy(self.partial, cog, driver="COG", COMPRESS="DEFLATE", NUM_THREADS="ALL_CPUS",
                                 BLOCKSIZE=512, OVERVIEW_RESAMPLING="NEAREST")
        self.partial.unlink(missing_ok=True)
        return self.path

    @contextmanager
    def _naming_the_mask(self) -> Iterator[None]:
        """GDAL's write errors (a full disk) as one `OutputError` that names the mask."""
        try:
            yield
        except (RasterioIOError, CPLE_BaseError) as exc:  # the COG's copy raises GDAL's own errors
            raise OutputError(f"cannot write {self.path}: {write_failure(exc, self.path.parent)}") from None

    def abort(self) -> None:
        if not self._dst.closed:
            self._dst.close()
        self.partial.unlink(missing_ok=True)
