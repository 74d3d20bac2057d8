"""Static int8 quantization (QDQ) of an exported graph, calibrated on the imagery it will see.

`train export --int8 SCENE...`: the convolutions' weights become int8 (one
scale per output channel) and their inputs uint8, each with a fixed range: the
minimum and maximum that tensor took over `CALIBRATION_TILES` tiles of the
given scenes, read as `infer run` reads them (the model's GSD, no-data filled).
The file stays plain ONNX (QuantizeLinear/DequantizeLinear pairs, default
domain); ONNX Runtime's CPU provider fuses each pair around a convolution into
one integer convolution.

Why only convolutions: they are nearly all of the float graph's time (73 % on
the reference network); the adds, resizes and group norms between them stay
float, and quantizing them as well measured no faster on a 2-core AVX-512 CPU,
since each float op then needs its own dequantize and quantize.
Why the last convolution of each head stays float: the heatmap's logits are
compared with their 3 x 3 maximum to find peaks, and on a 256-step grid
neighbours would tie; box sizes and mask logits are read as numbers, not
features, so a step of their range would be an error in metres.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx

from infer.contract.ingraph import IMAGE_INPUT
from infer.contract.schema import ModelInfo
from infer.errors import InputError
from infer.runtime.reader import TileReader, open_grid

#: Tiles the ranges are taken over, spread evenly over the calibration scenes.
CALIBRATION_TILES = 32
#: Side of a calibration tile in model pixels (smaller scenes give smaller tiles).
CALIBRATION_TILE = 512
#: The only op quantized (see the module docstring).
QUANTIZED_OPS = ("Conv",)


def calibration_tiles(paths: Sequence[Path], info: ModelInfo, count: int = CALIBRATION_TILES,
                      side: int = CALIBRATION_TILE) -> Iterator[np.ndarray]:
    """Raw `(1, C, h, w)` pixels of up to `count` tiles holding imagery, spread evenly over `paths`.

    Each file is checked as `infer run` checks a scene (bands, pixel type; one-line `InputError`) before
    any is read; tiles are read one at a time, so memory holds one tile however large the scenes.
    """
    try:
        grids = [open_grid(Path(p), len(info.bands), info.gsd_m, info.dtype) for p in paths]
    except InputError as exc:
        raise InputError(f"--int8: calibration {exc}") from None
    readers = [TileReader(grid, side, 0, threads=1, ahead=1) for grid in grids]
    every = [(reader, tile) for reader in readers for tile in reader.tiles]
    if not every:
        raise InputError("--int8: no calibration scene given")
    picked = set(np.linspace(0, len(every) - 1, min(count, len(every))).round().astype(int).tolist())
    for reader in readers:
        reader.tiles = [tile for index, (owner, tile) in enumerate(every) if owner is reader and index in picked]
    for reader in readers:
        for read in reader:
            if read.valid.any():
                yield read.pixels[None]


def head_convolutions(proto: onnx.ModelProto) -> list[str]:
    """Names of the convolutions that feed a graph output through no other convolution."""
    producer = {output: node for node in proto.graph.node for output in node.output}
    found, seen = [], set()
    pending = [o.name for o in proto.graph.output]
    while pending:
        node = producer.get(pending.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type == "Conv":
            found.append(node.name)
        else:
            pending.extend(node.input)
    return sorted(found)


class _TileFeed:
    """ONNX Runtime's calibration reader (`get_next`) over `calibration_tiles`; counts what it gave."""

    def __init__(self, tiles: Iterator[np.ndarray]) -> None:
        self.tiles, self.given = tiles, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        pixels = next(self.tiles, None)
        if pixels is None:
            return None
        self.given += 1
        return {IMAGE_INPUT: pixels}


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """ORT's quantizer logs advice (run its pre-processing first) on the root logger at WARNING."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize(proto: onnx.ModelProto, info: ModelInfo, calibration: Sequence[Path]) -> tuple[onnx.ModelProto, dict]:
    """`proto` (raw pixels in, `infer.contract.ingraph.normalizing_input`) with its convolutions in int8.

    Returns the quantized graph and what describes its calibration for the provenance record
    (files by name, tiles, method). Raises `InputError` (one line) for a calibration scene the
    model cannot read, or scenes without a tile holding imagery.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    feed = _TileFeed(calibration_tiles(calibration, info))
    with tempfile.TemporaryDirectory(prefix="sitewatch-int8-") as folder, _quiet_quantizer():
        source, out = Path(folder) / "float.onnx", Path(folder) / "int8.onnx"
        onnx.save_model(proto, source)
        try:
            quantize_static(source, out, feed, quant_format=QuantFormat.QDQ, op_types_to_quantize=list(QUANTIZED_OPS),
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=head_convolutions(proto))
        except ValueError as exc:
            if feed.given == 0:
                raise InputError("--int8: no tile of the calibration scenes holds imagery (all no-data)") from None
            raise InputError(f"--int8: quantization failed: {exc}") from None
        quantized = onnx.load(out)
    record = {"files": [Path(p).name for p in calibration], "tiles": feed.given, "tile_px": CALIBRATION_TILE,
              "method": "minmax", "quantized_ops": list(QUANTIZED_OPS)}
    return quantized, record


__all__ = ["CALIBRATION_TILE", "CALIBRATION_TILES", "QUANTIZED_OPS", "calibration_tiles", "head_convolutions",
           "quantize"]
