"""Draw a scene's labels over a downsampled view of it, to see the data at a glance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from rasterio.enums import Resampling
from rasterio.windows import Window

from infer.geo.crs import from_wgs84
from infer.geo.geojson import feature_geometries, read_feature_collection
from infer.geo.rasterenv import open_raster

CLASS_COLORS = {
    "storehouse": (255, 64, 64),
    "truck": (255, 220, 0),
    "earth_berm": (0, 200, 255),
    "cleared_site": (200, 80, 255),
}


def draw_labels(scene: Path, labels: Path, out: Path, max_side: int = 1600,
                window: Window | None = None) -> Path:
    """Write a PNG of `scene` (or a `window` of it) with `labels` outlined in class colours.

    Reads a decimated view, so a 20000 px scene costs no more than a small one.
    """
    with open_raster(scene) as src:
        whole = Window(0, 0, src.width, src.height)
        window = whole if window is None else window.intersection(whole)
        scale = min(1.0, max_side / max(window.width, window.height))
        shape = (min(3, src.count), max(1, round(window.height * scale)), max(1, round(window.width * scale)))
        pixels = src.read(indexes=list(range(1, shape[0] + 1)), window=window, out_shape=shape,
                          resampling=Resampling.average)
        inverse = ~src.window_transform(window)
        crs = src.crs
        is_byte = src.dtypes[0] == "uint8"
    valid = pixels[pixels > 0]
    # 8-bit scenes are shown as they are; deeper ones scaled so the brightest 0.5% saturate.
    stretch = 1.0 if is_byte or valid.size == 0 else 255.0 / max(1.0, float(np.percentile(valid, 99.5)))
    rgb = np.clip(np.moveaxis(pixels, 0, -1) * stretch, 0, 255).astype(np.uint8)
    if rgb.shape[-1] == 1:
        rgb = np.repeat(rgb, 3, axis=-1)
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    collection = read_feature_collection(labels)
    width = max(1, round(2 * scale + 1))
    for feat, geom in zip(collection["features"], feature_geometries(collection), strict=True):
        color = CLASS_COLORS.get(feat["properties"].get("class"), (255, 255, 255))
        mapped = from_wgs84(geom, crs)
        for poly in getattr(mapped, "geoms", [mapped]):
            ring = [inverse @ xy for xy in poly.exterior.coords]
            draw.line([(c * scale, r * scale) for c, r in ring], fill=color, width=width)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    return out
