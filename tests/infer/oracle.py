"""A real ONNX model whose answers are known exactly, to test the scene pipeline apart from learning.

Band 0 holds 4 x 4 marker blocks aligned to the 4-pixel cells: each is one
storehouse 12 m x 8 m (at 0.5 m) facing east, centred on its block. Band 1
holds earth berm pixels. The graph is plain tensor math run by ONNX Runtime
like any exported model, with sitewatch metadata.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import onnx
import rasterio
import torch
import torch.nn.functional as F
from affine import Affine

from infer.model import ClassInfo, ModelInfo
from train.model.heads import suppress_peaks

CLASSES = (ClassInfo("storehouse", "object", "#ff4040"), ClassInfo("truck", "object", "#ffdc00", True),
           ClassInfo("earth_berm", "region", "#00c8ff"), ClassInfo("cleared_site", "region", "#c850ff"))
LENGTH_PX, WIDTH_PX = 24.0, 16.0
ORIGIN = (677000.0, 3823000.0)


class Oracle(torch.nn.Module):
    def forward(self, x: torch.Tensor):
        centre = F.avg_pool2d(x[:, :1], 4)
        heat = torch.cat([40 * (centre - 0.5), torch.full_like(centre, -20.0)], 1)
        ones = torch.ones_like(centre)
        box = torch.cat([0 * ones, 0 * ones, ones * math.log(LENGTH_PX / 4), ones * math.log(WIDTH_PX / 4),
                         ones, 0 * ones, 5 * ones], 1)
        berm = torch.sigmoid(40 * (x[:, 1:2] - 0.5))
        return suppress_peaks(heat), box, torch.cat([berm, torch.zeros_like(berm)], 1)


def write_oracle(path: Path, tile: int = 256, overlap: int = 64) -> Path:
    buffer = io.BytesIO()
    torch.onnx.export(Oracle(), (torch.zeros(1, 3, 64, 64),), buffer, dynamo=False, opset_version=17,
                      input_names=["image"], output_names=["heatmap", "box", "mask"],
                      dynamic_axes={n: {0: "b", 2: "h", 3: "w"} for n in ("image", "heatmap", "box", "mask")})
    proto = onnx.load_from_string(buffer.getvalue())
    info = ModelInfo(CLASSES, ("red", "green", "blue"), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 0.5, tile, overlap,
                     dtype="uint8")
    for key, value in info.to_metadata().items():
        proto.metadata_props.add(key=key, value=value)
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


def write_scene(path: Path, pixels: np.ndarray, gsd: float = 0.5, nodata: float | None = None) -> Path:
    profile = {"driver": "GTiff", "width": pixels.shape[2], "height": pixels.shape[1], "count": pixels.shape[0],
               "dtype": pixels.dtype.name, "crs": "EPSG:32637", "tiled": True, "blockxsize": 256,
               "blockysize": 256, "transform": Affine(gsd, 0, ORIGIN[0], 0, -gsd, ORIGIN[1])}
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(pixels)
    return path
