"""The overview picture analysts open first: the scene with what was found drawn on it.

A decimated read keeps memory flat for any scene size; boxes and outlines in
class colours, a legend with counts, a scale bar.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import rasterio
import shapely
from PIL import Image, ImageDraw, ImageFont
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning

from infer.geometry import rbox_to_corners
from infer.rasterenv import gdal_env
from infer.reader import SceneGrid


def _overview(grid: SceneGrid, max_side: int) -> tuple[np.ndarray, float]:
    """(rows, cols, 3) uint8 view of the scene and the grid-pixel → overview-pixel factor."""
    factor = min(1.0, max_side / max(grid.width, grid.height))
    rows, cols = max(1, round(grid.height * factor)), max(1, round(grid.width * factor))
    with gdal_env(), warnings.catch_warnings(), rasterio.open(grid.path) as src:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        bands = list(range(1, min(3, src.count) + 1))
        pixels = src.read(bands, out_shape=(len(bands), rows, cols), resampling=Resampling.average)
        dtype = src.dtypes[0]
    pixels = pixels.astype(np.float32)
    if dtype != "uint8":
        valid = pixels[pixels > 0]
        pixels *= 255.0 / max(1.0, float(np.percentile(valid, 99.5)) if valid.size else 1.0)
    rgb = np.clip(np.moveaxis(pixels, 0, -1), 0, 255).astype(np.uint8)
    if rgb.shape[-1] < 3:
        rgb = np.repeat(rgb[..., :1], 3, axis=-1)
    return rgb, factor


def _scale_bar_metres(width_m: float) -> float:
    """A round length about a fifth of the picture's width."""
    target = width_m / 5
    magnitude = 10 ** np.floor(np.log10(max(target, 1e-9)))
    return float(max(m * magnitude for m in (1, 2, 5) if m * magnitude <= target) if target >= magnitude else magnitude)


def write_overlay(path: Path, grid: SceneGrid, rboxes: np.ndarray, classes: np.ndarray,
                  pieces: list[tuple[int, shapely.Geometry, float]], object_names: list[str],
                  region_names: list[str], colors: dict[str, str], title: str, max_side: int = 2048) -> Path:
    rgb, factor = _overview(grid, max_side)
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    line = max(2, round(max(image.size) / 800))
    for k, geom, _ in pieces:
        for poly in getattr(geom, "geoms", [geom]):
            ring = [(x * factor, y * factor) for x, y in poly.exterior.coords]
            draw.line(ring, fill=colors[region_names[k]], width=line)
    if len(rboxes):
        for corners, k in zip(rbox_to_corners(rboxes) * factor, classes, strict=True):
            pts = [tuple(p) for p in corners] + [tuple(corners[0])]
            draw.line(pts, fill=colors[object_names[int(k)]], width=line)
            draw.line([tuple(corners[0]), tuple(corners[1])], fill="white", width=max(1, line // 2))  # the front
    font = ImageFont.load_default(size=max(12, image.size[0] // 60))
    counts = {n: int((classes == k).sum()) for k, n in enumerate(object_names)}
    counts.update({n: sum(1 for k, _, _ in pieces if k == j) for j, n in enumerate(region_names)})
    rows = [title] + [f"{n}: {c}" for n, c in counts.items()]
    pad, height = 6, font.size + 6
    draw.rectangle([0, 0, max(draw.textlength(r, font=font) for r in rows) + 3 * pad + height, len(rows) * height + 2 * pad],
                   fill=(0, 0, 0))
    for i, text in enumerate(rows):
        y = pad + i * height
        if i:
            draw.rectangle([pad, y + 2, pad + height - 6, y + height - 4], fill=colors[text.split(":")[0]])
        draw.text((2 * pad + (height if i else 0), y), text, fill="white", font=font)
    if grid.georeferenced:
        metres = _scale_bar_metres(grid.width * grid.gsd_m)
        length = metres / grid.gsd_m * factor
        x0, y0 = pad * 2, image.size[1] - pad * 2 - height
        draw.rectangle([x0 - pad, y0 - pad, x0 + length + pad, y0 + height + pad], fill=(0, 0, 0))
        draw.line([(x0, y0 + height - 4), (x0 + length, y0 + height - 4)], fill="white", width=line + 1)
        draw.text((x0, y0 - 2), f"{metres:g} m", fill="white", font=font)
    partial = path.with_name(f".{path.name}.partial")
    image.save(partial, format="PNG")
    os.replace(partial, path)
    return path
