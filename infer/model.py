"""The deployable model: an ONNX file that describes itself, run with ONNX Runtime.

An exported sitewatch model (see `python -m train export`) carries in its
ONNX metadata everything the runtime needs (classes, bands, normalization,
GSD, tile, overlap, stride) under the key `sitewatch` as JSON; `ModelInfo`
is that record. `OnnxModel` opens the file on CPU or CUDA and runs batches.

torch-free on purpose: an inference node installs numpy and onnxruntime,
not torch, and not even the `onnx` package (metadata is read through
onnxruntime's own `get_modelmeta`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from infer.decode import decode_objects
from infer.errors import InputError, UsageError

#: Metadata key holding the JSON of `ModelInfo`; the other `sitewatch.*` keys are for humans.
METADATA_KEY = "sitewatch"
#: Version of the JSON layout under `METADATA_KEY`; bump on incompatible changes.
METADATA_FORMAT = 1
#: Names of the graph outputs, in order (the same as `train.model.detector.OUTPUT_NAMES`).
OUTPUT_NAMES: tuple[str, str, str] = ("heatmap", "box", "mask")
#: Height and width of every model input must be a multiple of this (the backbone's stride 32).
INPUT_MULTIPLE = 32
KINDS = ("object", "region")
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class ClassInfo:
    """One class: `kind` is "object" (oriented boxes) or "region" (masks);
    `color` a "#rrggbb" string; `directional` objects have a front (heading 0-360°)."""

    name: str
    kind: str
    color: str
    directional: bool = False


@dataclass(frozen=True)
class ModelInfo:
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
        provenance: how the model came to be (backbone, steps, train_seconds,
            device, dataset, exported_at, precision, ...); free-form, JSON-able,
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
    provenance: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ValueError("invalid model info: " + "; ".join(problems))

    @property
    def object_classes(self) -> tuple[ClassInfo, ...]:
        return tuple(c for c in self.classes if c.kind == "object")

    @property
    def region_classes(self) -> tuple[ClassInfo, ...]:
        return tuple(c for c in self.classes if c.kind == "region")

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
            classes = tuple(ClassInfo(str(c["name"]), str(c["kind"]), str(c["color"]),
                                      bool(c.get("directional", False))) for c in record.pop("classes"))
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
                provenance=dict(record.pop("provenance", {}) or {}),
            )
        except InputError:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            # json.JSONDecodeError is a ValueError; __post_init__ raises ValueError.
            detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0]
            raise InputError(f"malformed sitewatch metadata: {detail}") from None


def _problems(info: ModelInfo) -> list[str]:
    out = []
    names = [c.name for c in info.classes]
    if len(set(names)) != len(names):
        out.append(f"duplicate class names in {names}")
    for c in info.classes:
        if c.kind not in KINDS:
            out.append(f"class {c.name!r} has kind {c.kind!r}, not one of {KINDS}")
    if not any(c.kind == "object" for c in info.classes) or not any(c.kind == "region" for c in info.classes):
        out.append("needs at least one object class and one region class")
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
    return out


def select_providers(device: str, available: list[str]) -> list[str]:
    """ONNX Runtime execution providers for `device`, best first, from those `available`.

    "cuda": TensorRT (when present), then CUDA, then CPU for any op the GPU
    providers leave; `InputError` when onnxruntime has no GPU provider at all.
    "cpu": the CPU provider alone.
    """
    if device not in DEVICES:
        raise UsageError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cpu":
        return ["CPUExecutionProvider"]
    gpu = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available]
    if not gpu:
        raise InputError("CUDA requested but onnxruntime has no CUDA provider; "
                         "install onnxruntime-gpu or use --device cpu")
    return [*gpu, "CPUExecutionProvider"]


class OnnxModel:
    """An exported sitewatch model opened with ONNX Runtime.

    Args:
        path: the .onnx file written by `python -m train export`.
        device: "cpu" or "cuda" (see `select_providers`).
        threads: CPU threads ONNX Runtime may use inside one run; None = its default (all cores).

    Raises `InputError` (one line) for a missing file, a file that is not
    ONNX, a model without sitewatch metadata, or CUDA that cannot be used.

    Attributes: `info` (`ModelInfo`), `providers` (those the session really
    uses, best first), `input_name`, `path`.
    """

    def __init__(self, path: str | Path, device: str = "cpu", threads: int | None = None) -> None:
        import onnxruntime as ort  # deferred: `import infer` stays cheap for commands that never run a model

        self.path = Path(path)
        if threads is not None and threads < 1:
            raise UsageError(f"threads must be >= 1, got {threads}")
        providers = select_providers(device, ort.get_available_providers())
        if not self.path.is_file():
            raise InputError(f"model file not found: {self.path}")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        # ORT logs (warning level) every CPU fallback of a GPU run; those are expected, not news.
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own pybind exception types, not a common base
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InputError(f"{self.path} is not a loadable ONNX model: {first[:300]}") from None
        self.providers: list[str] = list(self._session.get_providers())
        if device == "cuda" and self.providers == ["CPUExecutionProvider"]:
            # ORT silently falls back to CPU when the CUDA libraries fail to load.
            raise InputError("CUDA requested but onnxruntime could not start its CUDA provider "
                             "(check the CUDA/cuDNN libraries); use --device cpu to run on CPU")
        metadata = self._session.get_modelmeta().custom_metadata_map
        try:
            self.info = ModelInfo.from_metadata(metadata)
        except InputError as exc:
            raise InputError(f"{self.path}: {exc}") from None
        inputs = self._session.get_inputs()
        outputs = [o.name for o in self._session.get_outputs()]
        if len(inputs) != 1 or outputs != list(OUTPUT_NAMES):
            raise InputError(f"{self.path}: expected one input and outputs {list(OUTPUT_NAMES)}, "
                             f"got {len(inputs)} inputs and {outputs}")
        self.input_name: str = inputs[0].name
        channels = inputs[0].shape[1]
        if isinstance(channels, int) and channels != len(self.info.bands):
            raise InputError(f"{self.path}: graph takes {channels} bands but its metadata lists "
                             f"{len(self.info.bands)}")

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r}, providers={self.providers})"

    def run(self, batch: NDArray[np.floating]) -> tuple[NDArray[np.float32], NDArray[np.float32],
                                                          NDArray[np.float32]]:
        """Run the network on a normalized batch.

        Args:
            batch: float32 `(B, C, H, W)` from `normalize`; C = len(info.bands),
                H and W multiples of 32.

        Returns float32 numpy `(heatmap (B, n_object, H/s, W/s), box (B, 7, H/s,
        W/s), mask (B, n_region, H, W))` with s = `info.stride`; layouts as
        documented in `infer.decode`.
        """
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1] != len(self.info.bands):
            raise ValueError(f"batch must be (B, {len(self.info.bands)}, H, W), got shape {batch.shape}")
        if batch.shape[2] % INPUT_MULTIPLE or batch.shape[3] % INPUT_MULTIPLE:
            raise ValueError(f"batch height and width must be multiples of {INPUT_MULTIPLE}, "
                             f"got {batch.shape[2]}x{batch.shape[3]}")
        heatmap, box, mask = self._session.run(list(OUTPUT_NAMES), {self.input_name: batch})
        return heatmap, box, mask

    def normalize(self, pixels: NDArray[np.number], valid: NDArray[np.bool_] | None = None) -> NDArray[np.float32]:
        """Raw digital numbers → model input, `(pixels - mean) / std` per band.

        Args:
            pixels: `(C, H, W)` or `(B, C, H, W)` in the raster's own units.
            valid: optional bool mask `(H, W)` or `(B, H, W)` (broadcast over
                bands); invalid pixels (nodata, outside the scene) become 0,
                the mean of the training data.

        Returns float32 with the shape of `pixels`.
        """
        pixels = np.asarray(pixels)
        if pixels.ndim not in (3, 4) or pixels.shape[-3] != len(self.info.bands):
            raise ValueError(f"pixels must be (C, H, W) or (B, C, H, W) with C = {len(self.info.bands)}, "
                             f"got shape {pixels.shape}")
        shape = (len(self.info.bands), 1, 1)
        mean = np.asarray(self.info.mean, dtype=np.float32).reshape(shape)
        std = np.asarray(self.info.std, dtype=np.float32).reshape(shape)
        out = pixels.astype(np.float32)  # a copy, normalized in place
        out -= mean
        out *= np.float32(1.0) / std
        if valid is not None:
            valid = np.asarray(valid, dtype=bool)
            expected = pixels.shape[:-3] + pixels.shape[-2:]
            if valid.shape != expected:
                raise ValueError(f"valid must have shape {expected}, got {valid.shape}")
            # assignment, not multiplication: nodata may be NaN, and NaN * 0 is NaN.
            np.copyto(out, np.float32(0.0), where=~np.expand_dims(valid, -3))
        return out


@dataclass(frozen=True)
class DetectionComparison:
    """How the decoded detections of two runs differ (see `compare_detections`).

    `objects`, `region_pixels`: what the reference run found. Mismatches:
    objects without a partner in the other run, pixels decided differently.
    `borderline`: differing decisions whose reference score or probability
    lies within the comparison's margin of the threshold, where rounding alone
    can flip them; not counted as mismatches.
    """

    objects: int
    object_mismatches: int
    region_pixels: int
    pixel_mismatches: int
    borderline: int

    @property
    def identical(self) -> bool:
        return self.object_mismatches == 0 and self.pixel_mismatches == 0


def compare_detections(reference: Sequence[NDArray[np.floating]], candidate: Sequence[NDArray[np.floating]],
                       score_threshold: float = 0.3, mask_threshold: float = 0.5, position_px: float = 1e-2,
                       angle_rad: float = 1e-3, margin: float = 0.0) -> DetectionComparison:
    """Do two runs of a model (e.g. PyTorch and ONNX Runtime, or CPU and GPU) decide the same?

    `reference`, `candidate`: `(heatmap (C, h, w), box (7, h, w), mask (R, H, W))`
    of ONE image each. Objects are decoded with `infer.decode.decode_objects`
    at `score_threshold`; two match when class agrees, centre, length and
    width within `position_px` and heading within `angle_rad`. Regions are
    pixels above `mask_threshold`.
    """
    a = decode_objects(reference[0], reference[1], score_threshold)
    b = decode_objects(candidate[0], candidate[1], score_threshold)
    near = a.classes[:, None] == b.classes[None, :]
    near &= np.all(np.abs(a.rboxes[:, None, :4] - b.rboxes[None, :, :4]) <= position_px, axis=-1)
    turn = np.abs(a.rboxes[:, None, 4] - b.rboxes[None, :, 4]).astype(np.float64) % (2 * np.pi)
    near &= np.minimum(turn, 2 * np.pi - turn) <= angle_rad
    unmatched = np.concatenate([a.scores[~near.any(axis=1)], b.scores[~near.any(axis=0)]])
    edge_objects = int(np.sum(np.abs(unmatched - score_threshold) <= margin))
    ref_mask, cand_mask = np.asarray(reference[2]), np.asarray(candidate[2])
    flips = (ref_mask > mask_threshold) != (cand_mask > mask_threshold)
    edge_pixels = int(np.sum(flips & (np.abs(ref_mask - mask_threshold) <= margin)))
    return DetectionComparison(len(a), len(unmatched) - edge_objects, int(np.sum(ref_mask > mask_threshold)),
                               int(flips.sum()) - edge_pixels, edge_objects + edge_pixels)


__all__ = ["ClassInfo", "DetectionComparison", "ModelInfo", "OnnxModel", "METADATA_KEY", "OUTPUT_NAMES",
           "compare_detections", "select_providers"]
