"""`infer evaluate`: COCO box AP per class, region instances as connected pieces, bad inputs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from shapely import affinity
from shapely.geometry import LineString, Polygon, box

from infer.analysis.evaluate import Labeled, evaluate, found_by_crowding
from infer.errors import InputError
from infer.geo.crs import from_wgs84, to_wgs84
from infer.geo.geojson import feature, write_feature_collection
from tests.helpers import run_cli

CRS = "EPSG:32637"
TRANSFORM = Affine(0.5, 0, 677000.0, 0, -0.5, 3823000.0)
SIZE = 512


@pytest.fixture()
def scene(tmp_path: Path) -> Path:
    path = tmp_path / "scene.tif"
    with rasterio.open(path, "w", driver="GTiff", width=SIZE, height=SIZE, count=3, dtype="uint8",
                       crs=CRS, transform=TRANSFORM) as dst:
        dst.write(np.zeros((3, SIZE, SIZE), np.uint8))
    return path


def _write(path: Path, items: list[tuple[str, Polygon, dict]]) -> Path:
    """Features given in scene pixels, written in WGS84 like `infer run` and the generator do."""
    m = TRANSFORM
    feats = [feature(to_wgs84(affinity.affine_transform(geom, [m.a, m.b, m.d, m.e, m.c, m.f]), CRS),
                     {"class": cls, **props}) for cls, geom, props in items]
    return write_feature_collection(path, feats)


def _truck(x: float, y: float) -> Polygon:
    return box(x, y, x + 20, y + 6)


RIDGE = LineString([(40, 300), (240, 300), (240, 460)])
BERM = RIDGE.buffer(4, cap_style="flat", join_style="mitre")


def _truth(tmp_path: Path) -> Path:
    """Two trucks, a storehouse, a cleared site and one berm labeled as two flush features."""
    first, second = (BERM.intersection(box(0, 0, 200, SIZE)), BERM.intersection(box(200, 0, SIZE, SIZE)))
    return _write(tmp_path / "truth.geojson", [
        ("truck", _truck(20, 20), {"heading_deg": 90.0}),
        ("truck", _truck(100, 40), {"heading_deg": 90.0}),
        ("storehouse", box(300, 60, 340, 84), {"heading_deg": 0.0}),
        ("earth_berm", first, {}),
        ("earth_berm", second, {}),
        ("cleared_site", box(300, 150, 450, 260), {}),
    ])


def test_exact_answer_scores_one_per_class_and_a_split_ridge_counts_once(tmp_path: Path, scene: Path) -> None:
    truth = _truth(tmp_path)
    pred = _write(tmp_path / "pred.geojson", [
        ("truck", _truck(20, 20), {"score": 0.9, "heading_deg": 90.0}),
        ("truck", _truck(100, 40), {"score": 0.8, "heading_deg": 90.0}),
        ("storehouse", box(300, 60, 340, 84), {"score": 0.7, "heading_deg": 0.0}),
        ("earth_berm", BERM, {"score": 0.6}),  # one mask piece, as a model gives it
        ("cleared_site", box(300, 150, 450, 260), {"score": 0.9}),
    ])
    report = evaluate(pred, truth, scene)
    classes = report["classes"]
    assert {c: r["ap@0.5"] for c, r in classes.items()} == {
        "cleared_site": 1.0, "earth_berm": 1.0, "storehouse": 1.0, "truck": 1.0}
    assert classes["earth_berm"]["truth"] == 1  # the two flush features are one ridge
    assert classes["earth_berm"]["iou"] == pytest.approx(1.0, abs=0.01)
    assert report["map@0.5"] == 1.0


def test_misplaced_and_missing_objects_lower_ap_and_recall(tmp_path: Path, scene: Path) -> None:
    truth = _truth(tmp_path)
    pred = _write(tmp_path / "pred.geojson", [
        ("truck", _truck(20, 20), {"score": 0.9, "heading_deg": 90.0}),
        ("truck", _truck(112, 40), {"score": 0.95, "heading_deg": 90.0}),  # 12 of 20 px off: IoU 0.25
        ("earth_berm", BERM.intersection(box(0, 0, 120, SIZE)), {"score": 0.6}),  # 80 of 360 px of ridge
        ("cleared_site", box(300, 150, 450, 210), {"score": 0.9}),  # 60 of 110 rows: IoU 0.55
    ])
    report = evaluate(pred, truth, scene, score=0.5)
    truck = report["classes"]["truck"]
    # Ranked: a false positive (0.95) then a hit (0.9): precision 0.5 from recall 0 to 0.5, then nothing.
    assert truck["ap@0.5"] == pytest.approx(51 / 101 * 0.5, abs=0.01)
    assert (truck["precision"], truck["recall"]) == (0.5, 0.5)
    assert report["classes"]["storehouse"]["ap@0.5"] == 0.0
    assert report["classes"]["earth_berm"]["ap@0.5"] == 0.0
    assert report["classes"]["cleared_site"]["iou"] == pytest.approx(60 / 110, abs=0.01)
    assert report["classes"]["cleared_site"]["ap@0.5"] == pytest.approx(1.0)


def test_a_self_intersecting_region_label_is_scored_not_fatal(tmp_path: Path, scene: Path) -> None:
    # A site digitized in the wrong order: two triangles meeting at a point, i.e. two pieces.
    bowtie = Polygon([(300, 150), (450, 260), (450, 150), (300, 260)])
    truth = _write(tmp_path / "truth.geojson", [("cleared_site", bowtie, {}),
                                                ("cleared_site", box(440, 200, 480, 240), {})])
    left = Polygon([(300, 150), (375, 205), (300, 260)])
    pred = _write(tmp_path / "pred.geojson", [("cleared_site", left, {"score": 0.9})])
    site = evaluate(pred, truth, scene)["classes"]["cleared_site"]
    assert site["truth"] == 2  # the left triangle; the right one united with the overlapping box
    assert site["ap@0.5"] == pytest.approx(51 / 101, abs=0.01)  # one of the two found, nothing false


def test_headings_of_the_objects_found_are_scored_on_the_circle_of_their_class(tmp_path: Path, scene: Path) -> None:
    """A truck 10 degrees off and one facing backwards (160 off): median 85, one front of two on the right end;
    a storehouse's axis at 175 against 0 is 5 off (an axis has no front). The same without the header's word on
    which classes have a front, the trucks' headings beyond 180 telling."""
    truth = _truth(tmp_path)
    items = [("truck", _truck(20, 20), {"score": 0.9, "heading_deg": 100.0}),
             ("truck", _truck(100, 40), {"score": 0.8, "heading_deg": 250.0}),
             ("storehouse", box(300, 60, 340, 84), {"score": 0.7, "heading_deg": 175.0})]
    m = TRANSFORM
    feats = [feature(to_wgs84(affinity.affine_transform(g, [m.a, m.b, m.d, m.e, m.c, m.f]), CRS), {"class": c, **p})
             for c, g, p in items]
    with_header = write_feature_collection(tmp_path / "with.geojson", feats, {"directional": ["truck"]})
    without = write_feature_collection(tmp_path / "without.geojson", feats)
    for pred in (with_header, without):
        classes = evaluate(pred, truth, scene)["classes"]
        assert (classes["truck"]["heading_error_deg"], classes["truck"]["front_right"]) == (85.0, 0.5), pred.name
        assert classes["storehouse"]["heading_error_deg"] == 5.0 and "front_right" not in classes["storehouse"]
        assert "heading_error_deg" not in classes["earth_berm"]


def test_truth_in_a_utm_geopackage_scores_as_the_geojson_does(tmp_path: Path, scene: Path) -> None:
    """Truth digitized in QGIS, kept in the project's CRS and format: the CLI takes a GeoPackage by its suffix."""
    from pyogrio.raw import write

    truth = _truth(tmp_path)
    features = json.loads(truth.read_text())["features"]
    geoms = from_wgs84(np.array([shapely.geometry.shape(f["geometry"]) for f in features], dtype=object), CRS)
    write(tmp_path / "truth.gpkg", shapely.to_wkb(geoms), layer="truth", driver="GPKG", crs=CRS,
          fields=["class", "heading_deg"], geometry_type="Polygon",
          field_data=[np.array([f["properties"]["class"] for f in features], dtype=object),
                      np.array([f["properties"].get("heading_deg", np.nan) for f in features])])
    pred = _write(tmp_path / "pred.geojson", [
        ("truck", _truck(20, 20), {"score": 0.9, "heading_deg": 90.0}),
        ("truck", _truck(112, 40), {"score": 0.95, "heading_deg": 90.0}),
        ("cleared_site", box(300, 150, 450, 210), {"score": 0.9}),
    ])
    reports = []
    for name in ("truth.geojson", "truth.gpkg"):
        out = tmp_path / f"{name}.json"
        done = run_cli("infer", "evaluate", str(pred), str(tmp_path / name), "--scene", str(scene), "--out", str(out))
        assert done.returncode == 0, done.stderr
        reports.append(json.loads(out.read_text()))
    assert reports[0]["classes"]["truck"]["truth"] == 2 and reports[0]["classes"]["earth_berm"]["truth"] == 1
    assert reports[1]["classes"].keys() == reports[0]["classes"].keys()
    for name, scores in reports[0]["classes"].items():
        assert reports[1]["classes"][name] == pytest.approx(scores, abs=1e-3), name


def test_cli_writes_a_report_and_bad_inputs_fail_in_one_line(tmp_path: Path, scene: Path) -> None:
    truth = _truth(tmp_path)
    done = run_cli("infer", "evaluate", str(truth), str(truth), "--scene", str(scene),
                   "--out", str(tmp_path / "eval.json"))
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "eval.json").read_text())["map@0.5"] == 1.0

    no_class = tmp_path / "no_class.geojson"
    no_class.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": json.loads(json.dumps(box(0, 0, 1, 1).__geo_interface__)),
         "properties": {}}]}))
    # A missing file is a usage error (2, like argparse); a file with bad content an input error (1).
    for pred, expected, code in ((tmp_path / "missing.geojson", "not found", 2), (no_class, "has no 'class'", 1)):
        done = run_cli("infer", "evaluate", str(pred), str(truth), "--scene", str(scene))
        assert done.returncode == code
        assert expected in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize(("extra", "message"), [
    (["--score", "nan"], "argument --score: not a finite number"), (["--score", "1.5"], "--score must be between 0 and 1"),
    (["--iou", "inf"], "argument --iou: not a finite number"), (["--iou", "0"], "--iou must be between 0 and 1"),
])
def test_bad_numbers_are_one_line_usage_errors_and_write_nothing(tmp_path: Path, scene: Path, extra, message):
    truth = _truth(tmp_path)
    done = run_cli("infer", "evaluate", str(truth), str(truth), "--scene", str(scene),
                   "--out", str(tmp_path / "eval.json"), *extra)
    assert done.returncode == 2 and message in done.stderr and done.stderr.count("\n") == 1
    assert not (tmp_path / "eval.json").exists()


def test_class_names_the_inputs_lack_are_one_line_errors_not_other_scores(tmp_path: Path, scene: Path):
    """A misspelt region class would score berms as boxes; a misspelt source class would leave it unrenamed."""
    truth = _truth(tmp_path)
    out = tmp_path / "eval.json"
    typo = run_cli("infer", "evaluate", str(truth), str(truth), "--scene", str(scene), "--regions", "earth-berm",
                   "--out", str(out))
    assert typo.returncode == 1 and typo.stderr.count("\n") == 1 and not out.exists()
    assert "--regions: earth-berm is not a class of the predictions or the truth (classes: cleared_site, " \
           "earth_berm, storehouse, truck)" in typo.stderr
    voc = tmp_path / "truth.xml"
    voc.write_text("<annotation><object><name>Alive</name><bndbox><xmin>10</xmin><ymin>10</ymin><xmax>30</xmax>"
                   "<ymax>30</ymax></bndbox></object></annotation>")
    for renaming, code in (("Alive=truck", 0), ("Alve=truck", 1)):
        done = run_cli("infer", "evaluate", str(truth), str(voc), "--scene", str(scene), "--class", renaming,
                       "--out", str(out))
        assert done.returncode == code, done.stderr
    assert done.stderr == "error: --class: Alve is not a class of truth.xml (its classes: Alive)\n"


def test_found_by_crowding_splits_side_by_side_objects_from_the_rest():
    def truck(x: float, y: float, score: float = 1.0) -> Labeled:
        return Labeled("truck", _truck(x, y), score, True)

    # A side-by-side pair (centres 7 px apart, 20 px long), a nose-to-tail pair (centres 24 px apart)
    # and a lone truck; a storehouse next to the lone truck is another class and does not crowd it.
    truth = [truck(0, 0), truck(4, 7), truck(100, 0), truck(124, 0), truck(300, 300),
             Labeled("storehouse", box(300, 310, 330, 330), 1.0, True)]
    preds = [
        Labeled("truck", box(0, 0, 24, 13), 0.9, True),  # one box over the pair: IoU < 0.5 with each
        truck(100.5, 0.5), truck(124, 0, score=0.2),  # the second is below the score threshold
        truck(301, 300),
    ]
    result = found_by_crowding(truth, preds, ["truck", "storehouse"], iou=0.5, score=0.3)
    assert result["truck"] == {"crowded": {"count": 2, "found": 0.0}, "apart": {"count": 3, "found": 0.6667}}
    assert result["storehouse"] == {"crowded": {"count": 0, "found": None}, "apart": {"count": 1, "found": 0.0}}
    assert found_by_crowding(truth, preds, ["truck"], score=0.1)["truck"]["apart"]["found"] == 1.0


def test_a_picture_without_georeferencing_is_read_without_a_warning(tmp_path):
    """rasterio warns as such a file opens; the library, not only the command line, keeps quiet."""
    from PIL import Image

    from infer.analysis.evaluate import read_in_pixels
    from infer.geo.rasterenv import open_raster
    from infer.runtime.vectors import PIXEL_COORDINATES

    picture = tmp_path / "photo.png"
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(picture)
    labels = tmp_path / "labels.geojson"
    labels.write_text(json.dumps({"type": "FeatureCollection", "coordinates": PIXEL_COORDINATES, "features": [
        {"type": "Feature", "geometry": box(5, 6, 15, 16).__geo_interface__, "properties": {"class": "tree"}}]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (tree,), width, height = read_in_pixels(labels, picture)
        with open_raster(picture) as src:
            assert (src.width, src.height, src.crs) == (60, 40, None)
    assert (width, height, tree.cls, tree.pixels.bounds) == (60, 40, "tree", (5.0, 6.0, 15.0, 16.0))


@pytest.mark.parametrize("score", ["high", None, float("nan")])
def test_a_score_that_is_not_a_number_is_one_line_naming_the_feature(tmp_path: Path, scene: Path, score) -> None:
    pred = _write(tmp_path / "pred.geojson", [("truck", _truck(20, 20), {"score": score, "heading_deg": 90.0})])
    with pytest.raises(InputError, match=r"pred.geojson: feature 0 has score .*: a number \(1 for truth, or left out\)"):
        evaluate(pred, _truth(tmp_path), scene)
