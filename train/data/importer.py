"""A labeled image set of another format (`infer.contract.label_formats`) as chip folders for training.

`import_images` maps the source's class names onto the dataset's, splits the
images into training and validation by image (seeded), and writes
`OUT/train` and `OUT/val`, each a chip folder (`annotations.json` +
`images/`, the conventions of `train.data.chips`). An image no larger than
`max_side` is copied as it is; a larger one is cut into `max_side` tiles
that overlap by `overlap` pixels, an object going to each tile that holds its
centre. A box labeled with a region class becomes that rectangle of region.
"""

from __future__ import annotations

import shutil
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window
from shapely.geometry import Polygon, box

from infer.contract.label_formats import LabeledImage, class_key
from infer.errors import InputError, OutputError, UsageError
from infer.geo.rasterenv import gdal_env
from train.data.chip_folder import front_edge_first
from train.data.chips import (
    ANNOTATIONS,
    IMAGES,
    coco_categories,
    make_folder,
    object_annotation,
    polygon_parts,
    region_annotation,
    write_json_atomic,
)
from train.data.config import DatasetConfig

#: Splits written, in order.
SPLITS = ("train", "val")


def class_mapping(sources: set[str], config: DatasetConfig, explicit: Mapping[str, str]) -> dict[str, str | None]:
    """Source class name → dataset class name (None: left out, from an explicit `NAME=`); `UsageError` naming
    what cannot be mapped."""
    known = {class_key(c.name): c.name for c in config.classes}
    out: dict[str, str | None] = {}
    for name, target in explicit.items():
        if target and target not in {c.name for c in config.classes}:
            raise UsageError(f"--class {name}={target}: {target} is not a class of dataset {config.name} "
                             f"({', '.join(c.name for c in config.classes)})")
        out[name] = target or None
    unmapped = sorted(n for n in sources if n not in out and class_key(n) not in known)
    if unmapped:
        raise UsageError(f"source classes {', '.join(map(repr, unmapped))} are not classes of dataset {config.name} "
                         f"({', '.join(c.name for c in config.classes)}); map them with --class NAME=CLASS "
                         f"or leave them out with --class NAME=")
    out.update({n: known[class_key(n)] for n in sources if n not in out})
    return out


def split_images(images: Sequence[LabeledImage], val_fraction: float, seed: int
                 ) -> dict[str, list[LabeledImage]]:
    """Images split by a seeded shuffle: round(fraction x count) of them, at least one, for validation."""
    if not 0 <= val_fraction < 1:
        raise UsageError(f"--val-fraction must be in [0, 1), got {val_fraction:g}")
    if val_fraction == 0:
        return {"train": list(images), "val": []}
    if len(images) < 2:
        raise UsageError(f"{len(images)} image(s) cannot be split into training and validation; import with "
                         "--val-fraction 0 and point the dataset's val: at another import")
    order = np.random.default_rng(seed).permutation(len(images))
    count = min(len(images) - 1, max(1, round(val_fraction * len(images))))
    chosen = set(order[:count].tolist())
    return {"train": [im for i, im in enumerate(images) if i not in chosen],
            "val": [im for i, im in enumerate(images) if i in chosen]}


@dataclass(frozen=True)
class ImportReport:
    """What an import wrote: per split its chips and labels per class, and where."""

    out: Path
    chips: dict[str, int]
    labels: dict[str, Counter]
    dropped: Counter

    def lines(self) -> list[str]:
        out = []
        for split in SPLITS:
            if self.chips.get(split):
                counts = ", ".join(f"{n} {name}" for name, n in sorted(self.labels[split].items())) or "no labels"
                out.append(f"{split}: {self.chips[split]} chips ({counts}) -> {self.out / split}")
        if self.dropped:
            out.append("left out: " + ", ".join(f"{n} {name}" for name, n in sorted(self.dropped.items())))
        return out


def import_images(images: Sequence[LabeledImage], config: DatasetConfig, out: Path, val_fraction: float = 0.2, seed: int = 0, max_side: int = 1024, overlap: int = 0,
                  explicit: Mapping[str, str] | None = None) -> ImportReport:
    """Write `out/train` and `out/val` chip folders from `images` (see the module docstring)."""
    if not images:
        raise InputError("the source holds no images")
    if max_side < 32 or not 0 <= overlap < max_side:
        raise UsageError(f"--max-side must be >= 32 and --overlap in [0, max-side), got {max_side} and {overlap}")
    mapping = class_mapping({label.name for im in images for label in im.labels}, config, explicit or {})
    splits = split_images(images, val_fraction, seed)
    for split in SPLITS:
        if (out / split).exists():
            raise UsageError(f"{out / split} already exists; import into an empty --out")
    partial = out / ".import.partial"  # each split appears whole, or not at all
    shutil.rmtree(partial, ignore_errors=True)
    chips, labels, dropped = {}, {}, Counter()
    try:
        for split in SPLITS:
            if not splits[split]:
                continue
            folder = partial / split
            make_folder(folder / IMAGES)
            coco = {"info": {"description": "sitewatch import", "dataset": config.name}, "images": [],
                    "annotations": [], "categories": coco_categories(config)}
            counts: Counter = Counter()
            for image in splits[split]:
                _add_image(coco, folder, image, config, mapping, max_side, overlap, counts, dropped)
            write_json_atomic(folder / ANNOTATIONS, coco)
            chips[split], labels[split] = len(coco["images"]), counts
        for split in chips:
            (partial / split).rename(out / split)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return ImportReport(out, chips, labels, dropped)


def _add_image(coco: dict, folder: Path, image: LabeledImage, config: DatasetConfig, mapping: Mapping[str, str | None],
               max_side: int, overlap: int, counts: Counter, dropped: Counter) -> None:
    ids = {c.name: i + 1 for i, c in enumerate(config.classes)}
    kinds = {c.name: c.kind for c in config.classes}
    dropped.update(label.name for label in image.labels if mapping[label.name] is None)
    for col, row, width, height in _tiles(image.width, image.height, max_side, overlap):
        name = _chip_name(folder, image.image, col, row, whole=(width, height) == (image.width, image.height))
        annotations = []
        for label in image.labels:
            target = mapping[label.name]
            if target is None:
                continue
            points = label.points - [col, row]
            if kinds[target] == "object":
                corners = points if len(points) == 4 else _rectangle(points)
                centre = corners.mean(axis=0)
                if not (0 <= centre[0] < width and 0 <= centre[1] < height):
                    continue
                annotations.append(object_annotation(front_edge_first(corners, None), ids[target], (width, height),
                                                     with_heading=False))
            else:
                piece = Polygon(points).buffer(0).intersection(box(0, 0, width, height))
                parts = polygon_parts(piece)
                annotations += [region_annotation(p, ids[target]) for p in parts]
                if not parts:
                    continue
            counts[target] += 1
        _write_chip(image.image, folder / name, col, row, width, height, whole=(width, height) == (image.width,
                                                                                                    image.height))
        image_id = len(coco["images"]) + 1
        coco["images"].append({"id": image_id, "file_name": name, "width": width, "height": height,
                               "source": str(image.image), "source_col": col, "source_row": row})
        first = len(coco["annotations"]) + 1
        coco["annotations"] += [{"id": first + i, "image_id": image_id, **a} for i, a in enumerate(annotations)]


def _rectangle(points: np.ndarray) -> np.ndarray:
    """The smallest rotated rectangle (4, 2) around a polygon's points: an object's box from its outline."""
    ring = np.asarray(Polygon(points).minimum_rotated_rectangle.exterior.coords)[:4]
    return ring.astype(np.float64)


def _tiles(width: int, height: int, side: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(col, row, width, height) of the tiles of an image: itself when it fits in `side`, else a grid of
    `side` tiles stepping `side - overlap`, the last of each row and column flush with the edge."""
    if width <= side and height <= side:
        return [(0, 0, width, height)]

    def starts(extent: int) -> list[int]:
        if extent <= side:
            return [0]
        step = side - overlap
        out = list(range(0, extent - side, step))
        return out + [extent - side]

    return [(c, r, min(side, width), min(side, height)) for r in starts(height) for c in starts(width)]


def _chip_name(folder: Path, source: Path, col: int, row: int, whole: bool) -> str:
    """`images/<stem><suffix>` for a whole image, `images/<stem>_<row>_<col>.png|.tif` for a tile; a stem
    already taken in the folder gets its parent folder's name in front."""
    suffix = source.suffix.lower() if whole else (".png" if source.suffix.lower() in (".png", ".jpg", ".jpeg")
                                                  else ".tif")
    stem = source.stem if whole else f"{source.stem}_{row}_{col}"
    name = f"{IMAGES}/{stem}{suffix}"
    if (folder / name).exists():
        name = f"{IMAGES}/{source.parent.name}_{stem}{suffix}"
    if (folder / name).exists():
        raise InputError(f"two source images are both named {source.name} in {source.parent.name}/; rename one")
    return name


def _write_chip(source: Path, path: Path, col: int, row: int, width: int, height: int, whole: bool) -> None:
    if whole:
        shutil.copyfile(source, path)
        return
    with gdal_env(), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(source) as src:
            pixels = src.read(window=Window(col, row, width, height))
            count, dtype = src.count, src.dtypes[0]
        if path.suffix == ".png":
            Image.fromarray(pixels[0] if len(pixels) == 1 else np.moveaxis(pixels[:3], 0, -1)).save(path)
            return
        with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=count, dtype=dtype,
                           compress="deflate") as dst:
            dst.write(pixels)


__all__ = ["SPLITS", "ImportReport", "class_mapping", "import_images", "split_images"]
