"""Pre-cut chips: synthetic scenes cut into GeoTIFFs + COCO, read back with ChipFolder."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from PIL import Image
from pycocotools.coco import COCO

from infer.cli.console import run_command
from infer.errors import InputError
from infer.geo.crs import to_wgs84
from synth.cli import main as synth_main
from tests.helpers import run_cli
from train.data.chip_folder import ChipFolder, front_edge_first
from train.data.chips import cut_chips, heading_deg
from train.data.chips_cli import main as chips_main
from train.data.config import load_dataset_config
from train.data.labels import read_scene_labels
from train.data.scenes import SceneWindows, find_scenes, open_scene

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_dataset_config(ROOT / "datasets" / "synthetic.yaml")
CHIP = 256
PAD = 256  # a no-data strip right of the scene: one column of chips that must be skipped
DISPATCHED = '"chips"' in (ROOT / "train" / "__main__.py").read_text()


def _synth(out: Path, seed: int) -> Path:
    assert synth_main(["--out", str(out), "--size", "512", "--seed", str(seed), "--nodata-border", "--quiet"]) == 0
    return out / "scene_000.tif"


def _pad_right(tif: Path, dst: Path) -> Path:
    """The scene with PAD columns of no-data (0) added on the right; the labels unchanged."""
    with rasterio.open(tif) as src:
        pixels, profile = src.read(), src.profile
    padded = np.zeros((pixels.shape[0], pixels.shape[1], pixels.shape[2] + PAD), dtype=pixels.dtype)
    padded[:, :, : pixels.shape[2]] = pixels
    dst.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(dst, "w", driver="GTiff", width=padded.shape[2], height=padded.shape[1],
                       count=padded.shape[0], dtype=padded.dtype, crs=profile["crs"],
                       transform=profile["transform"], nodata=0) as out:
        out.write(padded)
        out.descriptions = ("red", "green", "blue")
    shutil.copy(tif.with_suffix(".geojson"), dst.with_suffix(".geojson"))
    return dst


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    """768 x 512 px: seed 2 (4 storehouses, 7 trucks, 2 berms) with a no-data strip on the right."""
    base = tmp_path_factory.mktemp("scene")
    return _pad_right(_synth(base / "synth", 2), base / "padded" / "scene_000.tif")


@pytest.fixture(scope="module")
def chips(scene, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("chips")
    assert cut_chips(scene, scene.with_suffix(".geojson"), out, CONFIG, size=CHIP) == out / "annotations.json"
    return out


def _coco(folder: Path) -> dict:
    return json.loads((folder / "annotations.json").read_text())


def _labels(scene: Path):
    with rasterio.open(scene) as src:
        return read_scene_labels(scene.with_suffix(".geojson"), src.crs, CONFIG)


def test_chips_are_georeferenced_geotiffs_and_empty_ones_are_skipped(scene, chips):
    names = sorted(p.name for p in (chips / "images").iterdir())
    assert names == ["scene_000_0_0.tif", "scene_000_0_256.tif", "scene_000_256_0.tif", "scene_000_256_256.tif"]
    with rasterio.open(scene) as src:
        for image in _coco(chips)["images"]:
            col, row = image["scene_col"], image["scene_row"]
            with rasterio.open(chips / image["file_name"]) as chip:
                assert chip.crs == src.crs and chip.nodata == 0 and chip.dtypes == src.dtypes
                assert chip.descriptions == src.descriptions and (chip.width, chip.height) == (CHIP, CHIP)
                assert chip.transform == src.transform @ Affine.translation(col, row)
                window = rasterio.windows.Window(col, row, CHIP, CHIP)
                np.testing.assert_array_equal(chip.read(), src.read(window=window))


def test_coco_loads_with_pycocotools_and_lists_every_class(chips):
    coco = COCO(str(chips / "annotations.json"))
    cats = coco.loadCats(coco.getCatIds())
    assert [(c["id"], c["name"], c["supercategory"]) for c in cats] == [
        (1, "storehouse", "object"), (2, "truck", "object"), (3, "earth_berm", "region"),
        (4, "cleared_site", "region")]
    assert len(coco.getImgIds()) == 4
    for ann in coco.loadAnns(coco.getAnnIds()):
        mask = coco.annToMask(ann)
        assert mask.shape == (CHIP, CHIP) and mask.any()
        x, y, w, h = ann["bbox"]
        assert 0 <= x and 0 <= y and x + w <= CHIP + 1e-6 and y + h <= CHIP + 1e-6
        if ann["category_id"] == 2:
            assert 0 <= ann["attributes"]["heading_deg"] < 360


def test_every_object_is_owned_by_exactly_one_chip(scene, chips):
    labels = _labels(scene)
    with rasterio.open(scene) as src:
        centres = np.array([~src.transform @ tuple(c) for c in labels.centres])
        inside = ((centres >= 0) & (centres < (src.width, src.height))).all(axis=1)
    coco = _coco(chips)
    images = {im["id"]: im for im in coco["images"]}
    owned = []
    for ann in coco["annotations"]:
        if ann["category_id"] in (1, 2):
            im = images[ann["image_id"]]
            corners = np.asarray(ann["segmentation"][0]).reshape(4, 2)
            owned.append(corners.mean(axis=0) + (im["scene_col"], im["scene_row"]))
    assert inside.sum() == len(owned) == 11
    for centre in centres[inside]:
        assert (np.linalg.norm(np.asarray(owned) - centre, axis=1) < 1e-3).sum() == 1


def test_chip_corners_map_back_to_the_label_corners(scene, chips):
    labels = _labels(scene)
    folder = ChipFolder(chips, CONFIG)
    found = 0
    for i in range(len(folder)):
        sample = folder.read(i)
        with rasterio.open(folder.image_path(i)) as chip:
            to_map = chip.transform
        for corners, cls, known in zip(sample.corners, sample.classes, sample.directional, strict=True):
            in_map = np.array([to_map @ tuple(c) for c in corners])
            j = int(np.argmin(np.linalg.norm(labels.centres - in_map.mean(axis=0), axis=1)))
            assert np.abs(in_map - labels.corners[j]).max() < 0.01  # metres, same corner order
            assert cls == labels.classes[j] and known == labels.directional[j]
            found += 1
    assert found == len(labels.corners)


def test_chip_folder_reads_what_scene_windows_read(scene, chips):
    info = open_scene(scene, scene.with_suffix(".geojson"), CONFIG)
    windows = SceneWindows([info], CHIP)
    folder = ChipFolder(chips, CONFIG)
    for i, image in enumerate(_coco(chips)["images"]):
        got, want = folder.read(i), windows.read(0, image["scene_col"], image["scene_row"])
        assert got.image.dtype == np.float32 and got.image.shape == (3, CHIP, CHIP)
        np.testing.assert_array_equal(got.image, want.image)
        np.testing.assert_array_equal(got.valid, want.valid)
        assert got.masks.dtype == np.uint8 and got.masks.shape == want.masks.shape == (2, CHIP, CHIP)
        assert np.mean(got.masks != want.masks) < 1e-3  # pixel-centre ties on polygon edges only
    assert not all(folder.read(i).valid.all() for i in range(len(folder)))  # the no-data border is kept


def test_a_region_with_a_hole_keeps_its_hole(scene, tmp_path):
    with rasterio.open(scene) as src:
        crs, transform = src.crs, src.transform
    ring = shapely.geometry.box(40, 40, 200, 200).difference(shapely.geometry.box(90, 90, 150, 150))
    in_map = shapely.affinity.affine_transform(ring, [transform.a, 0, 0, transform.e, transform.c, transform.f])
    labels = tmp_path / "scene.geojson"
    labels.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"class": "earth_berm"},
         "geometry": shapely.geometry.mapping(to_wgs84(in_map, crs))}]}))
    cut_chips(scene, labels, tmp_path / "out", CONFIG, size=CHIP)
    coco = COCO(str(tmp_path / "out" / "annotations.json"))
    (ann,) = coco.loadAnns(coco.getAnnIds())
    assert len(ann["segmentation"]) > 1 and ann["area"] == pytest.approx(160 * 160 - 60 * 60, rel=1e-4)
    mask = ChipFolder(tmp_path / "out", CONFIG).read(0).masks[0]
    np.testing.assert_array_equal(mask, coco.annToMask(ann))
    assert mask[120, 120] == 0 and mask[60, 60] == 1
    assert mask.sum() == 160 * 160 - 60 * 60


def test_overlapping_chips_each_hold_the_objects_centred_in_them(scene, tmp_path):
    cut_chips(scene, scene.with_suffix(".geojson"), tmp_path, CONFIG, size=CHIP, overlap=64)
    folder = ChipFolder(tmp_path, CONFIG)
    labels = _labels(scene)
    total = 0
    for i in range(len(folder)):
        with rasterio.open(folder.image_path(i)) as chip:
            centres = np.array([~chip.transform @ tuple(c) for c in labels.centres])
        expected = ((centres >= 0) & (centres < CHIP)).all(axis=1).sum()
        assert len(folder.read(i).corners) == expected
        total += expected
    assert total > len(labels.corners)


def test_cutting_again_replaces_and_another_scene_appends(scene, tmp_path):
    other = tmp_path / "b" / "other.tif"
    other.parent.mkdir()
    first = _synth(tmp_path / "a", 3)
    shutil.copy(first, other)
    shutil.copy(first.with_suffix(".geojson"), other.with_suffix(".geojson"))
    out = tmp_path / "out"
    cut_chips(scene, scene.with_suffix(".geojson"), out, CONFIG, size=CHIP)
    alone = _coco(out)
    cut_chips(other, other.with_suffix(".geojson"), out, CONFIG, size=CHIP)
    cut_chips(scene, scene.with_suffix(".geojson"), out, CONFIG, size=CHIP)
    merged = _coco(out)
    assert len(merged["images"]) == len(alone["images"]) + 4
    ids = [im["id"] for im in merged["images"]]
    assert len(set(ids)) == len(ids) and len({a["id"] for a in merged["annotations"]}) == len(merged["annotations"])
    assert {a["image_id"] for a in merged["annotations"]} <= set(ids)
    assert len(list((out / "images").iterdir())) == len(merged["images"])
    assert len(ChipFolder(out, CONFIG)) == 8


def test_merging_into_other_categories_is_refused(chips, scene, tmp_path):
    lines = (ROOT / "datasets" / "synthetic.yaml").read_text().splitlines(keepends=True)
    first, second = (i for i, line in enumerate(lines) if "kind: object" in line)
    lines[first], lines[second] = lines[second], lines[first]  # truck before storehouse: other ids
    yaml = tmp_path / "swapped.yaml"
    yaml.write_text("".join(lines))
    out = tmp_path / "out"
    shutil.copytree(chips, out)
    with pytest.raises(InputError, match="other categories"):
        cut_chips(scene, scene.with_suffix(".geojson"), out, load_dataset_config(yaml), size=CHIP)
    assert _coco(out) == _coco(chips)


def _png_folder(folder: Path, mode: str = "RGB", annotations: list | None = None,
                categories: list | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(0).integers(0, 255, (48, 64, len(mode)), dtype=np.uint8)
    Image.fromarray(pixels.squeeze() if mode == "L" else pixels, mode).save(folder / "a.png")
    if annotations is None:
        annotations = [
            # a truck heading east (90°), corners given starting at its rear-left
            {"id": 1, "image_id": 7, "category_id": 2, "segmentation": [[10, 20, 10, 10, 30, 10, 30, 20]],
             "attributes": {"heading_deg": 90}},
            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [40, 5, 10, 30]},
            {"id": 3, "image_id": 7, "category_id": 3, "segmentation": [[0, 30, 20, 30, 20, 40, 0, 40]]},
        ]
    categories = categories or [{"id": 1, "name": "storehouse"}, {"id": 2, "name": "truck"},
                                {"id": 3, "name": "earth_berm"}]
    (folder / "annotations.json").write_text(json.dumps({
        "images": [{"id": 7, "file_name": "a.png", "width": 64, "height": 48}],
        "annotations": annotations, "categories": categories}))
    return folder


def test_png_chip_folder_reads_three_bands_and_orders_corners(tmp_path):
    sample = ChipFolder(_png_folder(tmp_path, "RGBA"), CONFIG).read(0)
    assert sample.image.shape == (3, 48, 64) and sample.image.dtype == np.float32
    assert sample.valid.dtype == bool and sample.valid.all()
    np.testing.assert_array_equal(sample.corners[0], [[30, 10], [30, 20], [10, 20], [10, 10]])  # front (east) first
    assert heading_deg(sample.corners[0]) == pytest.approx(90)
    np.testing.assert_array_equal(sample.corners[1], [[40, 5], [50, 5], [50, 35], [40, 35]])  # short edge first
    assert sample.classes.tolist() == [1, 0] and sample.directional.tolist() == [True, False]
    assert sample.masks.shape == (2, 48, 64) and sample.masks[0].sum() == 200 and not sample.masks[1].any()


def test_front_edge_first_follows_the_compass_in_pixels():
    square = np.array([[0, 0], [2, 0], [2, 2], [0, 2]], dtype=float)
    assert front_edge_first(square, 0).tolist() == [[0, 0], [2, 0], [2, 2], [0, 2]]  # up: the y = 0 edge
    assert front_edge_first(square, 180).tolist()[:2] == [[2, 2], [0, 2]]
    assert front_edge_first(square, 270).tolist()[:2] == [[0, 2], [0, 0]]
    assert front_edge_first(square, None).tolist() == square.tolist()  # equal edges: order kept


def _one_line(exc: pytest.ExceptionInfo) -> str:
    assert "\n" not in str(exc.value)
    return str(exc.value)


def test_unknown_category_is_a_one_line_input_error(tmp_path):
    folder = _png_folder(tmp_path, categories=[{"id": 1, "name": "tank"}, {"id": 2, "name": "truck"},
                                               {"id": 3, "name": "earth_berm"}])
    with pytest.raises(InputError) as exc:
        ChipFolder(folder, CONFIG)
    assert "'tank'" in _one_line(exc) and "annotations.json" in str(exc.value)


def test_wrong_band_count_names_the_file(tmp_path):
    folder = ChipFolder(_png_folder(tmp_path, "L"), CONFIG)
    with pytest.raises(InputError) as exc:
        folder.read(0)
    assert "a.png has 1 bands" in _one_line(exc)


def test_an_object_segmentation_must_be_four_corners(tmp_path):
    bad = [{"id": 1, "image_id": 7, "category_id": 2, "segmentation": [[0, 0, 5, 0, 5, 5]]}]
    with pytest.raises(InputError) as exc:
        ChipFolder(_png_folder(tmp_path, annotations=bad), CONFIG)
    assert "8 numbers" in _one_line(exc)


def test_a_missing_folder_or_annotations_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="chip folder not found"):
        ChipFolder(tmp_path / "nowhere", CONFIG)
    with pytest.raises(InputError, match="annotations.json not found"):
        ChipFolder(tmp_path, CONFIG)


def test_cli_in_process_writes_chips_and_prints_one_line(scene, tmp_path, capsys):
    code = run_command(chips_main, [str(scene), str(scene.with_suffix(".geojson")), "--out", str(tmp_path),
                                    "--size", str(CHIP)])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(out) == 1
    assert "4 chips" in out[0] and "4 storehouse, 7 truck" in out[0] and str(tmp_path) in out[0]


@pytest.mark.parametrize("args,needle", [(["--size", "0"], "--size"), (["--overlap", "512"], "--overlap"),
                                         (["--bogus"], "unrecognized")])
def test_cli_bad_usage_is_one_line_and_exit_2(scene, tmp_path, capsys, args, needle):
    code = run_command(chips_main, [str(scene), str(scene.with_suffix(".geojson")), "--out", str(tmp_path), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0]


def test_cli_missing_scene_is_exit_1(tmp_path, capsys):
    code = run_command(chips_main, [str(tmp_path / "none.tif"), str(tmp_path / "none.geojson"), "--out",
                                    str(tmp_path / "o")])
    assert code == 1 and len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.skipif(not DISPATCHED, reason="train/__main__.py does not dispatch `chips` yet")
def test_cli_through_python_m_train(scene, tmp_path):
    ok = run_cli("train", "chips", str(scene), str(scene.with_suffix(".geojson")), "--out", str(tmp_path / "o"),
                 "--size", str(CHIP))
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "o" / "annotations.json").exists()
    bad = run_cli("train", "chips", str(scene), str(scene.with_suffix(".geojson")), "--out", str(tmp_path / "p"),
                  "--size", "0")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_truck_headings_are_bearings_from_true_north_of_their_fronts(scene):
    """Synth writes a truck's heading as its front's bearing from true north (about 1.1 degrees off the UTM
    grid's north where the scenes lie), and training reads it back to that front edge."""
    from pyproj import Geod, Transformer

    with rasterio.open(scene) as src:
        crs = src.crs
    labels = _labels(scene)
    truck = CONFIG.class_index()["truck"][1]
    corners = labels.corners[labels.classes == truck]
    features = json.loads(scene.with_suffix(".geojson").read_text())["features"]
    headings = [f["properties"]["heading_deg"] for f in features if f["properties"]["class"] == "truck"]
    assert len(headings) == len(corners) > 0
    to_lonlat = Transformer.from_crs(crs, 4326, always_xy=True)
    centres = to_lonlat.transform(*corners.mean(axis=1).T)
    fronts = to_lonlat.transform(*corners[:, :2].mean(axis=1).T)
    bearings = np.asarray(Geod(ellps="WGS84").inv(*centres, *fronts)[0]) % 360
    off = (bearings - np.asarray(headings) + 180) % 360 - 180
    assert np.abs(off).max() < 0.1, off


def _write_layer(path: Path, features: list[dict], crs: str, driver: str, layer: str = "labels") -> Path:
    """The features (GeoJSON dicts in WGS84) as a vector file of `driver` in `crs`, through OGR."""
    from pyogrio.raw import write

    from infer.geo.crs import from_wgs84

    geoms = from_wgs84(np.array([shapely.geometry.shape(f["geometry"]) for f in features], dtype=object), crs)
    names = ["class", "heading_deg"]
    columns = [np.array([f["properties"]["class"] for f in features], dtype=object),
               np.array([f["properties"].get("heading_deg", np.nan) for f in features], dtype=np.float64)]
    with warnings.catch_warnings():  # OGR's note that a Shapefile cuts heading_deg to heading_de
        warnings.simplefilter("ignore", RuntimeWarning)
        write(path, shapely.to_wkb(geoms), field_data=columns, fields=names, layer=layer, driver=driver, crs=crs,
              geometry_type="Polygon", append=path.exists())
    return path


def test_labels_from_a_geopackage_or_shapefile_in_utm_are_the_geojsons(scene, tmp_path):
    """Labels digitized in QGIS stay in the project's CRS and format: a GeoPackage or Shapefile in UTM gives the
    training labels and the chips the WGS84 GeoJSON gives; a scene finds them beside it by its name."""
    features = json.loads(scene.with_suffix(".geojson").read_text())["features"]
    with rasterio.open(scene) as src:
        crs = src.crs
        expected = read_scene_labels(scene.with_suffix(".geojson"), crs, CONFIG)
        for name, driver in (("labels.gpkg", "GPKG"), ("labels.shp", "ESRI Shapefile")):
            got = read_scene_labels(_write_layer(tmp_path / name, features, "EPSG:32637", driver), crs, CONFIG)
            assert (got.classes == expected.classes).all() and (got.directional == expected.directional).all()
            # the same rectangles to a millimetre (a ring may start elsewhere), a truck's front the same edge
            assert np.abs(np.sort(got.corners, axis=1) - np.sort(expected.corners, axis=1)).max() < 1e-3, name
            fronts = [np.sort(c[:, :2], axis=1) for c in (got.corners, expected.corners)]
            assert np.abs(fronts[0] - fronts[1])[got.directional].max() < 1e-3, name
            for mine, theirs in zip(got.regions, expected.regions, strict=True):
                assert shapely.union_all(mine).symmetric_difference(shapely.union_all(theirs)).area < 1e-2
    assert cut_chips(scene, tmp_path / "labels.gpkg", tmp_path / "gpkg", CONFIG, size=CHIP)
    assert cut_chips(scene, scene.with_suffix(".geojson"), tmp_path / "geojson", CONFIG, size=CHIP)
    from_gpkg, from_geojson = (_coco(tmp_path / name)["annotations"] for name in ("gpkg", "geojson"))
    assert len(from_gpkg) == len(from_geojson) > 0
    for mine, theirs in zip(from_gpkg, from_geojson, strict=True):  # to a hundredth of a pixel, wherever a ring starts
        assert (mine["image_id"], mine["category_id"]) == (theirs["image_id"], theirs["category_id"])
        assert mine["bbox"] == pytest.approx(theirs["bbox"], abs=0.01)
        assert mine["attributes"].get("heading_deg") == pytest.approx(theirs["attributes"].get("heading_deg"), abs=0.01)
        points = [np.reshape(a["segmentation"][0], (-1, 1, 2)) for a in (mine, theirs)]
        assert np.linalg.norm(points[0] - points[1].transpose(1, 0, 2), axis=-1).min(axis=1).max() < 0.01

    alone = tmp_path / "dataset" / "scene_000.tif"
    alone.parent.mkdir()
    shutil.copy(scene, alone)
    shutil.copy(tmp_path / "labels.gpkg", alone.with_suffix(".gpkg"))
    assert find_scenes((alone.parent,)) == [(alone, alone.with_suffix(".gpkg"))]


def test_a_vector_file_of_several_layers_or_without_a_crs_is_one_line(scene, tmp_path):
    features = json.loads(scene.with_suffix(".geojson").read_text())["features"]
    two = _write_layer(tmp_path / "two.gpkg", features, "EPSG:32637", "GPKG", layer="storehouses")
    _write_layer(two, features, "EPSG:32637", "GPKG", layer="trucks")
    with pytest.raises(InputError, match=r"two.gpkg has 2 layers \(storehouses, trucks\), labels need one: "
                                         r"write it alone, e.g. ogr2ogr -f GeoJSON two.geojson two.gpkg LAYER"):
        read_scene_labels(two, "EPSG:32637", CONFIG)
    shp = _write_layer(tmp_path / "bare.shp", features, "EPSG:32637", "ESRI Shapefile")
    shp.with_suffix(".prj").unlink()
    with pytest.raises(InputError, match="bare.shp does not say its CRS"):
        read_scene_labels(shp, "EPSG:32637", CONFIG)
    (tmp_path / "junk.gpkg").write_text("not a geopackage")
    with pytest.raises(InputError, match="cannot read .*junk.gpkg"):
        read_scene_labels(tmp_path / "junk.gpkg", "EPSG:32637", CONFIG)


def test_labels_drawn_as_points_or_lines_are_refused_in_one_line_naming_the_feature(scene, tmp_path):
    """A truck marked by a point or a berm traced as its ridge line has no area to learn: cut into chips, the
    line was an earth berm of no pixel and the point a traceback."""
    truck = next(f for f in json.loads(scene.with_suffix(".geojson").read_text())["features"]
                 if f["properties"]["class"] == "truck")
    outline = shapely.geometry.shape(truck["geometry"])
    for name, geom, needle in (
            ("point", outline.centroid, "feature 0 (truck) is a Point: every feature is an outline (a polygon)"),
            ("line", shapely.LineString(list(outline.exterior.coords)[:3]),
             "feature 0 (earth_berm) is a LineString: every feature is an outline (a polygon), an object the "
             "rectangle around it, a region its area; buffer the lines to their width first")):
        cls = "truck" if name == "point" else "earth_berm"
        labels = tmp_path / f"{name}.geojson"
        labels.write_text(json.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"class": cls}, "geometry": shapely.geometry.mapping(geom)}]}))
        with pytest.raises(InputError, match=re.escape(needle)):
            cut_chips(scene, labels, tmp_path / name, CONFIG, size=CHIP)
        assert not (tmp_path / name / "annotations.json").exists()


@pytest.mark.parametrize("heading", ["north", float("nan"), True])
def test_a_heading_that_is_not_a_number_is_one_line_naming_the_feature(scene, tmp_path, heading):
    collection = json.loads(scene.with_suffix(".geojson").read_text())
    n, truck = next((n, f) for n, f in enumerate(collection["features"]) if f["properties"]["class"] == "truck")
    truck["properties"]["heading_deg"] = heading
    labels = tmp_path / "labels.geojson"
    labels.write_text(json.dumps(collection))
    with pytest.raises(InputError, match=rf"feature {n} \(truck\) has heading_deg .*: a bearing in degrees from true "
                                         "north, a number"):
        read_scene_labels(labels, "EPSG:32637", CONFIG)
