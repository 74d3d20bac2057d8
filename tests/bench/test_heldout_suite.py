"""The held-out suite's storehouse length ratios: matched by overlap, binned by true length."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from affine import Affine

from bench.heldout_suite import length_ratios, length_summary


def _rectangle(x: float, y: float, length: float, width: float) -> dict:
    ring = [[x, y], [x + length, y], [x + length, y + width], [x, y + width], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}


def _collection(path, features: list[tuple[str, dict, float]]) -> None:
    path.write_text(json.dumps({
        "type": "FeatureCollection", "coordinates": "pixel (x right, y down): the input has no georeferencing",
        "features": [{"type": "Feature", "geometry": g, "properties": {"class": c, "score": s, "heading_deg": 0.0}}
                     for c, g, s in features]}))


def test_lengths_are_read_off_the_best_overlapping_prediction(tmp_path):
    scene = tmp_path / "scene.tif"  # 0.5 m pixels in UTM; the label files below are in its pixel grid
    with rasterio.open(scene, "w", driver="GTiff", width=400, height=400, count=1, dtype="uint8", crs="EPSG:32637",
                       transform=Affine(0.5, 0, 500000, 0, -0.5, 4000000)) as dst:
        dst.write(np.zeros((1, 400, 400), np.uint8))
    truth, predicted = tmp_path / "truth.geojson", tmp_path / "predicted.geojson"
    _collection(truth, [("storehouse", _rectangle(10, 10, 100, 20), 1.0),  # 100 px: 50 m
                        ("storehouse", _rectangle(10, 200, 40, 20), 1.0),
                        ("storehouse", _rectangle(200, 300, 50, 20), 1.0),
                        ("truck", _rectangle(300, 10, 12, 5), 1.0)])
    _collection(predicted, [("storehouse", _rectangle(10, 10, 130, 20), 0.9),  # 1.3 x as long
                            ("storehouse", _rectangle(12, 10, 60, 20), 0.8),  # overlaps less: not taken
                            ("storehouse", _rectangle(10, 200, 36, 20), 0.9),
                            ("storehouse", _rectangle(200, 300, 50, 20), 0.1),  # under the default score
                            ("truck", _rectangle(300, 10, 24, 5), 0.9)])
    pairs = length_ratios(predicted, truth, scene)
    assert pairs == [(50.0, pytest.approx(1.3)), (20.0, pytest.approx(0.9))]
    summary = length_summary([(25.0, 1.3), (26.0, 1.2), (35.0, 0.95), *pairs])
    assert summary["0-30 m"] == {"count": 3, "median_ratio": 1.2}
    assert summary["30-45 m"] == {"count": 1, "median_ratio": 0.95}
    assert summary[">= 45 m"] == {"count": 1, "median_ratio": 1.3}
    assert length_summary([])["0-30 m"] == {"count": 0, "median_ratio": None}
