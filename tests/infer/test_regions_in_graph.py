"""A graph that decodes its regions itself gives what the host decodes from its float masks, byte for byte."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import pytest

from bench.free_model import write_free_model
from infer.contract.ingraph import decoding_regions
from infer.contract.schema import DECODED_REGION_OUTPUTS, ModelInfo, RegionDecode
from infer.errors import InputError, UsageError
from infer.runtime.model import OnnxModel
from infer.runtime.options import RunOptions
from infer.runtime.pipeline import process_scene
from infer.runtime.stitch import core_class_map
from infer.runtime.tiling import Tile
from synth.cli import main as synth
from tests.helpers import FOUR_CLASS_INFOS

INFO = ModelInfo(FOUR_CLASS_INFOS, ("red", "green", "blue"), (121.5, 109.25, 88.0), (19.5, 24.75, 31.0), 0.5,
                 512, 128, stride=2, dtype="uint8", graph_input="raw")


def decoding(closing_m: float, threshold: float = 0.5) -> ModelInfo:
    return replace(INFO, region_decode=RegionDecode(threshold, closing_m))


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A scene with an irregular no-data edge, so the graph's `valid` input and the closing near it count."""
    folder = tmp_path_factory.mktemp("scene")
    synth(["--out", str(folder), "--size", "1280", "--seed", "5", "--nodata-border", "--quiet"])
    return folder / "scene_000.tif"


def blocky_pixels(seed: int, shape=(2, 3, 512, 512)) -> np.ndarray:
    """Pixels in 32 px squares of random brightness: the free model finds region blobs in them."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(110, 60, (*shape[:2], shape[2] // 32, shape[3] // 32))
    return np.repeat(np.repeat(coarse, 32, axis=2), 32, axis=3).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize(("closing_m", "threshold"), [(2.0, 0.5), (0.0, 0.5), (6.3, 0.35)])
def test_the_graph_decides_each_pixel_as_the_host_does(tmp_path, closing_m, threshold):
    host = OnnxModel(write_free_model(INFO, tmp_path / "host.onnx"), threads=1)
    graph = OnnxModel(write_free_model(decoding(closing_m, threshold), tmp_path / "graph.onnx"), threads=1)
    pixels = blocky_pixels(int(closing_m * 10))
    valid = np.ones((2, 512, 512), bool)
    valid[1, 100:420, 290:] = False  # a hole, with region pixels on both sides
    floats, decoded = host.run(host.prepare(pixels)), graph.run(graph.prepare(pixels), valid)
    assert decoded.mask is None and decoded.region_class.dtype == np.uint8
    whole = Tile(0, 0, 512, 512, (0, 0, 512, 512))
    for i in range(2):
        mask = np.where(valid[i], floats.mask[i], np.float32(0.0))
        classes, scores = core_class_map(mask, whole, threshold, closing_m / INFO.gsd_m, valid[i])
        assert (classes == 1).sum() > 5000 and (classes == 2).sum() > 5000  # both classes are decided
        np.testing.assert_array_equal(decoded.region_class[i], classes)
        np.testing.assert_array_equal(decoded.region_score[i], scores)
    assert not decoded.region_class[1][~valid[1]].any()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_run_with_regions_decoded_in_the_graph_writes_the_same_bytes(scene, tmp_path, workers):
    outputs = {}
    for form, info in (("host", INFO), ("graph", decoding(2.0))):
        model = OnnxModel(write_free_model(info, tmp_path / f"{form}.onnx"), threads=1)
        out = tmp_path / form
        out.mkdir()
        summary = process_scene(model, scene, out, RunOptions(progress=False, workers=workers))
        outputs[form] = {p.name: p.read_bytes() for p in out.iterdir()}
        counts = summary["counts"]
    assert counts["earth_berm"] >= 3 and counts["cleared_site"] >= 20  # the comparison means something
    assert sorted(outputs["host"]) == sorted(outputs["graph"])
    for name, data in outputs["host"].items():
        assert data == outputs["graph"][name], name


def test_a_decoding_graph_refuses_other_decoding_at_run_time():
    info = decoding(2.0)
    assert RunOptions().resolve(info).closing_px == 4.0
    assert RunOptions(region_closing_m=2.0, mask_threshold=0.5).resolve(info).mask_threshold == 0.5
    with pytest.raises(UsageError, match="--region-closing 3 m: this model decodes its regions in its graph at 2 m"):
        RunOptions(region_closing_m=3.0).resolve(info)
    with pytest.raises(UsageError, match="mask threshold 0.4: .* at 0.5"):
        RunOptions(mask_threshold=0.4).resolve(info)
    assert RunOptions().resolve(decoding(6.0)).closing_px == 12.0  # the graph's radius is the default


def test_metadata_and_graph_must_agree(tmp_path):
    decoded = write_free_model(decoding(2.0), tmp_path / "graph.onnx")
    model = OnnxModel(decoded)
    assert [o.name for o in model._session.get_outputs()][-2:] == list(DECODED_REGION_OUTPUTS)
    assert model.info.region_decode == RegionDecode(0.5, 2.0)  # read back from the metadata
    proto = onnx.load(decoded)
    onnx.helper.set_model_props(proto, INFO.to_metadata())  # says: returns masks, takes one input
    onnx.save(proto, tmp_path / "lying.onnx")
    with pytest.raises(InputError, match="expected 1 input.* and outputs .*'mask'"):
        OnnxModel(tmp_path / "lying.onnx")
    with pytest.raises(ValueError, match="valid must have shape"):
        model.run(np.zeros((1, 3, 64, 64), np.uint8), np.ones((1, 32, 64), bool))


def test_region_decode_needs_region_classes_and_sane_values():
    objects_only = tuple(c for c in FOUR_CLASS_INFOS if c.kind == "object")
    with pytest.raises(ValueError, match="region_decode needs region classes"):
        replace(INFO, classes=objects_only, region_decode=RegionDecode(0.5, 2.0))
    with pytest.raises(ValueError, match="threshold must lie in"):
        decoding(2.0, threshold=float("nan"))
    with pytest.raises(ValueError, match="closing_m must be a finite number"):
        decoding(float("inf"))
    with pytest.raises(ValueError, match="needs a ModelInfo with region_decode"):
        decoding_regions(onnx.ModelProto(), INFO)
