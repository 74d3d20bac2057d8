"""The deployable model: an ONNX file that describes itself, run with ONNX Runtime.

An exported sitewatch model (see `python -m train export`) carries in its
ONNX metadata everything the runtime needs (`infer.contract.schema.ModelInfo`:
classes, bands, normalization, GSD, tile, overlap, stride). `OnnxModel`
opens the file on CPU or CUDA, prepares raw pixels as its graph takes them
and runs batches.

torch-free on purpose: an inference node installs numpy and onnxruntime,
not torch, and not even the `onnx` package (metadata is read through
onnxruntime's own `get_modelmeta`).
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from infer.contract.schema import INPUT_MULTIPLE, VALID_INPUT, ModelInfo
from infer.errors import InputError, UsageError

DEVICES = ("cpu", "cuda")
#: ONNX Runtime's names of the element types a graph input may have, by numpy dtype name.
_ORT_TYPES = {"float32": "float", "float64": "double", "float16": "float16"}
#: ONNX Runtime's threads sleep between operators instead of spinning: a scene's reader threads and its
#: decoding share the cores with them, and a thread that spins takes the core they were to run on
#: (docs/design.md, decision 12).
SESSION_CONFIG = {"session.intra_op.allow_spinning": "0", "session.inter_op.allow_spinning": "0"}


class ModelOutputs(NamedTuple):
    """One batch's outputs; None for what the graph does not return (`ModelInfo.graph_outputs`).

    heatmap (B, n_object, H/s, W/s), box (B, 7, H/s, W/s) float32, s = `info.stride`; mask
    (B, n_region, H, W) float32 probabilities, from a graph that leaves regions to the host;
    region_class (B, H, W) uint8 and region_score (B, H, W) float32, from one that decodes them
    (`infer.contract.ingraph.decoding_regions`). Layouts as in `infer.contract.codec`.
    """

    heatmap: NDArray[np.float32] | None
    box: NDArray[np.float32] | None
    mask: NDArray[np.float32] | None = None
    region_class: NDArray[np.uint8] | None = None
    region_score: NDArray[np.float32] | None = None


def default_engine_cache() -> Path:
    """Where TensorRT keeps the engines it builds: `$XDG_CACHE_HOME/sitewatch/tensorrt` (`~/.cache/...`)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sitewatch" / "tensorrt"


def select_providers(device: str, available: list[str], engine_cache: Path | None = None
                     ) -> list[str | tuple[str, dict[str, str]]]:
    """ONNX Runtime execution providers for `device`, best first, from those `available`.

    "cuda": TensorRT (when present), then CUDA, then CPU for any op the GPU
    providers leave; `InputError` when onnxruntime has no GPU provider at all.
    TensorRT builds an engine per model and input shape, which takes minutes,
    so it keeps them in `engine_cache` (default `default_engine_cache()`) for
    the next process and the next scene. "cpu": the CPU provider alone.
    """
    if device not in DEVICES:
        raise UsageError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cpu":
        return ["CPUExecutionProvider"]
    providers: list[str | tuple[str, dict[str, str]]] = []
    if "TensorrtExecutionProvider" in available:
        cache = str(engine_cache or default_engine_cache())
        providers.append(("TensorrtExecutionProvider", {"trt_engine_cache_enable": "True",
                                                        "trt_engine_cache_path": cache}))
    if "CUDAExecutionProvider" in available:
        providers.append("CUDAExecutionProvider")
    if not providers:
        raise InputError("CUDA requested but onnxruntime has no CUDA provider; "
                         "install onnxruntime-gpu or use --device cpu")
    return [*providers, "CPUExecutionProvider"]


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in blocks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class OnnxModel:
    """An exported sitewatch model opened with ONNX Runtime.

    Args:
        path: the .onnx file written by `python -m train export`.
        device: "cpu" or "cuda" (see `select_providers`).
        threads: CPU threads ONNX Runtime may use inside one run; None = its default (all cores).
        engine_cache: TensorRT's engine folder (see `select_providers`).
        io_binding: run through ONNX Runtime's I/O binding: the inputs are copied to the device once and
            the outputs are allocated there and copied back once, each run. None: when the session runs on
            a GPU provider. The outputs are the same either way.

    Raises `InputError` (one line) for a missing file, a file that is not
    ONNX, a model without sitewatch metadata, or CUDA that cannot be used.

    Attributes: `info` (`ModelInfo`), `providers` (those the session really
    uses, best first), `input_name`, `path`, `io_binding`.
    """

    def __init__(self, path: str | Path, device: str = "cpu", threads: int | None = None,
                 engine_cache: Path | None = None, io_binding: bool | None = None) -> None:
        import onnxruntime as ort  # deferred: `import infer` stays cheap for commands that never run a model

        self.path = Path(path)
        if threads is not None and threads < 1:
            raise UsageError(f"threads must be >= 1, got {threads}")
        providers = select_providers(device, ort.get_available_providers(), engine_cache)
        if device == "cuda" and hasattr(ort, "preload_dlls"):
            # onnxruntime-gpu finds CUDA and cuDNN in torch's or the nvidia-* wheels' folders this way,
            # without LD_LIBRARY_PATH; a library it cannot find leaves the session on the CPU (caught below).
            ort.preload_dlls()
        if not self.path.is_file():
            raise InputError(f"model file not found: {self.path}")
        options = ort.SessionOptions()
        for key, value in SESSION_CONFIG.items():
            options.add_session_config_entry(key, value)
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
        self._output_device = "cpu" if self.providers[0] == "CPUExecutionProvider" else "cuda"
        self.io_binding: bool = self._output_device != "cpu" if io_binding is None else io_binding
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
        wanted_inputs = 1 if self.info.region_decode is None else 2
        if len(inputs) != wanted_inputs or outputs != list(self.info.graph_outputs) or (
                wanted_inputs == 2 and inputs[1].name != VALID_INPUT):
            raise InputError(f"{self.path}: expected {wanted_inputs} input(s) and outputs "
                             f"{list(self.info.graph_outputs)}, got inputs {[i.name for i in inputs]} "
                             f"and outputs {outputs}")
        self.input_name: str = inputs[0].name
        wanted = f"tensor({_ORT_TYPES.get(self.info.input_dtype.name, self.info.input_dtype.name)})"
        if inputs[0].type != wanted:
            raise InputError(f"{self.path}: its metadata says the graph takes {self.info.graph_input} "
                             f"{self.info.input_dtype.name} pixels, but its input is {inputs[0].type}")
        channels = inputs[0].shape[1]
        if isinstance(channels, int) and channels != len(self.info.bands):
            raise InputError(f"{self.path}: graph takes {channels} bands but its metadata lists "
                             f"{len(self.info.bands)}")

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r}, providers={self.providers})"

    @functools.cached_property
    def sha256(self) -> str:
        """The model file's SHA-256, read when first asked: a copy on another node, or the same checkpoint
        exported again alike, is the same model (`runfolder.run_settings`)."""
        return file_sha256(self.path)

    def run(self, batch: NDArray[np.number], valid: NDArray[np.bool_] | None = None) -> ModelOutputs:
        """Run the network on a batch made by `prepare`.

        Args:
            batch: `(B, C, H, W)` of `info.input_dtype` (see `prepare`); C = len(info.bands),
                H and W multiples of 32.
            valid: `(B, H, W)` bool, the pixels holding imagery, for a graph that decodes its regions
                (None: all of them); a graph that leaves regions to the host does not take it.

        Returns the `ModelOutputs`; a kind the model has no classes of has no output: None.
        """
        if np.asarray(batch).dtype != self.info.input_dtype:
            raise ValueError(f"batch must be {self.info.input_dtype} as `prepare` gives it, got {np.asarray(batch).dtype}")
        batch = np.ascontiguousarray(batch)
        if batch.ndim != 4 or batch.shape[1] != len(self.info.bands):
            raise ValueError(f"batch must be (B, {len(self.info.bands)}, H, W), got shape {batch.shape}")
        if batch.shape[2] % INPUT_MULTIPLE or batch.shape[3] % INPUT_MULTIPLE:
            raise ValueError(f"batch height and width must be multiples of {INPUT_MULTIPLE}, "
                             f"got {batch.shape[2]}x{batch.shape[3]}")
        feeds = {self.input_name: batch}
        if self.info.region_decode is not None:
            expected = (batch.shape[0], *batch.shape[2:])
            valid = np.ones(expected, bool) if valid is None else np.ascontiguousarray(valid, bool)
            if valid.shape != expected:
                raise ValueError(f"valid must have shape {expected}, got {valid.shape}")
            feeds[VALID_INPUT] = valid
        names = self.info.graph_outputs
        found = dict(zip(names, self._bound_run(names, feeds) if self.io_binding
                         else self._session.run(list(names), feeds), strict=True))
        return ModelOutputs(*(found.get(name) for name in ModelOutputs._fields))

    def _bound_run(self, names: tuple[str, ...], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        binding = self._session.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, value)
        for name in names:
            binding.bind_output(name, self._output_device)
        self._session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()

    def prepare(self, pixels: NDArray[np.number]) -> NDArray[np.number]:
        """Raw pixels `(C, H, W)` or `(B, C, H, W)` as the graph's input: as they are, in `info.input_dtype`
        (no copy when they have it), for a graph that normalizes them itself; `normalize`d for one that
        does not."""
        if self.info.graph_input == "raw":
            return np.asarray(pixels, self.info.input_dtype)
        return self.normalize(pixels)

    def normalize(self, pixels: NDArray[np.number], valid: NDArray[np.bool_] | None = None) -> NDArray[np.float32]:
        """Raw digital numbers → the network's input, `(pixels - mean) / std` per band, as the graph of
        an export does it itself (what a graph taking normalized float32 needs, and PyTorch).

        Args:
            pixels: `(C, H, W)` or `(B, C, H, W)` in the raster's own units.
            valid: optional bool mask `(H, W)` or `(B, H, W)` (broadcast over
                bands); invalid pixels (nodata, outside the scene) become 0,
                the mean of the training data.

        Returns a new float32 array with the shape of `pixels`.
        """
        pixels = np.asarray(pixels)
        if pixels.ndim not in (3, 4) or pixels.shape[-3] != len(self.info.bands):
            raise ValueError(f"pixels must be (C, H, W) or (B, C, H, W) with C = {len(self.info.bands)}, "
                             f"got shape {pixels.shape}")
        shape = (len(self.info.bands), 1, 1)
        mean = np.asarray(self.info.mean, dtype=np.float32).reshape(shape)
        std = np.asarray(self.info.std, dtype=np.float32).reshape(shape)
        out = pixels.astype(np.float32)
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


__all__ = ["DEVICES", "SESSION_CONFIG", "ModelOutputs", "OnnxModel", "default_engine_cache", "file_sha256",
           "select_providers"]
