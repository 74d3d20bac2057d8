"""Dataset definitions, labels cut into chips, resampling, samples and targets."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from infer.errors import InputError
from synth.cli import main as synth_main
from tests.helpers import run_cli
from tests.train.conftest import write_dataset_yaml
from train.data.chips import cut_chips
from train.data.config import load_dataset_config
from train.data.normalization import compute_stats
from train.data.samples import DetectionSamples
from train.data.scenes import SceneWindows, find_scenes, open_scene


def test_the_shipped_dataset_definition_loads():
    config = load_dataset_config(Path(__file__).parents[2] / "datasets" / "synthetic.yaml")
    assert [c.name for c in config.object_classes] == ["storehouse", "truck"]
    assert [c.name for c in config.region_classes] == ["earth_berm", "cleared_site"]
    assert config.bands == ("red", "green", "blue") and config.gsd_m == 0.5
    assert [c.min_area_m2 for c in config.region_classes] == [10, 400]


def test_the_reference_dataset_adds_training_scenes_and_nothing_else():
    datasets = Path(__file__).parents[2] / "datasets"
    default = load_dataset_config(datasets / "synthetic.yaml")
    reference = load_dataset_config(datasets / "synthetic_reference.yaml")
    assert reference.classes == default.classes
    assert (reference.bands, reference.gsd_m, reference.val) == (default.bands, default.gsd_m, default.val)
    assert reference.train[0] == default.train[0] and len(reference.train) == 2


@pytest.mark.parametrize("broken,needle", [
    ({"classes": [{"name": "a", "kind": "blob"}]}, "kind"),
    ({"classes": [{"name": "a", "kind": "object", "min_area_m2": 5}, {"name": "b", "kind": "region"}]},
     "class 'a': min_area_m2 is for region classes"),
    ({"classes": [{"name": "a", "kind": "object"}, {"name": "b", "kind": "region", "min_area_m2": "big"}]},
     "not a number"),
    ({"gsd_m": None, "bands": None, "classes": None}, "missing"),
    ({"normalization": {"mean": [1, 2], "std": [1, 2]}}, "normalization mean has 2 values for 3 bands"),
    ({"classes": [{"name": "a", "kind": "object", "color": "redish"}]}, "class 'a': color 'redish' is not a colour"),
    ({"classes": "a"}, "'classes' must be a list"),
    ({"gsd_m": float("nan")}, "'gsd_m' must be a positive number of metres per pixel, got nan"),
    ({"gsd_m": -0.5}, "'gsd_m' must be a positive number of metres per pixel, got -0.5"),
    ({"gsd_m": "half a metre"}, "'gsd_m' must be a positive number"),
    ({"bands": []}, "'bands' must list the images' bands, at least one"),
])
def test_bad_definitions_are_one_line_errors(tmp_path, broken, needle):
    path = write_dataset_yaml(tmp_path, **broken)
    if broken.get("gsd_m", 1) is None:
        text = "\n".join(line for line in path.read_text().splitlines()
                         if not line.startswith(("gsd_m", "bands", "classes")) and not line.startswith(("- ", "  ")))
        path.write_text(text)
    with pytest.raises(InputError, match=needle) as err:
        load_dataset_config(path)
    assert "\n" not in str(err.value)


def test_class_colours_are_kept_as_hex_whatever_form_they_are_written_in(tmp_path):
    """Colours travel as #rrggbb into checkpoints, ONNX metadata, GeoJSON and QGIS styles; a definition may
    write them as Pillow reads them."""
    written = ["#FF4040", "#f44", "teal", "rgb(0, 200, 255)"]
    classes = [{"name": f"c{k}", "kind": "object", "color": color} for k, color in enumerate(written)]
    config = load_dataset_config(write_dataset_yaml(tmp_path, classes=classes))
    assert [c.color for c in config.classes] == ["#ff4040", "#ff4444", "#008080", "#00c8ff"]


def test_missing_definition_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_dataset_config(tmp_path / "nope.yaml")


def test_unknown_class_in_labels_names_file_and_class(tiny_dataset, tmp_path):
    config = load_dataset_config(tiny_dataset)
    tif, labels = find_scenes(config.train)[0]
    data = json.loads(labels.read_text())
    data["features"][0]["properties"]["class"] = "tank"
    bad = tmp_path / labels.name
    bad.write_text(json.dumps(data))
    with pytest.raises(InputError, match="unknown class 'tank'") as err:
        open_scene(tif, bad, config)
    assert str(bad) in str(err.value)


def test_wrong_band_count_is_an_input_error(tiny_dataset, tmp_path):
    synth_main(["--out", str(tmp_path), "--size", "128", "--bands", "rgbn", "--quiet"])
    config = load_dataset_config(tiny_dataset)
    with pytest.raises(InputError, match="has 4 bands, the dataset expects 3"):
        open_scene(tmp_path / "scene_000.tif", tmp_path / "scene_000.geojson", config)


def test_chips_carry_objects_at_their_true_size(tiny_dataset):
    config = load_dataset_config(tiny_dataset)
    windows = SceneWindows([open_scene(t, g, config) for t, g in find_scenes(config.train)], chip_size=256)
    labels = json.loads(find_scenes(config.train)[0][1].read_text())["features"]
    sizes = sorted((f["properties"]["length_m"] / 0.5, f["properties"]["width_m"] / 0.5)
                   for f in labels if f["properties"]["class"] == "storehouse")
    seen = []
    for key in windows.grid():
        if key[0] != 0:
            continue
        raw = windows.read(*key)
        centre = raw.corners.mean(axis=1)
        inside = (centre >= 0).all(axis=1) & (centre < 256).all(axis=1) & (raw.classes == 0)
        for corners in raw.corners[inside]:
            edges = np.linalg.norm(np.diff(np.vstack([corners, corners[:1]]), axis=0), axis=1)
            seen.append((max(edges), min(edges)))
    assert sorted(seen) == pytest.approx(sizes, abs=0.01)  # each storehouse in exactly one chip, exact size


def test_a_coarser_scene_is_resampled_to_the_dataset_gsd(tmp_path, tiny_dataset):
    synth_main(["--out", str(tmp_path), "--size", "256", "--gsd", "1.0", "--seed", "21", "--quiet"])
    config = load_dataset_config(tiny_dataset)
    scene = open_scene(tmp_path / "scene_000.tif", tmp_path / "scene_000.geojson", config)
    assert scene.scale == pytest.approx(0.5)
    raw = SceneWindows([scene], chip_size=512).read(0, 0, 0)
    assert raw.image.shape == (3, 512, 512) and raw.valid.all()
    labels = json.loads((tmp_path / "scene_000.geojson").read_text())["features"]
    trucks = [f for f in labels if f["properties"]["class"] == "truck"]
    lengths = sorted(np.linalg.norm(c[0] - c[3]) for c, k in zip(raw.corners, raw.classes, strict=True) if k == 1)
    assert lengths == pytest.approx(sorted(f["properties"]["length_m"] / 0.5 for f in trucks), abs=0.01)


def test_a_scene_over_twice_the_dataset_gsd_is_refused_as_inference_refuses_it(tmp_path, tiny_dataset):
    """A 1.5 m scene in a 0.5 m dataset would teach the network objects as blurs of a few pixels."""
    synth_main(["--out", str(tmp_path), "--size", "128", "--gsd", "1.5", "--seed", "21", "--quiet"])
    with pytest.raises(InputError, match=r"scene_000.tif has pixels of 1.5 m, 3x the dataset's 0.5 m \(at most 2x") as err:
        open_scene(tmp_path / "scene_000.tif", tmp_path / "scene_000.geojson", load_dataset_config(tiny_dataset))
    assert "gdalwarp -tr 0.5 0.5" in str(err.value) and "\n" not in str(err.value)


def test_a_training_scene_placed_only_by_control_points_is_refused_as_inference_refuses_it(tmp_path, tiny_dataset):
    """Its labels (WGS84) could not be put on its pixels without a warp: the one line names it."""
    import rasterio
    from rasterio.control import GroundControlPoint
    from rasterio.errors import NotGeoreferencedWarning

    synth_main(["--out", str(tmp_path / "synth"), "--size", "128", "--seed", "21", "--quiet"])
    with rasterio.open(tmp_path / "synth" / "scene_000.tif") as src:
        pixels, t, crs = src.read(), src.transform, src.crs
    gcps = [GroundControlPoint(row=r, col=c, x=(t @ (c, r))[0], y=(t @ (c, r))[1])
            for r, c in ((0, 0), (0, 128), (128, 0), (128, 128))]
    with warnings.catch_warnings():  # rasterio warns, creating it, that it has no geotransform
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(tmp_path / "scene_000.tif", "w", driver="GTiff", width=128, height=128, count=3,
                           dtype="uint8") as dst:
            dst.write(pixels)
            dst.gcps = (gcps, crs)
    with pytest.raises(InputError, match=r"scene_000.tif has no geotransform, only 4 ground control points: .* "
                                         r"gdalwarp -t_srs EPSG:32637 -tr 0.5 0.5 -r bilinear -of VRT"):
        open_scene(tmp_path / "scene_000.tif", tmp_path / "synth" / "scene_000.geojson",
                   load_dataset_config(tiny_dataset))


def test_samples_are_normalized_and_targets_match(tiny_dataset):
    config = load_dataset_config(tiny_dataset)
    windows = SceneWindows([open_scene(t, g, config) for t, g in find_scenes(config.train)], chip_size=256)
    stats = compute_stats([t for t, _ in find_scenes(config.train)])
    data = DetectionSamples([windows], stats, 256, num_object_classes=2, train=False)
    items = [data[i] for i in range(len(data))]
    images = np.stack([it["image"].numpy() for it in items])
    assert abs(images.mean()) < 0.3 and 0.6 < images.std() < 1.6
    for it in items:
        assert it["heatmap"].shape == (2, 64, 64) and it["mask"].shape == (2, 256, 256)
        assert (it["heatmap"] == 1.0).sum() == len(it["objects"])  # one exact peak per object


def test_training_draws_differ_but_repeat_with_the_seed(tiny_dataset):
    config = load_dataset_config(tiny_dataset)
    scenes = [open_scene(t, g, config) for t, g in find_scenes(config.train)]
    stats = compute_stats([s.path for s in scenes])

    def draw() -> list[np.ndarray]:
        data = DetectionSamples([SceneWindows(scenes, 128)], stats, 128, 2, train=True, samples_per_epoch=3)
        return [data[i]["image"].numpy() for i in (0, 1, 0)]

    first, again = draw(), draw()
    assert not np.array_equal(first[0], first[1]) and not np.array_equal(first[0], first[2])
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_missing_data_folder_is_an_input_error(tmp_path):
    path = write_dataset_yaml(tmp_path, train="nowhere")
    config = load_dataset_config(path)
    with pytest.raises(InputError, match="data folder not found"):
        find_scenes(config.train)


@pytest.mark.parametrize("option,message", [
    ({"chip_size": 0}, "chip_size must be a positive multiple of 32, got 0"),
    ({"val_chip_size": -64}, "val_chip_size must be a positive multiple of 32, got -64"),
    ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
    ({"samples_per_epoch": 0}, "samples_per_epoch must be at least 1, got 0"),
    ({"num_workers": -1}, "num_workers must be at least 0, got -1"),
])
def test_data_options_that_would_fail_inside_the_loaders_or_train_nothing_are_one_line_errors(option, message):
    """Before: OpenCV, torch's sampler and DataLoader raised from deep inside (tracebacks); no chips per epoch
    ran a fit of no steps that exited 0."""
    from train.data.datamodule import SiteDataModule

    with pytest.raises(InputError, match=message) as error:
        SiteDataModule(str(Path(__file__).parents[2] / "datasets" / "synthetic.yaml"), **option)
    assert "\n" not in str(error.value)


def _truncated_scene(tiny_dataset: Path, folder: Path) -> Path:
    """A copy of a training scene whose file stops a third of the way in, with its labels beside it."""
    tif, labels = find_scenes(load_dataset_config(tiny_dataset).train)[0]
    folder.mkdir(parents=True, exist_ok=True)
    cut = folder / "cut.tif"
    cut.write_bytes(tif.read_bytes()[: tif.stat().st_size // 3])
    (folder / "cut.geojson").write_text(labels.read_text())
    return cut


def test_a_truncated_training_scene_is_named_in_one_line_by_every_reader(tiny_dataset, tmp_path):
    cut = _truncated_scene(tiny_dataset, tmp_path / "train")
    with pytest.raises(InputError, match=r"^cut.tif is damaged or truncated: ") as error:
        compute_stats([cut])
    assert "\n" not in str(error.value)
    config = load_dataset_config(write_dataset_yaml(tmp_path, train="train", val="train"))
    windows = SceneWindows([open_scene(cut, cut.with_suffix(".geojson"), config)], 256)
    with pytest.raises(InputError, match=r"^cut.tif is damaged or truncated near pixel \(\d+, \d+\): ") as error:
        for key in windows.grid():
            windows.read(*key)
    assert "\n" not in str(error.value)


def test_a_truncated_scene_read_in_a_loader_worker_stops_the_fit_in_one_line(tiny_dataset, tmp_path):
    """The chips are read in DataLoader worker processes, which raise the error again in the main process
    with the worker's traceback in its text: the command still says one line, the scene's."""
    _truncated_scene(tiny_dataset, tmp_path / "train")
    dataset = write_dataset_yaml(tmp_path, train="train", val="train",
                                 normalization={"mean": [100, 100, 100], "std": [50, 50, 50]})
    result = run_cli("train", "fit", "--config", "train/configs/quick.yaml", "--data.dataset", str(dataset),
                     "--data.num_workers", "1", "--trainer.fast_dev_run", "20")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: cut.tif is damaged or truncated near pixel (")
    assert "Traceback" not in result.stderr


def test_an_rgba_training_scene_is_read_as_infer_run_reads_it(tmp_path, tiny_dataset):
    """The colour bands are the image; the transparent pixels are not valid (and count in no statistic), as the
    scene's own no-data value would be."""
    import rasterio

    config = load_dataset_config(tiny_dataset)
    tif, labels = find_scenes(config.train)[0]
    with rasterio.open(tif) as src:
        pixels, profile = src.read(), src.profile
    alpha = np.full((1, *pixels.shape[1:]), 255, np.uint8)
    alpha[:, :, 256:] = 0  # the right half transparent, its colours left as they are
    profile.update(count=4, photometric="RGB", alpha="YES", nodata=None)
    rgba = tmp_path / "rgba.tif"
    with rasterio.open(rgba, "w", **profile) as dst:
        dst.write(np.concatenate([pixels, alpha]))
    scene = open_scene(rgba, labels, config)
    sample = SceneWindows([scene], chip_size=512).read(0, 0, 0)
    assert sample.image.shape == (3, 512, 512)
    assert sample.valid[:, :256].all() and not sample.valid[:, 256:].any()
    assert np.array_equal(sample.image, pixels.astype(np.float32))
    left = tmp_path / "left.tif"
    with rasterio.open(left, "w", **{**profile, "count": 3, "width": 256, "photometric": "RGB",
                                     "alpha": "UNSPECIFIED"}) as dst:
        dst.write(pixels[:, :, :256])
    assert compute_stats([rgba], 3) == compute_stats([left], 3)
    annotations = cut_chips(rgba, labels, tmp_path / "chips", config, size=256)
    chips = sorted((tmp_path / "chips" / "images").glob("*.tif"))
    assert annotations.exists() and len(chips) == 2  # the transparent half gives no chip
    with rasterio.open(chips[0]) as chip:
        assert chip.count == 3 and chip.dataset_mask().all()


def test_a_near_infrared_band_gdal_calls_alpha_is_data_in_training(tmp_path):
    """An 8-bit red, green, blue, near-infrared scene written with GDAL's defaults (its fourth band flagged alpha)
    for a four-band dataset: every pixel is valid, its NIR zeros included, in chips, statistics and `train
    chips`, whose chips keep the band as data."""
    import rasterio

    synth_main(["--out", str(tmp_path), "--size", "512", "--seed", "5", "--bands", "rgbn", "--quiet"])
    with rasterio.open(tmp_path / "scene_000.tif") as src:
        pixels, profile = src.read(), src.profile
    pixels[3, 300:, 300:] = 0  # water: no near-infrared
    profile.pop("photometric", None)
    profile.update(nodata=None)
    defaults = tmp_path / "defaults.tif"
    with rasterio.open(defaults, "w", **profile) as dst:
        dst.write(pixels)
    with rasterio.open(defaults) as src:
        assert src.colorinterp[3] == rasterio.enums.ColorInterp.alpha
    config = load_dataset_config(write_dataset_yaml(tmp_path, train=".", val=".",
                                                    bands=["red", "green", "blue", "nir"]))
    sample = SceneWindows([open_scene(defaults, tmp_path / "scene_000.geojson", config)], chip_size=512).read(0, 0, 0)
    assert sample.valid.all() and np.array_equal(sample.image, pixels.astype(np.float32))
    stats = compute_stats([defaults], 4)
    assert stats.mean == pytest.approx(tuple(pixels.reshape(4, -1).mean(axis=1)), rel=1e-4)
    cut_chips(defaults, tmp_path / "scene_000.geojson", tmp_path / "chips", config, size=256)
    chips = sorted((tmp_path / "chips" / "images").glob("*.tif"))
    assert len(chips) == 4
    for chip in chips:
        with rasterio.open(chip) as src:
            assert src.colorinterp[3] != rasterio.enums.ColorInterp.alpha and src.dataset_mask().all()


def test_a_chips_valid_pixels_are_gdals_mask_of_the_scene(tmp_path, tiny_dataset):
    """However it is found (from band 1 already read, or GDAL's mask band), a chip's validity is GDAL's mask:
    what `infer run` reads."""
    import rasterio

    synth_main(["--out", str(tmp_path), "--size", "512", "--seed", "5", "--nodata-border", "--quiet"])
    scene = open_scene(tmp_path / "scene_000.tif", tmp_path / "scene_000.geojson", load_dataset_config(tiny_dataset))
    sample = SceneWindows([scene], chip_size=512).read(0, 0, 0)
    with rasterio.open(tmp_path / "scene_000.tif") as src:
        expected = src.read_masks(1) > 0
    assert 0 < expected.sum() < expected.size and np.array_equal(sample.valid, expected)
