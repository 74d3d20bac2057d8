"""Our training scenes as an Ultralytics YOLO dataset: 8-bit RGB chips and box labels.

The chips are cut by `train chips` (the same grid code our own validation
uses) and converted: the scene's pixel values are stretched to 8 bits with
one fixed per-band scale (what a YOLO user would do with 11-bit imagery), and
every labeled thing becomes the axis-aligned box COCO gives it: objects the
box of their oriented rectangle, regions the box of each connected piece, the
same boxes `infer evaluate` scores. With `obb`, the labels are Ultralytics'
oriented format instead (`class x1 y1 … x4 y4`, normalized): objects their
four corners, clipped to the chip as DOTA's chip cutters do, regions the four
corners of the same axis-aligned box, which is what they are scored by. The
scale is saved with the dataset so SAHI inference stretches scenes the same
way.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from rasterio.enums import Resampling

from infer.geo.rasterenv import open_raster
from train.data.chips import ANNOTATIONS, cut_chips
from train.data.config import DatasetConfig

SCALE_FILE = "rgb_scale.json"


def band_scale(scenes: list[Path], percentile: float = 99.5) -> list[float]:
    """Per-band value mapped to 255, from decimated reads of the training scenes."""
    samples = []
    for scene in scenes:
        with open_raster(scene) as src:
            side = 512
            pixels = src.read([1, 2, 3], out_shape=(3, side, side), resampling=Resampling.nearest)
            samples.append(pixels.reshape(3, -1))
    values = np.concatenate(samples, axis=1).astype(np.float32)
    return [float(np.percentile(band[band > 0], percentile)) for band in values]


def to_rgb8(pixels: np.ndarray, scale: list[float]) -> np.ndarray:
    """(3, H, W) raw values → (H, W, 3) uint8 with the dataset's fixed stretch."""
    out = pixels[:3].astype(np.float32) * (255.0 / np.asarray(scale, np.float32))[:, None, None]
    return np.clip(np.moveaxis(out, 0, -1), 0, 255).astype(np.uint8)


def _box_row(k: int, ann: dict, w: int, h: int) -> str | None:
    x, y, bw, bh = ann["bbox"]
    x0, y0, x1, y1 = max(0.0, x), max(0.0, y), min(float(w), x + bw), min(float(h), y + bh)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return f"{k} {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} {(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}"


def _oriented_row(k: int, ann: dict, w: int, h: int, is_object: bool) -> str | None:
    if _box_row(k, ann, w, h) is None:
        return None
    if is_object:
        corners = np.asarray(ann["segmentation"][0], np.float64).reshape(4, 2)
    else:
        x, y, bw, bh = ann["bbox"]
        corners = np.array([[x, y], [x + bw, y], [x + bw, y + bh], [x, y + bh]], np.float64)
    corners = np.clip(corners / [w, h], 0.0, 1.0)
    return f"{k} " + " ".join(f"{v:.6f}" for v in corners.ravel())


def _convert(coco_dir: Path, out: Path, split: str, scale: list[float], names: list[str],
             objects: set[str], obb: bool, prefix: str = "") -> int:
    coco = json.loads((coco_dir / ANNOTATIONS).read_text())
    category_names = {c["id"]: c["name"] for c in coco["categories"]}
    per_image: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        per_image.setdefault(ann["image_id"], []).append(ann)
    (out / "images" / split).mkdir(parents=True, exist_ok=True)
    (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    for image in coco["images"]:
        stem = prefix + Path(image["file_name"]).stem
        with open_raster(coco_dir / image["file_name"]) as src:
            pixels = src.read([1, 2, 3])
        Image.fromarray(to_rgb8(pixels, scale)).save(out / "images" / split / f"{stem}.png")
        w, h = image["width"], image["height"]
        rows = []
        for ann in per_image.get(image["id"], []):
            name = category_names[ann["category_id"]]
            k = names.index(name)
            row = _oriented_row(k, ann, w, h, name in objects) if obb else _box_row(k, ann, w, h)
            if row is not None:
                rows.append(row)
        (out / "labels" / split / f"{stem}.txt").write_text("\n".join(rows) + ("\n" if rows else ""))
    return len(coco["images"])


def build_yolo_dataset(config: DatasetConfig, out: Path, size: int, train_overlap: int, obb: bool = False) -> Path:
    """Write `out/data.yaml` with train/val splits from the dataset's scenes; returns its path."""
    names = [c.name for c in config.classes]
    objects = {c.name for c in config.object_classes}
    scale = band_scale(sorted(p for folder in config.train for p in Path(folder).glob("*.tif")))
    counts = {}
    for split, folders, overlap in (("train", config.train, train_overlap), ("val", config.val, 0)):
        counts[split] = 0
        # Scenes of two folders may share a name: each folder gets its own chips and a prefix.
        for k, folder in enumerate(folders):
            coco_dir = out / (f"coco_{split}" if k == 0 else f"coco_{split}_{k}")
            for scene in sorted(Path(folder).glob("*.tif")):
                cut_chips(scene, scene.with_suffix(".geojson"), coco_dir, config, size, overlap)
            counts[split] += _convert(coco_dir, out, split, scale, names, objects, obb, "" if k == 0 else f"{k}_")
    (out / SCALE_FILE).write_text(json.dumps({"bands": list(config.bands[:3]), "value_at_255": scale,
                                               "gsd_m": config.gsd_m}) + "\n")
    data_yaml = out / "data.yaml"
    lines = [f"path: {out.resolve()}", "train: images/train", "val: images/val", "names:"]
    lines += [f"  {k}: {n}" for k, n in enumerate(names)]
    data_yaml.write_text("\n".join(lines) + "\n")
    print(f"YOLO{' OBB' if obb else ''} dataset {out}: {counts['train']} train chips, {counts['val']} val chips of {size} px")
    return data_yaml
