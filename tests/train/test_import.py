"""`train import`: PASCAL VOC, YOLO, DOTA and COCO files written here, read back as chip folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from infer.contract.label_formats import read_coco, read_dota, read_voc, read_yolo
from infer.errors import UsageError
from tests.helpers import run_cli
from train.data.chip_folder import ChipFolder
from train.data.config import load_dataset_config
from train.data.importer import import_images

CLASSES = [{"name": "tree", "kind": "object", "color": "#30d030"},
           {"name": "small_vehicle", "kind": "object", "color": "#ffdc00"},
           {"name": "clearing", "kind": "region", "color": "#c850ff"}]


@pytest.fixture
def dataset(tmp_path) -> Path:
    path = tmp_path / "set.yaml"
    path.write_text(yaml.safe_dump({"name": "set", "classes": CLASSES, "bands": ["red", "green", "blue"],
                                    "gsd_m": 0.1, "train": "out/train", "val": "out/val"}))
    return path


def _png(path: Path, width: int, height: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _chips(folder: Path, dataset: Path) -> list:
    chips = ChipFolder(folder, load_dataset_config(dataset))
    return [chips.read(i) for i in range(len(chips))]


def _voc(path: Path, image: str, objects: list[tuple[str, tuple[int, int, int, int]]]) -> None:
    boxes = "".join(f"<object><name>{n}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
                    f"<ymax>{b[3]}</ymax></bndbox></object>" for n, b in objects)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><filename>{image}</filename><size><width>64</width><height>48</height>"
                    f"</size>{boxes}</annotation>")


def test_voc_through_the_command_maps_names_and_keeps_boxes(tmp_path, dataset):
    _png(tmp_path / "voc" / "JPEGImages" / "a.png", 64, 48)
    _voc(tmp_path / "voc" / "Annotations" / "a.xml", "a.png", [("Tree", (10, 5, 30, 20)), ("car", (40, 30, 50, 34))])
    result = run_cli("train", "import", "voc", str(tmp_path / "voc"), "--dataset", str(dataset), "--out",
                     str(tmp_path / "out"), "--val-fraction", "0", "--class", "car=small_vehicle")
    assert result.returncode == 0, result.stderr
    assert "train: 1 chips (1 small_vehicle, 1 tree)" in result.stdout
    (chip,) = _chips(tmp_path / "out" / "train", dataset)
    assert chip.image.shape == (3, 48, 64) and chip.classes.tolist() == [0, 1]
    np.testing.assert_allclose(chip.corners[0].min(axis=0), [10, 5])
    np.testing.assert_allclose(chip.corners[0].max(axis=0), [30, 20])
    np.testing.assert_allclose(chip.corners[1].mean(axis=0), [45, 32])

    again = run_cli("train", "import", "voc", str(tmp_path / "voc"), "--dataset", str(dataset), "--out",
                    str(tmp_path / "other"), "--val-fraction", "0")
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1
    assert "source classes 'car' are not classes of dataset set" in again.stderr and "--class NAME=CLASS" in again.stderr
    assert not (tmp_path / "other").exists()


def test_yolo_boxes_and_oriented_boxes_in_pixels(tmp_path, dataset):
    root = tmp_path / "yolo"
    _png(root / "images" / "train" / "b.png", 100, 50)
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "b.txt").write_text("0 0.5 0.5 0.2 0.4\n1 0.1 0.2 0.3 0.2 0.3 0.6 0.1 0.6\n")
    (root / "data.yaml").write_text(yaml.safe_dump({"names": {0: "Tree", 1: "small vehicle"}}))
    import_images(read_yolo(root), load_dataset_config(dataset), tmp_path / "out", val_fraction=0)
    (chip,) = _chips(tmp_path / "out" / "train", dataset)
    np.testing.assert_allclose(chip.corners[0].min(axis=0), [40, 15])
    np.testing.assert_allclose(chip.corners[0].max(axis=0), [60, 35])
    np.testing.assert_allclose(sorted(map(tuple, chip.corners[1])), [(10, 10), (10, 30), (30, 10), (30, 30)])


def test_dota_oriented_boxes_on_a_large_image_go_to_the_tile_holding_their_centre(tmp_path, dataset):
    root = tmp_path / "dota"
    _png(root / "images" / "P0001.png", 1000, 600, seed=3)
    (root / "labelTxt").mkdir()
    # a 20 x 8 box turned 45 degrees, centred at (700, 100); then a box centred at (100, 500)
    c, s = np.cos(np.pi / 4), np.sin(np.pi / 4)
    corners = np.array([[-10, -4], [10, -4], [10, 4], [-10, 4]]) @ np.array([[c, s], [-s, c]]) + [700, 100]
    line = " ".join(f"{v:.3f}" for v in corners.ravel())
    (root / "labelTxt" / "P0001.txt").write_text(f"imagesource:GoogleEarth\ngsd:0.1\n{line} small-vehicle 0\n"
                                                 "90 490 110 490 110 510 90 510 tree 1\n")
    import_images(read_dota(root), load_dataset_config(dataset), tmp_path / "out", val_fraction=0, max_side=512)
    coco = json.loads((tmp_path / "out" / "train" / "annotations.json").read_text())
    origins = [(im["source_col"], im["source_row"]) for im in coco["images"]]
    assert origins == [(0, 0), (488, 0), (0, 88), (488, 88)]  # the last tile of a row or column is flush
    chips = _chips(tmp_path / "out" / "train", dataset)
    # the flush tiles overlap: the vehicle's centre lies in both right-hand tiles, the tree's in both left ones
    assert [c.classes.tolist() for c in chips] == [[0], [1], [0], [1]]
    for chip, centre in ((chips[1], [212, 100]), (chips[3], [212, 12])):
        np.testing.assert_allclose(chip.corners[0].mean(axis=0), centre, atol=1e-3)
        np.testing.assert_allclose(np.linalg.norm(chip.corners[0][1] - chip.corners[0][0]), 8, atol=1e-2)
    np.testing.assert_allclose(chips[2].corners[0].mean(axis=0), [100, 412], atol=1e-3)
    assert chips[3].image.shape == (3, 512, 512)
    whole = np.asarray(Image.open(root / "images" / "P0001.png")).transpose(2, 0, 1)
    np.testing.assert_array_equal(chips[3].image, whole[:, 88:600, 488:1000])


def test_coco_boxes_and_region_polygons(tmp_path, dataset):
    root = tmp_path / "coco"
    _png(root / "images" / "c.png", 80, 60)
    coco = {"images": [{"id": 7, "file_name": "c.png", "width": 80, "height": 60}],
            "categories": [{"id": 1, "name": "Tree"}, {"id": 2, "name": "Clearing"}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "bbox": [5, 5, 10, 10]},
                            {"id": 2, "image_id": 7, "category_id": 2,
                             "segmentation": [[40, 10, 70, 10, 70, 50, 40, 50]]}]}
    (root / "labels.json").write_text(json.dumps(coco))
    import_images(read_coco(root / "labels.json"), load_dataset_config(dataset), tmp_path / "out", val_fraction=0)
    (chip,) = _chips(tmp_path / "out" / "train", dataset)
    assert chip.classes.tolist() == [0] and chip.masks.shape == (1, 60, 80)
    assert chip.masks[0].sum() == 30 * 40 and chip.masks[0, 10:50, 40:70].all()


def test_the_validation_split_is_seeded_disjoint_and_by_image(tmp_path, dataset):
    for i in range(5):
        _png(tmp_path / "voc" / f"im{i}.png", 64, 48, seed=i)
        _voc(tmp_path / "voc" / f"im{i}.xml", f"im{i}.png", [("tree", (1, 1, 9, 9))])
    config = load_dataset_config(dataset)
    names = []
    for out in ("a", "b"):
        report = import_images(read_voc(tmp_path / "voc"), config, tmp_path / out, val_fraction=0.4, seed=3)
        assert report.chips == {"train": 3, "val": 2}
        names.append({split: sorted(im["file_name"] for im in json.loads(
            (tmp_path / out / split / "annotations.json").read_text())["images"]) for split in ("train", "val")})
    assert names[0] == names[1] and not set(names[0]["train"]) & set(names[0]["val"])
    with pytest.raises(UsageError, match="already exists; import into an empty --out"):
        import_images(read_voc(tmp_path / "voc"), config, tmp_path / "a", val_fraction=0.4)


def test_the_largest_labeled_object_sets_the_export_overlap_and_warns_of_small_chips(tmp_path, dataset):
    from train.data.datamodule import SiteDataModule
    from train.export import default_overlap, default_tile

    _png(tmp_path / "voc" / "a.png", 64, 48)
    _voc(tmp_path / "voc" / "a.xml", "a.png", [("tree", (2, 2, 42, 12)), ("tree", (50, 30, 60, 40))])
    import_images(read_voc(tmp_path / "voc"), load_dataset_config(dataset), tmp_path / "out", val_fraction=0)
    spec = yaml.safe_load(dataset.read_text())
    spec["val"] = "out/train"
    dataset.write_text(yaml.safe_dump(spec))
    data = SiteDataModule(str(dataset), chip_size=32, val_chip_size=64, num_workers=0)
    with pytest.warns(UserWarning, match="the largest labeled object is 40 px long, more than a training chip"):
        data.setup("fit")
    assert data.info()["largest_object_m"] == pytest.approx(4.0)  # 40 px at 0.1 m
    assert data.info()["typical_object_px"] == [25.0, 10.0]  # medians of (40, 10) x 10 and 10 x 10
    # 4 m + 10 m of context at 0.1 m: 140 px, rounded up to 160; a record-less checkpoint assumes 60 m
    assert default_overlap(0.1, 4.0) == 160 and default_overlap(0.1) == 704
    assert default_tile(256, 160) == 1024 and default_tile(256, 704) == 1440
