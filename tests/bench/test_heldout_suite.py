"""The held-out suite's storehouse length ratios (matched by overlap, binned by true length) and berm ridges
found by their angle to the sun."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine

from bench.heldout_suite import length_ratios, length_summary, ridge_summary, ridges_found
from synth.cli import build_parser, scene_spec
from synth.cli import main as synth
from synth.layout import plan_scene
from synth.things import Berm


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


def _fold(degrees: float) -> float:
    """An angle between two undirected lines, in [0, 90]."""
    degrees = degrees % 180
    return min(degrees, 180 - degrees)


def test_berm_ridges_are_found_by_their_angle_to_the_sun(tmp_path):
    synth(["--out", str(tmp_path), "--size", "1024", "--seed", "1", "--quiet"])
    scene = tmp_path / "scene_000.tif"
    layout = plan_scene(scene_spec(build_parser().parse_args(["--out", str(tmp_path), "--size", "1024",
                                                              "--seed", "1"])), 0)
    sun = math.degrees(math.atan2(*layout.acquisitions[0].sun.toward[::-1]))
    expected, predicted = [], []
    for berm in (t for t in layout.things if isinstance(t, Berm)):
        corners = np.asarray(berm.ridge.coords) / 0.5  # metres to the scene's 0.5 m pixels
        for a, b in zip(corners[:-1], corners[1:], strict=True):
            angle = _fold(math.degrees(math.atan2(b[1] - a[1], b[0] - a[0])) - sun)
            expected.append((angle, float(np.hypot(*(b - a))) * 0.5))
            if angle >= 20:  # a prediction that finds only the pieces across the sun
                predicted.append(("earth_berm", shapely.geometry.mapping(
                    shapely.LineString([a, b]).buffer(2, cap_style="flat")), 0.9))
    predicted.append(("earth_berm", _rectangle(0, 0, 1024, 1024), 0.1))  # under the default score
    assert any(a < 20 for a, _ in expected) and any(a >= 20 for a, _ in expected)  # both kinds
    _collection(tmp_path / "predicted.geojson", predicted)
    ridges = ridges_found([], 1, 1024, scene, tmp_path / "predicted.geojson")
    assert [(a, m) for a, m, _ in ridges] == [(pytest.approx(a, abs=0.1), pytest.approx(m, abs=0.1))
                                              for a, m in expected]
    for (angle, _), (_, _, share) in zip(expected, ridges, strict=True):
        assert share == pytest.approx(1.0 if angle >= 20 else 0.0, abs=0.05)
    summary = ridge_summary([(5.0, 100.0, 0.2), (8.0, 300.0, 0.6), (50.0, 10.0, 1.0)])
    assert summary["0-10 deg"] == {"pieces": 2, "length_m": 400.0, "found_share": 0.5}
    assert summary["45-90 deg"] == {"pieces": 1, "length_m": 10.0, "found_share": 1.0}
    assert summary["10-20 deg"] == {"pieces": 0, "length_m": 0.0, "found_share": None}
