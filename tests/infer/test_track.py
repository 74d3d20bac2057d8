"""`infer track`: sites followed through a generated series, against the generator's truth."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from infer.analysis.changes import read_side
from infer.analysis.track import follow
from synth.cli import main as synth_main
from synth.layout import SceneSpec, plan_scene
from tests.helpers import run_cli

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
