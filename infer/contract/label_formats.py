"""Labeled image sets in the common formats of detection, read into one shape: `LabeledImage`.

PASCAL VOC (XML per image, `bndbox` or roLabelImg's `robndbox`), YOLO (a
`.txt` per image, boxes `cls cx cy w h` or oriented `cls x1 y1 … x4 y4`,
normalized; class names from a `data.yaml` or `classes.txt`), DOTA (a `.txt`
per image, `x1 y1 … x4 y4 class difficult` in pixels) and COCO (one JSON,
`bbox` or polygon `segmentation` in pixels). Coordinates are pixel edges: x
right, y down, origin at the image's top-left corner. `train.data.importer`
turns the result into chip folders; `infer evaluate` reads one image's labels
as the truth of a picture without georeferencing (`read_labels`).
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from infer.errors import InputError
from infer.geo.rasterenv import open_raster

#: Image file suffixes looked for beside labels and in image folders.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


@dataclass(frozen=True)
class Label:
    """One labeled thing: its class as the source names it, and its outline `points` (N, 2) in pixels: the 4
    corners of a box (axis-aligned or oriented) or a polygon's ring."""

    name: str
    points: np.ndarray


@dataclass(frozen=True)
class LabeledImage:
    image: Path
    width: int
    height: int
    labels: tuple[Label, ...]


def class_key(name: str) -> str:
    """How class names are matched: case, spaces and hyphens do not matter (`Tree` is `tree`, `Small
    Vehicle` is `small_vehicle`)."""
    return re.sub(r"[\s\-]+", "_", name.strip()).lower()


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, read from its header."""
    with open_raster(path) as src:  # pictures in pixels are the point here: no georeferencing warning
        return src.width, src.height


def box_corners(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """The 4 corners (4, 2) of an axis-aligned box, clockwise from the top-left."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def rotated_corners(cx: float, cy: float, w: float, h: float, angle_rad: float) -> np.ndarray:
    """The 4 corners (4, 2) of a `w` x `h` box centred on (cx, cy), turned `angle_rad` clockwise (y down)."""
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    local = np.array([[-w, -h], [w, -h], [w, h], [-w, h]], dtype=np.float64) / 2
    return local @ np.array([[c, s], [-s, c]]) + np.array([cx, cy])


def _image_beside(label: Path, named: str | None, folders: tuple[Path, ...]) -> Path:
    """The image a label file describes: `named` (as the file records it) or the label's stem with an image
    suffix, looked for in `folders`; the first found, also under another image suffix (VOC files often
    name a .tif whose .png sits beside them)."""
    stems = [Path(named).stem] if named else []
    stems.append(label.stem)
    for folder in folders:
        if named and (folder / named).is_file():
            return folder / named
        for stem in stems:
            for suffix in IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES):
                candidate = folder / f"{stem}{suffix}"
                if candidate.is_file():
                    return candidate
    raise InputError(f"{label}: no image {named or label.stem + '.*'} in {', '.join(map(str, folders))}")


def _number(text: str | None, where: str) -> float:
    try:
        value = float(text or "")
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{where}: {text!r} is not a finite number")
    return value


# ----------------------------------------------------------------------------- PASCAL VOC


def read_voc(source: Path) -> list[LabeledImage]:
    """Every `*.xml` under `source`; images beside them, in a sibling `JPEGImages/` or `images/`, or in `source`."""
    files = sorted(source.rglob("*.xml")) if source.is_dir() else [source]
    if not files:
        raise InputError(f"no PASCAL VOC files (*.xml) under {source}")
    return [_voc_file(path, source if source.is_dir() else source.parent) for path in files]


def _voc_file(path: Path, root: Path) -> LabeledImage:
    tree = _voc_parse(path)
    folders = (path.parent, path.parent.parent / "JPEGImages", path.parent.parent / "images", root)
    image = _image_beside(path, tree.findtext("filename"), folders)
    width, height = image_size(image)
    return LabeledImage(image, width, height, tuple(_voc_objects(tree, path)))


def _voc_parse(path: Path) -> ET.Element:
    try:
        tree = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise InputError(f"{path} is not valid XML: {exc}") from None
    if tree.tag != "annotation":
        raise InputError(f"{path} is not a PASCAL VOC file (its root is <{tree.tag}>, not <annotation>)")
    return tree


def _voc_objects(tree: ET.Element, path: Path) -> list[Label]:
    labels = []
    for n, obj in enumerate(tree.iter("object")):
        where = f"{path}: object {n}"
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise InputError(f"{where} has no <name>")
        if (box := obj.find("bndbox")) is not None:
            x0, y0, x1, y1 = (_number(box.findtext(k), f"{where} <{k}>") for k in ("xmin", "ymin", "xmax", "ymax"))
            points = box_corners(x0, y0, x1, y1)
        elif (rbox := obj.find("robndbox")) is not None:
            cx, cy, w, h, angle = (_number(rbox.findtext(k), f"{where} <{k}>") for k in ("cx", "cy", "w", "h", "angle"))
            points = rotated_corners(cx, cy, w, h, angle)
        else:
            raise InputError(f"{where} has neither <bndbox> nor <robndbox>")
        labels.append(Label(name, points))
    return labels


# ----------------------------------------------------------------------------- YOLO


def read_yolo(source: Path) -> list[LabeledImage]:
    """Images under `source` with their `.txt` (in the parallel `labels/` folder of an `images/` one, or beside
    them); class names from `data.yaml` (`names`) or `classes.txt` in or above the folder."""
    names = _yolo_names(source)
    images = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise InputError(f"no images under {source}")
    out = []
    for image in images:
        parts = list(image.parts)
        candidates = [image.with_suffix(".txt")]
        if "images" in parts:
            i = len(parts) - 1 - parts[::-1].index("images")
            candidates.insert(0, Path(*parts[:i], "labels", *parts[i + 1:]).with_suffix(".txt"))
        label = next((c for c in candidates if c.is_file()), None)
        width, height = image_size(image)
        labels = [] if label is None else _yolo_lines(label, names, width, height)
        out.append(LabeledImage(image, width, height, tuple(labels)))
    return out


def _yolo_names(source: Path) -> list[str]:
    for folder in (source, *source.parents[:2]):
        for candidate in ("data.yaml", "dataset.yaml"):
            path = folder / candidate
            if path.is_file():
                names = (yaml.safe_load(path.read_text()) or {}).get("names")
                if isinstance(names, dict):
                    return [str(names[k]) for k in sorted(names)]
                if isinstance(names, list):
                    return [str(n) for n in names]
        for candidate in ("classes.txt", "obj.names"):
            path = folder / candidate
            if path.is_file():
                return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    raise InputError(f"no YOLO class names for {source}: put a data.yaml (names: [...]) or a classes.txt there")


def _yolo_lines(path: Path, names: list[str], width: int, height: int) -> list[Label]:
    labels = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{n}"
        if len(fields) not in (5, 9):
            raise InputError(f"{where}: expected 'class cx cy w h' or 'class x1 y1 x2 y2 x3 y3 x4 y4', "
                             f"got {len(fields)} fields")
        index = int(_number(fields[0], where))
        if not 0 <= index < len(names):
            raise InputError(f"{where}: class {index} is not one of the {len(names)} names")
        values = np.array([_number(v, where) for v in fields[1:]])
        if len(values) == 4:
            cx, cy, w, h = values * [width, height, width, height]
            points = box_corners(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        else:
            points = values.reshape(4, 2) * [width, height]
        labels.append(Label(names[index], points))
    return labels


# ----------------------------------------------------------------------------- DOTA


def read_dota(source: Path) -> list[LabeledImage]:
    """DOTA's layout: `labelTxt/*.txt` and `images/`, under `source` (or label files in `source` itself)."""
    folder = source / "labelTxt" if (source / "labelTxt").is_dir() else source
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise InputError(f"no DOTA label files (*.txt) in {folder}")
    out = []
    for path in files:
        image = _image_beside(path, None, (source / "images", folder.parent / "images", folder))
        width, height = image_size(image)
        out.append(LabeledImage(image, width, height, tuple(_dota_lines(path))))
    return out


def _dota_lines(path: Path) -> list[Label]:
    labels = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith(("imagesource:", "gsd:")):
            continue
        if len(fields) < 9:
            raise InputError(f"{path}:{n}: expected 'x1 y1 x2 y2 x3 y3 x4 y4 class [difficult]', got {line!r}")
        points = np.array([_number(v, f"{path}:{n}") for v in fields[:8]]).reshape(4, 2)
        labels.append(Label(fields[8], points))
    return labels


# ----------------------------------------------------------------------------- COCO


def read_coco(source: Path, images_needed: bool = True) -> list[LabeledImage]:
    """One COCO JSON (or the one in a folder); image `file_name`s relative to its folder or its `images/`
    (with `images_needed` False, images that are not there are listed by name, their size as recorded)."""
    path = source
    if source.is_dir():
        found = sorted(source.glob("*.json"))
        if len(found) != 1:
            raise InputError(f"{source} holds {len(found)} JSON files; name the COCO file")
        path = found[0]
    try:
        coco = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {path} as JSON: {exc}") from None
    if not isinstance(coco, dict) or not all(isinstance(coco.get(k), list) for k in ("images", "annotations",
                                                                                     "categories")):
        raise InputError(f"{path} is not a COCO file: it needs lists 'images', 'annotations' and 'categories'")
    names = {c.get("id"): str(c.get("name")) for c in coco["categories"]}
    by_image: dict = {im.get("id"): [] for im in coco["images"]}
    for ann in coco["annotations"]:
        if ann.get("iscrowd"):
            continue
        where = f"{path}: annotation {ann.get('id')}"
        if ann.get("image_id") not in by_image or ann.get("category_id") not in names:
            raise InputError(f"{where} names an image or category the file does not list")
        by_image[ann["image_id"]] += [Label(names[ann["category_id"]], points) for points in _coco_points(ann, where)]
    out = []
    for im in coco["images"]:
        name = str(im.get("file_name", ""))
        image = next((f / name for f in (path.parent, path.parent / "images") if (f / name).is_file()), None)
        if image is None and images_needed:
            raise InputError(f"{path}: image {name!r} is not in {path.parent} or its images/ folder")
        if image is None or im.get("width"):
            image = image or path.parent / name
            width, height = int(im.get("width") or 0), int(im.get("height") or 0)
        else:
            width, height = image_size(image)
        out.append(LabeledImage(image, width, height, tuple(by_image[im.get("id")])))
    return out


def _coco_points(ann: dict, where: str) -> list[np.ndarray]:
    """The outlines of an annotation: each ring of its polygon segmentation (their union is the thing), or its
    bbox."""
    segmentation = ann.get("segmentation")
    if isinstance(segmentation, list) and segmentation and isinstance(segmentation[0], list):
        rings = []
        for ring in segmentation:
            if len(ring) < 6 or len(ring) % 2:
                raise InputError(f"{where}: a polygon needs 3 or more x, y pairs")
            rings.append(np.asarray([_number(str(v), where) for v in ring]).reshape(-1, 2))
        return rings
    if isinstance(segmentation, dict):
        raise InputError(f"{where} is run-length encoded; import takes polygons and boxes")
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise InputError(f"{where} has neither a polygon nor a bbox [x, y, w, h]")
    x, y, w, h = (_number(str(v), where) for v in bbox)
    return [box_corners(x, y, x + w, y + h)]


def read_labels(label_format: str, path: Path, image: Path) -> list[Label]:
    """The labels of one image (`image`, for its size and its name in a COCO file) from its label file."""
    if label_format == "voc":
        return _voc_objects(_voc_parse(path), path)
    if label_format == "yolo":
        return _yolo_lines(path, _yolo_names(path.parent), *image_size(image))
    if label_format == "dota":
        return _dota_lines(path)
    if label_format == "coco":
        found = [im for im in read_coco(path, images_needed=False) if im.image.name == image.name]
        if not found:
            raise InputError(f"{path} lists no image named {image.name}")
        return list(found[0].labels)
    raise ValueError(f"unknown label format {label_format!r}")


#: Format name → reader of a source folder (or file).
READERS: dict[str, Callable[[Path], list[LabeledImage]]] = {
    "voc": read_voc, "yolo": read_yolo, "dota": read_dota, "coco": read_coco,
}

__all__ = ["IMAGE_SUFFIXES", "READERS", "Label", "LabeledImage", "box_corners", "class_key", "image_size",
           "read_coco", "read_dota", "read_labels", "read_voc", "read_yolo", "rotated_corners"]
