"""YOLO + SAHI over a whole scene, as a user of those tools would run it, ending in our GeoJSON conventions.

The scene is read and stretched to 8-bit RGB with the YOLO dataset's fixed
scale (SAHI works on an in-memory image), resampled to the training scenes'
ground resolution when it has another (what a user who knows the model's GSD
does, and what our pipeline does by itself), sliced with SAHI at a given tile
and overlap, predicted by the YOLO model exported to ONNX (run by ONNX
Runtime through Ultralytics), merged by SAHI, and written as WGS84 boxes so
`infer evaluate` scores it exactly as it scores us.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.enums import Resampling
from shapely import affinity
from shapely.geometry import Polygon, box

from bench.peers.yolo_data import SCALE_FILE, to_rgb8
from infer.geo.crs import to_wgs84
from infer.geo.geojson import feature, write_feature_collection
from infer.geo.gsd import scene_gsd
from infer.geo.rasterenv import open_raster


def export_yolo_onnx(weights: Path, imgsz: int) -> Path:
    """The trained YOLO weights as ONNX with a dynamic batch, next to them."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    return Path(YOLO(str(weights)).export(format="onnx", imgsz=imgsz, dynamic=True, simplify=False, verbose=False))


def load_sahi_model(onnx_path: Path, confidence: float, imgsz: int):
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from sahi import AutoDetectionModel

    return AutoDetectionModel.from_pretrained(model_type="ultralytics", model_path=str(onnx_path),
                                              confidence_threshold=confidence, device="cpu", image_size=imgsz)


def prediction_outline(prediction) -> Polygon:
    """A SAHI prediction in scene pixels: its rotated rectangle if it has one (an OBB model), else its box."""
    if prediction.mask is not None and prediction.mask.segmentation:
        ring = np.asarray(prediction.mask.segmentation[0], np.float64).reshape(-1, 2)
        if len(ring) >= 3:
            return Polygon(ring)
    b = prediction.bbox
    return box(b.minx, b.miny, b.maxx, b.maxy)


def sahi_scene(model, scene: Path, out: Path, scale_file: Path, tile: int, overlap: int, batch: int = 4) -> Path:
    """Run YOLO + SAHI over `scene`; write `out` (GeoJSON, WGS84 boxes with class and score)."""
    from sahi.predict import get_sliced_prediction

    stretch = json.loads(scale_file.read_text())
    with open_raster(scene) as src:
        factor = 1.0
        if stretch.get("gsd_m") and src.crs is not None:
            factor = scene_gsd(scene.name, src.transform, src.crs, src.width, src.height) / stretch["gsd_m"]
        shape = (max(1, round(src.height * factor)), max(1, round(src.width * factor)))
        rgb = to_rgb8(src.read([1, 2, 3], out_shape=(3, *shape), resampling=Resampling.bilinear),
                      stretch["value_at_255"])
        transform = src.transform * Affine.scale(src.width / shape[1], src.height / shape[0])
        crs = src.crs
    result = get_sliced_prediction(rgb, model, slice_height=tile, slice_width=tile,
                                   overlap_height_ratio=overlap / tile, overlap_width_ratio=overlap / tile,
                                   perform_standard_pred=False, postprocess_type="NMS",
                                   postprocess_match_metric="IOU", postprocess_match_threshold=0.5,
                                   verbose=0, batch_size=batch)
    features = []
    t = [transform.a, transform.b, transform.d, transform.e, transform.c, transform.f]
    for p in result.object_prediction_list:
        geom = to_wgs84(affinity.affine_transform(prediction_outline(p), t), crs)
        features.append(feature(geom, {"class": p.category.name, "score": round(float(p.score.value), 4)}))
    return write_feature_collection(out, features, {"scene": scene.name, "model": "yolo+sahi"})


def scale_file_of(yolo_run: Path) -> Path:
    return yolo_run / "data" / SCALE_FILE
