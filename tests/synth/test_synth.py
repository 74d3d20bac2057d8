"""The synthetic scene generator, through real files read back with rasterio."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.windows import Window
from shapely import affinity

from infer.geo.crs import from_wgs84, to_wgs84
from synth.cli import main as synth_main
from synth.layout import CRS, SITE_LONLAT, SceneSpec, plan_scene
from synth.render import SceneRenderer
from tests.helpers import label_mask, run_cli

SIZE = 1024


def _generate(out: Path, *extra: str) -> Path:
    assert synth_main(["--out", str(out), "--quiet", *extra]) == 0
    return out


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Path:
    """One scene at two dates with a no-data edge (the richest case)."""
    return _generate(tmp_path_factory.mktemp("pair"), "--size", str(SIZE), "--seed", "3", "--second-date",
                     "--nodata-border")


def _features(path: Path) -> list[dict]:
    return json.loads(path.read_text())["features"]


def _by_class(features: list[dict], cls: str) -> list[dict]:
    return [f for f in features if f["properties"]["class"] == cls]


def _mean(pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return pixels[:, mask].astype(float).mean(axis=1)


def test_geotiff_is_tiled_compressed_utm_near_the_crossing(pair):
    with rasterio.open(pair / "scene_000.tif") as src:
        assert src.crs.to_epsg() == 32637
        assert src.profile["tiled"] and src.block_shapes[0] == (512, 512)
        assert src.compression.name.lower() == "deflate"
        assert (src.width, src.height, src.count, src.dtypes[0]) == (SIZE, SIZE, 3, "uint8")
        assert src.res == (0.5, 0.5)
        assert src.nodata == 0
        centre = to_wgs84(shapely.geometry.box(*src.bounds).centroid, src.crs)
    assert abs(centre.x - SITE_LONLAT[0]) < 0.15 and abs(centre.y - SITE_LONLAT[1]) < 0.15


def test_every_class_is_labeled_with_its_geometry_type(pair):
    features = _features(pair / "scene_000.geojson")
    classes = {f["properties"]["class"] for f in features}
    assert {"storehouse", "truck", "earth_berm"} <= classes
    assert classes <= {"storehouse", "truck", "earth_berm", "cleared_site"}
    for f in features:
        geom = shapely.geometry.shape(f["geometry"])
        assert geom.is_valid and geom.geom_type == "Polygon"
        if f["properties"]["class"] in ("storehouse", "truck"):
            assert len(geom.exterior.coords) == 5  # four corners, closed
        lon, lat = geom.exterior.coords[0]
        assert 38 < lon < 44 and 32 < lat < 37  # RFC 7946: longitude first


@pytest.mark.parametrize("cls,min_contrast", [("storehouse", 25.0), ("truck", 15.0)])
def test_object_interiors_differ_from_a_ring_just_outside(pair, cls, min_contrast):
    with rasterio.open(pair / "scene_000.tif") as src:
        pixels = src.read()
        contrasts = []
        for f in _by_class(_features(pair / "scene_000.geojson"), cls):
            geom = shapely.geometry.shape(f["geometry"])
            inside = label_mask(src, geom, buffer_m=-0.6)
            ring = label_mask(src, geom, buffer_m=2.5) & ~label_mask(src, geom, buffer_m=0.6)
            contrasts.append(np.abs(_mean(pixels, inside) - _mean(pixels, ring)).sum())
    assert len(contrasts) >= 3
    # Labels shifted by even a couple of metres would mix roof and ground on both sides.
    assert np.median(contrasts) > min_contrast
    assert np.mean(np.array(contrasts) > min_contrast / 2) >= 0.9


def test_labels_shifted_off_their_objects_lose_the_contrast(pair):
    """The control for the test above: the contrast belongs to where the labels are."""
    with rasterio.open(pair / "scene_000.tif") as src:
        pixels = src.read()
        true_c, shifted_c = [], []
        for f in _by_class(_features(pair / "scene_000.geojson"), "storehouse"):
            geom = shapely.geometry.shape(f["geometry"])
            for shift, bucket in ((0.0, true_c), (0.0004, shifted_c)):  # ~40 m east
                g = affinity.translate(geom, shift, 0)
                inside = label_mask(src, g, buffer_m=-0.6)
                ring = label_mask(src, g, buffer_m=2.5) & ~label_mask(src, g, buffer_m=0.6)
                if inside.any() and ring.any():
                    bucket.append(np.abs(_mean(pixels, inside) - _mean(pixels, ring)).sum())
    assert np.median(true_c) > 2 * np.median(shifted_c)


def test_cleared_sites_are_smoother_than_the_ground_around_them(pair):
    with rasterio.open(pair / "scene_000_t2.tif") as src:
        green = src.read(2).astype(float)
        sites = _by_class(_features(pair / "scene_000_t2.geojson"), "cleared_site")
        assert sites
        for f in sites:
            geom = shapely.geometry.shape(f["geometry"])
            inside = label_mask(src, geom, buffer_m=-3)
            ring = label_mask(src, geom, buffer_m=12) & ~label_mask(src, geom, buffer_m=3) & (green > 0)
            # Graded ground: a different tone and less texture than the desert.
            assert abs(green[inside].mean() - green[ring].mean()) > 5
            roughness = np.abs(np.diff(green, axis=1))
            assert roughness[inside[:, 1:]].mean() < 0.8 * roughness[ring[:, 1:]].mean()


def test_wgs84_labels_map_back_to_the_planned_pixels(pair):
    layout = plan_scene(SceneSpec(SIZE, SIZE, seed=3, nodata_border=True, second_date=True))
    planned = {uid: label.geom for uid, label in layout.labels(1)}
    with rasterio.open(pair / "scene_000.tif") as src:
        inverse = ~src.transform
        for f in _features(pair / "scene_000.geojson"):
            wgs84 = shapely.geometry.shape(f["geometry"])
            assert wgs84.exterior.is_ccw  # RFC 7946's right-hand rule
            utm = from_wgs84(wgs84, src.crs)
            got = np.array([inverse @ xy for xy in utm.exterior.coords])
            want = np.asarray(planned[f["properties"]["id"]].exterior.coords) / 0.5
            # The same ring, whichever way round it runs: compared in shapely's normal form.
            got, want = (np.asarray(shapely.normalize(shapely.Polygon(c)).exterior.coords) for c in (got, want))
            assert np.abs(got - want).max() < 0.01  # a hundredth of a pixel
            assert (got >= 0).all() and (got[:, 0] <= SIZE).all() and (got[:, 1] <= SIZE).all()


def test_sizes_in_metres_hold_at_two_gsds(tmp_path):
    coarse = _generate(tmp_path / "coarse", "--size", "256", "--gsd", "2.0", "--seed", "5")
    fine = _generate(tmp_path / "fine", "--size", "1024", "--gsd", "0.5", "--seed", "5")
    a, b = _features(coarse / "scene_000.geojson"), _features(fine / "scene_000.geojson")
    assert len(a) == len(b) > 5
    for fa, fb in zip(a, b, strict=True):
        assert fa["properties"] == fb["properties"]
        ga, gb = (from_wgs84(shapely.geometry.shape(f["geometry"]), CRS) for f in (fa, fb))
        assert ga.symmetric_difference(gb).area < 1e-3 * max(gb.area, 1.0)
    with rasterio.open(fine / "scene_000.tif") as f_src, rasterio.open(coarse / "scene_000.tif") as c_src:
        assert f_src.bounds == c_src.bounds
        biggest = max(_by_class(b, "storehouse"), key=lambda f: f["properties"]["length_m"])
        geom = shapely.geometry.shape(biggest["geometry"])
        n_fine, n_coarse = label_mask(f_src, geom).sum(), label_mask(c_src, geom).sum()
    area = biggest["properties"]["length_m"] * biggest["properties"]["width_m"]
    assert n_fine == pytest.approx(area / 0.25, rel=0.08)
    assert n_coarse == pytest.approx(area / 4.0, rel=0.35)


def test_object_sizes_are_in_the_documented_ranges(pair):
    features = _features(pair / "scene_000_t2.geojson")
    for f in _by_class(features, "storehouse"):
        assert 15 <= f["properties"]["length_m"] <= 60 and 8 <= f["properties"]["width_m"] <= 25
    for f in _by_class(features, "truck"):
        assert 7 <= f["properties"]["length_m"] <= 16 and 2.5 <= f["properties"]["width_m"] <= 3
    for f in _by_class(features, "earth_berm"):
        assert 20 <= f["properties"]["length_m"] <= 400 and 2 <= f["properties"]["width_m"] <= 6
    for f in _by_class(features, "cleared_site"):
        assert 30 <= f["properties"]["length_m"] <= 330


def test_same_seed_same_bytes_other_seed_other_scene(tmp_path):
    def digest(folder: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}

    args = ("--size", "384", "--second-date", "--bands", "rgbn", "--dtype", "uint16")
    first = digest(_generate(tmp_path / "a", "--seed", "11", *args))
    again = digest(_generate(tmp_path / "b", "--seed", "11", *args))
    other = digest(_generate(tmp_path / "c", "--seed", "12", *args))
    assert first == again
    assert first["scene_000.tif"] != other["scene_000.tif"]


def test_scenes_written_by_several_processes_have_the_same_bytes(tmp_path):
    def digest(folder: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}

    args = ("--size", "256", "--scenes", "3", "--seed", "5")
    one_by_one = digest(_generate(tmp_path / "a", *args))
    at_once = digest(_generate(tmp_path / "b", *args, "--workers", "2"))
    assert len(one_by_one) == 6
    assert at_once == one_by_one


def test_windows_tile_seamlessly():
    layout = plan_scene(SceneSpec(600, 500, seed=2))
    renderer = SceneRenderer(layout, layout.acquisitions[0])
    whole = renderer.render(Window(0, 0, 600, 500))
    pieces = np.zeros_like(whole)
    for row in range(0, 500, 170):
        for col in range(0, 600, 230):
            w = Window(col, row, min(230, 600 - col), min(170, 500 - row))
            pieces[:, row:row + int(w.height), col:col + int(w.width)] = renderer.render(w)
    np.testing.assert_array_equal(whole, pieces)


def test_uint16_rgbn_uses_an_11_bit_range(tmp_path):
    out = _generate(tmp_path, "--size", "384", "--bands", "rgbn", "--dtype", "uint16", "--seed", "4")
    with rasterio.open(out / "scene_000.tif") as src:
        pixels = src.read()
        assert src.count == 4 and src.dtypes[0] == "uint16"
        assert src.descriptions == ("red", "green", "blue", "nir")
    assert pixels.max() <= 2047 and pixels.max() > 1000 and pixels.min() >= 1


def test_second_date_changes_agree_with_the_two_label_files(pair):
    t1 = {f["properties"]["id"]: f for f in _features(pair / "scene_000.geojson")}
    t2 = {f["properties"]["id"]: f for f in _features(pair / "scene_000_t2.geojson")}
    changes = _features(pair / "scene_000_changes.geojson")
    kinds = {(c["properties"]["change"], c["properties"]["class"]) for c in changes}
    assert {("new", "storehouse"), ("new", "cleared_site"), ("new", "earth_berm"), ("gone", "truck")} <= kinds
    reported = {(c["properties"]["change"], c["properties"]["id"]) for c in changes}
    for uid in t1.keys() - t2.keys():
        assert ("gone", uid) in reported
    for uid in t2.keys() - t1.keys():
        assert ("new", uid) in reported
    for c in changes:
        uid, change = c["properties"]["id"], c["properties"]["change"]
        geom = shapely.geometry.shape(c["geometry"])
        if change == "gone":
            assert uid in t1 and uid not in t2
        elif uid in t1:  # an extended berm: the added part is in t2's berm and not in t1's
            before, after = (shapely.geometry.shape(t[uid]["geometry"]) for t in (t1, t2))
            assert c["properties"]["class"] == "earth_berm"
            assert after.buffer(1e-7).contains(geom)
            assert geom.intersection(before).area < 1e-3 * geom.area
        else:
            assert uid in t2
            assert shapely.geometry.shape(t2[uid]["geometry"]).equals_exact(geom, 1e-7)
    persisting = [uid for uid in t1.keys() & t2.keys() if uid not in {c["properties"]["id"] for c in changes}]
    assert len(persisting) >= 5
    for uid in persisting:  # what did not change sits exactly where it was
        assert t1[uid]["geometry"] == t2[uid]["geometry"]


def test_second_date_has_another_sun_and_radiometry(pair):
    with rasterio.open(pair / "scene_000.tif") as a, rasterio.open(pair / "scene_000_t2.tif") as b:
        assert a.tags()["SUN_AZIMUTH"] != b.tags()["SUN_AZIMUTH"]
        assert a.tags()["ACQUISITION_DATE"] < b.tags()["ACQUISITION_DATE"]
        pa, pb = a.read().astype(float), b.read().astype(float)
        new_house = next(c for c in _features(pair / "scene_000_changes.geojson")
                         if c["properties"]["class"] == "storehouse")
        mask = label_mask(a, shapely.geometry.shape(new_house["geometry"]), buffer_m=-0.6)
    valid = (pa > 0).all(axis=0)
    assert np.abs(pa - pb)[:, valid].mean() > 2  # not the same picture twice
    assert np.abs(_mean(pa, mask) - _mean(pb, mask)).sum() > 30  # a storehouse stands where there was ground


def test_nodata_edge_is_irregular_and_has_no_labels(pair):
    with rasterio.open(pair / "scene_000.tif") as src:
        valid = src.dataset_mask() > 0
        nodata_per_row = (~valid).sum(axis=1)
        assert 0.01 < (~valid).mean() < 0.5
        assert len(np.unique(nodata_per_row)) > 10  # a slanted, jagged edge, not a straight cut
        for f in _features(pair / "scene_000.geojson"):
            under = label_mask(src, shapely.geometry.shape(f["geometry"]), buffer_m=5)
            assert valid[under].all()


def _error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--size", "0"], "between 1 and"),
        (["--bands", "rgbx"], "invalid choice"),
        (["--size", "64", "--width", "64", "--height", "64"], "either --size"),
        (["--gsd", "-1"], "--gsd"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, args, needle):
    result = run_cli("train", "synth", "--out", str(tmp_path / "o"), *args)
    assert result.returncode == 2
    assert needle in _error_line(result)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_output_under_a_file_is_a_usage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli("train", "synth", "--out", str(blocker / "sub"), "--size", "64")
    assert result.returncode == 2
    assert "cannot write to output folder" in _error_line(result)


def test_read_only_output_folder_is_a_usage_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
            pytest.skip("running as root without chattr: cannot make a folder read-only")
    else:
        folder.chmod(0o555)
    try:
        result = run_cli("train", "synth", "--out", str(folder), "--size", "64")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(folder)])
        folder.chmod(0o755)
    assert result.returncode == 2
    assert "cannot write to output folder" in _error_line(result)
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("side", [1, 2, 6])
def test_the_smallest_scenes_the_options_allow_are_written(tmp_path, side):
    """Below 7 px a road's planned path was a single point (a GEOS error): every side from 1 px is a scene."""
    out = _generate(tmp_path, "--size", str(side), "--seed", "3", "--second-date")
    for name in ("scene_000.tif", "scene_000_t2.tif"):
        with rasterio.open(out / name) as src:
            assert (src.width, src.height) == (side, side)
