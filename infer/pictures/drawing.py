"""What every review picture shares: imagery stretched for display, legend, scale bar, north arrow.

Imagery is read decimated or windowed, never whole. Sizes of text and lines
follow the picture's size so that a 20 000-pixel scene drawn at 2 048 pixels
stays as readable as a small one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import rasterio
import shapely
from PIL import Image, ImageDraw, ImageFont
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from infer.files import atomic_write
from infer.geo.rasterenv import damaged_raster, open_raster, valid_pixels

Color = str | tuple[int, int, int]
#: How review pictures are encoded (`save_png`).
PNG_SETTINGS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
                cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]
BACKGROUND = (24, 24, 24)


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(10, int(size)))


def fill_polygon(layer: Image.Image, polygon: shapely.Polygon, rgba: tuple[int, int, int, int]) -> None:
    """Fill `polygon` (in the layer's pixels) with `rgba` on an RGBA `layer`, its holes left as they were.

    A ring of berm around a compound is a polygon with a hole: filled as its exterior alone, it would
    paint the whole compound. The polygon is drawn as a mask over its own box and pasted through it.
    """
    x0, y0, x1, y1 = polygon.bounds
    left, top = int(np.floor(x0)), int(np.floor(y0))
    size = (int(np.ceil(x1)) - left + 1, int(np.ceil(y1)) - top + 1)
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for ring, value in ((polygon.exterior, 255), *((hole, 0) for hole in polygon.interiors)):
        coords = [(x - left, y - top) for x, y in ring.coords]
        if len(coords) >= 3:
            draw.polygon(coords, fill=value)
    layer.paste(rgba, (left, top), mask)


def line_width(image_side: int) -> int:
    return max(2, round(image_side / 700))


def read_window(src: rasterio.DatasetReader, window: Window | None, out_shape: tuple[int, int]
                ) -> tuple[np.ndarray, str]:
    """(≤3, rows, cols) float32 of the first three bands of `window` (all of it when None), boundless.

    Only a window that reaches past the raster is read boundless: rasterio does that through a warped
    VRT made for the read, which cost a crop of the contact sheet several times its read.
    """
    bands = list(range(1, min(3, src.count) + 1))
    resampling = Resampling.average if window is None or window.width > out_shape[1] else Resampling.nearest
    inside = window is None or (window.col_off >= 0 and window.row_off >= 0 and
                                window.col_off + window.width <= src.width and
                                window.row_off + window.height <= src.height)
    try:
        pixels = src.read(bands, window=window, out_shape=(len(bands), *out_shape), resampling=resampling,
                          boundless=not inside, fill_value=0)
    except RasterioIOError as exc:
        raise damaged_raster(Path(src.name), exc) from None
    return pixels.astype(np.float32), src.dtypes[0]


def read_pixels(path: Path, window: Window | None, out_shape: tuple[int, int]) -> tuple[np.ndarray, str]:
    """`read_window` of the scene at `path`."""
    with open_raster(path) as src:
        return read_window(src, window, out_shape)


def read_valid(path: Path, bands: int, out_shape: tuple[int, int]) -> np.ndarray:
    """(rows, cols) bool: where the raster has valid pixels for a reader of its first `bands`, in one decimated
    read of its mask (`valid_pixels`)."""
    with open_raster(path) as src:
        try:
            return valid_pixels(src, bands, out_shape=out_shape)
        except RasterioIOError as exc:
            raise damaged_raster(Path(path), exc) from None


def display_scale(pixels: np.ndarray, dtype: str) -> float:
    """Factor that maps raw values to 0–255: none for 8-bit, the 99.5th percentile of valid values otherwise."""
    if dtype == "uint8":
        return 1.0
    valid = pixels[pixels > 0]
    return 255.0 / max(1.0, float(np.percentile(valid, 99.5)) if valid.size else 1.0)


def to_rgb(pixels: np.ndarray, scale: float) -> np.ndarray:
    """(C, H, W) raw values → (H, W, 3) uint8 display values, `scale` from `display_scale`."""
    scaled = pixels * scale  # clipped and cast while contiguous; only the bytes are then moved band-last
    rgb = np.moveaxis(np.clip(scaled, 0, 255, out=scaled).astype(np.uint8), 0, -1)
    return np.repeat(rgb[..., :1], 3, axis=-1) if rgb.shape[-1] < 3 else rgb


def draw_legend(draw: ImageDraw.ImageDraw, title: str, rows: Sequence[tuple[str, Color]],
                origin: tuple[int, int], text_size: int) -> tuple[int, int, int, int]:
    """Title line, then a colour swatch and a text per row, on black; returns the box it took."""
    f = font(text_size)
    pad, height = max(4, text_size // 3), text_size + max(4, text_size // 3)
    width = max([draw.textlength(title, font=f)] + [draw.textlength(t, font=f) + height for t, _ in rows])
    x0, y0 = origin
    box = (x0, y0, int(x0 + width + 3 * pad), int(y0 + (len(rows) + 1) * height + 2 * pad))
    draw.rectangle(box, fill=(0, 0, 0))
    draw.text((x0 + pad, y0 + pad), title, fill="white", font=f)
    for i, (text, color) in enumerate(rows, start=1):
        y = y0 + pad + i * height
        draw.rectangle([x0 + pad, y + 2, x0 + pad + height - 6, y + height - 4], fill=color)
        draw.text((x0 + 2 * pad + height - 4, y), text, fill="white", font=f)
    return box


def round_length(limit: float) -> float:
    """The largest 1, 2 or 5 × 10^k not above `limit` (a length for a scale bar)."""
    magnitude = 10 ** np.floor(np.log10(max(limit, 1e-9)))
    return float(max(m * magnitude for m in (1, 2, 5) if m * magnitude <= limit))


def draw_scale_bar(draw: ImageDraw.ImageDraw, metres_per_pixel: float, image_size: tuple[int, int],
                   text_size: int) -> None:
    """A bar of a round length about a fifth of the picture's width, bottom left."""
    metres = round_length(image_size[0] * metres_per_pixel / 5)
    length = metres / metres_per_pixel
    f = font(text_size)
    pad, line = max(4, text_size // 3), line_width(max(image_size))
    x0, y1 = 2 * pad, image_size[1] - 2 * pad
    label = f"{metres:g} m" if metres < 1000 else f"{metres / 1000:g} km"
    draw.rectangle([x0 - pad, y1 - text_size - 3 * pad - line, x0 + length + pad, y1 + pad], fill=(0, 0, 0))
    draw.line([(x0, y1 - line), (x0 + length, y1 - line)], fill="white", width=line + 1)
    for x in (x0, x0 + length):
        draw.line([(x, y1 - line - pad), (x, y1)], fill="white", width=max(1, line // 2))
    draw.text((x0, y1 - text_size - 2 * pad - line), label, fill="white", font=f)


def draw_north_arrow(draw: ImageDraw.ImageDraw, north: tuple[float, float], centre: tuple[int, int],
                     text_size: int) -> None:
    """An arrow pointing along `north` (a unit vector in picture x right, y down) with an N."""
    nx, ny = north
    px, py = -ny, nx
    r = text_size * 1.6
    cx, cy = centre
    draw.ellipse([cx - r - 4, cy - r - 4, cx + r + 4, cy + r + 4], fill=(0, 0, 0))
    tip = (cx + nx * r, cy + ny * r)
    tail = (cx - nx * r * 0.6, cy - ny * r * 0.6)
    left = (tail[0] + px * r * 0.45, tail[1] + py * r * 0.45)
    right = (tail[0] - px * r * 0.45, tail[1] - py * r * 0.45)
    draw.polygon([tip, left, (cx, cy), right], fill="white")
    f = font(text_size)
    label = (cx - nx * r * 0.05 - draw.textlength("N", font=f) / 2, cy - ny * r * 0.05 - text_size / 2)
    draw.text(label, "N", fill=(200, 0, 0), font=f)


def save_png(image: Image.Image, path: Path) -> Path:
    """Write under a temporary name, then rename: a reader never sees half a picture.

    Light compression: imagery barely compresses anyway, and the default level costs seconds per
    overview in a batch job. OpenCV's libpng with zlib's level 1, run-length matching and the "sub"
    filter alone (`PNG_SETTINGS`; Pillow tries every filter on every row): a 2048² overview in 0.15 s
    against Pillow's 0.32 s with the same zlib settings, 4 % larger (`python -m bench.png_encoding`).
    """
    pixels = np.asarray(image.convert("RGBA" if "A" in image.getbands() else "RGB"))
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4
                                                    else cv2.COLOR_RGB2BGR), PNG_SETTINGS)
    if not ok:
        raise ValueError(f"OpenCV could not encode {path.name} as PNG")
    with atomic_write(path) as partial:
        partial.write_bytes(encoded.tobytes())
    return path
