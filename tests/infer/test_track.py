"""`infer track`: sites followed through a generated series, against the generator's truth."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import shapely
from affine import Affine
from PIL import Image

from infer.analysis.change_scoring import score_changes
from infer.analysis.changes import read_side
from infer.analysis.track import follow
from infer.geo.crs import to_wgs84
from infer.geo.geojson import feature, write_feature_collection
from infer.runtime.model import OnnxModel
from synth.cli import main as synth_main
from synth.layout import SceneSpec, plan_scene
from tests.helpers import CHROMIUM, CHROMIUM_FLAGS, run_cli
from tests.infer.oracle import ORIGIN, plant, write_scene

DATES, SEED, SIZE = 5, 11, 1536


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("series")
    assert synth_main(["--out", str(out), "--quiet", "--size", str(SIZE), "--seed", str(SEED),
                       "--dates", str(DATES)]) == 0
    return [out / ("scene_000.geojson" if k == 1 else f"scene_000_t{k}.geojson") for k in range(1, DATES + 1)]


def _truth_timeline(paths: list[Path]) -> dict[int, list[tuple]]:
    """Per planned site, per date: (storehouses, fortified, cleared m², berm m, trucks), from the labels."""
    out: dict[int, list[tuple]] = {}
    for k, path in enumerate(paths):
        for f in json.loads(path.read_text())["features"]:
            p = f["properties"]
            if "site" in p:
                out.setdefault(p["site"], [[0, 0, 0.0, 0.0, 0] for _ in paths])
                row = out[p["site"]][k]
                row[0] += p["class"] == "storehouse"
                row[1] += bool(p.get("fortified"))
                row[2] += p["area_m2"] if p["class"] == "cleared_site" else 0.0
                row[3] += p["length_m"] if p["class"] == "earth_berm" else 0.0
                row[4] += p["class"] == "truck"
    return {s: [tuple(r) for r in rows] for s, rows in out.items()}


def test_timelines_are_the_generators_on_its_misregistered_truth(series):
    sides = [read_side(p) for p in series]
    tracking = follow(sides)
    planned = [a.offset_m for a in plan_scene(SceneSpec(SIZE, SIZE, seed=SEED, dates=DATES)).acquisitions]
    for (x, y), (px, py) in zip(tracking.offsets, planned, strict=True):
        assert abs(x - px) < 0.25 and abs(y - py) < 0.25  # each date's misregistration found and removed
    assert max(abs(v) for xy in planned for v in xy) > 1.0
    truth = _truth_timeline(series)
    assert len(tracking.sites) == len(truth)
    construction_seen = False
    for site in tracking.sites:
        first = next(s for s in site.dates if s is not None)
        members = first.storehouses + first.cleared
        things = sides[site.dates.index(first)].objects + sides[site.dates.index(first)].regions
        (number,) = {things[i].properties["site"] for i in members}
        ours = [(r["storehouses"], r["fortified"], r["cleared_m2"], r["berm_m"], r["trucks_inside"])
                for r in site.timeline()]
        for got, want in zip(ours, truth[number], strict=True):
            assert got[:2] == want[:2] and got[4] == want[4], (site.number, ours, truth[number])
            assert got[2] == pytest.approx(want[2], rel=0.01) and got[3] == pytest.approx(want[3], rel=0.01)
        construction_seen |= ours[0][0] != ours[-1][0]
    assert construction_seen  # some site grew: the timelines are not all flat


def test_track_writes_its_files_and_says_what_happened(series, tmp_path):
    result = run_cli("infer", "track", *map(str, series), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "cleared" in result.stdout and "fortified from date 4" in result.stdout
    rows = list(csv.DictReader((tmp_path / "out" / "timeline.csv").open()))
    assert {r["date_index"] for r in rows} == {str(k) for k in range(1, DATES + 1)}
    outlines = json.loads((tmp_path / "out" / "sites_over_time.geojson").read_text())["features"]
    assert sum(r["present"] == "True" for r in rows) == len(outlines)
    lon, lat = outlines[0]["geometry"]["coordinates"][0][0]
    assert 39 < lon < 43 and 33 < lat < 36


def test_track_needs_two_dates(series, tmp_path):
    result = run_cli("infer", "track", str(series[0]), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "at least two dates" in result.stderr


def _truth_changes(paths: list[Path]) -> list[list[dict]]:
    folder = paths[0].parent
    return [json.loads((folder / f"scene_000_changes_t{k}.geojson").read_text())["features"]
            for k in range(2, len(paths) + 1)]


def test_changes_between_dates_are_the_generators_in_the_first_dates_frame(series):
    """Strict matching (1.5 m, IoU 0.8): a change left in its own date's misregistered frame (up to 3 m off)
    or a berm compared unregistered (slivers as new and gone berm) would miss."""
    tracking = follow([read_side(p) for p in series])
    truth = _truth_changes(series)
    assert sum(map(len, truth)) >= 4
    for k, (want, pair) in enumerate(zip(truth, tracking.changes, strict=True)):
        found = [feature(c.geom, {**c.properties, "class": c.cls}) for c in pair]
        scores = score_changes(want, found, distance_m=1.5, min_iou=0.8)
        assert scores["precision"] == 1.0 and scores["recall"] == 1.0, (k + 2, scores)


def test_each_labeled_object_is_one_track(series):
    sides = [read_side(p) for p in series]
    tracking = follow(sides)
    ids_of_track = [{t.properties["id"] for t in track.seen if t is not None} for track in tracking.objects]
    assert all(len(ids) == 1 for ids in ids_of_track)  # no track jumps from one object to another
    labeled = {t.properties["id"] for side in sides for t in side.objects}
    assert sorted(i for ids in ids_of_track for i in ids) == sorted(labeled)  # and no object has two tracks
    for track in tracking.objects:
        (uid,) = ids_of_track[tracking.objects.index(track)]
        dates = [k for k, side in enumerate(sides) if any(t.properties["id"] == uid for t in side.objects)]
        assert track.dates_seen() == dates
    assert any(len(t.dates_seen()) < DATES for t in tracking.objects)  # storehouses built during the series


def test_track_writes_styled_layers_charts_and_a_report(series, tmp_path):
    import pyogrio

    out = tmp_path / "out"
    assert run_cli("infer", "track", *map(str, series), "--out", str(out)).returncode == 0
    timeline = json.loads((out / "timeline.json").read_text())
    for k, total in enumerate(timeline["area"]):
        assert total["storehouses"] == sum(s["timeline"][k]["storehouses"] for s in timeline["sites"])
    layers = {name: kind for name, kind in pyogrio.list_layers(out / "track.gpkg")}
    assert {"sites_over_time", "objects_over_time", "changes_over_time", "layer_styles"} <= set(layers)
    objects = json.loads((out / "objects_over_time.geojson").read_text())["features"]
    info = pyogrio.read_info(out / "track.gpkg", layer="objects_over_time")
    assert info["crs"] == "EPSG:4326" and info["features"] == len(objects)
    styles = pyogrio.raw.read(out / "track.gpkg", layer="layer_styles", read_geometry=False)
    qml = dict(zip(styles[3][2], styles[3][5], strict=True))
    assert "storehouse" in qml["objects_over_time"] and "new" in qml["changes_over_time"]
    changes = json.loads((out / "changes_over_time.geojson").read_text())["features"]
    assert sorted(f["properties"]["to_date_index"] for f in changes) == sorted(
        k + 2 for k, pair in enumerate(_truth_changes(series)) for _ in pair)
    charts = sorted((out / "charts").glob("*.png"))
    assert [c.name for c in charts] == ["area.png"] + [f"site_{s['site']:03d}.png" for s in timeline["sites"]]
    with Image.open(charts[0]) as chart:
        assert chart.size[0] >= 600 and np.asarray(chart.convert("L")).std() > 20
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(charts)
    assert all(f"<h2 id=site{s['site']}>" in page for s in timeline["sites"])
    assert all(f"href='{name}'" in page for name in ("timeline.csv", "track.gpkg", "changes_over_time.geojson"))


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("SITEWATCH_REQUIRE_CHROMIUM"),
                    reason="headless Chromium (Debian package `chromium`) is not installed")
def test_the_track_report_renders_in_headless_chromium(series, tmp_path):
    assert CHROMIUM is not None, "SITEWATCH_REQUIRE_CHROMIUM is set (as CI sets it) but Chromium is not installed"
    out = tmp_path / "out"
    assert run_cli("infer", "track", *map(str, series), "--out", str(out)).returncode == 0
    url = (out / "report.html").resolve().as_uri()
    common = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "shot.png"
    subprocess.run([*common, "--window-size=1280,1400", f"--screenshot={shot}", url], capture_output=True,
                   timeout=120, check=False)
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB")).astype(float)
    berm_green = (np.abs(pixels - (26, 158, 119)).sum(axis=-1) < 30).mean()
    assert berm_green > 0.01  # the area chart's berm bars: its data URI was decoded and drawn
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert "Registration to the first date" in dom and "id=\"site1\"" in dom


RING = [(96, 96, 104, 416), (408, 96, 416, 416), (96, 96, 416, 104), (96, 408, 240, 416), (272, 408, 416, 416)]
STOREHOUSES = [(182, 182), (182, 262), (182, 342), (262, 182), (262, 262)]


def test_track_with_a_model_runs_each_scene_then_follows_them(oracle, tmp_path):
    """Three dates of a walled compound growing by a storehouse a date, the last one misregistered 2 m east."""
    scenes = []
    for k, count in enumerate((3, 4, 5)):
        shift = 2.0 if k == 2 else 0.0
        scenes.append(write_scene(tmp_path / f"date{k + 1}.tif", plant(512, 512, STOREHOUSES[:count], RING),
                                  transform=Affine(0.5, 0, ORIGIN[0] + shift, 0, -0.5, ORIGIN[1])))
    out = tmp_path / "out"
    result = run_cli("infer", "track", *map(str, scenes), "--out", str(out), "--model", str(oracle))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["1_date1", "2_date2", "3_date3"]
    timeline = json.loads((out / "timeline.json").read_text())
    assert timeline["registration_offset_m"][2] == pytest.approx([2.0, 0.0], abs=0.1)
    (site,) = timeline["sites"]
    assert [(r["storehouses"], r["fortified"]) for r in site["timeline"]] == [(3, 3), (4, 4), (5, 5)]
    # registered, the ring did not move: only the new storehouses changed
    assert timeline["changes_between_dates"] == [{"storehouse new": 1}, {"storehouse new": 1}]
    assert timeline["objects"] == {"storehouse": {"tracks": 5, "seen_at_every_date": 3}}
    again = run_cli("infer", "track", *map(str, scenes), "--out", str(out), "--model", str(oracle))
    assert again.returncode == 0 and again.stdout == result.stdout  # the finished runs were kept
    runs = sorted((out / "runs").iterdir())
    assert run_cli("infer", "report", str(runs[0])).returncode == 0  # each is an `infer run` folder
    from_runs = run_cli("infer", "track", *map(str, runs), "--out", str(tmp_path / "again"))
    assert from_runs.returncode == 0 and from_runs.stdout.splitlines()[:-1] == result.stdout.splitlines()[:-1]


def test_track_with_a_model_refuses_a_date_of_other_ground_before_writing(oracle, tmp_path):
    pixels = plant(512, 512, STOREHOUSES, RING)
    near = write_scene(tmp_path / "near.tif", pixels)
    far = write_scene(tmp_path / "far.tif", pixels, transform=Affine(0.5, 0, ORIGIN[0] + 9000, 0, -0.5, ORIGIN[1]))
    result = run_cli("infer", "track", str(near), str(near), str(far), "--out", str(tmp_path / "out"),
                     "--model", str(oracle))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "do not cover the same ground" in result.stderr
    assert not (tmp_path / "out").exists()


def _dated(path: Path, date: str, things: list[tuple[str, shapely.Geometry]], header: dict | None = None) -> Path:
    """A result GeoJSON of things given in UTM 37N metres, with `header` members."""
    feats = [feature(to_wgs84(geom, "EPSG:32637"), {"class": cls, "score": 0.9} | (
        {"heading_deg": 0.0} if cls in ("storehouse", "truck") else {"area_m2": round(geom.area, 1)}))
        for cls, geom in things]
    write_feature_collection(path, feats, {"date": date, "classes": {
        "storehouse": "object", "truck": "object", "earth_berm": "region", "cleared_site": "region"}} | (header or {}))
    return path


def test_changes_a_neighbouring_pair_undoes_are_flicker_not_change(tmp_path):
    """A truck missed at date 2 and a berm segment missed at date 2 come back at date 3: not changes. Cleared
    ground lost at date 2 (built on) and a truck seen at date 2 only (a visit) are."""
    x0, y0 = ORIGIN
    houses = [("storehouse", shapely.box(x0 + 40 * i, y0 - 20, x0 + 40 * i + 12, y0 - 12)) for i in range(4)]
    parked = ("truck", shapely.box(x0 + 10, y0 - 80, x0 + 18, y0 - 77))
    visitor = ("truck", shapely.box(x0 + 100, y0 - 80, x0 + 108, y0 - 77))
    segment = ("earth_berm", shapely.box(x0, y0 - 60, x0 + 30, y0 - 55))
    cleared = ("cleared_site", shapely.box(x0 + 60, y0 - 140, x0 + 140, y0 - 100))
    dates = [_dated(tmp_path / "d1.geojson", "2026-03-01", houses + [parked, segment, cleared]),
             _dated(tmp_path / "d2.geojson", "2026-03-20", houses + [visitor]),
             _dated(tmp_path / "d3.geojson", "2026-04-09", houses + [parked, segment])]
    assert run_cli("infer", "track", *map(str, dates), "--out", str(tmp_path / "out")).returncode == 0
    timeline = json.loads((tmp_path / "out" / "timeline.json").read_text())
    assert timeline["changes_between_dates"] == [{"truck new": 1, "cleared_site gone": 1}, {"truck gone": 1}]
    assert timeline["flicker_between_dates"] == [{"truck gone": 1, "earth_berm gone": 1},
                                                 {"truck new": 1, "earth_berm new": 1}]
    changes = json.loads((tmp_path / "out" / "changes_over_time.geojson").read_text())["features"]
    assert len(changes) == 3
    assert run_cli("infer", "track", *map(str, dates), "--out", str(tmp_path / "all"), "--keep-flicker").returncode == 0
    kept = json.loads((tmp_path / "all" / "timeline.json").read_text())
    assert kept["changes_between_dates"] == [{"truck new": 1, "truck gone": 1, "earth_berm gone": 1,
                                              "cleared_site gone": 1}, {"truck new": 1, "truck gone": 1,
                                                                        "earth_berm new": 1}]
    assert kept["flicker_between_dates"] == [{}, {}]


def test_dates_given_out_of_time_order_are_said_first(tmp_path):
    x0, y0 = ORIGIN
    houses = [("storehouse", shapely.box(x0 + 40 * i, y0 - 20, x0 + 40 * i + 12, y0 - 12)) for i in range(4)]
    dates = {d: _dated(tmp_path / f"{d}.geojson", d, houses[:n]) for d, n in
             (("2026-03-01", 2), ("2026-03-20", 3), ("2026-04-09", 4))}
    shuffled = run_cli("infer", "track", *(str(dates[d]) for d in ("2026-03-01", "2026-04-09", "2026-03-20")),
                       "--out", str(tmp_path / "shuffled"))
    assert shuffled.returncode == 0, shuffled.stderr
    assert shuffled.stdout.splitlines()[0] == ("note: the dates are not in time order (2026-03-20.geojson, dated "
                                               "2026-03-20, is given after 2026-04-09.geojson, dated 2026-04-09): "
                                               "timelines and changes follow the order given")
    assert "not in time order" in (tmp_path / "shuffled" / "report.html").read_text()
    ordered = run_cli("infer", "track", *map(str, dates.values()), "--out", str(tmp_path / "ordered"))
    assert ordered.returncode == 0 and "note:" not in ordered.stdout


def test_a_rerun_with_fewer_sites_leaves_no_chart_of_the_sites_gone(tmp_path):
    """Three sites 1 km apart, then the same folder tracked again with one: its charts are the new run's, the
    other sites' charts are gone (the report links only the new ones), and what else the folder holds stays."""
    x0, y0 = ORIGIN
    houses = [("storehouse", shapely.box(x0 + 1000 * i, y0 - 20, x0 + 1000 * i + 12, y0 - 12)) for i in range(3)]
    out = tmp_path / "out"
    for n in (3, 1):
        dates = [_dated(tmp_path / f"{n}_{d}.geojson", d, houses[:n]) for d in ("2026-03-01", "2026-03-20")]
        assert run_cli("infer", "track", *map(str, dates), "--out", str(out)).returncode == 0
        if n == 3:
            assert sorted(p.name for p in (out / "charts").iterdir()) == [
                "area.png", "site_001.png", "site_002.png", "site_003.png"]
            (out / "charts" / "notes.txt").write_text("mine")
    assert sorted(p.name for p in (out / "charts").iterdir()) == ["area.png", "notes.txt", "site_001.png"]
    assert len(json.loads((out / "timeline.json").read_text())["sites"]) == 1


def test_a_model_with_its_own_class_names_is_tracked_through_the_role_options(tmp_path):
    """A compound of 'building's walled by 'bund', as another dataset names them: found with the roles
    mapped, refused in one line when a role names a class the runs' model lacks."""
    x0, y0 = ORIGIN
    ring = [shapely.box(x0 + a, y0 - d, x0 + c, y0 - b) for a, b, c, d in
            ((0, 0, 4, 120), (116, 0, 120, 120), (0, 0, 120, 4), (0, 116, 50, 120), (70, 116, 120, 120))]
    houses = [shapely.box(x0 + 30 + 25 * i, y0 - 60, x0 + 42 + 25 * i, y0 - 52) for i in range(3)]
    header = {"classes": {"building": "object", "vehicle": "object", "bund": "region", "scar": "region"}}

    def date(name: str, day: str, count: int) -> Path:
        things = [("building", h) for h in houses[:count]] + [("bund", r) for r in ring]
        feats = [feature(to_wgs84(geom, "EPSG:32637"), {"class": cls, "score": 0.9} | (
            {"heading_deg": 0.0} if cls == "building" else {"area_m2": round(geom.area, 1)})) for cls, geom in things]
        return write_feature_collection(tmp_path / name, feats, {"date": day, **header})

    dates = [date("d1.geojson", "2026-03-01", 2), date("d2.geojson", "2026-03-20", 3)]
    roles = ["--storehouse-class", "building", "--berm-class", "bund", "--cleared-class", "scar",
             "--truck-class", "vehicle"]
    mapped = run_cli("infer", "track", *map(str, dates), "--out", str(tmp_path / "mapped"), *roles)
    assert mapped.returncode == 0, mapped.stderr
    (site,) = json.loads((tmp_path / "mapped" / "timeline.json").read_text())["sites"]
    assert [(r["storehouses"], r["fortified"]) for r in site["timeline"]] == [(2, 2), (3, 3)]
    unmapped = run_cli("infer", "track", *map(str, dates), "--out", str(tmp_path / "unmapped"))
    assert unmapped.returncode == 2 and unmapped.stderr == (
        "error: --storehouse-class storehouse: no input's model has that class (classes: building, bund, scar, "
        "vehicle)\n")


@pytest.mark.parametrize("smallest, reported", [(None, 1), (150.0, 1), (400.0, 0)])
def test_a_region_change_below_the_runs_smallest_piece_is_not_reported(tmp_path, smallest, reported):
    """Cleared ground 200 m² smaller at the second date: a change unless the runs report no cleared site below
    a larger area (their `min_area_m2`), as `infer run` records it."""
    x0, y0 = ORIGIN
    houses = [("storehouse", shapely.box(x0 + 40 * i, y0 - 20, x0 + 40 * i + 12, y0 - 12)) for i in range(4)]
    header = None if smallest is None else {"min_area_m2": {"earth_berm": 10.0, "cleared_site": smallest}}
    whole = ("cleared_site", shapely.box(x0, y0 - 140, x0 + 80, y0 - 100))
    smaller = ("cleared_site", shapely.box(x0, y0 - 140, x0 + 75, y0 - 100))
    dates = [_dated(tmp_path / "d1.geojson", "2026-03-01", houses + [whole], header),
             _dated(tmp_path / "d2.geojson", "2026-03-20", houses + [smaller], header)]
    assert run_cli("infer", "track", *map(str, dates), "--out", str(tmp_path / "track")).returncode == 0
    timeline = json.loads((tmp_path / "track" / "timeline.json").read_text())
    assert timeline["changes_between_dates"] == [{"cleared_site gone": 1} if reported else {}]
    assert run_cli("infer", "diff", *map(str, dates), "--out", str(tmp_path / "diff")).returncode == 0
    changes = json.loads((tmp_path / "diff" / "changes.geojson").read_text())["features"]
    assert sum(f["properties"]["change"] == "gone" for f in changes) == reported


def test_a_run_records_the_smallest_region_piece_it_reports(oracle, tmp_path):
    scene = write_scene(tmp_path / "s.tif", plant(512, 512, STOREHOUSES, RING))
    assert run_cli("infer", "run", str(oracle), str(scene), "--out", str(tmp_path / "out"), "--quiet",
                   "--min-area", "earth_berm=123").returncode == 0
    header = json.loads((tmp_path / "out" / "s.geojson").read_text())
    assert header["min_area_m2"]["earth_berm"] == 123.0


def test_dates_detected_by_two_models_are_flagged_by_diff_and_track(tmp_path):
    """Each run records the weights that detected it; comparing dates of two trained models says so, since what
    the models see differently would read as change. One model, exported twice, is not flagged."""
    from tests.infer.oracle import write_oracle

    weights = {name: hashlib.sha256(name.encode()).hexdigest() for name in ("first", "second")}
    models = {name: write_oracle(tmp_path / f"{name}.onnx", provenance={"checkpoint_sha256": sha})
              for name, sha in weights.items()}
    again = write_oracle(tmp_path / "first_again.onnx", graph_input="normalized",
                         provenance={"checkpoint_sha256": weights["first"]})
    pixels = plant(512, 512, STOREHOUSES, RING)
    runs = {}
    for name, model in (*models.items(), ("again", again)):
        scene = write_scene(tmp_path / f"{name}.tif", pixels)
        assert run_cli("infer", "run", str(model), str(scene), "--out", str(tmp_path / name), "--quiet",
                       "--outputs", "geojson").returncode == 0
        runs[name] = tmp_path / name
    header = json.loads((runs["second"] / "second.geojson").read_text())
    assert header["checkpoint_sha256"] == weights["second"]
    assert header["sitewatch"] == OnnxModel(models["second"]).info.version and "model" not in header

    same = run_cli("infer", "diff", str(runs["first"]), str(runs["again"]), "--out", str(tmp_path / "same"))
    assert same.returncode == 0 and "different models" not in same.stdout
    other = run_cli("infer", "diff", str(runs["first"]), str(runs["second"]), "--out", str(tmp_path / "other"))
    assert other.returncode == 0, other.stderr
    assert f"different models (first.geojson by checkpoint {weights['first'][:12]}; second.geojson by " \
           f"checkpoint {weights['second'][:12]})" in other.stdout
    assert "different models" in (tmp_path / "other" / "changes.txt").read_text()
    header = json.loads((tmp_path / "other" / "changes.geojson").read_text())
    assert header["checkpoint_sha256"] == [weights["first"], weights["second"]]

    tracked = run_cli("infer", "track", *(str(runs[n]) for n in ("first", "again", "second")),
                      "--out", str(tmp_path / "track"))
    assert tracked.returncode == 0, tracked.stderr
    note = (f"different models (first.geojson, again.geojson by checkpoint {weights['first'][:12]}; "
            f"second.geojson by checkpoint {weights['second'][:12]})")
    assert note in tracked.stdout.splitlines()[0]
    assert (tmp_path / "track" / "track.txt").read_text().startswith("note: the dates were detected by different")
    assert note in (tmp_path / "track" / "report.html").read_text()
    timeline = json.loads((tmp_path / "track" / "timeline.json").read_text())
    assert timeline["checkpoint_sha256"] == [weights["first"], weights["first"], weights["second"]]
    alike = run_cli("infer", "track", *(str(runs[n]) for n in ("first", "again")), "--out", str(tmp_path / "alike"))
    assert alike.returncode == 0 and "different models" not in alike.stdout


def test_a_site_whose_berms_did_not_change_gets_one_berm_length():
    """Berm lengths that waver between dates with no berm change at the site are said once (the median)."""
    from infer.analysis.changes import Change
    from infer.analysis.sites import Site
    from infer.analysis.track import Followed, berm_changed, progress_line

    outline = shapely.box(0, 0, 100, 60)
    site = Followed(1, [Site(1, outline, [0], [], [1], [], [], [], length, 0.0) for length in (120.0, 112.0, 118.0)])
    labels = ["2026-03-01", "2026-03-20", "2026-04-09"]
    assert "118 m of earth berm" in progress_line(site, labels, berm_moved=False)
    assert "earth berm 120 → 118 m" in progress_line(site, labels, berm_moved=True)
    far = Change("earth_berm", "region", "new", outline, {}, shapely.box(300, 0, 320, 5))
    near = Change("earth_berm", "region", "new", outline, {}, shapely.box(90, 0, 120, 5))
    cleared = Change("cleared_site", "region", "gone", outline, {}, shapely.box(10, 10, 40, 40))
    assert not berm_changed(site, [[far, cleared], []], "earth_berm")
    assert berm_changed(site, [[far], [near]], "earth_berm")
