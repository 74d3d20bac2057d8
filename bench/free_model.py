"""A near-free model of the real interface: what the scene pipeline costs when the network costs nothing.

The graph takes what an exported model takes and returns what it returns
(heatmap at its stride with in-graph peak suppression, the seven box
channels, full-resolution region masks) with the same metadata, built op by
op with `onnx.helper`, so the runtime sees a real model. Its answers are a
cheap function of the image: an object at the first cell of each 8 x 8-cell
block much brighter or darker than the scene's mean, regions where 16-pixel
cells are, smoothly upsampled. On the 8192² scene of `bench.pipeline_ceiling`
(whose result records the counts) it finds about 2,500 objects and 300 region
pieces, more than a trained model finds on such a scene, so the ceiling errs
low. Everything but the network is then the pipeline's own cost.

`python -m bench.free_model --like checkpoints/reference.onnx --out free.onnx`
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from infer.contract.ingraph import decoding_regions, normalizing_input
from infer.contract.schema import OUTPUT_NAMES, ModelInfo
from infer.runtime.model import OnnxModel

#: At most one object per block of this many output cells a side.
OBJECT_BLOCK = 8
#: Region blobs are decided on cells of this many pixels, then drawn at full resolution.
REGION_CELL = 16
#: Logit gain and threshold (in normalized units) of objects and regions.
OBJECT_GAIN, OBJECT_LEVEL = 6.0, 3.0
REGION_GAIN, REGION_LEVEL = 4.0, 2.8
#: Every object is a box of this many model pixels, along and across.
BOX_PX = (20.0, 8.0)


def free_graph(info: ModelInfo) -> onnx.GraphProto:
    """image (B, C, H, W) → heatmap (B, K, H/s, W/s), box (B, 7, H/s, W/s), mask (B, R, H, W)."""
    objects, regions, stride = len(info.object_classes), len(info.region_classes), info.stride
    values = {
        "first": np.array([0], np.int64), "second": np.array([1], np.int64), "axis1": np.array([1], np.int64),
        "object_gain": np.array([OBJECT_GAIN], np.float32), "object_level": np.array([OBJECT_LEVEL], np.float32),
        "region_gain": np.array([REGION_GAIN], np.float32), "region_level": np.array([REGION_LEVEL], np.float32),
        "minus": np.array([-1.0], np.float32), "zero": np.array([0.0], np.float32),
        "box_values": np.array([0.0, 0.0, math.log(BOX_PX[0] / stride), math.log(BOX_PX[1] / stride), 1.0, 0.0, 5.0],
                               np.float32).reshape(1, 7, 1, 1),
        "upsample": np.array([1.0, 1.0, REGION_CELL, REGION_CELL], np.float32),
        "lift": np.array([20.0], np.float32),
        "place": np.pad(np.ones((1, 1, 1, 1), np.float32), ((0, 0), (0, 0), (0, OBJECT_BLOCK - 1), (0, OBJECT_BLOCK - 1))),
    }
    node = helper.make_node
    nodes = [
        node("Slice", ["image", "first", "second", "axis1"], ["band"]),
        # Objects: at most one per block of 8 x 8 cells, at its first cell, where the block is much brighter
        # (class 0, 2, ...) or darker (class 1, 3, ...) than the scene's mean; -20 elsewhere.
        node("AveragePool", ["band"], ["cells"], kernel_shape=[stride, stride], strides=[stride, stride]),
        node("AveragePool", ["cells"], ["blocks8"], kernel_shape=[OBJECT_BLOCK] * 2, strides=[OBJECT_BLOCK] * 2),
        node("Mul", ["blocks8", "minus"], ["dark_blocks8"]),
    ]
    object_logits = []
    for k in range(objects):
        source = "blocks8" if k % 2 == 0 else "dark_blocks8"
        nodes += [node("Sub", [source, "object_level"], [f"o{k}a"]), node("Mul", [f"o{k}a", "object_gain"], [f"o{k}b"]),
                  node("Add", [f"o{k}b", "lift"], [f"o{k}c"]),
                  node("ConvTranspose", [f"o{k}c", "place"], [f"o{k}d"], strides=[OBJECT_BLOCK] * 2),
                  node("Sub", [f"o{k}d", "lift"], [f"o{k}"])]
        object_logits.append(f"o{k}")
    nodes += [
        node("Concat", object_logits, ["logits"], axis=1),
        node("MaxPool", ["logits"], ["pooled"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
        node("Equal", ["logits", "pooled"], ["is_peak"]), node("Cast", ["is_peak"], ["keep"], to=TensorProto.FLOAT),
        node("Sigmoid", ["logits"], ["probability"]), node("Mul", ["probability", "keep"], ["heatmap"]),
        node("Mul", ["cells", "zero"], ["nothing"]), node("Add", ["nothing", "box_values"], ["box"]),
        # Regions: blobs of 16-pixel cells brighter or darker than most, their probabilities upsampled smoothly.
        node("AveragePool", ["band"], ["blocks"], kernel_shape=[REGION_CELL, REGION_CELL],
             strides=[REGION_CELL, REGION_CELL]),
        node("Mul", ["blocks", "minus"], ["dark_blocks"]),
    ]
    region_logits = []
    for k in range(regions):
        source = "blocks" if k % 2 == 0 else "dark_blocks"
        nodes += [node("Sub", [source, "region_level"], [f"r{k}a"]), node("Mul", [f"r{k}a", "region_gain"], [f"r{k}"])]
        region_logits.append(f"r{k}")
    nodes += [
        node("Concat", region_logits, ["coarse"], axis=1),
        node("Sigmoid", ["coarse"], ["coarse_probability"]),
        node("Resize", ["coarse_probability", "", "upsample"], ["mask"], mode="linear"),
    ]
    initializers = [numpy_helper.from_array(v, name) for name, v in values.items()]
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["b", len(info.bands), "h", "w"])
    shapes = (["b", objects, "hs", "ws"], ["b", 7, "hs", "ws"], ["b", regions, "h", "w"])
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
               for name, shape in zip(OUTPUT_NAMES, shapes, strict=True)]
    return helper.make_graph(nodes, "free", [image], outputs, initializers)


def write_free_model(info: ModelInfo, path: Path) -> Path:
    """The free model with `info`'s interface and metadata, at `path`: decoding its regions itself when
    `info.region_decode` says so, as an export with `--regions-in-graph` does."""
    proto = helper.make_model(free_graph(info), opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    if info.region_decode is not None:
        proto = decoding_regions(proto, info)
    if info.graph_input == "raw":
        proto = normalizing_input(proto, info)
    onnx.checker.check_model(proto)
    helper.set_model_props(proto, info.to_metadata())
    onnx.save(proto, path)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--like", type=Path, default=Path("checkpoints/reference.onnx"),
                   help="an exported model whose interface and metadata to copy")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    print(write_free_model(OnnxModel(args.like).info, args.out))


if __name__ == "__main__":
    main()
