"""Write a planned scene to disk: a tiled GeoTIFF per date, its labels, the changes.

Rasters are rendered and written window by window (block aligned), so peak
memory does not grow with the scene. Each file is written under a temporary
name and renamed when complete.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import rasterio
from affine import Affine
from rasterio.enums import ColorInterp
from rasterio.windows import Window
from shapely import affinity
from tqdm import tqdm

from infer.files import atomic_write
from infer.geo.crs import bearing_deg, to_wgs84
from infer.geo.geojson import feature, write_feature_collection
from infer.geo.rasterenv import gdal_env
from synth.layout import CRS, Acquisition, SceneLayout, scene_name
from synth.render import SceneRenderer
from synth.things import Label

BLOCK = 512
WINDOW = 1024  # two blocks: each block is written whole, once


def map_origin(layout: SceneLayout, acq: Acquisition | None = None) -> tuple[float, float]:
    """Easting and northing the date's files put the scene's top-left corner at: the true corner, moved by
    the date's misregistration (`Acquisition.offset_m`)."""
    east, north = layout.origin
    dx, dy = acq.offset_m if acq is not None else (0.0, 0.0)
    return east + dx, north + dy


def geotransform(layout: SceneLayout, acq: Acquisition | None = None) -> Affine:
    east, north = map_origin(layout, acq)
    return Affine(layout.spec.gsd, 0.0, east, 0.0, -layout.spec.gsd, north)


def windows(width: int, height: int, size: int = WINDOW) -> Iterator[Window]:
    """Block-aligned windows covering the raster, row by row."""
    for row in range(0, height, size):
        for col in range(0, width, size):
            yield Window(col, row, min(size, width - col), min(size, height - row))


def write_geotiff(layout: SceneLayout, acq: Acquisition, path: Path, progress: bool = True) -> Path:
    spec = layout.spec
    profile = {
        "driver": "GTiff",
        "width": spec.width,
        "height": spec.height,
        "count": len(spec.band_names),
        "dtype": spec.dtype,
        "crs": CRS,
        "transform": geotransform(layout, acq),
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "compress": "deflate",
        "predictor": 2,
        "interleave": "pixel",
        "BIGTIFF": "IF_SAFER",
    }
    if layout.footprint is not None:
        profile["nodata"] = 0
    renderer = SceneRenderer(layout, acq)
    all_windows = list(windows(spec.width, spec.height))
    with atomic_write(path) as tmp, gdal_env(), rasterio.open(tmp, "w", **profile) as dst:
        dst.update_tags(
            ACQUISITION_DATE=acq.date,
            SUN_AZIMUTH=f"{acq.sun.azimuth_deg:.2f}",
            SUN_ELEVATION=f"{acq.sun.elevation_deg:.2f}",
            SITEWATCH_SYNTHETIC=f"seed={spec.seed} scene={layout.index}",
        )
        for band, name in enumerate(spec.band_names, start=1):
            dst.set_band_description(band, name)
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined][: dst.count]
        # Two render threads: numpy and GDAL release the GIL for most of the work.
        with ThreadPoolExecutor(max_workers=2) as pool:
            bar = tqdm(pool.map(renderer.render, all_windows), total=len(all_windows), disable=not progress,
                       desc=path.name, unit="win", leave=False)
            for window, pixels in zip(all_windows, bar, strict=True):
                dst.write(pixels, window=window)
    return path


def _to_geojson_feature(layout: SceneLayout, label: Label, properties: dict, acq: Acquisition | None = None) -> dict:
    east, north = map_origin(layout, acq)
    # Scene frame (x east, y south, from the top-left) → map coordinates → WGS84.
    in_map = affinity.affine_transform(label.geom, [1, 0, 0, -1, east, north])
    if label.heading_period is not None and "heading_deg" in properties:  # grid north → true north
        grid = math.radians(properties["heading_deg"])
        centre = in_map.centroid
        true = bearing_deg(CRS, centre.x, centre.y, math.sin(grid), math.cos(grid))[0]
        properties = {**properties, "heading_deg": round(float(true) % label.heading_period, 2)}
    return feature(to_wgs84(in_map, CRS), properties)


def write_labels(layout: SceneLayout, acq: Acquisition, path: Path) -> Path:
    """The date's labels, where its (misregistered) image shows them."""
    features = [
        _to_geojson_feature(layout, label, {"id": uid, "class": label.cls, **label.properties}, acq)
        for uid, label in layout.labels(acq.index)
    ]
    return write_feature_collection(path, features, {"scene": path.stem, "date": acq.date})


def write_changes(layout: SceneLayout, path: Path, between: tuple[int, int] = (1, 2)) -> Path:
    """What changed between two dates, in the first date's georeferencing (true positions)."""
    features = [
        _to_geojson_feature(layout, c.label, {"id": c.uid, "change": c.change, "class": c.label.cls,
                                              **c.label.properties})
        for c in layout.changes if c.between == between
    ]
    dates = [layout.acquisitions[k - 1].date for k in between]
    return write_feature_collection(path, features, {"scene": scene_name(layout.index), "dates": dates})


def date_stem(layout: SceneLayout, index: int) -> str:
    """The files of date `index`: `scene_NNN` for the first, `scene_NNN_tK` for date K."""
    name = scene_name(layout.index)
    return name if index == 1 else f"{name}_t{index}"


def write_scene(layout: SceneLayout, out_dir: Path, progress: bool = True) -> list[Path]:
    """Write every file of one scene; returns their paths."""
    name = scene_name(layout.index)
    written = []
    for acq in layout.acquisitions:
        stem = date_stem(layout, acq.index)
        written.append(write_geotiff(layout, acq, out_dir / f"{stem}.tif", progress))
        written.append(write_labels(layout, acq, out_dir / f"{stem}.geojson"))
    if layout.spec.series:
        for k in range(2, len(layout.acquisitions) + 1):
            written.append(write_changes(layout, out_dir / f"{name}_changes_t{k}.geojson", (k - 1, k)))
    elif len(layout.acquisitions) > 1:
        written.append(write_changes(layout, out_dir / f"{name}_changes.geojson"))
    return written
