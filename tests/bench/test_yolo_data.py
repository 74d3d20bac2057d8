"""The YOLO dataset the peers comparison trains on says the same as our labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image

from bench.peers.yolo_data import SCALE_FILE, build_yolo_dataset, to_rgb8
from synth.cli import main as synth
from tests.train.conftest import write_dataset_yaml
from train.data.chips import ANNOTATIONS
from train.data.config import load_dataset_config


def test_yolo_labels_are_the_coco_boxes_and_images_the_fixed_stretch(tmp_path):
    synth(["--out", str(tmp_path / "train"), "--size", "512", "--seed", "31", "--quiet"])
    synth(["--out", str(tmp_path / "val"), "--size", "256", "--seed", "32", "--quiet"])
    config = load_dataset_config(write_dataset_yaml(tmp_path))
    data_yaml = build_yolo_dataset(config, tmp_path / "yolo", size=256, train_overlap=0)
    assert "names:\n  0: storehouse\n  1: truck\n  2: earth_berm\n  3: cleared_site" in data_yaml.read_text()
    coco = json.loads((tmp_path / "yolo" / "coco_train" / ANNOTATIONS).read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    order = [c.name for c in config.classes]
    scale = json.loads((tmp_path / "yolo" / SCALE_FILE).read_text())["value_at_255"]
    assert len(coco["images"]) == 4
    checked = 0
    for image in coco["images"]:
        stem = Path(image["file_name"]).stem
        rows = [line.split() for line in (tmp_path / "yolo" / "labels" / "train" / f"{stem}.txt").read_text()
                .splitlines()]
        expected = []
        for ann in (a for a in coco["annotations"] if a["image_id"] == image["id"]):
            x, y, w, h = ann["bbox"]
            x0, y0, x1, y1 = max(0, x), max(0, y), min(256, x + w), min(256, y + h)
            if x1 - x0 >= 1 and y1 - y0 >= 1:
                expected.append((order.index(names[ann["category_id"]]), (x0 + x1) / 512, (y0 + y1) / 512,
                                 (x1 - x0) / 256, (y1 - y0) / 256))
        got = [(int(r[0]), *map(float, r[1:])) for r in rows]
        assert len(got) == len(expected)
        if got:
            assert np.allclose(sorted(got), sorted(expected), atol=1e-5)
        checked += len(got)
        with rasterio.open(tmp_path / "yolo" / "coco_train" / image["file_name"]) as src:
            raw = src.read([1, 2, 3])
        png = np.asarray(Image.open(tmp_path / "yolo" / "images" / "train" / f"{stem}.png"))
        assert png.dtype == np.uint8 and png.shape == (256, 256, 3)
        assert np.array_equal(png, to_rgb8(raw, scale))
    assert checked > 5  # the scene's things made it into the labels


def test_oriented_labels_are_the_objects_corners_and_the_regions_boxes(tmp_path):
    synth(["--out", str(tmp_path / "train"), "--size", "512", "--seed", "31", "--quiet"])
    synth(["--out", str(tmp_path / "val"), "--size", "256", "--seed", "32", "--quiet"])
    config = load_dataset_config(write_dataset_yaml(tmp_path))
    build_yolo_dataset(config, tmp_path / "yolo", size=256, train_overlap=0, obb=True)
    coco = json.loads((tmp_path / "yolo" / "coco_train" / ANNOTATIONS).read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    order = [c.name for c in config.classes]
    seen = {"object": 0, "region": 0}
    for image in coco["images"]:
        stem = Path(image["file_name"]).stem
        rows = [line.split() for line in (tmp_path / "yolo" / "labels" / "train" / f"{stem}.txt").read_text()
                .splitlines()]
        assert all(len(r) == 9 for r in rows)
        got = sorted((int(r[0]), *map(float, r[1:])) for r in rows)
        expected = []
        for ann in (a for a in coco["annotations"] if a["image_id"] == image["id"]):
            x, y, w, h = ann["bbox"]
            if min(256, x + w) - max(0, x) < 1 or min(256, y + h) - max(0, y) < 1:
                continue
            name = names[ann["category_id"]]
            if name in ("storehouse", "truck"):
                corners = np.asarray(ann["segmentation"][0]).reshape(4, 2)
                seen["object"] += 1
            else:
                corners = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
                seen["region"] += 1
            expected.append((order.index(name), *np.clip(corners / 256, 0, 1).ravel()))
        assert len(got) == len(expected)
        if got:
            assert np.allclose(got, sorted(expected), atol=1e-5)
    assert seen["object"] > 5 and seen["region"] > 0
    # an object's corners are a rotated rectangle, not its axis-aligned box
    rows = [line.split() for p in (tmp_path / "yolo" / "labels" / "train").glob("*.txt")
            for line in p.read_text().splitlines() if line.split()[0] in ("0", "1")]
    corners = np.array([list(map(float, r[1:])) for r in rows]).reshape(-1, 4, 2)
    assert (np.abs(corners[:, 0, 0] - corners[:, 1, 0]) > 1e-3).any() and (np.abs(corners[:, 0, 1] - corners[:, 1, 1]) > 1e-3).any()
