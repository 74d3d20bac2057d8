"""`infer run` end to end with a model whose answers are known: seams, tiling, GSD, resume, bad input."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from PIL import Image

from infer.files import LOCK_FOLDER
from infer.geo.crs import from_wgs84
from infer.runtime.tiling import tile_grid
from tests.helpers import convergence_deg, run_cli, served
from tests.infer.oracle import LENGTH_PX, ORIGIN, WIDTH_PX, plant, write_oracle, write_scene

SIZE = 640



def _seam_centres() -> list[tuple[int, int]]:
    """Markers 2 px either side of every core boundary, in both directions, plus corners."""
    tiles = tile_grid(SIZE, SIZE, 256, 64)
    bounds = sorted({t.core[1] for t in tiles} - {0})
    centres = [(b + d, 102) for b in bounds for d in (-2, 2)] + [(302, b + d) for b in bounds for d in (-2, 2)]
    centres += [(b + 2, c + 2) for b in bounds for c in bounds]
    return sorted(set(centres))


def _objects(path: Path) -> list[tuple[float, float, dict]]:
    """(col, row, properties) of every object feature, centres mapped back to pixels at 0.5 m."""
    out = []
    for f in json.loads(path.read_text())["features"]:
        if f["properties"]["class"] != "storehouse":
            continue
        c = from_wgs84(shapely.geometry.shape(f["geometry"]), "EPSG:32637").centroid
        out.append(((c.x - ORIGIN[0]) / 0.5, (ORIGIN[1] - c.y) / 0.5, f["properties"]))
    return sorted(out, key=lambda o: (round(o[1]), round(o[0])))


def _run(model: Path, scenes: list[Path], out: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_cli("infer", "run", str(model), *map(str, scenes), "--out", str(out), "--quiet", *extra)


@pytest.fixture(scope="module")
def seam_scene(tmp_path_factory) -> Path:
    berm = (400, 20, 410, 620)  # a long strip crossing every vertical seam
    return write_scene(tmp_path_factory.mktemp("scene") / "seams.tif",
                       plant(SIZE, SIZE, _seam_centres(), [berm]))


def test_objects_on_seams_are_found_once_each_and_where_they_are(oracle, seam_scene, tmp_path):
    result = _run(oracle, [seam_scene], tmp_path, "--tile", "256", "--overlap", "64")
    assert result.returncode == 0, result.stderr
    found = _objects(tmp_path / "seams.geojson")
    planted = sorted(_seam_centres(), key=lambda c: (c[1], c[0]))
    assert len(found) == len(planted)
    for (col, row, props), (pc, pr) in zip(found, planted, strict=True):
        assert abs(col - pc) < 0.01 and abs(row - pr) < 0.01
        assert props["length_m"] == pytest.approx(LENGTH_PX * 0.5) and props["width_m"] == pytest.approx(WIDTH_PX * 0.5)
        # long axis along the grid's east-west, which bears 90 degrees plus the meridians' convergence there
        x, y = ORIGIN[0] + col * 0.5, ORIGIN[1] - row * 0.5
        assert props["heading_deg"] == pytest.approx(90.0 + convergence_deg("EPSG:32637", x, y), abs=0.06)


def test_worker_processes_write_the_same_bytes_as_the_serial_path(oracle, seam_scene, tmp_path):
    """Objects on every seam and a berm across them: decoded by 3 processes, stitched in tile order."""
    outputs = {}
    for workers in ("1", "3"):
        out = tmp_path / f"workers{workers}"
        result = _run(oracle, [seam_scene], out, "--tile", "256", "--overlap", "64", "--workers", workers)
        assert result.returncode == 0, result.stderr
        outputs[workers] = {p.name: p.read_bytes() for p in out.iterdir()
                            if not p.name.startswith("summary") and p.name != LOCK_FOLDER}
    assert sorted(outputs["1"]) == ["seams.geojson", "seams.gpkg", "seams_detections.png", "seams_mask.tif",
                                    "seams_overlay.png"]
    assert outputs["1"] == outputs["3"]
    assert len(_objects(tmp_path / "workers3" / "seams.geojson")) == len(_seam_centres())


def test_outputs_asked_for_are_the_ones_written_and_a_scene_is_done_when_they_exist(oracle, seam_scene, tmp_path):
    """`--outputs geojson,mask` writes those two, the same bytes as a run of every output; a rerun with
    them skips the scene, and one with every output does it again and writes the rest."""
    full, some = tmp_path / "full", tmp_path / "some"
    assert _run(oracle, [seam_scene], full, "--tile", "256", "--overlap", "64").returncode == 0
    result = _run(oracle, [seam_scene], some, "--tile", "256", "--overlap", "64", "--outputs", "geojson,mask")
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in some.iterdir() if not p.name.startswith("summary") and p.name != LOCK_FOLDER)
    assert written == ["seams.geojson", "seams_mask.tif"]
    for name in written:
        assert (some / name).read_bytes() == (full / name).read_bytes()
    entry = json.loads((some / "summary.json").read_text())["scenes"][0]
    assert sorted(entry["outputs"]) == ["geojson", "mask"]
    again = _run(oracle, [seam_scene], some, "--tile", "256", "--overlap", "64", "--outputs", "mask,geojson")
    assert "1 scene(s) done (0 by this run)" in again.stdout
    everything = _run(oracle, [seam_scene], some, "--tile", "256", "--overlap", "64")
    assert "1 scene(s) done (1 by this run)" in everything.stdout
    assert sorted(p.name for p in some.glob("seams*")) == sorted(p.name for p in full.glob("seams*"))


def test_polygons_follow_the_right_hand_rule_and_objects_start_with_their_front(oracle, seam_scene, tmp_path):
    """RFC 7946 §3.1.6: exterior rings counter-clockwise; an object's first two corners are its front."""
    assert _run(oracle, [seam_scene], tmp_path, "--tile", "256", "--overlap", "64").returncode == 0
    features = json.loads((tmp_path / "seams.geojson").read_text())["features"]
    kinds = {f["properties"]["class"] for f in features}
    assert {"storehouse", "earth_berm"} <= kinds
    for f in features:
        geom = shapely.geometry.shape(f["geometry"])
        for polygon in getattr(geom, "geoms", [geom]):
            assert polygon.exterior.is_ccw, f["properties"]["class"]
            assert all(not ring.is_ccw for ring in polygon.interiors)
        if f["properties"]["class"] == "storehouse":  # the oracle's objects face east (heading 90°)
            ring = f["geometry"]["coordinates"][0]
            front = (ring[0][0] + ring[1][0]) / 2
            across = abs(ring[0][1] - ring[1][1])  # the front edge runs north-south, 8 m long
            assert front - geom.centroid.x > 5e-5 and abs(ring[0][0] - ring[1][0]) < 0.05 * across  # 6 m east


def test_the_geopackage_opens_in_ogr_with_the_geojson_features_and_qgis_styles(oracle, seam_scene, tmp_path):
    import pyogrio
    from pyogrio.raw import read

    assert _run(oracle, [seam_scene], tmp_path / "out", "--tile", "256", "--overlap", "64").returncode == 0
    package = tmp_path / "out" / "seams.gpkg"
    geojson = json.loads((tmp_path / "out" / "seams.geojson").read_text())["features"]
    assert [tuple(x) for x in pyogrio.list_layers(package)] == [("objects", "Polygon"), ("regions", "Polygon"),
                                                                 ("layer_styles", None)]
    for layer, kind in (("objects", "heading_deg"), ("regions", "area_m2")):
        info = pyogrio.read_info(package, layer=layer)
        expected = [f for f in geojson if (kind in f["properties"])]
        assert info["crs"] == "EPSG:4326" and info["features"] == len(expected) > 0
        meta, _, geometry, fields = read(package, layer=layer)
        column = dict(zip(meta["fields"], fields, strict=True))
        assert sorted(column["class"]) == sorted(f["properties"]["class"] for f in expected)
        first = shapely.from_wkb(geometry[0])
        assert first.equals_exact(shapely.geometry.shape(expected[0]["geometry"]), 1e-9)
    meta, _, _, fields = read(package, layer="layer_styles")
    styles = dict(zip(meta["fields"], fields, strict=True))
    assert list(styles["f_table_name"]) == ["objects", "regions"] and list(styles["useAsDefault"]) == [1, 1]
    objects_qml, regions_qml = styles["styleQML"]
    assert 'attr="class"' in objects_qml and 'value="storehouse"' in objects_qml and "255,64,64,255" in objects_qml
    assert 'value="earth_berm"' in regions_qml and "0,200,255,70" in regions_qml  # the overlay's berm fill


def test_a_region_cut_by_seams_comes_out_as_one_polygon(oracle, seam_scene, tmp_path):
    assert _run(oracle, [seam_scene], tmp_path, "--tile", "256", "--overlap", "64").returncode == 0
    berms = [f for f in json.loads((tmp_path / "seams.geojson").read_text())["features"]
             if f["properties"]["class"] == "earth_berm"]
    assert len(berms) == 1
    assert berms[0]["properties"]["area_m2"] == pytest.approx(10 * 600 * 0.25, rel=0.01)
    assert berms[0]["properties"]["score"] > 0.99  # mean probability over every piece merged
    with rasterio.open(tmp_path / "seams_mask.tif") as src:
        mask = src.read(1)
        assert src.crs.to_epsg() == 32637 and src.overviews(1)  # a COG with overviews
    assert (mask == 1).sum() == 10 * 600 and set(np.unique(mask)) == {0, 1}


def test_a_berm_broken_across_a_seam_is_closed_into_one(oracle, tmp_path):
    seam = min(t.core[3] for t in tile_grid(SIZE, SIZE, 256, 64))
    pieces = [(200, 20, 210, seam - 6), (200, seam + 6, 210, 620)]  # 12 px (6 m) apart, the gap astride a seam
    scene = write_scene(tmp_path / "gap.tif", plant(SIZE, SIZE, [], pieces))
    masks = {}
    for tile, overlap, closing in ((256, 64, "6"), (512, 128, "6"), (256, 64, "0")):
        out = tmp_path / f"{tile}-{closing}"
        result = _run(oracle, [scene], out, "--tile", str(tile), "--overlap", str(overlap), "--region-closing", closing)
        assert result.returncode == 0, result.stderr
        berms = [f["properties"] for f in json.loads((out / "gap.geojson").read_text())["features"]
                 if f["properties"]["class"] == "earth_berm"]
        with rasterio.open(out / "gap_mask.tif") as src:
            masks[tile, closing] = src.read(1)
        if closing == "0":
            assert sorted(b["area_m2"] for b in berms) == pytest.approx(sorted([(seam - 26) * 2.5, (614 - seam) * 2.5]))
        else:
            assert len(berms) == 1
    np.testing.assert_array_equal(masks[256, "6"], masks[512, "6"])
    closed, thresholded = masks[256, "6"] == 1, masks[256, "0"] == 1
    assert thresholded.sum() == 588 * 10 and (closed >= thresholded).all()
    rows, cols = np.nonzero(closed & ~thresholded)  # the gap, filled all but its corners, and nothing else
    assert rows.min() >= 200 and rows.max() < 210 and cols.min() >= seam - 6 and cols.max() < seam + 6
    assert 0.7 * 120 < len(rows) <= 120


def test_results_do_not_depend_on_tile_size_or_overlap(oracle, seam_scene, tmp_path):
    runs = {}
    for tile, overlap in ((256, 64), (512, 128), (320, 96)):
        out = tmp_path / f"{tile}-{overlap}"
        assert _run(oracle, [seam_scene], out, "--tile", str(tile), "--overlap", str(overlap)).returncode == 0
        runs[tile] = [(round(c, 3), round(r, 3)) for c, r, _ in _objects(out / "seams.geojson")]
        with rasterio.open(out / "seams_mask.tif") as src:
            runs[f"mask{tile}"] = src.read(1)
    assert runs[256] == runs[512] == runs[320]
    np.testing.assert_array_equal(runs["mask256"], runs["mask512"])


def test_a_coarser_scene_is_resampled_and_detections_land_on_the_ground(oracle, tmp_path):
    # The same ground at 1 m: markers of 2 x 2 px become 4 x 4 on the model's 0.5 m grid.
    fine = plant(512, 512, [(102, 102), (302, 202)], [])
    coarse = fine[:, ::2, ::2].copy()
    coarse[0] = fine[0].reshape(256, 2, 256, 2).max(axis=(1, 3))
    scene = write_scene(tmp_path / "coarse.tif", coarse, gsd=1.0)
    assert _run(oracle, [scene], tmp_path / "out", "--tile", "256", "--overlap", "64").returncode == 0
    found = _objects(tmp_path / "out" / "coarse.geojson")
    assert [(round(c), round(r)) for c, r, _ in found] == [(102, 102), (302, 202)]
    (entry,) = json.loads((tmp_path / "out" / "summary.json").read_text())["scenes"]
    assert (entry["megapixels"], entry["source_megapixels"]) == (0.262, 0.066)  # the model's grid, the file


def test_a_scene_much_coarser_than_the_model_is_refused_in_one_line_and_the_others_run(oracle, tmp_path):
    """Pixels of 1.5 m for the 0.5 m oracle: 3x, past the 2x that is upsampled (1 m runs, above)."""
    pixels = plant(512, 512, [(102, 102)], [])
    coarse = write_scene(tmp_path / "coarse.tif", pixels[:, ::3, ::3].copy(), gsd=1.5)
    fine = write_scene(tmp_path / "fine.tif", pixels)
    result = _run(oracle, [coarse, fine], tmp_path / "out", "--tile", "256", "--overlap", "64")
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "coarse.tif has pixels of 1.5 m, 3x the model's 0.5 m" in result.stderr
    assert "gdalwarp -tr 0.5 0.5" in result.stderr
    assert not list((tmp_path / "out").glob("coarse*")) and (tmp_path / "out" / "fine.geojson").is_file()


def test_region_pieces_smaller_than_the_class_minimum_are_not_reported_nor_in_the_mask(oracle, tmp_path):
    berm, speck = (300, 20, 320, 400), (100, 100, 104, 104)  # 10 m x 190 m, and 2 m x 2 m = 4 m²
    scene = write_scene(tmp_path / "specks.tif", plant(512, 512, [], [berm, speck]))
    areas = {}
    for name, extra in (("all", []), ("above", ["--min-area", "earth_berm=10"])):
        assert _run(oracle, [scene], tmp_path / name, "--tile", "256", "--overlap", "64", *extra).returncode == 0
        features = json.loads((tmp_path / name / "specks.geojson").read_text())["features"]
        areas[name] = sorted(f["properties"]["area_m2"] for f in features if f["properties"]["class"] == "earth_berm")
        with rasterio.open(tmp_path / name / "specks_mask.tif") as mask:
            classes = mask.read(1)
        assert (classes[300:320, 20:400] == 1).all()  # the berm stays whole
        assert (classes[100:104, 100:104] == (1 if name == "all" else 0)).all()
    assert areas == {"all": [4.0, 1900.0], "above": [1900.0]}
    summary = json.loads((tmp_path / "above" / "summary.json").read_text())["scenes"][0]
    assert summary["counts"]["earth_berm"] == 1


def test_the_minimum_area_counts_a_piece_whole_across_seams(oracle, tmp_path):
    """A speck off every core edge is dropped by its tile; one cut by a seam only once its halves are merged:
    halves below the minimum that are above it together stay, in the vectors and in the mask."""
    seam = sorted({t.core[1] for t in tile_grid(512, 512, 256, 64)} - {0})[0]
    inside, small_cut, large_cut = (100, 100, 104, 104), (200, seam - 2, 204, seam + 2), (300, seam - 3, 304, seam + 3)
    scene = write_scene(tmp_path / "cut.tif", plant(512, 512, [], [inside, small_cut, large_cut]))
    for name, extra in (("all", []), ("above", ["--min-area", "earth_berm=5"])):
        assert _run(oracle, [scene], tmp_path / name, "--tile", "256", "--overlap", "64", *extra).returncode == 0
        features = json.loads((tmp_path / name / "cut.geojson").read_text())["features"]
        areas = sorted(f["properties"]["area_m2"] for f in features if f["properties"]["class"] == "earth_berm")
        assert areas == ([4.0, 4.0, 6.0] if name == "all" else [6.0])  # 16, 16 and 24 px at 0.25 m² each
        with rasterio.open(tmp_path / name / "cut_mask.tif") as mask:
            classes = mask.read(1)
        kept = name == "all"
        for r0, c0, r1, c1 in (inside, small_cut):
            assert (classes[r0:r1, c0:c1] == (1 if kept else 0)).all()
        assert (classes[300:304, seam - 3:seam + 3] == 1).all()
        assert classes.sum() == (16 + 16 + 24 if kept else 24)


def test_a_thin_strip_is_run_in_tiles_fitted_to_it(oracle, tmp_path):
    centres = [(102, 2), (1502, 6), (2902, 2)]
    scene = write_scene(tmp_path / "strip.tif", plant(3000, 8, centres, []))
    assert _run(oracle, [scene], tmp_path / "out", "--tile", "256", "--overlap", "64").returncode == 0
    found = _objects(tmp_path / "out" / "strip.geojson")
    assert [(round(c), round(r)) for c, r, _ in sorted(found)] == centres
    (entry,) = json.loads((tmp_path / "out" / "summary.json").read_text())["scenes"]
    assert entry["tiles"] == len(tile_grid(3000, 8, 256, 64)) == 16
    with rasterio.open(tmp_path / "out" / "strip_mask.tif") as mask:
        assert (mask.width, mask.height) == (3000, 8)


def test_a_picture_without_georeferencing_works_in_pixels(oracle, tmp_path):
    pixels = plant(256, 256, [(62, 90)], [])
    Image.fromarray(np.moveaxis(pixels, 0, -1)).save(tmp_path / "photo.png")
    result = _run(oracle, [tmp_path / "photo.png"], tmp_path / "out")
    assert result.returncode == 0 and result.stderr == ""  # no NotGeoreferencedWarning per file opened
    data = json.loads((tmp_path / "out" / "photo.geojson").read_text())
    assert "pixel" in data["coordinates"]
    (feature,) = data["features"]
    centre = shapely.geometry.shape(feature["geometry"]).centroid
    assert (centre.x, centre.y) == pytest.approx((62, 90))


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_the_band_picking_vrt_the_error_names_runs_as_a_scene(oracle, tmp_path):
    """A four-band scene for a three-band model: the VRT of its first three bands (what the error's gdal_translate
    writes) gives the detections of the three-band scene."""
    pixels = plant(512, 512, [(102, 102), (302, 202)], [(300, 40, 312, 480)])
    four = write_scene(tmp_path / "four.tif", np.concatenate([pixels, pixels[:1]]))
    three = write_scene(tmp_path / "three.tif", pixels)
    with rasterio.open(four) as src:
        geotransform, wkt = ", ".join(map(str, src.transform.to_gdal())), src.crs.to_wkt()
    bands = "".join(f"<VRTRasterBand dataType='Byte' band='{b}'><SimpleSource><SourceFilename relativeToVRT='1'>"
                    f"four.tif</SourceFilename><SourceBand>{b}</SourceBand></SimpleSource></VRTRasterBand>"
                    for b in (1, 2, 3))
    vrt = tmp_path / "four_bands.vrt"
    vrt.write_text(f"<VRTDataset rasterXSize='512' rasterYSize='512'><SRS>{html.escape(wkt)}</SRS>"
                   f"<GeoTransform>{geotransform}</GeoTransform>{bands}</VRTDataset>")
    for scene in (vrt, three):
        assert _run(oracle, [scene], tmp_path / scene.stem).returncode == 0
    assert _objects(tmp_path / "four_bands" / "four_bands.geojson") == _objects(tmp_path / "three" / "three.geojson")
    assert len(_objects(tmp_path / "three" / "three.geojson")) == 2


def test_a_16_bit_scene_for_an_8_bit_model_is_told_the_stretch_and_the_stretch_runs(oracle, tmp_path):
    """Most satellite imagery is 11 to 16 bits. The refusal names the gdal_translate that stretches the range
    holding its ground to 8 bits; that VRT (written here as gdal_translate writes it) gives the detections of
    the same scene in 8 bits."""
    pixels = plant(512, 512, [(102, 102), (302, 202)], [(300, 40, 312, 480)])
    deep = pixels.astype(np.uint16) * 1500 + 300  # the ground at 300, what is planted at 1800
    write_scene(tmp_path / "deep.tif", deep)
    eight = write_scene(tmp_path / "eight.tif", pixels)
    result = _run(oracle, [tmp_path / "deep.tif"], tmp_path / "refused")
    error = json.loads((tmp_path / "refused" / "summary.json").read_text())["scenes"][0]["error"]
    assert result.returncode == 1 and "deep.tif has uint16 pixels, the model was trained on uint8; stretch it" in error
    low, high = map(float, re.search(r"gdal_translate -ot Byte -scale (\S+) (\S+) 0 255 -of VRT deep.tif "
                                     r"deep_8bit.vrt", error).groups())
    assert low == 300 and 300 < high <= 1800
    with rasterio.open(tmp_path / "deep.tif") as src:
        geotransform, wkt = ", ".join(map(str, src.transform.to_gdal())), src.crs.to_wkt()
    ratio = 255 / (high - low)
    bands = "".join(f"<VRTRasterBand dataType='Byte' band='{b}'><ComplexSource><SourceFilename relativeToVRT='1'>"
                    f"deep.tif</SourceFilename><SourceBand>{b}</SourceBand><ScaleOffset>{-low * ratio}</ScaleOffset>"
                    f"<ScaleRatio>{ratio}</ScaleRatio></ComplexSource></VRTRasterBand>" for b in (1, 2, 3))
    (tmp_path / "deep_8bit.vrt").write_text(
        f"<VRTDataset rasterXSize='512' rasterYSize='512'><SRS>{html.escape(wkt)}</SRS>"
        f"<GeoTransform>{geotransform}</GeoTransform>{bands}</VRTDataset>")
    for scene in (tmp_path / "deep_8bit.vrt", eight):
        assert _run(oracle, [scene], tmp_path / scene.stem).returncode == 0
    found = _objects(tmp_path / "deep_8bit" / "deep_8bit.geojson")
    assert found == _objects(tmp_path / "eight" / "eight.geojson") and len(found) == 2


def test_an_alpha_band_after_the_models_bands_is_read_as_the_scenes_mask(oracle, tmp_path):
    """RGBA (a drone orthomosaic): the model reads the colour bands; the transparent pixels are no-data, so
    the storehouse planted under them is not reported and the footprint leaves them out."""
    pixels = plant(512, 512, [(102, 102), (302, 202), (402, 402)], [(300, 40, 312, 480)])
    alpha = np.full((1, 512, 512), 255, np.uint8)
    alpha[:, 352:, 352:] = 0  # the third storehouse's corner is transparent
    rgb = write_scene(tmp_path / "rgb.tif", pixels)
    profile = {"driver": "GTiff", "width": 512, "height": 512, "count": 4, "dtype": "uint8", "crs": "EPSG:32637",
               "transform": Affine(0.5, 0, ORIGIN[0], 0, -0.5, ORIGIN[1]), "photometric": "RGB", "alpha": "YES"}
    with rasterio.open(tmp_path / "rgba.tif", "w", **profile) as dst:
        dst.write(np.concatenate([pixels, alpha]))
    with rasterio.open(tmp_path / "rgba.tif") as src:
        assert src.colorinterp[3] == rasterio.enums.ColorInterp.alpha
    for scene in (rgb, tmp_path / "rgba.tif"):
        assert _run(oracle, [scene], tmp_path / scene.stem).returncode == 0
    opaque = [o for o in _objects(tmp_path / "rgb" / "rgb.geojson") if not (o[0] >= 352 and o[1] >= 352)]
    assert len(opaque) == 2 and _objects(tmp_path / "rgba" / "rgba.geojson") == opaque
    seen = shapely.geometry.shape(json.loads((tmp_path / "rgba" / "rgba.geojson").read_text())["footprint"])
    whole = shapely.geometry.shape(json.loads((tmp_path / "rgb" / "rgb.geojson").read_text())["footprint"])
    assert seen.area == pytest.approx(whole.area * (1 - (160 / 512) ** 2), rel=0.02)


def test_the_near_infrared_band_gdal_calls_alpha_is_data_for_a_four_band_model(tmp_path):
    """GDAL calls the fourth band of a four-band 8-bit GeoTIFF written with the defaults alpha. For a red, green,
    blue, near-infrared model that band is data: its zeros (water, shadow) are not no-data, so the storehouse
    over them is found and the footprint is the whole scene, as for the same file with the band undefined."""
    model = write_oracle(tmp_path / "rgbn.onnx", bands=("red", "green", "blue", "nir"))
    pixels = plant(512, 512, [(102, 102), (302, 202), (402, 402)], [(300, 40, 312, 480)])
    nir = np.full((1, 512, 512), 90, np.uint8)
    nir[:, 352:, 352:] = 0  # water under the third storehouse
    profile = {"driver": "GTiff", "width": 512, "height": 512, "count": 4, "dtype": "uint8", "crs": "EPSG:32637",
               "transform": Affine(0.5, 0, ORIGIN[0], 0, -0.5, ORIGIN[1])}
    for name, options in (("defaults", {}), ("undefined", {"alpha": "UNSPECIFIED"})):
        with rasterio.open(tmp_path / f"{name}.tif", "w", **profile, **options) as dst:
            dst.write(np.concatenate([pixels, nir]))
    with rasterio.open(tmp_path / "defaults.tif") as src:
        assert src.colorinterp[3] == rasterio.enums.ColorInterp.alpha
    for name in ("defaults", "undefined"):
        assert _run(model, [tmp_path / f"{name}.tif"], tmp_path / name).returncode == 0
    found = [json.loads((tmp_path / name / f"{name}.geojson").read_text()) for name in ("defaults", "undefined")]
    assert _objects(tmp_path / "defaults" / "defaults.geojson") == _objects(tmp_path / "undefined" / "undefined.geojson")
    assert len(_objects(tmp_path / "defaults" / "defaults.geojson")) == 3
    assert found[0]["footprint"] == found[1]["footprint"]


def test_an_rgb_model_refuses_a_near_infrared_band_gdal_calls_alpha_and_its_vrt_runs(oracle, tmp_path):
    """For an RGB model, a four-band 8-bit file written with the defaults is not RGBA: its "alpha" holds data
    (near-infrared), so its zeros are not transparency. It is refused with the band-picking VRT, which runs
    with every pixel valid."""
    pixels = plant(512, 512, [(102, 102), (302, 202), (402, 402)], [(300, 40, 312, 480)])
    nir = np.random.default_rng(1).integers(40, 200, (1, 512, 512), dtype=np.uint8)
    nir[:, 352:, 352:] = 0  # water under the third storehouse
    rgbn = write_scene(tmp_path / "rgbn.tif", np.concatenate([pixels, nir]))
    with rasterio.open(rgbn) as src:
        assert src.colorinterp[3] == rasterio.enums.ColorInterp.alpha
        geotransform, wkt = ", ".join(map(str, src.transform.to_gdal())), src.crs.to_wkt()
    assert _run(oracle, [rgbn], tmp_path / "refused").returncode == 1
    error = json.loads((tmp_path / "refused" / "summary.json").read_text())["scenes"][0]["error"]
    assert error.startswith("rgbn.tif has 4 bands (GDAL calls band 4 alpha, but it holds data, not transparency), "
                            "the model expects 3; pick 3 in the model's order, e.g. gdal_translate -of VRT -b 1 -b 2 "
                            "-b 3 rgbn.tif rgbn_bands.vrt"), error
    bands = "".join(f"<VRTRasterBand dataType='Byte' band='{b}'><SimpleSource><SourceFilename relativeToVRT='1'>"
                    f"rgbn.tif</SourceFilename><SourceBand>{b}</SourceBand></SimpleSource></VRTRasterBand>"
                    for b in (1, 2, 3))
    (tmp_path / "rgbn_bands.vrt").write_text(f"<VRTDataset rasterXSize='512' rasterYSize='512'><SRS>"
                                             f"{html.escape(wkt)}</SRS><GeoTransform>{geotransform}</GeoTransform>"
                                             f"{bands}</VRTDataset>")
    assert _run(oracle, [tmp_path / "rgbn_bands.vrt"], tmp_path / "picked").returncode == 0
    assert len(_objects(tmp_path / "picked" / "rgbn_bands.geojson")) == 3


def test_scenes_inside_a_zip_archive_run_where_they_are_as_the_files_would(oracle, seam_scene, tmp_path):
    """GDAL's virtual file systems: `/vsizip/{/abs/scenes.zip}/a.tif` and, from the archive's folder,
    `/vsizip/scenes.zip/b.tif` give the bytes the unpacked files give; a rerun skips them; a member that is not
    there is one line with GDAL's reason, before any work."""
    second = write_scene(tmp_path / "second.tif", plant(256, 256, [(102, 102)], []))
    archive = tmp_path / "scenes.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zipped:
        zipped.write(seam_scene, "seams.tif")
        zipped.write(second, "second.tif")
    assert _run(oracle, [seam_scene, second], tmp_path / "files").returncode == 0
    virtual = [f"/vsizip/{{{archive}}}/seams.tif", "/vsizip/scenes.zip/second.tif"]
    zipped_run = run_cli("infer", "run", str(oracle), *virtual, "--out", "zipped", "--quiet", cwd=tmp_path)
    assert zipped_run.returncode == 0, zipped_run.stderr
    for name in ("seams.geojson", "seams_mask.tif", "second.geojson"):
        assert (tmp_path / "zipped" / name).read_bytes() == (tmp_path / "files" / name).read_bytes(), name
    reports = []
    for scene, out in ((virtual[0], "zipped.json"), (str(seam_scene), "files.json")):
        scored = run_cli("infer", "evaluate", "files/seams.geojson", "files/seams.geojson", "--scene", scene, "--out",
                         out, cwd=tmp_path)
        assert scored.returncode == 0, scored.stderr
        reports.append(json.loads((tmp_path / out).read_text()))
    assert reports[0] == reports[1] and reports[0]["map@0.5"] == 1.0
    again = run_cli("infer", "run", str(oracle), *virtual, "--out", "zipped", cwd=tmp_path)
    assert again.returncode == 0 and "2 scene(s) done (0 by this run)" in again.stdout, again.stdout
    missing = run_cli("infer", "run", str(oracle), f"/vsizip/{{{archive}}}/other.tif", "--out", "none", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1, missing.stderr
    assert missing.stderr.startswith(f"error: scene not found: /vsizip/{{{archive}}}/other.tif (")
    assert not (tmp_path / "none").exists()


def test_scenes_at_an_http_url_run_where_they_are_named_after_their_file(oracle, seam_scene, tmp_path):
    """A URL (here a local server answering byte ranges, as object stores do) reads through GDAL's /vsicurl/:
    the outputs are named after the URL's file, have the bytes the file's run gives, a rerun skips the scene, and
    a URL of a list file works too; one that answers 404 is one line before any work; a refusal's hint reads the
    URL."""
    shutil.copy(seam_scene, tmp_path / "seams.tif")
    assert _run(oracle, [tmp_path / "seams.tif"], tmp_path / "files").returncode == 0
    with served(tmp_path) as base:
        first = run_cli("infer", "run", str(oracle), f"{base}/seams.tif", "--out", str(tmp_path / "web"), "--quiet")
        assert first.returncode == 0, first.stderr
        for name in ("seams.geojson", "seams_mask.tif"):
            assert (tmp_path / "web" / name).read_bytes() == (tmp_path / "files" / name).read_bytes(), name
        (tmp_path / "list.txt").write_text(f"{base}/seams.tif\n")
        again = run_cli("infer", "run", str(oracle), str(tmp_path / "list.txt"), "--out", str(tmp_path / "web"))
        assert again.returncode == 0 and "1 scene(s) done (0 by this run)" in again.stdout, again.stdout
        missing = run_cli("infer", "run", str(oracle), f"{base}/nothere.tif", "--out", str(tmp_path / "none"))
        write_scene(tmp_path / "five.tif", np.zeros((5, 64, 64), np.uint8))
        assert _run(oracle, [f"{base}/five.tif"], tmp_path / "five").returncode == 1
        error = json.loads((tmp_path / "five" / "summary.json").read_text())["scenes"][0]["error"]
        # the refusal's gdal_translate reads the URL, a GDAL path that opens
        assert f"-b 1 -b 2 -b 3 /vsicurl/{base}/five.tif five_bands.vrt" in error
        opened = subprocess.run([sys.executable, "-c", f"import rasterio; print(rasterio.open('/vsicurl/{base}/five.tif')"
                                 ".count)"], capture_output=True, text=True)  # not in this process: it serves
        assert opened.stdout.strip() == "5", opened.stderr
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "scene not found" in missing.stderr
    assert not (tmp_path / "none").exists()
    entry = json.loads((tmp_path / "web" / "summary.json").read_text())["scenes"][0]
    assert entry["status"] == "done" and entry["outputs"]["geojson"].endswith("seams.geojson")
    assert json.loads((tmp_path / "web" / "seams.geojson").read_text())["scene"] == "seams.tif"


def test_bad_scenes_are_recorded_and_skipped_and_the_job_exits_1(oracle, seam_scene, tmp_path):
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(seam_scene.read_bytes()[: seam_scene.stat().st_size // 3])
    not_tiff = tmp_path / "notes.tif"
    not_tiff.write_text("this is not a raster")
    five_bands = write_scene(tmp_path / "five.tif", np.zeros((5, 64, 64), np.uint8))
    deep = write_scene(tmp_path / "deep.tif", np.ones((3, 64, 64), np.uint16))
    empty = write_scene(tmp_path / "empty.tif", np.zeros((3, 300, 300), np.uint8), nodata=0)
    good = tmp_path / "good.tif"
    shutil.copy(seam_scene, good)
    out = tmp_path / "out"
    result = _run(oracle, [truncated, not_tiff, five_bands, deep, empty, good], out)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 5 and "Traceback" not in result.stderr
    summary = {Path(e["scene"]).name: e for e in json.loads((out / "summary.json").read_text())["scenes"]}
    assert summary["good.tif"]["status"] == "done"
    assert "5 bands, the model expects 3; pick 3 in the model's order, e.g. gdal_translate -of VRT -b 1 -b 2 -b 3 " \
           "five.tif five_bands.vrt" in summary["five.tif"]["error"]
    assert "no valid pixels" in summary["empty.tif"]["error"]
    assert "uint16 pixels, the model was trained on uint8" in summary["deep.tif"]["error"]
    # GDAL's own reason, not rasterio's pointer to an exception the user never sees
    assert "damaged or truncated" in summary["truncated.tif"]["error"]
    # (libtiff's read of a tile, or GDAL's own when it decodes the blocks of a read in parallel)
    assert re.search(r"TIFFReadEncodedTile|Cannot read \d+ bytes at offset", summary["truncated.tif"]["error"])
    assert "previous exception" not in result.stderr
    for name in ("truncated", "notes", "five", "deep", "empty"):
        assert summary[f"{name}.tif"]["status"] == "failed" and "\n" not in summary[f"{name}.tif"]["error"]
        assert not list(out.glob(f"{name}*")) and not list(out.glob(f".{name}*"))  # nothing half-written


def test_missing_model_is_a_usage_error(seam_scene, tmp_path):
    result = _run(tmp_path / "nope.onnx", [seam_scene], tmp_path / "out")
    assert result.returncode == 2 and "nope.onnx" in _one_error_line(result)


def test_read_only_output_folder_is_a_usage_error(oracle, seam_scene, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode:
            pytest.skip("running as root without chattr: cannot make a folder read-only")
    else:
        folder.chmod(0o555)
    try:
        result = _run(oracle, [seam_scene], folder)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(folder)])
        folder.chmod(0o755)
    assert result.returncode == 2 and "cannot write to output folder" in _one_error_line(result)


@pytest.mark.parametrize(("extra", "message"), [
    (["--region-closing", "-1"], "--region-closing must be >= 0"),
    (["--region-closing", "nan"], "argument --region-closing: not a finite number: 'nan'"),
    (["--region-closing", "20", "--overlap", "64"], "needs an overlap of at least 160 px"),
    (["--score", "nan"], "argument --score: not a finite number: 'nan'"),
    (["--score", "inf"], "argument --score: not a finite number: 'inf'"),
    (["--score", "1.5"], "--score must be between 0 and 1"),
    (["--tile", "250"], "--tile must be a positive multiple of 32"),
    (["--overlap", "256"], "--overlap must be at least 0 and less than the tile (256)"),
    (["--batch", "0"], "--batch must be at least 1"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--min-area", "truck=5"], "--min-area: truck is not a region class of this model"),
    (["--min-area", "earth_berm=nan"], "argument --min-area: not a finite number: 'nan'"),
    (["--min-area", "earth_berm=-1"], "argument --min-area: the area must be >= 0"),
    (["--min-area", "earth_berm"], "argument --min-area: expected CLASS=M2"),
    (["--outputs", "geojson,masks"], "--outputs: no output 'masks'"),
    (["--outputs", "mask,overlay"], "--outputs: geojson is missing"),
])
def test_bad_options_are_a_usage_error_and_write_nothing(oracle, seam_scene, tmp_path, extra, message):
    result = _run(oracle, [seam_scene], tmp_path / "out", *extra)
    assert result.returncode == 2 and message in _one_error_line(result)
    assert not (tmp_path / "out").exists()


def test_bad_shard_is_a_usage_error(oracle, seam_scene, tmp_path):
    result = _run(oracle, [seam_scene], tmp_path, "--shard", "3/2")
    assert result.returncode == 2 and "--shard" in _one_error_line(result)


def test_shards_split_the_scene_list(oracle, seam_scene, tmp_path):
    scenes = []
    for k in range(3):
        scenes.append(tmp_path / f"s{k}.tif")
        shutil.copy(seam_scene, scenes[-1])
    for shard in ("0/2", "1/2"):
        assert _run(oracle, scenes, tmp_path / "out", "--shard", shard).returncode == 0
    done = sorted(p.name for p in (tmp_path / "out").glob("s*.geojson"))
    assert done == ["s0.geojson", "s1.geojson", "s2.geojson"]
    first = json.loads((tmp_path / "out" / "summary-0-of-2.json").read_text())["scenes"]
    assert sorted(Path(e["scene"]).name for e in first) == ["s0.tif", "s2.tif"]


def _children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_killed_run_resumed_gives_the_same_outputs(oracle, tmp_path, workers):
    scenes = []
    for k in range(3):
        centres = [(102 + 40 * k, 102), (1502, 1802 - 40 * k)]
        scenes.append(write_scene(tmp_path / f"big{k}.tif", plant(2048, 2048, centres, [(900, 100, 910, 1900)])))
    whole = tmp_path / "whole"
    assert _run(oracle, scenes, whole, "--tile", "256", "--overlap", "64").returncode == 0

    resumed = tmp_path / "resumed"
    args = [sys.executable, "-m", "infer", "run", str(oracle), *map(str, scenes), "--out", str(resumed), "--quiet",
            "--tile", "256", "--overlap", "64", "--workers", workers]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (resumed / "big0.geojson").exists() and time.time() < deadline:
        time.sleep(0.05)
    workers_of_run = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (resumed / "big2.geojson").exists()  # it really was cut short
    deadline = time.time() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers_of_run) and time.time() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers_of_run if Path(f"/proc/{pid}").exists()]  # no orphans left running
    assert _run(oracle, scenes, resumed, "--tile", "256", "--overlap", "64", "--workers", workers).returncode == 0
    for k in range(3):
        assert (resumed / f"big{k}.geojson").read_text() == (whole / f"big{k}.geojson").read_text()
        with rasterio.open(resumed / f"big{k}_mask.tif") as a, rasterio.open(whole / f"big{k}_mask.tif") as b:
            np.testing.assert_array_equal(a.read(), b.read())
    assert not list(resumed.glob(".*partial*"))
