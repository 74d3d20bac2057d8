"""Read a chip folder (COCO `annotations.json` + images) as raw samples.

The conventions are those `train.data.chips` writes (see its docstring): chip
pixel coordinates, objects as four corners front edge first, regions as
hole-free polygon parts or RLE.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from PIL import Image, UnidentifiedImageError
from rasterio.features import rasterize
from shapely.geometry import Polygon, box

from infer.errors import InputError
from infer.geo.rasterenv import open_raster, valid_pixels
from train.data.chips import ANNOTATIONS, PILLOW_SUFFIXES, read_json
from train.data.config import DatasetConfig
from train.data.labels import object_sides
from train.data.scenes import RawSample


class ChipFolder:
    """A folder of chips with a COCO `annotations.json`, read as `RawSample`s.

    `read(i)` gives image (C, H, W) float32 raw DNs; valid (H, W) bool (GeoTIFF:
    nodata and masks respected; PNG/JPEG: all True); corners (N, 4, 2) float64
    in chip pixels, front edge first; classes (N,) int64, the index within
    `config.object_classes`; directional (N,) bool, True for a directional class
    with a `heading_deg`; masks (K, H, W) uint8 for the K region classes, the
    union of each annotation's rings (or RLE) rasterized in pixel coordinates.
    Objects given only as `bbox` are the axis-aligned rectangle.
    Annotations are checked when the folder is opened; images when read.
    """

    def __init__(self, folder: Path, config: DatasetConfig) -> None:
        self.folder = Path(folder)
        self.config = config
        path = self.folder / ANNOTATIONS
        if not self.folder.is_dir():
            raise InputError(f"chip folder not found: {self.folder}")
        if not path.is_file():
            raise InputError(f"{path} not found: a chip folder needs a COCO annotations.json")
        coco = read_json(path)
        categories = _category_map(coco["categories"], config, path)
        self._images = coco["images"]
        _check_images_exist(self._images, self.folder, path)
        known = {im.get("id") for im in self._images}
        self._anns: dict[Any, list[tuple[str, int, Any]]] = defaultdict(list)
        for ann in coco["annotations"]:
            if ann.get("image_id") not in known:
                raise InputError(f"{path}: annotation {ann.get('id')} refers to image {ann.get('image_id')!r}, "
                                 "which is not listed")
            if ann.get("category_id") not in categories:
                raise InputError(f"{path}: annotation {ann.get('id')} has category_id {ann.get('category_id')!r}, "
                                 "which is not in 'categories'")
            kind, k, directional = categories[ann["category_id"]]
            geometry = _object_corners(ann, directional, path) if kind == "object" else _region_shape(ann, path)
            self._anns[ann["image_id"]].append((kind, k, geometry))

    def __len__(self) -> int:
        return len(self._images)

    def object_sides_px(self, gsd_m: float) -> np.ndarray:
        """(N, 2) length and width of every labeled object, in chip pixels (chips are at the dataset's GSD)."""
        return object_sides([g[0] for anns in self._anns.values() for kind, _, g in anns if kind == "object"])

    def image_paths(self) -> list[Path]:
        return [self.image_path(i) for i in range(len(self))]

    def draw(self, rng: np.random.Generator) -> RawSample:
        """A random chip (training)."""
        return self.read(int(rng.integers(len(self))))

    def fixed(self) -> range:
        """Every chip once (validation)."""
        return range(len(self))

    def read_fixed(self, key: int) -> RawSample:
        return self.read(key)

    def image_path(self, index: int) -> Path:
        """The chip image file of sample `index`."""
        return self.folder / self._images[index]["file_name"]

    def read(self, index: int) -> RawSample:
        """Sample `index` in the order of `images` in annotations.json."""
        entry = self._images[index]
        path = self.image_path(index)
        image, valid = _read_image(path)
        if image.shape[0] != len(self.config.bands):
            raise InputError(f"{path} has {image.shape[0]} bands, the dataset expects {len(self.config.bands)} "
                             f"({', '.join(self.config.bands)})")
        shape = image.shape[1:]
        if (entry.get("height"), entry.get("width")) not in ((None, None), shape):
            raise InputError(f"{path} is {shape[1]}x{shape[0]} px, annotations.json says "
                             f"{entry.get('width')}x{entry.get('height')}")
        corners, classes, directional = [], [], []
        masks = np.zeros((len(self.config.region_classes), *shape), dtype=np.uint8)
        for kind, k, geometry in self._anns.get(entry["id"], []):
            if kind == "object":
                corners.append(geometry[0])
                classes.append(k)
                directional.append(geometry[1])
            else:
                masks[k] |= _region_mask(geometry, shape)
        corners = np.array(corners, dtype=np.float64).reshape(-1, 4, 2)
        classes = np.array(classes, dtype=np.int64)
        directional = np.array(directional, dtype=bool)
        return RawSample(image, valid, corners, classes, directional, masks)


def _check_images_exist(images: list[dict], folder: Path, path: Path) -> None:
    """`InputError` naming the first image `annotations.json` lists that the folder lacks (before training
    starts, not when a worker first reads it)."""
    missing = [im for im in images if not isinstance(im.get("file_name"), str) or not (folder / im["file_name"]).is_file()]
    if missing:
        first = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(f"{path}: image {first.get('id')!r} names {first.get('file_name')!r}, which is not a file "
                         f"in {folder}{more}")


def _category_map(categories: list[dict], config: DatasetConfig, path: Path) -> dict[Any, tuple[str, int, bool]]:
    """COCO category id → (kind, index within its kind, directional), by name; the dataset decides the kind."""
    index = config.class_index()
    directional = {c.name for c in config.classes if c.directional}
    out = {}
    for cat in categories:
        name = cat.get("name")
        if name not in index:
            raise InputError(f"{path}: category {name!r} is not a class of dataset {config.name} "
                             f"(known: {', '.join(index)})")
        out[cat.get("id")] = (*index[name], name in directional)
    return out


def _object_corners(ann: dict, directional: bool, path: Path) -> tuple[np.ndarray, bool]:
    """(corners (4, 2) front edge first, heading known) of an object annotation."""
    seg = ann.get("segmentation")
    if seg:
        flat = seg[0] if isinstance(seg, list) and len(seg) == 1 and isinstance(seg[0], list) else seg
        if not isinstance(flat, list) or len(flat) != 8 or not all(isinstance(v, int | float) for v in flat):
            raise InputError(f"{path}: annotation {ann.get('id')} is an object, its segmentation must be its "
                             f"4 corners (8 numbers), got {_describe(seg)}")
        corners = np.asarray(flat, dtype=np.float64).reshape(4, 2)
    else:
        x, y, w, h = _bbox(ann, path)
        corners = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float64)
    heading = (ann.get("attributes") or {}).get("heading_deg") if directional else None
    return front_edge_first(corners, None if heading is None else float(heading)), heading is not None


def front_edge_first(corners: np.ndarray, heading: float | None) -> np.ndarray:
    """Pixel corners (4, 2) rolled so corners 0-1 are the edge facing `heading` (compass, 0 = -y, 90 = +x).

    Without a heading a short edge goes first; the given order stands where the edges are equal.
    """
    if heading is not None:
        az = math.radians(heading)
        mids = (corners + np.roll(corners, -1, axis=0)) / 2 - corners.mean(axis=0)
        return np.roll(corners, -int(np.argmax(mids @ np.array([math.sin(az), -math.cos(az)]))), axis=0)
    first, second = np.linalg.norm(corners[1] - corners[0]), np.linalg.norm(corners[2] - corners[1])
    return np.roll(corners, -1, axis=0) if first > second * (1 + 1e-9) else corners


def _region_shape(ann: dict, path: Path) -> list[Polygon] | dict:
    """A region annotation as polygons (rings, to be unioned) or as an RLE dict."""
    seg = ann.get("segmentation")
    if isinstance(seg, dict):
        return seg
    if not seg:
        x, y, w, h = _bbox(ann, path)
        return [box(x, y, x + w, y + h)]
    rings = seg if isinstance(seg, list) and all(isinstance(r, list) for r in seg) else [seg]
    polygons = []
    for ring in rings:
        if len(ring) < 6 or len(ring) % 2 or not all(isinstance(v, int | float) for v in ring):
            raise InputError(f"{path}: annotation {ann.get('id')} has a polygon ring that is not 3 or more "
                             f"x, y pairs: {_describe(ring)}")
        polygons.append(Polygon(np.asarray(ring, dtype=np.float64).reshape(-1, 2)))
    return polygons


def _region_mask(geometry: list[Polygon] | dict, shape: tuple[int, int]) -> np.ndarray:
    if isinstance(geometry, dict):
        from pycocotools import mask as coco_mask  # only RLE regions need it

        rle = geometry if isinstance(geometry.get("counts"), str | bytes) else coco_mask.frPyObjects(geometry, *shape)
        return coco_mask.decode(rle).astype(np.uint8)
    return rasterize([(p, 1) for p in geometry], out_shape=shape, transform=Affine.identity(), fill=0,
                     dtype="uint8")


def _bbox(ann: dict, path: Path) -> tuple[float, float, float, float]:
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise InputError(f"{path}: annotation {ann.get('id')} has neither a segmentation nor a bbox [x, y, w, h]")
    return tuple(float(v) for v in bbox)


def _describe(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _read_image(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(image (C, H, W) float32, valid (H, W) bool) from a GeoTIFF (or any GDAL raster), PNG or JPEG."""
    if not path.is_file():
        raise InputError(f"chip image not found: {path} (listed in {ANNOTATIONS})")
    if path.suffix.lower() in PILLOW_SUFFIXES:
        return _read_pillow(path)
    try:
        with open_raster(path) as src:
            return src.read().astype(np.float32), valid_pixels(src, src.count)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def _read_pillow(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with Image.open(path) as img:
            if img.mode in ("LA", "La", "1"):
                img = img.convert("L")
            elif img.mode in ("RGBA", "RGBa", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
                img = img.convert("RGB")  # alpha dropped; a palette expanded
            pixels = np.asarray(img, dtype=np.float32)
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    image = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return np.ascontiguousarray(image), np.ones(image.shape[1:], dtype=bool)
