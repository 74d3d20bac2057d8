"""Per-tile object cap and classes without an axis, through real runs of the oracle model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from infer.contract.codec import BOX_CHANNELS, decode_objects
from infer.contract.geometry import snap_axis_aligned
from infer.runtime.options import most_objects
from tests.helpers import FOUR_CLASS_INFOS, run_cli
from tests.infer.oracle import plant, write_oracle, write_scene


def _run(model: Path, scene: Path, out: Path, *extra: str):
    return run_cli("infer", "run", str(model), str(scene), "--out", str(out), "--quiet", *extra)


@pytest.fixture(scope="module")
def dense_stand(tmp_path_factory) -> Path:
    """1024 markers 8 px apart in one 256 px tile: more than the old fixed cap of 500."""
    centres = [(2 + 8 * i, 2 + 8 * j) for i in range(32) for j in range(32)]
    return write_scene(tmp_path_factory.mktemp("dense") / "stand.tif", plant(256, 256, centres, []))


def test_a_dense_stand_is_not_cut_short_and_max_objects_caps_it(oracle, dense_stand, tmp_path):
    assert most_objects(256, 4, 2) == 2 * 32 * 32
    assert _run(oracle, dense_stand, tmp_path / "all").returncode == 0
    summary = json.loads((tmp_path / "all" / "summary.json").read_text())["scenes"][0]
    assert summary["counts"]["storehouse"] == 1024
    assert _run(oracle, dense_stand, tmp_path / "capped", "--max-objects", "500").returncode == 0
    capped = json.loads((tmp_path / "capped" / "summary.json").read_text())["scenes"][0]
    assert capped["counts"]["storehouse"] == 500
    bad = _run(oracle, dense_stand, tmp_path / "bad", "--max-objects", "0")
    assert bad.returncode == 2 and "--max-objects must be at least 1, got 0" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()


def test_a_class_without_an_axis_comes_back_without_a_heading(tmp_path):
    classes = tuple(replace(c, oriented=False) if c.name == "storehouse" else c for c in FOUR_CLASS_INFOS)
    model = write_oracle(tmp_path / "unoriented.onnx", classes=classes)
    scene = write_scene(tmp_path / "s.tif", plant(256, 256, [(62, 62), (150, 190)], []))
    assert _run(model, scene, tmp_path / "out").returncode == 0
    features = json.loads((tmp_path / "out" / "s.geojson").read_text())["features"]
    stores = [f for f in features if f["properties"]["class"] == "storehouse"]
    assert len(stores) == 2 and all("heading_deg" not in f["properties"] for f in stores)
    assert {(f["properties"]["length_m"], f["properties"]["width_m"]) for f in stores} == {(12.0, 8.0)}


def test_unoriented_boxes_snap_to_the_nearer_axis():
    boxes = np.array([[10, 10, 20, 8, np.radians(30)], [10, 10, 20, 8, np.radians(70)],
                      [10, 10, 20, 8, np.radians(170)]])
    np.testing.assert_allclose(snap_axis_aligned(boxes)[:, 4], [0, np.pi / 2, 0])
    np.testing.assert_allclose(snap_axis_aligned(boxes)[:, :4], boxes[:, :4])
    # one peak per class at the same cell; the box says 20 x 8 px turned 70 degrees
    heatmap = np.zeros((2, 8, 8), np.float32)
    heatmap[:, 3, 3] = 0.9
    box = np.zeros((len(BOX_CHANNELS), 8, 8), np.float32)
    box[2:4] = np.log(np.array([20.0, 8.0]) / 4)[:, None, None]
    box[4:6] = np.array([np.cos(np.radians(140)), np.sin(np.radians(140))])[:, None, None]
    found = decode_objects(heatmap, box, 0.5, axis_aligned=(True, False))
    angles = dict(zip(found.classes.tolist(), (found.rboxes[:, 4] % np.pi).tolist(), strict=True))
    np.testing.assert_allclose([angles[0], angles[1]], [np.pi / 2, np.radians(70)], atol=1e-5)


def test_oriented_false_is_for_object_classes_without_a_direction():
    from infer.contract.schema import ClassInfo, schema_problems

    wrong = (ClassInfo("t", "object", "#ffffff", directional=True, oriented=False),
             ClassInfo("r", "region", "#ffffff", oriented=False))
    problems = schema_problems(wrong)
    assert problems == ["class 't': oriented: false is for object classes without a direction",
                        "class 'r': oriented: false is for object classes without a direction"]
    assert schema_problems((ClassInfo("tree", "object", "#ffffff", oriented=False),)) == []


def _truth_files(folder: Path, centres: list[tuple[int, int]], size: int) -> dict[str, Path]:
    """The same boxes (the oracle's 24 x 16 px storehouses) as VOC, YOLO, DOTA and COCO truth of `s.png`."""
    folder.mkdir()
    boxes = [(c - 12, r - 8, c + 12, r + 8) for c, r in centres]
    voc = "".join(f"<object><name>Storehouse</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax>"
                  f"<ymax>{y1}</ymax></bndbox></object>" for x0, y0, x1, y1 in boxes)
    (folder / "s.xml").write_text(f"<annotation><filename>s.png</filename>{voc}</annotation>")
    (folder / "s.txt").write_text("".join(f"0 {(x0 + x1) / 2 / size} {(y0 + y1) / 2 / size} {24 / size} {16 / size}\n"
                                          for x0, y0, x1, y1 in boxes))
    (folder / "classes.txt").write_text("storehouse\n")
    (folder / "dota").mkdir()
    (folder / "dota" / "s.txt").write_text("".join(f"{x0} {y0} {x1} {y0} {x1} {y1} {x0} {y1} storehouse 0\n"
                                                   for x0, y0, x1, y1 in boxes))
    coco = {"images": [{"id": 1, "file_name": "s.png", "width": size, "height": size}],
            "categories": [{"id": 3, "name": "storehouse"}],
            "annotations": [{"id": i, "image_id": 1, "category_id": 3, "bbox": [x0, y0, 24, 16]}
                            for i, (x0, y0, _, _) in enumerate(boxes)]}
    (folder / "s.json").write_text(json.dumps(coco))
    return {"voc": folder / "s.xml", "yolo": folder / "s.txt", "dota": folder / "dota" / "s.txt",
            "coco": folder / "s.json"}


def test_evaluate_takes_truth_in_pixels_in_every_import_format(oracle, tmp_path):
    from PIL import Image

    centres = [(62, 62), (150, 190), (202, 50)]
    scene = tmp_path / "s.png"
    Image.fromarray(np.moveaxis(plant(256, 256, centres, []), 0, -1)).save(scene)
    assert _run(oracle, scene, tmp_path / "out").returncode == 0
    pred = tmp_path / "out" / "s.geojson"
    for label_format, truth in _truth_files(tmp_path / "truth", centres, 256).items():
        extra = ["--truth-format", label_format] if label_format in ("yolo", "dota") else []
        result = run_cli("infer", "evaluate", str(pred), str(truth), "--scene", str(scene), *extra,
                         "--out", str(tmp_path / f"{label_format}.json"))
        assert result.returncode == 0, (label_format, result.stderr)
        report = json.loads((tmp_path / f"{label_format}.json").read_text())["classes"]["storehouse"]
        assert (report["truth"], report["predicted"], report["ap@0.5"], report["recall"]) == (3, 3, 1.0, 1.0)
    unknown = run_cli("infer", "evaluate", str(pred), str(tmp_path / "truth" / "s.txt"), "--scene", str(scene))
    assert unknown.returncode == 2 and "give --truth-format yolo or dota" in unknown.stderr
