"""`infer diff` compares two dates only where both saw the ground, and says when the dates run backwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely
from affine import Affine

from infer.geo.crs import from_wgs84
from tests.helpers import run_cli
from tests.infer.oracle import ORIGIN, plant, write_scene

TILING = ("--tile", "256", "--overlap", "64")
# storehouses all over a 1024 x 1024 px (512 m) scene, 8 x 8 of them
CENTRES = [(62 + 128 * i, 62 + 128 * j) for i in range(8) for j in range(8)]



def _diff(*args: str):
    return run_cli("infer", "diff", *map(str, args))


def test_the_footprint_of_a_run_is_the_ground_its_scene_saw(oracle, tmp_path):
    pixels = plant(1024, 1024, CENTRES, [])
    pixels[:, :, 600:] = 255  # the right part is nodata
    scene = write_scene(tmp_path / "collar.tif", pixels, nodata=255)
    assert run_cli("infer", "run", str(oracle), str(scene), "--out", str(tmp_path / "out"), "--quiet",
                   *TILING).returncode == 0
    collection = json.loads((tmp_path / "out" / "collar.geojson").read_text())
    ground = from_wgs84(shapely.geometry.shape(collection["footprint"]), "EPSG:32637")
    assert ground.bounds == pytest.approx((ORIGIN[0], ORIGIN[1] - 512, ORIGIN[0] + 300, ORIGIN[1]), abs=0.5)
    assert ground.area == pytest.approx(300 * 512, rel=0.01)


def test_scenes_that_do_not_overlap_are_refused_in_one_line(oracle, tmp_path):
    pixels = plant(512, 512, CENTRES[:4], [])
    near = write_scene(tmp_path / "near.tif", pixels)
    far = write_scene(tmp_path / "far.tif", pixels,
                      transform=Affine(0.5, 0, ORIGIN[0] + 9000, 0, -0.5, ORIGIN[1]))  # 9 km east
    result = _diff(near, far, "--out", tmp_path / "out", "--model", oracle)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "do not cover the same ground" in lines[0] and "8.7 km apart" in lines[0], lines
    assert not (tmp_path / "out").exists()  # refused before the model ran
    # the same refusal from two finished runs' footprints
    for scene in (near, far):
        assert run_cli("infer", "run", str(oracle), str(scene), "--out", str(tmp_path / scene.stem), "--quiet",
                       *TILING).returncode == 0
    result = _diff(tmp_path / "near", tmp_path / "far", "--out", tmp_path / "out")
    assert result.returncode == 2 and "8.7 km apart" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_crop_against_its_whole_scene_compares_only_the_crop(oracle, tmp_path):
    whole = plant(1024, 1024, CENTRES, [])
    scene = write_scene(tmp_path / "whole.tif", whole)
    crop = write_scene(tmp_path / "crop.tif", whole[:, :512, :512].copy())  # the same ground, top-left quarter
    result = _diff(scene, crop, "--out", tmp_path / "out", "--model", oracle)
    assert result.returncode == 0, result.stderr
    changes = json.loads((tmp_path / "out" / "changes.geojson").read_text())
    kinds = [f["properties"]["change"] for f in changes["features"]]
    in_crop = sum(1 for c, r in CENTRES if c < 512 and r < 512)
    assert kinds.count("persisting") == in_crop and "gone" not in kinds and "new" not in kinds
    assert changes["objects_outside_common_area"] == len(CENTRES) - in_crop
    assert changes["common_area_m2"] == pytest.approx(256 * 256, rel=0.01)
    assert "compared where both dates saw the ground" in result.stdout


def test_dates_that_run_backwards_are_said(tmp_path):
    def side(name: str, date: str) -> Path:
        path = tmp_path / f"{name}.geojson"
        point = shapely.Point(39.0, 34.5).buffer(1e-4)
        path.write_text(json.dumps({"type": "FeatureCollection", "date": date, "features": [
            {"type": "Feature", "geometry": shapely.geometry.mapping(point),
             "properties": {"class": "cleared_site", "score": 0.9}}]}))
        return path

    result = _diff(side("first", "2025-06-01"), side("second", "2024-06-01"), "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "the dates run backwards" in result.stdout and "2024-06-01, before 2025-06-01" in result.stdout
