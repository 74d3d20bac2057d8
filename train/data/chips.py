"""Pre-cut chips: a scene cut into small GeoTIFFs with a COCO `annotations.json`, and read back.

Layout of a chip folder::

    annotations.json          COCO: categories, images, annotations
    images/<stem>_<row>_<col>.tif

`<row>_<col>` is the chip's top-left corner in the scene's source pixels.

COCO conventions (all coordinates in chip pixels, x right, y down, origin at
the chip's top-left corner; a chip GeoTIFF's transform maps them to the
scene CRS):

* categories: every dataset class in YAML order, ids from 1, `supercategory`
  is the kind (`object` or `region`).
* objects: `segmentation` = one flat list of the 4 corners, front edge first
  (corners 0-1 are the front of a directional object with a heading, else a
  short edge); `bbox` the corners' axis-aligned box clipped to the chip;
  `area` the rectangle's area; `attributes.heading_deg` the compass azimuth of
  the front (0 = up = -y, 90 = +x) for directional classes with a known heading.
  An object belongs to every chip that holds its centre (0 <= x < size).
* regions: one annotation per polygon piece clipped to the chip. COCO readers
  (pycocotools) take the union of a segmentation's rings, so a piece with holes
  is cut across each hole into hole-free parts whose union is the piece: the
  holes survive any COCO reader. `area` is the piece's area, holes excluded.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely.ops
from affine import Affine
from shapely import affinity
from shapely.geometry import MultiLineString, Polygon, box
from shapely.geometry.base import BaseGeometry

from infer.errors import InputError, UsageError
from infer.files import atomic_write, write_text_atomic
from infer.geo.rasterenv import gdal_env, open_raster
from train.data.config import DatasetConfig
from train.data.scenes import RawSample, SceneInfo, SceneWindows, open_scene

ANNOTATIONS = "annotations.json"
IMAGES = "images"
SCENE_KEY = "scene"  # image entry: the resolved path of the scene a chip was cut from
PILLOW_SUFFIXES = (".png", ".jpg", ".jpeg")
DECIMALS = 4  # chip-pixel coordinates: 1e-4 px is 0.05 mm at 0.5 m


# ----------------------------------------------------------------------------- cutting


def cut_chips(scene: Path, labels: Path, out: Path, config: DatasetConfig, size: int = 512,
              overlap: int = 0) -> Path:
    """Cut `scene` on the fixed grid of `SceneWindows.grid(overlap)` into `size`-pixel chips.

    Chips that are entirely no-data are skipped. Each chip is a GeoTIFF under
    `out/images/` with the scene's CRS, dtype, band names and nodata (or an
    internal mask where the scene has no nodata value and the chip runs past its
    edge). The COCO file `out/annotations.json` is created or merged: cutting the
    same scene again replaces its chips; a chip name taken by another scene or
    categories that differ from the dataset's are an `InputError`.
    Returns the path of `annotations.json`, written atomically.
    """
    check_grid(size, overlap)
    scene, out = Path(scene), Path(out)
    path = out / ANNOTATIONS
    coco = _load_or_new(path, config)
    info = open_scene(scene, labels, config)
    with open_raster(scene) as src:
        meta = {"dtype": src.dtypes[0], "crs": src.crs, "nodata": src.nodata,
                "descriptions": src.descriptions[:info.bands]}  # an RGBA scene's chips are RGB and a mask
    windows = SceneWindows([info], size)
    origins = [(col, row) for _, col, row in windows.grid(overlap)]
    names = {origin: f"{IMAGES}/{scene.stem}_{int(origin[1])}_{int(origin[0])}.tif" for origin in origins}
    source = str(scene.resolve())
    stale = _drop_scene(coco, source, set(names.values()), path)
    make_folder(out / IMAGES)
    next_image = max((im["id"] for im in coco["images"]), default=0) + 1
    next_ann = max((a["id"] for a in coco["annotations"]), default=0) + 1
    written = set()
    for col, row in origins:
        sample = windows.read(0, col, row)
        if not sample.valid.any():
            continue
        transform = info.transform @ Affine.translation(col, row) @ Affine.scale(info.scale)
        _write_chip(out / names[(col, row)], sample, transform, meta)
        written.add(names[(col, row)])
        coco["images"].append({"id": next_image, "file_name": names[(col, row)], "width": size, "height": size,
                               SCENE_KEY: source, "scene_col": int(col), "scene_row": int(row)})
        for ann in _chip_annotations(sample, info, transform, size, config):
            coco["annotations"].append({"id": next_ann, "image_id": next_image, **ann})
            next_ann += 1
        next_image += 1
    write_json_atomic(path, coco)
    for name in stale - written:
        (out / name).unlink(missing_ok=True)
    return path


def check_grid(size: int, overlap: int) -> None:
    """Chip size and overlap as the grid needs them; a `UsageError` otherwise."""
    if size < 1:
        raise UsageError(f"chip size must be at least 1 pixel, got {size}")
    if not 0 <= overlap < size:
        raise UsageError(f"overlap must be at least 0 and less than the chip size ({size}), got {overlap}")


def coco_categories(config: DatasetConfig) -> list[dict[str, Any]]:
    """The dataset's classes in YAML order as COCO categories, ids from 1."""
    return [{"id": i + 1, "name": c.name, "supercategory": c.kind} for i, c in enumerate(config.classes)]


def _load_or_new(path: Path, config: DatasetConfig) -> dict[str, Any]:
    categories = coco_categories(config)
    if not path.exists():
        return {"info": {"description": "sitewatch chips", "dataset": config.name}, "images": [],
                "annotations": [], "categories": categories}
    coco = read_json(path)
    key = [(c.get("id"), c.get("name"), c.get("supercategory")) for c in coco["categories"]]
    if key != [(c["id"], c["name"], c["supercategory"]) for c in categories]:
        names = ", ".join(str(c.get("name")) for c in coco["categories"])
        raise InputError(f"{path} has other categories ({names}) than dataset {config.name} "
                         f"({', '.join(c['name'] for c in categories)}): cut into another folder")
    return coco


def _drop_scene(coco: dict[str, Any], source: str, names: set[str], path: Path) -> set[str]:
    """Remove the entries of an earlier cut of `source`; return their file names."""
    mine = {im["id"] for im in coco["images"] if im.get(SCENE_KEY) == source}
    for im in coco["images"]:
        if im["id"] not in mine and im["file_name"] in names:
            raise InputError(f"{path}: chip {im['file_name']} already comes from {im.get(SCENE_KEY, 'another scene')}; "
                             f"scenes with the same name need separate chip folders")
    stale = {im["file_name"] for im in coco["images"] if im["id"] in mine}
    coco["images"] = [im for im in coco["images"] if im["id"] not in mine]
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] not in mine]
    return stale


def make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write to output folder {folder.parent}: {exc.strerror or exc}") from None


def _write_chip(path: Path, sample: RawSample, transform: Affine, meta: dict[str, Any]) -> None:
    # The window was read into an array of the scene's dtype, so casting back is exact.
    image = sample.image.astype(meta["dtype"])
    if meta["nodata"] is not None:
        image[:, ~sample.valid] = meta["nodata"]
    count, height, width = image.shape
    with atomic_write(path, suffix=".tif") as temporary, gdal_env(), rasterio.open(
            temporary, "w", driver="GTiff", width=width, height=height, count=count, dtype=meta["dtype"],
            crs=meta["crs"], transform=transform, nodata=meta["nodata"], compress="deflate",
            alpha="unspecified") as dst:  # a fourth 8-bit band is data (near-infrared), not alpha
        dst.write(image)
        dst.descriptions = meta["descriptions"]
        if meta["nodata"] is None and not sample.valid.all():
            dst.write_mask(sample.valid.astype(np.uint8) * 255)


def _chip_annotations(sample: RawSample, info: SceneInfo, transform: Affine, size: int,
                      config: DatasetConfig) -> list[dict[str, Any]]:
    """COCO annotations (without ids) of one chip, in chip pixels."""
    objects, regions = config.object_classes, config.region_classes
    ids = {c.name: i + 1 for i, c in enumerate(config.classes)}
    out = []
    centre = sample.corners.mean(axis=1) if len(sample.corners) else np.zeros((0, 2))
    inside = (centre >= 0).all(axis=1) & (centre < size).all(axis=1)
    for corners, k, known in zip(sample.corners[inside], sample.classes[inside], sample.directional[inside],
                                 strict=True):
        spec = objects[int(k)]
        out.append(object_annotation(corners, ids[spec.name], (size, size), spec.directional and bool(known)))
    to_pixels = ~transform
    matrix = [to_pixels.a, to_pixels.b, to_pixels.d, to_pixels.e, to_pixels.c, to_pixels.f]
    chip = box(0, 0, size, size)
    for spec, polygons in zip(regions, info.labels.regions, strict=True):
        for polygon in polygons:
            piece = affinity.affine_transform(polygon, matrix).intersection(chip)
            out += [region_annotation(p, ids[spec.name]) for p in polygon_parts(piece)]
    return out


def object_annotation(corners: np.ndarray, category: int, limits: tuple[int, int], with_heading: bool
                      ) -> dict[str, Any]:
    """The COCO annotation (without ids) of an object's pixel corners (4, 2), front edge first, in a chip of
    `limits` (width, height) pixels, which clip its bbox."""
    lo = np.clip(corners.min(axis=0), 0, limits)
    hi = np.clip(corners.max(axis=0), 0, limits)
    sides = np.linalg.norm(corners[[1, 2]] - corners[[0, 1]], axis=1)
    attributes = {"heading_deg": round(heading_deg(corners), DECIMALS)} if with_heading else {}
    return {"category_id": category, "segmentation": [_flat(corners)], "bbox": _flat(np.r_[lo, hi - lo]),
            "area": round(float(sides[0] * sides[1]), DECIMALS), "iscrowd": 0, "attributes": attributes}


def region_annotation(piece: Polygon, category: int) -> dict[str, Any]:
    """The COCO annotation (without ids) of a region piece in chip pixels, holes kept (`hole_free_parts`)."""
    x0, y0, x1, y1 = piece.bounds
    rings = [_flat(np.asarray(p.exterior.coords)[:-1]) for p in hole_free_parts(piece)]
    return {"category_id": category, "segmentation": rings, "bbox": _flat(np.array([x0, y0, x1 - x0, y1 - y0])),
            "area": round(piece.area, DECIMALS), "iscrowd": 0, "attributes": {}}


def polygon_parts(geom: BaseGeometry) -> list[Polygon]:
    """The polygons of positive area in an intersection result (lines and points dropped)."""
    if geom.geom_type == "Polygon":
        return [geom] if geom.area > 0 else []
    if hasattr(geom, "geoms"):
        return [p for g in geom.geoms for p in polygon_parts(g)]
    return []


def hole_free_parts(polygon: Polygon) -> list[Polygon]:
    """Polygons without holes whose union is `polygon`: cut by a vertical line through every hole."""
    if not polygon.interiors:
        return [polygon]
    _, y0, _, y1 = polygon.bounds
    xs = [Polygon(hole).representative_point().x for hole in polygon.interiors]
    cuts = MultiLineString([[(x, y0 - 1), (x, y1 + 1)] for x in xs])
    return [p for p in shapely.ops.split(polygon, cuts).geoms if p.area > 0]


def heading_deg(corners: np.ndarray) -> float:
    """Compass azimuth (degrees, [0, 360)) of the front edge of pixel corners (4, 2): 0 = up (-y), 90 = +x."""
    front = (corners[0] + corners[1]) / 2 - corners.mean(axis=0)
    return math.degrees(math.atan2(front[0], -front[1])) % 360.0


def _flat(values: np.ndarray) -> list[float]:
    return [round(float(v), DECIMALS) for v in np.asarray(values).ravel()]


def read_json(path: Path) -> dict[str, Any]:
    try:
        coco = json.loads(path.read_text())
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(coco, dict) or not all(isinstance(coco.get(k), list) for k in
                                             ("images", "annotations", "categories")):
        raise InputError(f"{path} is not a COCO file: it needs lists 'images', 'annotations' and 'categories'")
    return coco


def write_json_atomic(path: Path, content: dict[str, Any]) -> None:
    """`content` as JSON at `path`, appearing whole (`write_text_atomic`: a full disk is an `OutputError`)."""
    write_text_atomic(path, json.dumps(content))
