"""`<scene>_detections.png`: the highest-scoring detections of each class, cropped at full resolution.

One row per class, best first, each crop centred on the detection with some
context around it, its outline drawn thinly, and a caption with class,
score and size in metres — what an analyst zooms into to judge a result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import shapely
from PIL import Image, ImageDraw
from rasterio.windows import Window

from infer.contract.geometry import rbox_to_corners
from infer.geo.rasterenv import open_raster
from infer.pictures.drawing import (
    BACKGROUND,
    display_scale,
    font,
    read_window,
    save_png,
    to_rgb,
)
from infer.runtime.reader import SceneGrid

CELL = 224
CAPTION = 22
CONTEXT = 1.6  # crop side / object extent
MIN_CROP_PX = 64


@dataclass(frozen=True)
class Pick:
    cls: str
    score: float
    outline: np.ndarray  # (N, 2) grid pixels
    caption: str


def _object_picks(rboxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, names: list[str],
                  gsd_m: float, per_class: int) -> list[Pick]:
    picks = []
    corners = rbox_to_corners(rboxes) if len(rboxes) else np.zeros((0, 4, 2))
    best_first = np.argsort(-scores)
    for k, name in enumerate(names):
        for i in best_first[classes[best_first] == k][:per_class]:
            size = f"{rboxes[i, 2] * gsd_m:.1f} x {rboxes[i, 3] * gsd_m:.1f} m"
            picks.append(Pick(name, float(scores[i]), corners[i], f"{name} {scores[i]:.2f} · {size}"))
    return picks


def _region_picks(pieces: list[tuple[int, shapely.Geometry, float]], names: list[str], gsd_m: float,
                  per_class: int) -> list[Pick]:
    picks = []
    for k, name in enumerate(names):
        mine = sorted((p for p in pieces if p[0] == k), key=lambda p: -p[2])[:per_class]
        for _, geom, score in mine:
            largest = max(getattr(geom, "geoms", [geom]), key=lambda g: g.area)
            area = geom.area * gsd_m**2
            picks.append(Pick(name, float(score), np.asarray(largest.exterior.coords),
                              f"{name} {score:.2f} · {area:,.0f} m2"))
    return picks


def _crop(src: rasterio.DatasetReader, grid: SceneGrid, pick: Pick, color: str) -> Image.Image:
    lo, hi = pick.outline.min(axis=0), pick.outline.max(axis=0)
    centre = (lo + hi) / 2
    side = max(MIN_CROP_PX, float((hi - lo).max()) * CONTEXT)
    c0, r0 = centre - side / 2
    window = Window(c0 * grid.scale, r0 * grid.scale, side * grid.scale, side * grid.scale)
    native = max(1, round(side * grid.scale))
    # A crop larger than its cell is read at the cell's size (GDAL averages, reading no more blocks);
    # a smaller one at its own, and enlarged without smoothing.
    pixels, dtype = read_window(src, window, (min(native, CELL), min(native, CELL)))
    image = Image.fromarray(to_rgb(pixels, display_scale(pixels, dtype)))
    if native < CELL:
        image = image.resize((CELL, CELL), Image.Resampling.NEAREST)
    zoom = CELL / side
    outline = [((x - c0) * zoom, (y - r0) * zoom) for x, y in pick.outline]
    ImageDraw.Draw(image).line(outline + [outline[0]], fill=color, width=2)
    return image


def write_contact_sheet(path: Path, grid: SceneGrid, rboxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
                        pieces: list[tuple[int, shapely.Geometry, float]], object_names: list[str],
                        region_names: list[str], colors: dict[str, str], per_class: int = 6) -> Path:
    picks = _object_picks(rboxes, scores, classes, object_names, grid.gsd_m, per_class)
    picks += _region_picks(pieces, region_names, grid.gsd_m, per_class)
    names = object_names + region_names
    label_width = 150
    row_height = CELL + CAPTION
    sheet = Image.new("RGB", (label_width + per_class * CELL, len(names) * row_height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    f, small = font(16), font(12)
    with open_raster(grid.path) as src:
        for row, name in enumerate(names):
            y = row * row_height
            mine = [p for p in picks if p.cls == name]
            draw.rectangle([8, y + 10, 24, y + 26], fill=colors[name])
            draw.text((30, y + 8), name, fill="white", font=f)
            if not mine:
                draw.text((label_width, y + CELL // 2), "no detections", fill=(160, 160, 160), font=f)
            for col, pick in enumerate(mine):
                x = label_width + col * CELL
                sheet.paste(_crop(src, grid, pick, colors[name]), (x, y))
                draw.text((x + 4, y + CELL + 4), pick.caption, fill="white", font=small)
    return save_png(sheet, path)
