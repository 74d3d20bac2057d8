"""`infer diff` on the generator's two-date pairs, whose changes are known exactly."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import shapely
from PIL import Image
from shapely import affinity
from shapely.geometry import shape

from infer.analysis.change_scoring import score_changes
from infer.analysis.changes import DiffOptions, Thing, estimate_offset
from infer.geo.crs import transform_geometry, utm_crs
from tests.helpers import run_cli

SHIFT_M = (2.4, -1.8)  # 3.0 m of misregistration, east and south


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pair")
    result = run_cli("train", "synth", "--out", str(out), "--size", "2048", "--seed", "5", "--second-date", "--quiet")
    assert result.returncode == 0, result.stderr
    return out


def _metric(geom: shapely.Geometry) -> shapely.Geometry:
    geom = shapely.make_valid(geom)
    return transform_geometry(geom, "EPSG:4326", utm_crs(*geom.centroid.coords[0]))


def _shifted(collection: dict, dx: float, dy: float) -> dict:
    """Every geometry moved by (dx, dy) metres, as a misregistered second date would be."""
    out = dict(collection)
    features = []
    for f in collection["features"]:
        geom = shape(f["geometry"])
        crs = utm_crs(*geom.centroid.coords[0])
        moved = transform_geometry(affinity.translate(transform_geometry(geom, "EPSG:4326", crs), dx, dy),
                                   crs, "EPSG:4326")
        features.append({**f, "geometry": shapely.geometry.mapping(moved)})
    out["features"] = features
    return out


def _match_rate(truth: list[dict], found: list[dict], shift: tuple[float, float]) -> tuple[float, float]:
    scores = score_changes(truth, found, after_shift_m=shift, distance_m=1.5, min_iou=0.8)
    return scores["precision"], scores["recall"]


def _diff(before: Path, after: Path, out: Path, *extra: str):
    return run_cli("infer", "diff", str(before), str(after), "--out", str(out), *extra)


def test_every_true_change_is_recovered_through_3_m_of_misregistration(pair, tmp_path):
    truth = json.loads((pair / "scene_000_changes.geojson").read_text())["features"]
    assert {(f["properties"]["class"], f["properties"]["change"]) for f in truth} >= {
        ("storehouse", "new"), ("truck", "new"), ("truck", "gone"), ("cleared_site", "new"), ("earth_berm", "new")}
    after = tmp_path / "after.geojson"
    after.write_text(json.dumps(_shifted(json.loads((pair / "scene_000_t2.geojson").read_text()), *SHIFT_M)))
    result = _diff(pair / "scene_000.geojson", after, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    changes = json.loads((tmp_path / "out" / "changes.geojson").read_text())
    precision, recall = _match_rate(truth, changes["features"], SHIFT_M)
    assert (precision, recall) == (1.0, 1.0)
    assert np.allclose(changes["registration_offset_m"], SHIFT_M, atol=0.1)
    text = (tmp_path / "out" / "changes.txt").read_text()
    assert text.strip() in result.stdout
    n_new_storehouses = sum(1 for f in truth if f["properties"]["class"] == "storehouse")
    assert f"storehouse: {n_new_storehouses} new, 0 gone" in text
    with Image.open(tmp_path / "out" / "changes.png") as picture:
        assert picture.width > 1.8 * picture.height  # two square panels side by side
    import pyogrio
    from pyogrio.raw import read

    package = tmp_path / "out" / "changes.gpkg"
    info = pyogrio.read_info(package, layer="changes")
    assert info["crs"] == "EPSG:4326" and info["features"] == len(changes["features"])
    meta, _, _, fields = read(package, layer="changes")
    column = dict(zip(meta["fields"], fields, strict=True))
    assert sorted(column["change"]) == sorted(f["properties"]["change"] for f in changes["features"])
    styles_meta, _, _, styles = read(package, layer="layer_styles")
    (qml,) = styles[list(styles_meta["fields"]).index("styleQML")]
    assert 'attr="change"' in qml and 'value="gone"' in qml and "255,140,0,255" in qml


def test_without_registration_the_same_shift_breaks_matching(pair, tmp_path):
    """The control: a tight tolerance with no alignment turns every object into new + gone."""
    truth = json.loads((pair / "scene_000_changes.geojson").read_text())["features"]
    after = tmp_path / "after.geojson"
    after.write_text(json.dumps(_shifted(json.loads((pair / "scene_000_t2.geojson").read_text()), *SHIFT_M)))
    result = _diff(pair / "scene_000.geojson", after, tmp_path / "out", "--no-align", "--tolerance", "1")
    assert result.returncode == 0, result.stderr
    changes = json.loads((tmp_path / "out" / "changes.geojson").read_text())["features"]
    precision, _ = _match_rate(truth, changes, SHIFT_M)
    assert precision < 0.5
    assert not any(f["properties"]["change"] == "persisting" for f in changes)


def test_registration_vote_ignores_objects_that_moved():
    rng = np.random.default_rng(0)
    sites = rng.uniform(0, 500, (12, 2))
    shift = np.array([3.0, -2.0])
    before = [Thing("storehouse", shapely.Point(p), shapely.Point(p).buffer(5), {}) for p in sites]
    after = [Thing("storehouse", shapely.Point(p), shapely.Point(p + shift).buffer(5), {}) for p in sites[:8]]
    after += [Thing("storehouse", shapely.Point(p), shapely.Point(p + rng.uniform(-15, 15, 2)).buffer(5), {})
              for p in sites[8:]]
    offset, support = estimate_offset(before, after, DiffOptions())
    assert np.allclose(offset, shift, atol=1e-6)
    assert support >= 8


def test_diff_runs_the_model_on_two_scenes(tmp_path):
    from tests.infer.oracle import write_oracle

    pair = tmp_path / "pair"
    made = run_cli("train", "synth", "--out", str(pair), "--size", "512", "--seed", "3", "--second-date", "--quiet")
    assert made.returncode == 0, made.stderr
    model = write_oracle(tmp_path / "oracle.onnx")
    result = _diff(pair / "scene_000.tif", pair / "scene_000_t2.tif", tmp_path / "out", "--model", str(model))
    assert result.returncode == 0, result.stderr
    for name in ("changes.geojson", "changes.png", "changes.txt", "before/scene_000.geojson",
                 "after/scene_000_t2.geojson"):
        assert (tmp_path / "out" / name).is_file(), name
    changes = json.loads((tmp_path / "out" / "changes.geojson").read_text())
    assert changes["dates"][0] != changes["dates"][1] and None not in changes["dates"]


def test_diff_and_track_run_the_model_on_scenes_inside_a_zip_archive_as_on_the_files(tmp_path):
    from tests.infer.oracle import write_oracle

    pair = tmp_path / "pair"
    made = run_cli("train", "synth", "--out", str(pair), "--size", "512", "--seed", "3", "--second-date", "--quiet")
    assert made.returncode == 0, made.stderr
    model = write_oracle(tmp_path / "oracle.onnx")
    archive = tmp_path / "dates.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zipped:
        for name in ("scene_000.tif", "scene_000_t2.tif"):
            zipped.write(pair / name, name)
    virtual = [f"/vsizip/{{{archive}}}/{name}" for name in ("scene_000.tif", "scene_000_t2.tif")]
    assert _diff(*virtual, tmp_path / "zipped", "--model", str(model)).returncode == 0
    assert _diff(pair / "scene_000.tif", pair / "scene_000_t2.tif", tmp_path / "files", "--model",
                 str(model)).returncode == 0
    found = [json.loads((tmp_path / run / "changes.geojson").read_text())["features"] for run in ("zipped", "files")]
    assert found[0] == found[1] and found[0]
    tracked = run_cli("infer", "track", *virtual, "--model", str(model), "--out", str(tmp_path / "track"))
    assert tracked.returncode == 0, tracked.stderr
    assert (tmp_path / "track" / "runs" / "2_scene_000_t2" / "scene_000_t2.geojson").is_file()


def test_diff_into_a_folder_of_another_score_is_refused_and_keeps_the_first_detections(tmp_path):
    from tests.infer.oracle import write_oracle

    pair = tmp_path / "pair"  # small: the oracle finds an object in every cell of the synthetic imagery
    made = run_cli("train", "synth", "--out", str(pair), "--size", "512", "--seed", "3", "--second-date", "--quiet")
    assert made.returncode == 0, made.stderr
    model, out = write_oracle(tmp_path / "oracle.onnx"), tmp_path / "out"
    scenes = (pair / "scene_000.tif", pair / "scene_000_t2.tif")
    assert _diff(*scenes, out, "--model", str(model)).returncode == 0
    before = (out / "before" / "scene_000.geojson").read_bytes()
    result = _diff(*scenes, out, "--model", str(model), "--score", "0.6")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "scene_000.tif done with other settings: --score 0.3 (this run: 0.6)" in result.stderr
    assert (out / "before" / "scene_000.geojson").read_bytes() == before
    assert _diff(*scenes, out, "--model", str(model)).returncode == 0  # made alike: reused


@pytest.mark.parametrize(("extra", "message"), [
    (["--score", "nan"], "argument --score: not a finite number"), (["--score", "-0.1"], "--score must be between 0 and 1"),
    (["--score", "2"], "--score must be between 0 and 1"), (["--tolerance", "nan"], "argument --tolerance: not a finite"),
    (["--search", "inf"], "argument --search: not a finite number"),
])
def test_diff_with_a_model_checks_its_numbers_like_run(pair, tmp_path, extra, message):
    from tests.infer.oracle import write_oracle

    model = write_oracle(tmp_path / "oracle.onnx")
    result = _diff(pair / "scene_000.tif", pair / "scene_000_t2.tif", tmp_path / "out", "--model", str(model),
                   *extra)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert message in result.stderr and not (tmp_path / "out").exists()


def test_two_scene_folder_is_a_one_line_error(pair, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    entries = [{"scene": str(pair / n), "status": "done", "outputs": {"geojson": str(pair / n)}, "counts": {},
                "megapixels": 4.2, "seconds": 1.0} for n in ("scene_000.geojson", "scene_000_t2.geojson")]
    (folder / "summary.json").write_text(json.dumps({"scenes": entries}))
    result = _diff(folder, pair / "scene_000_t2.geojson", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "exactly one" in result.stderr


def _truck(geometry) -> dict:
    return {"type": "Feature", "geometry": geometry, "properties": {"class": "truck", "heading_deg": 0.0}}


BAD_FEATURES = {
    "malformed_geometry": [_truck({"type": "Polygon", "coordinates": [[[38, 9], [38, "a"], [38.1, 9], [38, 9]]]})],
    "ring_of_two_points": [_truck({"type": "Polygon", "coordinates": [[[38, 9], [38.1, 9]]]})],
    "nan_coordinate": [_truck({"type": "Point", "coordinates": [float("nan"), 9.0]})],
    "no_geometry_member": [{"type": "Feature", "properties": {"class": "truck"}}],
    "feature_not_an_object": [7],
    "a_point": [_truck({"type": "Point", "coordinates": [38.0, 9.0]})],
    "a_line": [_truck({"type": "LineString", "coordinates": [[38.0, 9.0], [38.001, 9.0]]})],
}


@pytest.mark.parametrize("problem", ["missing", "pixel_vs_wgs84", "not_geojson", "features_not_a_list",
                                     *BAD_FEATURES])
def test_bad_inputs_are_one_line_errors(pair, tmp_path, problem):
    before = pair / "scene_000.geojson"
    after = tmp_path / "after.geojson"
    if problem == "missing":
        after = tmp_path / "nowhere.geojson"
    elif problem == "pixel_vs_wgs84":
        after.write_text(json.dumps({"type": "FeatureCollection", "coordinates": "pixel", "features": []}))
    elif problem == "features_not_a_list":
        after.write_text(json.dumps({"type": "FeatureCollection", "features": {}}))
    elif problem in BAD_FEATURES:
        after.write_text(json.dumps({"type": "FeatureCollection", "features": BAD_FEATURES[problem]}))
    else:
        after.write_text("{ not json")
    result = _diff(before, after, tmp_path / "out")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert not (tmp_path / "out" / "changes.geojson").exists()


def test_imagery_that_cannot_be_read_stops_diff_and_evaluate_in_one_line_before_any_output(pair, tmp_path):
    truncated = tmp_path / "cut.tif"
    truncated.write_bytes((pair / "scene_000.tif").read_bytes()[:20000])
    not_a_raster = tmp_path / "notes.tif"
    not_a_raster.write_text("not a raster")
    for scene, reason in ((truncated, "cut.tif is damaged or truncated"),
                          (not_a_raster, f"cannot read {not_a_raster}: ")):
        out = tmp_path / f"out_{scene.stem}"
        result = _diff(pair / "scene_000.geojson", pair / "scene_000_t2.geojson", out, "--before-scene", str(scene))
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"error: {reason}") and not list(out.glob("*"))
    scored = run_cli("infer", "evaluate", str(pair / "scene_000.geojson"), str(pair / "scene_000.geojson"),
                     "--scene", str(not_a_raster), "--out", str(tmp_path / "eval.json"))
    assert scored.returncode == 1 and scored.stderr.startswith(f"error: cannot read {not_a_raster}: ")
    assert scored.stderr.count("\n") == 1 and not (tmp_path / "eval.json").exists()


def test_features_without_a_place_are_left_out_by_diff_and_evaluate(pair, tmp_path):
    """RFC 7946 lets a feature's geometry be null (a record with no location); so is an empty one read: both
    are left out, and the results are those of the file without them."""
    after = json.loads((pair / "scene_000_t2.geojson").read_text())
    placeless = [_truck(None), _truck({"type": "Polygon", "coordinates": []})]
    padded = tmp_path / "padded.geojson"
    padded.write_text(json.dumps({**after, "features": placeless + after["features"] + placeless}))
    plain = _diff(pair / "scene_000.geojson", pair / "scene_000_t2.geojson", tmp_path / "plain")
    padded_diff = _diff(pair / "scene_000.geojson", padded, tmp_path / "padded")
    assert plain.returncode == 0 and padded_diff.returncode == 0, padded_diff.stderr
    changes = [json.loads((tmp_path / name / "changes.geojson").read_text())["features"]
               for name in ("plain", "padded")]
    assert changes[0] == changes[1] and len(changes[0]) > 10
    unpadded = tmp_path / "unpadded.geojson"
    unpadded.write_text(json.dumps(after))
    scored = [run_cli("infer", "evaluate", str(pred), str(pair / "scene_000_t2.geojson"),
                      "--scene", str(pair / "scene_000_t2.tif")) for pred in (unpadded, padded)]
    assert scored[0].returncode == 0 and scored[1].returncode == 0, scored[1].stderr
    table = [r.stdout.splitlines()[:-1] for r in scored]  # the last line names the file written
    assert table[0] == table[1] and "1.000" in scored[0].stdout
