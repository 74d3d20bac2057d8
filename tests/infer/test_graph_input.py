"""A graph that normalizes raw pixels itself gives what the host-normalized form of it gives, byte for byte."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import pytest

from bench.free_model import write_free_model
from infer.contract.ingraph import normalizing_input
from infer.contract.schema import ModelInfo
from infer.errors import InputError
from infer.runtime.model import OnnxModel
from infer.runtime.options import RunOptions
from infer.runtime.pipeline import process_scene
from synth.cli import main as synth
from tests.helpers import FOUR_CLASS_INFOS

#: Statistics far from 0 and 1, so a normalization done twice, skipped or done in another order shows.
INFO = ModelInfo(FOUR_CLASS_INFOS, ("red", "green", "blue"), (121.5, 109.25, 88.0), (19.5, 24.75, 31.0), 0.5,
                 512, 128, stride=2, dtype="uint8")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scene")
    synth(["--out", str(folder), "--size", "1024", "--seed", "3", "--quiet"])
    return folder / "scene_000.tif"


def test_a_raw_graph_writes_the_same_bytes_as_the_normalized_one(scene, tmp_path):
    outputs = {}
    for form in ("raw", "normalized"):
        model = OnnxModel(write_free_model(replace(INFO, graph_input=form), tmp_path / f"{form}.onnx"), threads=1)
        assert model.prepare(np.zeros((3, 32, 32), np.uint8)).dtype == (np.uint8 if form == "raw" else np.float32)
        out = tmp_path / form
        out.mkdir()
        summary = process_scene(model, scene, out, RunOptions(progress=False))
        outputs[form] = {p.name: p.read_bytes() for p in out.iterdir()}
        counts = summary["counts"]
    assert sum(counts.values()) > 20  # the free model finds things on this scene: the comparison means something
    assert sorted(outputs["raw"]) == sorted(outputs["normalized"])
    for name, data in outputs["raw"].items():
        assert data == outputs["normalized"][name], name


def test_the_graph_input_must_be_what_the_metadata_says(tmp_path):
    raw = write_free_model(replace(INFO, graph_input="raw"), tmp_path / "raw.onnx")
    proto = onnx.load(raw)
    onnx.helper.set_model_props(proto, replace(INFO, graph_input="normalized").to_metadata())
    onnx.save(proto, tmp_path / "lying.onnx")
    with pytest.raises(InputError, match="graph takes normalized float32 pixels, but its input is tensor.uint8."):
        OnnxModel(tmp_path / "lying.onnx")


def test_normalizing_input_wants_a_float_image_and_a_raw_record(tmp_path):
    proto = onnx.load(write_free_model(replace(INFO, graph_input="raw"), tmp_path / "raw.onnx"))
    with pytest.raises(ValueError, match="float32 input named 'image'"):
        normalizing_input(proto, replace(INFO, graph_input="raw"))  # already takes uint8
    with pytest.raises(ValueError, match="not 'normalized'"):
        normalizing_input(proto, INFO)
