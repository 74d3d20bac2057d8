"""Work done inside an exported graph rather than on the host: normalizing raw pixels.

docs/design.md, decision 12. A graph that takes the raster's own digital
numbers (`ModelInfo.graph_input` "raw") moves a quarter of the bytes of
float32 for uint8 imagery to the device and leaves the host nothing to
compute per pixel. The operations are the ones `OnnxModel.normalize` does,
in the same order and precision, so both forms of a model give the same
outputs.

Needs the `onnx` package: the export and the benches use this module; the
runtime never imports it.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from infer.contract.schema import ModelInfo

#: The graph input holding the pixels.
IMAGE_INPUT = "image"
#: Prefix of the tensors this module adds, apart from any name a network's exporter picks.
PREFIX = "sitewatch_"


def normalizing_input(proto: onnx.ModelProto, info: ModelInfo) -> onnx.ModelProto:
    """A copy of `proto` whose `image` input takes raw pixels of `info.input_dtype` (B, C, H, W) and
    normalizes them in the graph, `(pixels - mean) * (1 / std)` per band in float32, before the network
    (whose float32 `image` input it was)."""
    if info.graph_input != "raw":
        raise ValueError(f"normalizing_input is for graphs that take raw pixels, not {info.graph_input!r}")
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    graph = out.graph
    image = next((i for i in graph.input if i.name == IMAGE_INPUT), None)
    if image is None or image.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise ValueError(f"the network must take a float32 input named {IMAGE_INPUT!r}")
    normalized = PREFIX + "normalized"
    for node in graph.node:
        node.input[:] = [normalized if name == IMAGE_INPUT else name for name in node.input]
    bands = (1, len(info.bands), 1, 1)
    mean = np.asarray(info.mean, np.float32).reshape(bands)
    inverse_std = (np.float32(1.0) / np.asarray(info.std, np.float32)).reshape(bands)
    pixels = IMAGE_INPUT
    prelude = []
    if info.input_dtype != np.float32:
        pixels = PREFIX + "pixels"
        prelude.append(helper.make_node("Cast", [IMAGE_INPUT], [pixels], to=onnx.TensorProto.FLOAT))
    prelude += [helper.make_node("Sub", [pixels, PREFIX + "mean"], [PREFIX + "centred"]),
                helper.make_node("Mul", [PREFIX + "centred", PREFIX + "inverse_std"], [normalized])]
    graph.initializer.extend([numpy_helper.from_array(mean, PREFIX + "mean"),
                              numpy_helper.from_array(inverse_std, PREFIX + "inverse_std")])
    nodes = prelude + [onnx.NodeProto.FromString(n.SerializeToString()) for n in graph.node]
    del graph.node[:]  # detaches the originals: hence the copies
    graph.node.extend(nodes)
    image.type.tensor_type.elem_type = helper.np_dtype_to_tensor_dtype(info.input_dtype)
    return out


__all__ = ["IMAGE_INPUT", "normalizing_input"]
