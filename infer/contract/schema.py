"""The class schema and the model record an exported file carries: the contract between train and infer.

`ClassInfo` is one class and its kind (docs/design.md, decision 1);
`ClassSchema` gives anything with a `classes` tuple its object and region
classes in output order; `ModelInfo` is the JSON record stored in the ONNX
metadata (decision 6), so the file describes itself.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from infer.errors import InputError

#: Metadata key holding the JSON of `ModelInfo`; the other `sitewatch.*` keys are for humans.
METADATA_KEY = "sitewatch"
#: Version of the JSON layout under `METADATA_KEY`; bump on incompatible changes.
METADATA_FORMAT = 1
#: Names of the graph outputs, in order: `heatmap` and `box` when there are object classes, `mask` when
#: there are region classes (`ClassSchema.output_names`).
OUTPUT_NAMES: tuple[str, str, str] = ("heatmap", "box", "mask")
#: What a graph that decodes its regions itself (`ModelInfo.region_decode`) returns in place of `mask`:
#: each pixel's region class (uint8, 0 none, k + 1 region k) and that class's probability (float32, 0 none).
DECODED_REGION_OUTPUTS: tuple[str, str] = ("region_class", "region_score")
#: The second input of such a graph: (B, H, W) bool, the pixels that hold imagery (not nodata, not padding).
VALID_INPUT = "valid"
#: How a graph takes its pixels (`ModelInfo.graph_input`). "raw": the raster's own digital numbers in
#: its dtype, normalized inside the graph, so a host moves a quarter of the bytes of float32 (uint8)
#: and computes nothing per pixel; "normalized": float32 the runtime normalized (files exported before).
GRAPH_INPUTS = ("raw", "normalized")
#: Height and width of every model input must be a multiple of this (the backbone's stride 32).
INPUT_MULTIPLE = 32
#: The kinds of class: counted oriented objects, and regions (masks).
KINDS = ("object", "region")


@dataclass(frozen=True)
class ClassInfo:
    """One class: `kind` is "object" (oriented boxes) or "region" (masks);
    `color` a "#rrggbb" string; `directional` objects have a front (heading 0-360°);
    `min_area_m2`, for a region class: pieces smaller than this are not reported (specks);
    `oriented` False, for an object class without an axis (a tree crown): its objects are
    axis-aligned boxes, reported without a heading."""

    name: str
    kind: str
    color: str
    directional: bool = False
    min_area_m2: float = 0.0
    oriented: bool = True

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ClassInfo:
        """From a dataset YAML entry, a checkpoint's or the ONNX metadata's record (`asdict` of one)."""
        return cls(str(record["name"]), str(record["kind"]), str(record.get("color", "#ffffff")),
                   bool(record.get("directional", False)), float(record.get("min_area_m2", 0.0)),
                   bool(record.get("oriented", True)))


class ClassSchema:
    """Object and region classes of anything with a `classes` tuple, in output order.

    The `heatmap` output's channels are `object_classes` in order, the `mask`
    output's `region_classes`.
    """

    classes: tuple[ClassInfo, ...]

    @property
    def object_classes(self) -> tuple[ClassInfo, ...]:
        return tuple(c for c in self.classes if c.kind == "object")

    @property
    def region_classes(self) -> tuple[ClassInfo, ...]:
        return tuple(c for c in self.classes if c.kind == "region")

    @property
    def output_names(self) -> tuple[str, ...]:
        """The graph outputs a model of these classes has, in `OUTPUT_NAMES` order: a kind without
        classes has no head, so an objects-only model has no `mask` and a regions-only one no `heatmap`
        or `box`."""
        kinds = {c.kind for c in self.classes}
        return tuple(name for name in OUTPUT_NAMES if ("region" if name == "mask" else "object") in kinds)


def hex_rgb(color: str) -> tuple[int, int, int]:
    """A class colour "#rrggbb" as (red, green, blue) 0-255."""
    color = color.lstrip("#")
    return int(color[0:2], 16), int(color[2:4], 16), int(color[4:6], 16)


#: How a class colour is written everywhere it travels (checkpoints, ONNX metadata, GeoJSON, QGIS styles).
HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


def schema_problems(classes: tuple[ClassInfo, ...]) -> list[str]:
    """What is wrong with a class list, one phrase each (empty when it is usable)."""
    out = []
    names = [c.name for c in classes]
    if len(set(names)) != len(names):
        out.append(f"duplicate class names in {names}")
    for c in classes:
        if c.kind not in KINDS:
            out.append(f"class {c.name!r} has kind {c.kind!r}, not one of {KINDS}")
        if not HEX_COLOR.fullmatch(c.color):
            out.append(f"class {c.name!r}: color must be written #rrggbb, got {c.color!r}")
        if not (math.isfinite(c.min_area_m2) and c.min_area_m2 >= 0):
            out.append(f"class {c.name!r}: min_area_m2 must be a finite number >= 0, got {c.min_area_m2:g}")
        elif c.min_area_m2 and c.kind != "region":
            out.append(f"class {c.name!r}: min_area_m2 is for region classes")
        if not c.oriented and (c.kind != "object" or c.directional):
            out.append(f"class {c.name!r}: oriented: false is for object classes without a direction")
    if not classes:
        out.append("needs at least one class")
    return out


@dataclass(frozen=True)
class RegionDecode:
    """How a graph decodes its region masks itself (docs/design.md, decision 12): a pixel is in a class
    when its probability is strictly above `threshold`, each class mask is closed by a disc of
    `closing_m` metres at the model's GSD, and where classes overlap the most probable wins — what the
    host does with a graph's float `mask` (`infer.runtime.stitch.core_class_map`)."""

    threshold: float
    closing_m: float


@dataclass(frozen=True)
class ModelInfo(ClassSchema):
    """What an exported model is and what it expects.

    Attributes:
        classes: all classes in dataset order. The `heatmap` output's channels
            are `object_classes` in order, the `mask` output's `region_classes`.
        bands: input band names, in channel order.
        mean, std: per band, in raw digital numbers: model input = (pixels - mean) / std.
        gsd_m: ground sample distance the model was trained at (m per pixel);
            scenes at another GSD are resampled to it on read.
        tile: recommended tile side in pixels (a multiple of 32).
        overlap: overlap between neighbouring tiles in pixels (a multiple of 32,
            less than `tile`), more than the largest object.
        stride: input pixels per cell of the `heatmap` and `box` outputs.
        version: sitewatch version that exported the file.
        scale: raw DN of the bright end of the training data (its 99.9th
            percentile), for display stretches; None when unknown.
        dtype: pixel type the model was trained on (e.g. "uint8"); a scene of
            another type would be normalized wrongly, so it is refused.
        graph_input: "raw" or "normalized", see `GRAPH_INPUTS`; `input_dtype` is what the graph takes.
        region_decode: None when the graph returns region probabilities (`mask`) for the host to decode;
            how it decodes them itself when it returns `DECODED_REGION_OUTPUTS` and takes `VALID_INPUT`.
        provenance: how the model came to be (backbone, steps, train_seconds,
            device, dataset, checkpoint_sha256, precision, ...); free-form, JSON-able,
            not part of equality.
    """

    classes: tuple[ClassInfo, ...]
    bands: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    gsd_m: float
    tile: int
    overlap: int
    stride: int = 4
    version: str = "unknown"
    scale: float | None = None
    dtype: str | None = None  # pixel type of the training rasters; None when unknown
    graph_input: str = "normalized"
    region_decode: RegionDecode | None = None
    provenance: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ValueError("invalid model info: " + "; ".join(problems))

    @property
    def input_dtype(self) -> np.dtype:
        """The element type of the graph's `image` input: the raster's dtype for a "raw" graph (float32
        when the training dtype is unknown), float32 for a "normalized" one."""
        return np.dtype(self.dtype if self.graph_input == "raw" and self.dtype else "float32")

    @property
    def graph_outputs(self) -> tuple[str, ...]:
        """The outputs of the file's graph: the network's (`output_names`), with `mask` replaced by
        `DECODED_REGION_OUTPUTS` when the graph decodes its regions."""
        if self.region_decode is None:
            return self.output_names
        return tuple(o for name in self.output_names for o in (DECODED_REGION_OUTPUTS if name == "mask" else (name,)))

    def to_metadata(self) -> dict[str, str]:
        """ONNX `metadata_props` entries: `sitewatch` (the JSON record) plus readable summaries."""
        record = {"format": METADATA_FORMAT, **asdict(self)}
        return {
            METADATA_KEY: json.dumps(record, sort_keys=True),
            "sitewatch.version": self.version,
            "sitewatch.classes": ", ".join(f"{c.name} ({c.kind})" for c in self.classes),
            "sitewatch.bands": ", ".join(self.bands),
            "sitewatch.gsd_m": f"{self.gsd_m:g}",
            "sitewatch.tile": f"{self.tile} px, overlap {self.overlap} px",
        }

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> ModelInfo:
        """Parse `to_metadata`'s output. Raises `InputError` (one line) when absent or malformed."""
        text = metadata.get(METADATA_KEY)
        if text is None:
            raise InputError("no sitewatch metadata (export the model with `python -m train export`)")
        try:
            record = json.loads(text)
            if not isinstance(record, dict):
                raise TypeError("not a JSON object")
            fmt = record.pop("format", None)
            if fmt != METADATA_FORMAT:
                raise InputError(f"sitewatch metadata format {fmt!r} is not supported "
                                 f"(this sitewatch reads format {METADATA_FORMAT}); re-export the model")
            classes = tuple(ClassInfo.from_record(c) for c in record.pop("classes"))
            return cls(
                classes=classes,
                bands=tuple(str(b) for b in record.pop("bands")),
                mean=tuple(float(v) for v in record.pop("mean")),
                std=tuple(float(v) for v in record.pop("std")),
                gsd_m=float(record.pop("gsd_m")),
                tile=int(record.pop("tile")),
                overlap=int(record.pop("overlap")),
                stride=int(record.pop("stride", 4)),
                version=str(record.pop("version", "unknown")),
                scale=None if record.get("scale") is None else float(record.pop("scale")),
                dtype=None if record.get("dtype") is None else str(record.pop("dtype")),
                graph_input=str(record.pop("graph_input", "normalized")),
                region_decode=_region_decode(record.pop("region_decode", None)),
                provenance=dict(record.pop("provenance", {}) or {}),
            )
        except InputError:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            # json.JSONDecodeError is a ValueError; __post_init__ raises ValueError.
            detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0]
            raise InputError(f"malformed sitewatch metadata: {detail}") from None


def _region_decode(record: Mapping[str, Any] | None) -> RegionDecode | None:
    if record is None:
        return None
    return RegionDecode(float(record["threshold"]), float(record["closing_m"]))


def _problems(info: ModelInfo) -> list[str]:
    out = schema_problems(info.classes)
    if not info.bands:
        out.append("no bands")
    if len(info.mean) != len(info.bands) or len(info.std) != len(info.bands):
        out.append(f"{len(info.bands)} bands but {len(info.mean)} means and {len(info.std)} stds")
    if not all(np.isfinite(s) and s > 0 for s in info.std) or not all(np.isfinite(m) for m in info.mean):
        out.append("mean must be finite and std finite and > 0")
    if not (np.isfinite(info.gsd_m) and info.gsd_m > 0):
        out.append(f"gsd_m must be > 0, got {info.gsd_m}")
    if info.tile <= 0 or info.tile % INPUT_MULTIPLE:
        out.append(f"tile must be a positive multiple of {INPUT_MULTIPLE}, got {info.tile}")
    if not 0 <= info.overlap < info.tile or info.overlap % INPUT_MULTIPLE:
        out.append(f"overlap must be a multiple of {INPUT_MULTIPLE} in [0, tile), got {info.overlap}")
    if info.stride <= 0:
        out.append(f"stride must be > 0, got {info.stride}")
    if info.graph_input not in GRAPH_INPUTS:
        out.append(f"graph_input must be one of {GRAPH_INPUTS}, got {info.graph_input!r}")
    decode = info.region_decode
    if decode is not None:
        if not info.region_classes:
            out.append("region_decode needs region classes")
        if not (math.isfinite(decode.threshold) and 0 <= decode.threshold < 1):
            out.append(f"region_decode threshold must lie in [0, 1), got {decode.threshold:g}")
        if not (math.isfinite(decode.closing_m) and decode.closing_m >= 0):
            out.append(f"region_decode closing_m must be a finite number >= 0, got {decode.closing_m:g}")
    return out


__all__ = ["DECODED_REGION_OUTPUTS", "GRAPH_INPUTS", "INPUT_MULTIPLE", "KINDS", "METADATA_FORMAT", "METADATA_KEY", "OUTPUT_NAMES", "VALID_INPUT",
           "ClassInfo", "ClassSchema", "ModelInfo", "RegionDecode", "hex_rgb", "schema_problems"]
