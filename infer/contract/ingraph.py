"""Work done inside an exported graph rather than on the host: normalizing raw pixels, decoding regions.

docs/design.md, decision 12. A graph that takes the raster's own digital
numbers (`ModelInfo.graph_input` "raw") moves a quarter of the bytes of
float32 for uint8 imagery to the device and leaves the host nothing to
compute per pixel. The operations are the ones `OnnxModel.normalize` does,
in the same order and precision, so both forms of a model give the same
outputs.

A graph that decodes its regions (`ModelInfo.region_decode`) thresholds,
closes and picks the class of every pixel on the device, where a GPU does
it in microseconds, and returns a uint8 class map and the winner's
probability instead of a float mask per class. It decides exactly what the
host decides from the float mask (`infer.runtime.stitch.core_class_map`):
the comparisons are the same float32 comparisons, and the closing is two
convolutions of 0/1 values by a 0/1 disc, whose sums are small integers,
thresholded half a unit from them.

Needs the `onnx` package: the export and the benches use this module; the
runtime never imports it.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from infer.contract.codec import disc
from infer.contract.schema import DECODED_REGION_OUTPUTS, VALID_INPUT, ModelInfo

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


def decoding_regions(proto: onnx.ModelProto, info: ModelInfo) -> onnx.ModelProto:
    """A copy of `proto` that decodes its `mask` output (B, R, H, W) as `info.region_decode` says.

    Adds the input `valid` (B, H, W) bool and replaces `mask` by `region_class` (B, H, W) uint8 (0 none,
    k + 1 region k) and `region_score` (B, H, W) float32 (the winning class's probability, 0 none):
    probabilities outside `valid` count as 0, each class's pixels above the threshold are closed by the
    disc (outside the tile is empty), pixels outside `valid` are left out, and the most probable class
    that holds a pixel wins it, the first on ties.
    """
    decode = info.region_decode
    if decode is None:
        raise ValueError("decoding_regions needs a ModelInfo with region_decode")
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    graph = out.graph
    outputs = [o.name for o in graph.output]
    if "mask" not in outputs:
        raise ValueError("the network must have a `mask` output to decode")
    name = (PREFIX + "{}").format
    node = helper.make_node
    constants = {"zero": np.array(0.0, np.float32), "threshold": np.array(decode.threshold, np.float32),
                 "none": np.array(-1.0, np.float32), "one": np.array(1, np.int64),
                 "class_axis": np.array([1], np.int64), "half": np.array(0.5, np.float32)}
    nodes = [
        node("Unsqueeze", [VALID_INPUT, name("class_axis")], [name("valid4")]),
        node("Where", [name("valid4"), "mask", name("zero")], [name("masked")]),
        node("Greater", [name("masked"), name("threshold")], [name("above")]),
    ]
    inside = name("above")
    radius_px = decode.closing_m / info.gsd_m
    kernel = disc(radius_px)
    if radius_px > 0 and kernel.size > 1:
        reach, regions = len(kernel) // 2, len(info.region_classes)
        # Dilation on the tile and the disc's reach around it (outside the tile empty), then erosion on the tile.
        constants |= {"pads": np.array([0, 0, 2 * reach, 2 * reach] * 2, np.int64),
                      "disc": np.repeat(kernel[None, None].astype(np.float32), regions, axis=0),
                      "full": np.array(kernel.sum() - 0.5, np.float32)}
        nodes += [
            node("Cast", [name("above")], [name("above_f")], to=onnx.TensorProto.FLOAT),
            node("Pad", [name("above_f"), name("pads")], [name("padded")]),
            node("Conv", [name("padded"), name("disc")], [name("dilation_sum")], group=regions),
            node("Greater", [name("dilation_sum"), name("half")], [name("dilated")]),
            node("Cast", [name("dilated")], [name("dilated_f")], to=onnx.TensorProto.FLOAT),
            node("Conv", [name("dilated_f"), name("disc")], [name("erosion_sum")], group=regions),
            node("Greater", [name("erosion_sum"), name("full")], [name("closed")]),
        ]
        inside = name("closed")
    nodes += [
        node("And", [inside, name("valid4")], [name("inside")]),
        node("Where", [name("inside"), name("masked"), name("none")], [name("candidates")]),
        _reduce_max(name("candidates"), name("best"), name("class_axis"), _opset(out)),
        node("ArgMax", [name("candidates")], [name("winner")], axis=1, keepdims=0, select_last_index=0),
        node("Greater", [name("best"), name("none")], [name("held")]),
        node("Add", [name("winner"), name("one")], [name("winner1")]),
        node("Where", [name("held"), name("winner1"), name("zero_index")], [name("class_index")]),
        node("Cast", [name("class_index")], [DECODED_REGION_OUTPUTS[0]], to=onnx.TensorProto.UINT8),
        node("Where", [name("held"), name("best"), name("zero")], [DECODED_REGION_OUTPUTS[1]]),
    ]
    constants["zero_index"] = np.array(0, np.int64)
    graph.initializer.extend(numpy_helper.from_array(v, name(k)) for k, v in constants.items())
    graph.node.extend(nodes)
    graph.input.append(helper.make_tensor_value_info(VALID_INPUT, onnx.TensorProto.BOOL, ["batch", "height", "width"]))
    mask = next(o for o in graph.output if o.name == "mask")
    kept = [onnx.ValueInfoProto.FromString(o.SerializeToString()) for o in graph.output if o.name != "mask"]
    dims = [mask.type.tensor_type.shape.dim[i] for i in (0, 2, 3)]
    decoded = [helper.make_tensor_value_info(n, t, None) for n, t in
               zip(DECODED_REGION_OUTPUTS, (onnx.TensorProto.UINT8, onnx.TensorProto.FLOAT), strict=True)]
    for value in decoded:
        value.type.tensor_type.shape.dim.extend(onnx.TensorShapeProto.Dimension.FromString(d.SerializeToString())
                                                for d in dims)
    del graph.output[:]
    graph.output.extend(kept + decoded)
    return out


def _opset(proto: onnx.ModelProto) -> int:
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def _reduce_max(data: str, result: str, axes: str, opset: int) -> onnx.NodeProto:
    """ReduceMax over the class axis (1), not kept: from opset 18 the axes are an input (`axes`, holding
    [1]), before it an attribute."""
    if opset >= 18:
        return helper.make_node("ReduceMax", [data, axes], [result], keepdims=0)
    return helper.make_node("ReduceMax", [data], [result], axes=[1], keepdims=0)


__all__ = ["IMAGE_INPUT", "decoding_regions", "normalizing_input"]
