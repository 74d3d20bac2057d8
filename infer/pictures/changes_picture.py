"""`changes.png`: the two dates side by side, what is new ringed green on the after side, what is gone red on
the before side, everything else thinly in its class colour.

The panels show the before scene's extent (or, without imagery, the extent
of the detections on a plain ground), read decimated so any scene size fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import shapely
from affine import Affine
from PIL import Image, ImageDraw
from rasterio.windows import from_bounds

from infer.analysis.changes import DiffResult, Side
from infer.contract.schema import hex_rgb
from infer.errors import InputError
from infer.geo.crs import from_wgs84, metric_crs, north_in_pixels
from infer.geo.gsd import scene_gsd
from infer.geo.rasterenv import open_raster
from infer.pictures.drawing import (
    BACKGROUND,
    display_scale,
    draw_legend,
    draw_north_arrow,
    draw_scale_bar,
    fill_polygon,
    font,
    line_width,
    read_pixels,
    save_png,
    to_rgb,
)

#: The colour of each kind of change, in the picture and the GeoPackage (orange for gone: red is storehouses').
CHANGE_COLORS = {"new": "#00e676", "gone": "#ff8c00", "persisting": "#b4b4b4"}
NEW, GONE = hex_rgb(CHANGE_COLORS["new"]), hex_rgb(CHANGE_COLORS["gone"])
PALETTE = ["#ff4040", "#ffdc00", "#00c8ff", "#c850ff", "#40ff80", "#ff8c00"]


@dataclass
class Frame:
    """Output coordinates (WGS84 or pixels) → panel pixels."""

    crs: object | None  # the frame's CRS; None: inputs are pixels
    transform: Affine  # frame pixel → frame coordinates
    width: int
    height: int
    factor: float  # panel pixels per frame pixel
    metres_per_pixel: float | None  # of the frame

    def to_panel(self, geom: shapely.Geometry, pixel_inputs: bool) -> shapely.Geometry:
        if not pixel_inputs:
            geom = from_wgs84(geom, self.crs)
        m = ~self.transform
        geom = shapely.affinity.affine_transform(geom, [m.a, m.b, m.d, m.e, m.c, m.f])
        return shapely.affinity.scale(geom, self.factor, self.factor, origin=(0, 0))

    @property
    def size(self) -> tuple[int, int]:
        return max(1, round(self.width * self.factor)), max(1, round(self.height * self.factor))


def _frame(before: Side, result: DiffResult, max_side: int) -> Frame:
    scene = before.scene
    if scene is not None:
        with open_raster(scene) as src:
            referenced = src.crs is not None and not src.transform.is_identity
            if referenced or before.pixel_coordinates:
                gsd = _scale_bar_gsd(scene, src) if referenced else None
                return Frame(src.crs if referenced else None, src.transform if referenced else Affine.identity(),
                             src.width, src.height, min(1.0, max_side / max(src.width, src.height)), gsd)
    geoms = [c.geom for c in result.changes] + [t.geom for t in before.objects + before.regions]
    if not geoms:
        return Frame(None, Affine.identity(), max_side, max_side, 1.0, None)
    if before.pixel_coordinates:
        crs, union = None, shapely.GeometryCollection(geoms)
    else:
        crs = metric_crs(geoms)
        union = shapely.GeometryCollection(list(from_wgs84(np.array(geoms, dtype=object), crs)))
    x0, y0, x1, y1 = union.bounds
    margin = 0.05 * max(x1 - x0, y1 - y0, 10.0)
    x0, y0, x1, y1 = x0 - margin, y0 - margin, x1 + margin, y1 + margin
    pixel = max(x1 - x0, y1 - y0) / max_side
    transform = (Affine.translation(x0, y0) if crs is None else Affine.translation(x0, y1)) * Affine.scale(
        pixel, pixel if crs is None else -pixel)
    return Frame(crs, transform, round((x1 - x0) / pixel), round((y1 - y0) / pixel), 1.0,
                 None if crs is None else pixel)


def _scale_bar_gsd(scene: Path, src: rasterio.io.DatasetReader) -> float | None:
    """Metres per source pixel for the scale bar; None (no bar) when its pixels are not square metres."""
    try:
        return scene_gsd(scene.name, src.transform, src.crs, src.width, src.height)
    except InputError:
        return None


def _background(frame: Frame, scene: Path | None) -> Image.Image:
    size = frame.size
    if scene is not None:
        with open_raster(scene) as src:
            same_grid = frame.crs is None or (src.crs is not None and src.crs == frame.crs)
            window = None
            if same_grid and frame.crs is not None:
                left, top = frame.transform @ (0, 0)
                right, bottom = frame.transform @ (frame.width, frame.height)
                window = from_bounds(min(left, right), min(top, bottom), max(left, right), max(top, bottom),
                                     src.transform)
        if same_grid:
            pixels, dtype = read_pixels(scene, window, (size[1], size[0]))
            return Image.fromarray(to_rgb(pixels, display_scale(pixels, dtype)))
    return Image.new("RGB", size, BACKGROUND)


def _outline(draw: ImageDraw.ImageDraw, geom: shapely.Geometry, color, width: int) -> None:
    for poly in getattr(geom, "geoms", [geom]):
        if isinstance(poly, shapely.Polygon):
            draw.line(list(poly.exterior.coords), fill=color, width=width)


def _ring(draw: ImageDraw.ImageDraw, geom: shapely.Geometry, color, width: int, minimum: float) -> None:
    x0, y0, x1, y1 = geom.bounds
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    r = max(x1 - x0, y1 - y0) / 2 + minimum
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=color, width=width)


def _panel(frame: Frame, side: Side, result: DiffResult, which: str, title: str,
           colors: dict[str, str]) -> Image.Image:
    image = _background(frame, side.scene).convert("RGBA")
    pixel_inputs = side.pixel_coordinates
    highlight = NEW if which == "new" else GONE
    fill = Image.new("RGBA", image.size, (0, 0, 0, 0))
    flagged = [(c, frame.to_panel(c.geom, pixel_inputs)) for c in result.changes if c.change == which]
    for c, geom in flagged:
        if c.kind == "region":
            for poly in getattr(geom, "geoms", [geom]):
                if isinstance(poly, shapely.Polygon):
                    fill_polygon(fill, poly, (*highlight, 110))
    image = Image.alpha_composite(image, fill).convert("RGB")
    draw = ImageDraw.Draw(image)
    line = line_width(max(image.size))
    for t in side.objects + side.regions:
        _outline(draw, frame.to_panel(t.geom, pixel_inputs), colors.get(t.cls, "#cccccc"), max(1, line // 2))
    for c, geom in flagged:
        _outline(draw, geom, highlight, line + 1)
        if c.kind == "object":
            _ring(draw, geom, highlight, line, minimum=3 * line)
    text_size = max(12, image.size[0] // 45)
    flagged_count = sum(1 for c in result.changes if c.change == which)
    rows = [(f"{which}: {flagged_count}", highlight)]
    rows += [(name, colors.get(name, "#cccccc")) for name, _ in result.classes]
    draw_legend(draw, title, rows, (0, 0), text_size)
    if frame.metres_per_pixel:
        draw_scale_bar(draw, frame.metres_per_pixel / frame.factor, image.size, text_size)
    if frame.crs is not None:
        north = north_in_pixels(frame.transform, frame.crs, frame.width / 2, frame.height / 2)
        draw_north_arrow(draw, north, (image.size[0] - 3 * text_size, 3 * text_size), text_size)
    return image


def write_changes_picture(path: Path, before: Side, after: Side, result: DiffResult, max_side: int = 1200) -> Path:
    colors = {**before.colors, **after.colors}
    for i, (name, _) in enumerate(result.classes):
        colors.setdefault(name, PALETTE[i % len(PALETTE)])
    frame = _frame(before, result, max_side)
    left = _panel(frame, before, result, "gone", f"BEFORE {before.date or before.source.stem}", colors)
    right = _panel(frame, after, result, "new", f"AFTER {after.date or after.source.stem}", colors)
    gap = 12
    sheet = Image.new("RGB", (left.width + right.width + gap, left.height + 40), (255, 255, 255))
    sheet.paste(left, (0, 40))
    sheet.paste(right, (left.width + gap, 40))
    n = {k: sum(1 for c in result.changes if c.change == k) for k in ("new", "gone", "persisting")}
    caption = (f"{n['new']} new (green, after), {n['gone']} gone (orange, before), {n['persisting']} objects "
               "persisting; thin outlines: everything detected, in class colours")
    ImageDraw.Draw(sheet).text((8, 10), caption, fill=(0, 0, 0), font=font(18))
    return save_png(sheet, path)
