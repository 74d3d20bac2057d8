"""A real ONNX model whose answers are known exactly, to test the scene pipeline apart from learning.

Band 0 holds 4 x 4 marker blocks aligned to the 4-pixel cells: each is one
storehouse 12 m x 8 m (at 0.5 m) facing east, centred on its block. Band 1
holds earth berm pixels. The graph is plain tensor math built with
`onnx.helper` (no torch: the runtime's tests run on an inference node) and
run by ONNX Runtime like any exported model, with sitewatch metadata.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import rasterio
from affine import Affine
from onnx import TensorProto, helper, numpy_helper

from infer.contract.ingraph import normalizing_input
from infer.contract.schema import OUTPUT_NAMES, ModelInfo
from tests.helpers import FOUR_CLASS_INFOS

LENGTH_PX, WIDTH_PX = 24.0, 16.0
ORIGIN = (677000.0, 3823000.0)


def _constant(name: str, values) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, np.float32 if not isinstance(values[0], int) else np.int64),
                                   name)


def oracle_graph(bands: int = 3) -> onnx.GraphProto:
    """image (B, `bands`, H, W) → heatmap (B, 2, H/4, W/4), box (B, 7, H/4, W/4), mask (B, 2, H, W), built op by op.

    Heatmap logits: 40 (mean of band 0 over the 4 x 4 cell - 0.5) for storehouses, -20 for trucks, kept at
    3 x 3 peaks as the exported models do; box: every cell a 24 x 16 px box facing east; mask: berm
    probability sigmoid(40 (band 1 - 0.5)), no cleared sites.
    """
    box_values = [0.0, 0.0, math.log(LENGTH_PX / 4), math.log(WIDTH_PX / 4), 1.0, 0.0, 5.0]
    constants = [
        _constant("band0", [0, 1]), _constant("band1", [1, 2]), _constant("axis1", [1]),
        _constant("half", [0.5]), _constant("gain", [40.0]), _constant("zero", [0.0]),
        _constant("truck_logit", [-20.0]), _constant("box_values", np.reshape(box_values, (1, 7, 1, 1)).tolist()),
    ]
    node = helper.make_node
    nodes = [
        node("Slice", ["image", "band0_start", "band0_end", "axis1"], ["b0"]),
        node("AveragePool", ["b0"], ["centre"], kernel_shape=[4, 4], strides=[4, 4]),
        node("Sub", ["centre", "half"], ["c1"]), node("Mul", ["c1", "gain"], ["store_logit"]),
        node("Mul", ["centre", "zero"], ["cells0"]), node("Add", ["cells0", "truck_logit"], ["truck"]),
        node("Concat", ["store_logit", "truck"], ["logits"], axis=1),
        node("MaxPool", ["logits"], ["pooled"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
        node("Equal", ["logits", "pooled"], ["is_peak"]), node("Cast", ["is_peak"], ["keep"], to=TensorProto.FLOAT),
        node("Sigmoid", ["logits"], ["probability"]), node("Mul", ["probability", "keep"], ["heatmap"]),
        node("Add", ["cells0", "box_values"], ["box"]),
        node("Slice", ["image", "band1_start", "band1_end", "axis1"], ["b1"]),
        node("Sub", ["b1", "half"], ["m1"]), node("Mul", ["m1", "gain"], ["m2"]), node("Sigmoid", ["m2"], ["berm"]),
        node("Mul", ["berm", "zero"], ["no_site"]), node("Concat", ["berm", "no_site"], ["mask"], axis=1),
    ]
    initializers = [c for c in constants if c.name not in ("band0", "band1")]
    initializers += [numpy_helper.from_array(np.array([start], np.int64), f"{band}_start")
                     for band, start in (("band0", 0), ("band1", 1))]
    initializers += [numpy_helper.from_array(np.array([end], np.int64), f"{band}_end")
                     for band, end in (("band0", 1), ("band1", 2))]
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["b", bands, "h", "w"])
    shapes = (["b", 2, "h4", "w4"], ["b", 7, "h4", "w4"], ["b", 2, "h", "w"])
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
               for name, shape in zip(OUTPUT_NAMES, shapes, strict=True)]
    return helper.make_graph(nodes, "oracle", [image], outputs, initializers)


def write_oracle(path: Path, tile: int = 256, overlap: int = 64, classes: tuple = FOUR_CLASS_INFOS,
                 graph_input: str = "raw", provenance: dict | None = None,
                 bands: tuple[str, ...] = ("red", "green", "blue")) -> Path:
    """The oracle as an export writes it (taking uint8 pixels), or with `graph_input` "normalized" as
    files exported before did (taking float32 the runtime normalized); `provenance` as an export records it;
    `bands` the model's (those after the second are read and not used)."""
    proto = helper.make_model(oracle_graph(len(bands)), opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    info = ModelInfo(classes, bands, (0.0,) * len(bands), (1.0,) * len(bands), 0.5, tile, overlap,
                     dtype="uint8", graph_input=graph_input, provenance=provenance or {})
    if graph_input == "raw":
        proto = normalizing_input(proto, info)
    onnx.checker.check_model(proto)
    helper.set_model_props(proto, info.to_metadata())
    onnx.save(proto, path)
    return path


def plant(width: int, height: int, centres: list[tuple[int, int]], berms: list[tuple[int, int, int, int]]
          ) -> np.ndarray:
    """(3, H, W) uint8 pixels with markers centred at (col, row) (each = 2 mod 4) and berm rectangles."""
    pixels = np.zeros((3, height, width), np.uint8)
    for col, row in centres:
        assert col % 4 == 2 and row % 4 == 2, "marker centres sit on cell centres"
        pixels[0, row - 2:row + 2, col - 2:col + 2] = 1
    for r0, c0, r1, c1 in berms:
        pixels[1, r0:r1, c0:c1] = 1
    return pixels


def write_scene(path: Path, pixels: np.ndarray, gsd: float = 0.5, nodata: float | None = None,
                crs: str = "EPSG:32637", transform: Affine | None = None) -> Path:
    """A tiled GeoTIFF of `pixels`, north up at `gsd` from `ORIGIN` in UTM 37N unless `crs`/`transform` say otherwise."""
    profile = {"driver": "GTiff", "width": pixels.shape[2], "height": pixels.shape[1], "count": pixels.shape[0],
               "dtype": pixels.dtype.name, "crs": crs, "tiled": True, "blockxsize": 256, "blockysize": 256,
               "transform": transform or Affine(gsd, 0, ORIGIN[0], 0, -gsd, ORIGIN[1])}
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(pixels)
    return path
