"""`infer sites`: detections grouped into sites, fortified storehouses, on generated truth and on model output."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
from pyogrio.raw import read
from shapely.geometry import Polygon, box

from infer.analysis.changes import Thing, read_side, to_metric
from infer.analysis.sites import SiteRules, find_sites, ridge_length, walled_in
from synth.layout import SceneSpec, plan_scene
from synth.writer import write_labels
from tests.helpers import run_cli
from tests.infer.oracle import plant, write_oracle, write_scene


def _truth(folder: Path, seed: int, size: int = 3072, nodata: bool = False) -> Path:
    layout = plan_scene(SceneSpec(size, size, seed=seed, nodata_border=nodata))
    folder.mkdir(parents=True, exist_ok=True)
    return write_labels(layout, layout.acquisitions[0], folder / f"truth_{seed}.geojson")


@pytest.mark.parametrize(("seed", "nodata"), [(3, False), (8, True), (14, False), (41, True)])
def test_sites_and_fortified_storehouses_are_the_generators_on_its_truth(tmp_path, seed, nodata):
    side = read_side(_truth(tmp_path, seed, nodata=nodata))
    to_metric([side])
    things = side.objects + side.regions
    sites, fortified = find_sites(things)
    storehouses = [i for i, t in enumerate(things) if t.cls == "storehouse"]
    assert len(storehouses) > 10 and 0 < len(fortified) < len(storehouses)  # both kinds are there
    assert fortified == {i for i in storehouses if things[i].properties["fortified"]}
    planned: dict[int, set[int]] = {}
    for i in storehouses:
        planned.setdefault(things[i].properties["site"], set()).add(i)
    found = {frozenset(s.storehouses) for s in sites if s.storehouses}
    assert found == {frozenset(v) for v in planned.values()}
    for site in sites:
        numbers = {things[i].properties["site"] for i in site.storehouses + site.cleared}
        assert len(numbers) == 1
        number = numbers.pop()
        own_berms = [t for t in things if t.cls == "earth_berm" and t.properties.get("site") == number]
        assert site.berm_m == pytest.approx(sum(t.properties["length_m"] for t in own_berms), rel=0.01)
        own_trucks = {i for i, t in enumerate(things) if t.cls == "truck" and t.properties.get("site") == number}
        assert own_trucks <= set(site.trucks_inside)
        cleared = [t for t in things if t.cls == "cleared_site" and t.properties.get("site") == number]
        assert site.cleared_m2 == pytest.approx(sum(t.properties["area_m2"] for t in cleared), rel=0.01)


def _berm(coords: list[tuple[float, float]], width: float = 4.0) -> Thing:
    geom = shapely.LineString(coords).buffer(width / 2, cap_style="flat", join_style="mitre")
    return Thing("earth_berm", geom, geom, {})


def _house(cx: float, cy: float, length: float = 40.0, width: float = 12.0) -> Thing:
    geom = box(cx - length / 2, cy - width / 2, cx + length / 2, cy + width / 2)
    return Thing("storehouse", geom, geom, {})


@pytest.mark.parametrize(("berms", "fortified"), [
    ([[(-40, 15), (40, 15)]], False),  # one berm along one long side
    ([[(-40, 15), (40, 15)], [(-40, -15), (40, -15)]], True),  # flanked on both long sides
    ([[(-8, 20), (-30, 20), (-30, -20), (30, -20), (30, 20), (8, 20)]], True),  # a ring with a 16 m gate
    ([[(-30, 20), (-30, -20), (30, -20)]], False),  # an L: two sides
    ([[(-200, 170), (-200, -170), (200, -170), (200, 170), (-200, 170)]], False),  # a ring beyond the reach
])
def test_a_storehouse_is_fortified_when_berms_wall_it_in_on_three_quarters_of_its_bearings(berms, fortified):
    things = [_house(0, 0)] + [_berm(b) for b in berms]
    sites, found = find_sites(things)
    assert (0 in found) is fortified
    assert len(sites) == 1 and sites[0].storehouses == [0]
    assert (sites[0].fortified == [0]) is fortified


def test_walled_fraction_counts_bearings():
    ring = _berm([(-8, 20), (-30, 20), (-30, -20), (30, -20), (30, 20), (8, 20)])
    tree = shapely.STRtree([ring.metric])
    fraction = walled_in(shapely.Point(0, 0), tree, SiteRules())
    gate = 2 * math.degrees(math.atan2(8, 20)) / 360  # the gate's share of the compass
    assert fraction == pytest.approx(1 - gate, abs=2 / 72)


def test_a_berm_alone_is_no_site_and_distance_links_members():
    rules = SiteRules(link_m=15)
    lone = [_berm([(0, 0), (300, 0)])]
    assert find_sites(lone, rules)[0] == []
    two = [_house(0, 0), _house(0, 25), _house(300, 0)]  # 13 m apart (edges), then far
    sites, _ = find_sites(two, rules)
    assert sorted(len(s.storehouses) for s in sites) == [1, 2]


def test_ridge_length_of_a_thin_polygon():
    assert ridge_length(box(0, 0, 120, 4)) == pytest.approx(120)
    ring = Polygon([(0, 0), (100, 0), (100, 60), (0, 60)], [[(4, 4), (96, 4), (96, 56), (4, 56)]])
    assert ridge_length(ring) == pytest.approx(2 * (96 + 56) - 4, rel=1e-3)  # its centreline, less a width: no ends


@pytest.fixture(scope="module")
def ringed_run(tmp_path_factory) -> Path:
    """The oracle on a compound (4 storehouses in a berm ring with a gate) and a lone storehouse."""
    root = tmp_path_factory.mktemp("sites")
    model = write_oracle(root / "oracle.onnx")
    inside = [(162, 162), (226, 162), (162, 242), (226, 242)]
    ring = [(100, 100, 108, 180), (100, 204, 108, 308), (100, 100, 308, 108), (300, 100, 308, 308),
            (100, 300, 308, 308)]  # (r0, c0, r1, c1): the top side open between columns 180 and 204
    scene = write_scene(root / "compound.tif", plant(512, 512, [*inside, (430, 430)], ring))
    out = root / "run"
    result = run_cli("infer", "run", str(model), str(scene), "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    return out


def test_sites_of_a_run_folder_land_in_it_open_in_ogr_and_show_in_the_report(ringed_run):
    result = run_cli("infer", "sites", str(ringed_run))
    assert result.returncode == 0, result.stderr
    assert "site 1: 104 m x 104 m; 4 storehouses, 4 fortified; " in result.stdout
    assert "site 2: 12 m x 8 m; 1 storehouse, 0 fortified" in result.stdout
    sites = json.loads((ringed_run / "sites.geojson").read_text())
    props = [f["properties"] for f in sites["features"]]
    assert [(p["storehouses"], p["fortified_storehouses"], p["defence"]) for p in props] == [
        (4, 4, "fortified"), (1, 0, "open")]
    assert props[0]["berm_m"] == pytest.approx(4 * 100 - 12, rel=0.05)  # the ring's centreline less the gate
    assert props[0]["area_m2"] == pytest.approx(104 * 104, rel=0.02)
    lon, lat = np.asarray(sites["features"][0]["geometry"]["coordinates"][0]).mean(axis=0)
    assert 30 < lon < 45 and 30 < lat < 40  # WGS84, near the UTM 37N origin of the scene
    gpkg = ringed_run / "sites.gpkg"
    assert [name for name, _ in pyogrio.list_layers(gpkg)] == ["sites", "storehouses", "layer_styles"]
    assert pyogrio.read_info(gpkg, layer="sites")["crs"] == "EPSG:4326"
    meta, _, _, fields = read(gpkg, layer="storehouses")
    assert sorted(fields[list(meta["fields"]).index("defence")]) == ["fortified"] * 4 + ["open"]
    meta, _, _, styles = read(gpkg, layer="layer_styles")
    column = dict(zip(meta["fields"], styles, strict=True))
    assert sorted(column["f_table_name"]) == ["sites", "storehouses"]
    assert all('attr="defence"' in qml and "215,48,31,255" in qml for qml in column["styleQML"])
    report = run_cli("infer", "report", str(ringed_run))
    assert report.returncode == 0, report.stderr
    page = (ringed_run / "report.html").read_text()
    assert "<h2 id=sites>Sites: 2</h2>" in page and "<a href='sites.gpkg'>" in page


@pytest.mark.parametrize(("args", "needle"), [
    (["--walled", "nan"], "--walled"),
    (["--walled", "1.5"], "--walled in (0, 1]"),
    (["--link", "-1"], "--link and --near not negative"),
    (["--storehouse-class", "storehose"], "--storehouse-class storehose: no input's model has that class "
                                          "(classes: cleared_site, earth_berm, storehouse, truck)"),
    (["--berm-class", "berm"], "--berm-class berm: no input's model has that class"),
])
def test_bad_options_are_one_line_and_exit_2(ringed_run, tmp_path, args, needle):
    result = run_cli("infer", "sites", str(ringed_run), "--out", str(tmp_path / "out"), *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and needle in lines[0], result.stderr
    assert not (tmp_path / "out").exists()


def test_inputs_that_are_not_there_or_need_an_out_are_refused(tmp_path, ringed_run):
    missing = run_cli("infer", "sites", str(tmp_path / "nothing.geojson"), "--out", str(tmp_path / "o"))
    assert missing.returncode == 2 and "not found" in missing.stderr
    truth = _truth(tmp_path, 3, size=1024)
    needs_out = run_cli("infer", "sites", str(truth))
    assert needs_out.returncode == 2 and "--out is needed" in needs_out.stderr
