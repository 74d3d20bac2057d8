"""Dataset definitions: the YAML files under `datasets/`.

A definition names the classes (each an `object` — counted, oriented boxes —
or a `region` — areas, masks), the bands, the ground sample distance and
where the training and validation data are. Paths are relative to the YAML.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from PIL import ImageColor

from infer.contract.schema import KINDS, ClassInfo, ClassSchema, schema_problems
from infer.errors import InputError


@dataclass(frozen=True)
class DatasetConfig(ClassSchema):
    name: str
    classes: tuple[ClassInfo, ...]
    bands: tuple[str, ...]
    gsd_m: float
    train: tuple[Path, ...]
    val: tuple[Path, ...]
    source: Path
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    extra: dict = field(default_factory=dict)

    def class_index(self) -> dict[str, tuple[str, int]]:
        """Class name → (kind, index within its kind)."""
        out = {c.name: ("object", i) for i, c in enumerate(self.object_classes)}
        out.update({c.name: ("region", i) for i, c in enumerate(self.region_classes)})
        return out


def _paths(value, base: Path, key: str, source: Path) -> tuple[Path, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in items):
        raise InputError(f"{source}: '{key}' must be a path or a list of paths")
    return tuple((base / v).resolve() for v in items)


def _hex_color(value: object, name: object, source: Path) -> str:
    """A class colour as "#rrggbb", from any form Pillow reads ("#f44", "#ff4040", "red", "rgb(255,64,64)")."""
    try:
        red, green, blue = ImageColor.getrgb(str(value))[:3]
    except ValueError:
        raise InputError(f"{source}: class {name!r}: color {value!r} is not a colour (write #rrggbb, or a CSS "
                         "colour name)") from None
    return f"#{red:02x}{green:02x}{blue:02x}"


def load_dataset_config(path: str | Path) -> DatasetConfig:
    """Read and validate a dataset YAML; every problem is one clear line."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError(f"dataset definition not found: {path}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a mapping with classes, bands, gsd_m")
    for key in ("classes", "bands", "gsd_m"):
        if key not in raw:
            raise InputError(f"{path}: missing '{key}'")
    if not isinstance(raw["classes"], list):
        raise InputError(f"{path}: 'classes' must be a list of classes")
    classes = []
    for entry in raw["classes"]:
        if not isinstance(entry, dict) or "name" not in entry or entry.get("kind") not in KINDS:
            raise InputError(f"{path}: each class needs a name and a kind in {KINDS}, got {entry!r}")
        if "color" in entry:
            entry = {**entry, "color": _hex_color(entry["color"], entry["name"], path)}
        try:
            classes.append(ClassInfo.from_record(entry))
        except (TypeError, ValueError):
            raise InputError(f"{path}: class {entry['name']!r} has a value that is not a number where one "
                             f"is expected: {entry!r}") from None
    problems = schema_problems(tuple(classes))
    if problems:
        raise InputError(f"{path}: " + "; ".join(problems))
    if not isinstance(raw["bands"], list) or not raw["bands"]:
        raise InputError(f"{path}: 'bands' must list the images' bands, at least one, got {raw['bands']!r}")
    bands = tuple(str(b) for b in raw["bands"])
    gsd_m = raw["gsd_m"]
    if isinstance(gsd_m, bool) or not isinstance(gsd_m, int | float) or not (math.isfinite(gsd_m) and gsd_m > 0):
        raise InputError(f"{path}: 'gsd_m' must be a positive number of metres per pixel, got {gsd_m!r}")
    stats = raw.get("normalization") or {}
    mean, std = stats.get("mean"), stats.get("std")
    for key, value in (("mean", mean), ("std", std)):
        if value is not None and len(value) != len(bands):
            raise InputError(f"{path}: normalization {key} has {len(value)} values for {len(bands)} bands")
    base = path.parent
    known = {"name", "description", "classes", "bands", "gsd_m", "train", "val", "normalization"}
    return DatasetConfig(
        name=str(raw.get("name", path.stem)),
        classes=tuple(classes),
        bands=bands,
        gsd_m=float(gsd_m),
        train=_paths(raw.get("train"), base, "train", path),
        val=_paths(raw.get("val"), base, "val", path),
        source=path.resolve(),
        mean=tuple(float(v) for v in mean) if mean is not None else None,
        std=tuple(float(v) for v in std) if std is not None else None,
        extra={k: v for k, v in raw.items() if k not in known},
    )
