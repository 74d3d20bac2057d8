"""Review pictures and the HTML report of an `infer run` folder, checked in a real browser where there is one."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import shapely
from affine import Affine
from PIL import Image

from infer.geo.crs import north_in_pixels
from infer.pictures.contact_sheet import CAPTION, CELL
from tests.helpers import CHROMIUM, CHROMIUM_FLAGS, run_cli
from tests.infer.oracle import plant, write_oracle, write_scene


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    model = write_oracle(root / "oracle.onnx")
    centres = [(62 + 68 * i, 82 + 48 * (i % 3)) for i in range(6)]
    scene = write_scene(root / "site.tif", plant(512, 512, centres, [(300, 40, 312, 480)]))
    out = root / "run"
    result = run_cli("infer", "run", str(model), str(scene), "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    return out


def test_contact_sheet_has_a_row_per_class_with_the_best_crops(run_folder):
    features = json.loads((run_folder / "site.geojson").read_text())["features"]
    storehouses = [f for f in features if f["properties"]["class"] == "storehouse"]
    assert len(storehouses) == 6
    with Image.open(run_folder / "site_detections.png") as sheet:
        pixels = np.asarray(sheet.convert("RGB")).astype(float)
    assert sheet.height == 4 * (CELL + CAPTION)
    outline = np.all(pixels == (255, 64, 64), axis=-1)  # the storehouse colour
    for k in range(6):  # every crop of the storehouse row shows its detection's outline, centred
        cell = outline[:CELL, 150 + k * CELL:150 + (k + 1) * CELL]
        rows, cols = np.nonzero(cell)
        assert len(rows) > 50 and abs(rows.mean() - CELL / 2) < 10 and abs(cols.mean() - CELL / 2) < 10
    truck_row = pixels[CELL + CAPTION:2 * CELL + CAPTION, 150:150 + 6 * CELL]
    assert truck_row.std() < 5  # no trucks: the row is empty but for its label


def test_north_arrow_follows_the_grid():
    north_up = Affine(0.5, 0, 677000, 0, -0.5, 3823000)
    x, y = north_in_pixels(north_up, "EPSG:32637", 100, 100)
    assert y < -0.99 and abs(x) < 0.05  # up, within the UTM grid convergence
    turned = north_up @ Affine.rotation(90)  # a picture whose rows run north-south
    x, y = north_in_pixels(turned, "EPSG:32637", 100, 100)
    assert abs(abs(x) - 1) < 0.01 and abs(y) < 0.05


def test_report_is_one_self_contained_page(run_folder):
    result = run_cli("infer", "report", str(run_folder))
    assert result.returncode == 0, result.stderr
    page = (run_folder / "report.html").read_text()
    sources = re.findall(r"(?:src|href)=['\"]([^'\"]+)", page)
    # pictures inline; links to the index and to the run's own files, which sit beside the page
    files = [s for s in sources if not s.startswith(("data:", "#"))]
    assert sources and files and all((run_folder / f).is_file() and "/" not in f for f in files)
    assert {f.rsplit(".", 1)[-1] for f in files} >= {"geojson", "gpkg", "tif", "png"}
    assert "http://" not in page and "https://" not in page
    features = json.loads((run_folder / "site.geojson").read_text())["features"]
    table = page.split("class=detections", 1)[1]
    assert table.count("<tr>") == len(features) + 1  # header and one row per detection
    assert "site.tif" in page and "#ff4040" in page  # the scene, and the model's storehouse colour on swatches


def test_links_reach_a_scene_whose_name_a_url_would_misread(tmp_path):
    """A space, a '#' and an accent in a scene's name: each link of the page, read as a browser reads a URL,
    leads to a file beside the page or to a heading in it."""
    scene = write_scene(tmp_path / "site #2 é.tif", plant(512, 512, [(102, 102)], [(300, 40, 312, 480)]))
    out = tmp_path / "run"
    assert run_cli("infer", "run", str(write_oracle(tmp_path / "oracle.onnx")), str(scene), "--out", str(out),
                   "--quiet").returncode == 0
    assert run_cli("infer", "report", str(out)).returncode == 0
    page = (out / "report.html").read_text()
    targets = [urllib.parse.urlsplit(html.unescape(h)) for h in re.findall(r"href='([^']+)'", page)]
    files = [urllib.parse.unquote(t.path) for t in targets if t.path]
    assert {f for f in files if f.startswith("site #2 é")} == {f"site #2 é{s}" for s in (
        ".geojson", ".gpkg", "_mask.tif", "_overlay.png", "_detections.png")}
    assert all((out / f).is_file() for f in files)
    ids = set(map(html.unescape, re.findall(r"id='([^']+)'", page)))
    assert [urllib.parse.unquote(t.fragment) for t in targets if not t.path] == ["site #2 é.tif"]
    assert "site #2 é.tif" in ids


def test_report_of_a_folder_without_a_run_is_a_one_line_error(tmp_path):
    result = run_cli("infer", "report", str(tmp_path))
    assert result.returncode != 0
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert not (tmp_path / "report.html").exists()


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("SITEWATCH_REQUIRE_CHROMIUM"),
                    reason="headless Chromium (Debian package `chromium`) is not installed")
def test_report_renders_in_headless_chromium(run_folder, tmp_path):
    assert CHROMIUM is not None, "SITEWATCH_REQUIRE_CHROMIUM is set (as CI sets it) but Chromium is not installed"
    assert run_cli("infer", "report", str(run_folder)).returncode == 0
    url = (run_folder / "report.html").resolve().as_uri()
    shot = tmp_path / "shot.png"
    common = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run([*common, "--window-size=1280,1400", f"--screenshot={shot}", url], capture_output=True,
                   timeout=120, check=False)
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB")).astype(float)
    assert pixels.std() > 20  # text, tables and the overview, not a blank page
    assert (np.abs(pixels - 250).sum(axis=-1) > 200).mean() > 0.1  # a good share of the page is not background
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert 'data-sort-col="2"' in dom  # the inline script ran and sorted the detections by score


def test_a_ring_is_filled_as_a_ring_not_over_its_hole():
    from PIL import Image

    from infer.pictures.drawing import fill_polygon

    ring = shapely.Polygon([(10, 10), (90, 10), (90, 90), (10, 90)], [[(30, 30), (70, 30), (70, 70), (30, 70)]])
    layer = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    fill_polygon(layer, ring, (0, 128, 128, 70))
    pixels = np.asarray(layer)
    assert tuple(pixels[20, 50]) == (0, 128, 128, 70)  # on the ring
    assert tuple(pixels[50, 50]) == (0, 0, 0, 0)  # in the hole: the compound is not painted
    assert tuple(pixels[5, 5]) == (0, 0, 0, 0)
    assert (pixels[..., 3] > 0).sum() == 81 * 81 - 41 * 41  # PIL fills both rings with their edges
