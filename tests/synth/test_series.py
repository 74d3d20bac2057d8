"""`synth --dates N`: one area at N dates, construction progressing, each date misregistered a little."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import rasterio

from infer.analysis.changes import read_side, to_metric
from infer.analysis.sites import find_sites
from synth.cli import main as synth_main
from synth.layout import MISREGISTRATION_M

DATES = 5


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("series")
    assert synth_main(["--out", str(out), "--quiet", "--size", "1536", "--seed", "11", "--dates", str(DATES)]) == 0
    return out


def _stem(k: int) -> str:
    return "scene_000" if k == 1 else f"scene_000_t{k}"


def _labels(series: Path, k: int) -> list[dict]:
    return [f["properties"] for f in json.loads((series / f"{_stem(k)}.geojson").read_text())["features"]]


def test_every_date_has_its_scene_labels_and_changes_since_the_last(series):
    dates = [json.loads((series / f"{_stem(k)}.geojson").read_text())["date"] for k in range(1, DATES + 1)]
    assert dates == sorted(dates) and len(set(dates)) == DATES
    origins = []
    for k in range(1, DATES + 1):
        with rasterio.open(series / f"{_stem(k)}.tif") as src:
            origins.append((src.transform.c, src.transform.f))
            assert src.tags()["ACQUISITION_DATE"] == dates[k - 1]
    shifts = [(x - origins[0][0], y - origins[0][1]) for x, y in origins[1:]]
    assert all(abs(dx) <= MISREGISTRATION_M and abs(dy) <= MISREGISTRATION_M for dx, dy in shifts)
    assert any(abs(dx) > 0.5 or abs(dy) > 0.5 for dx, dy in shifts)  # misregistered, not just relabeled
    for k in range(2, DATES + 1):
        # the changes file is the difference of the two dates' ids, and the cleared ground built on
        before, after = ({p["id"]: p for p in _labels(series, j)} for j in (k - 1, k))
        changes = json.loads((series / f"scene_000_changes_t{k}.geojson").read_text())
        assert changes["dates"] == dates[k - 2:k]
        found = {(f["properties"]["id"], f["properties"]["change"]) for f in changes["features"]}
        shrunk = {i for i in before.keys() & after.keys() if after[i].get("area_m2", 0) < before[i].get("area_m2", 0)}
        assert found == ({(i, "new") for i in after.keys() - before.keys()}
                         | {(i, "gone") for i in (before.keys() - after.keys()) | shrunk})
        for f in changes["features"]:
            i = f["properties"]["id"]
            if i in shrunk:
                assert f["properties"]["area_m2"] == pytest.approx(before[i]["area_m2"] - after[i]["area_m2"], abs=0.2)


def test_a_construction_site_is_cleared_then_built_row_by_row_then_ringed(series):
    per_date = [Counter(p["class"] for p in _labels(series, k) if p.get("site") == 1) for k in range(1, DATES + 1)]
    fortified = [sum(1 for p in _labels(series, k) if p.get("site") == 1 and p.get("fortified"))
                 for k in range(1, DATES + 1)]
    cleared = [c["cleared_site"] for c in per_date]
    first = cleared.index(1)
    storehouses = [c["storehouse"] for c in per_date]
    assert storehouses[first] == 0 and storehouses == sorted(storehouses) and storehouses[-1] > storehouses[first + 1]
    berms = [c["earth_berm"] for c in per_date]
    assert berms == sorted(berms) and berms[first + 1] == 0 and berms[-1] >= 2  # ring, then its approach
    ringed = next(k for k, b in enumerate(berms) if b)
    assert fortified == [0] * ringed + storehouses[ringed:]  # fortified from the date the ring closes
    # cleared once; each row built takes its strip; once ringed, the yard is the compound's (not labeled)
    assert cleared == [0] * first + [1] * (ringed - first) + [0] * (DATES - ringed)
    area = [sum(p["area_m2"] for p in _labels(series, k) if p.get("site") == 1 and p["class"] == "cleared_site")
            for k in range(1, DATES + 1)]
    assert all(area[k + 1] < area[k] for k in range(first, ringed - 1)) and ringed - first >= 2


def test_infer_sites_follows_the_series_truth_at_every_date(series):
    for k in range(1, DATES + 1):
        side = read_side(series / f"{_stem(k)}.geojson")
        to_metric([side])
        things = side.objects + side.regions
        _, fortified = find_sites(things)
        assert fortified == {i for i, t in enumerate(things) if t.properties.get("fortified")}, k


def test_dates_and_second_date_do_not_mix(tmp_path, capsys):
    from infer.cli.console import run_command

    assert run_command(synth_main, ["--out", str(tmp_path / "x"), "--dates", "3", "--second-date"]) == 2
    assert "not both" in capsys.readouterr().err
    assert run_command(synth_main, ["--out", str(tmp_path / "y"), "--dates", "13"]) == 2
