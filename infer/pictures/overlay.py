"""The overview picture analysts open first: the scene with what was found drawn on it.

A decimated read keeps memory flat for any scene size. Regions are outlined
and lightly filled, objects drawn as their oriented rectangle with the front
edge in white; an object too small to see at the overview's scale gets a
ring around it. Title with scene and date, legend with counts per class,
scale bar in metres and a north arrow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import shapely
from PIL import Image, ImageDraw

from infer.contract.geometry import rbox_to_corners
from infer.geo.crs import north_in_pixels
from infer.pictures.drawing import (
    display_scale,
    draw_legend,
    draw_north_arrow,
    draw_scale_bar,
    line_width,
    read_pixels,
    save_png,
    to_rgb,
)
from infer.runtime.reader import SceneGrid

MIN_VISIBLE_PX = 8  # an object shorter than this in the overview gets a ring


def _hex_rgba(color: str, alpha: int) -> tuple[int, int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), alpha


def write_overlay(path: Path, grid: SceneGrid, rboxes: np.ndarray, classes: np.ndarray,
                  pieces: list[tuple[int, shapely.Geometry, float]], object_names: list[str],
                  region_names: list[str], colors: dict[str, str], title: str, max_side: int = 2048) -> Path:
    factor = min(1.0, max_side / max(grid.width, grid.height))
    shape = (max(1, round(grid.height * factor)), max(1, round(grid.width * factor)))
    pixels, dtype = read_pixels(grid.path, None, shape)
    image = Image.fromarray(to_rgb(pixels, display_scale(pixels, dtype))).convert("RGBA")
    fill = Image.new("RGBA", image.size, (0, 0, 0, 0))
    fill_draw = ImageDraw.Draw(fill)
    line = line_width(max(image.size))
    outlines = []
    for k, geom, _ in pieces:
        for poly in getattr(geom, "geoms", [geom]):
            ring = [(x * factor, y * factor) for x, y in poly.exterior.coords]
            if len(ring) >= 3:
                fill_draw.polygon(ring, fill=_hex_rgba(colors[region_names[k]], 70))
            outlines.append((ring, colors[region_names[k]]))
    image = Image.alpha_composite(image, fill).convert("RGB")
    draw = ImageDraw.Draw(image)
    for ring, color in outlines:
        draw.line(ring, fill=color, width=line)
    if len(rboxes):
        for corners, k, length in zip(rbox_to_corners(rboxes) * factor, classes, rboxes[:, 2] * factor, strict=True):
            color = colors[object_names[int(k)]]
            draw.line([tuple(p) for p in corners] + [tuple(corners[0])], fill=color, width=line)
            draw.line([tuple(corners[0]), tuple(corners[1])], fill="white", width=max(1, line // 2))
            if length < MIN_VISIBLE_PX:
                cx, cy = corners.mean(axis=0)
                r = MIN_VISIBLE_PX / 2 + 2 * line
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=color, width=line)
    text_size = max(12, max(image.size) // 60)
    counts = [(f"{n}: {int((classes == k).sum())}", colors[n]) for k, n in enumerate(object_names)]
    counts += [(f"{n}: {sum(1 for k, _, _ in pieces if k == j)}", colors[n]) for j, n in enumerate(region_names)]
    draw_legend(draw, title, counts, (0, 0), text_size)
    if grid.georeferenced:
        draw_scale_bar(draw, grid.gsd_m / factor, image.size, text_size)
        north = north_in_pixels(grid.transform, grid.crs, grid.width / 2, grid.height / 2)
        draw_north_arrow(draw, north, (image.size[0] - 3 * text_size, 3 * text_size), text_size)
    return save_png(image, path)
