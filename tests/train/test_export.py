"""`python -m train export`: a real checkpoint → a plain, self-describing ONNX file that matches PyTorch."""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import time
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import rasterio
import torch

from infer.cli.console import run_command
from infer.contract.parity import DetectionComparison, compare_detections
from infer.contract.schema import ModelInfo, RegionDecode
from infer.errors import InputError
from infer.runtime.model import OnnxModel
from infer.runtime.options import RunOptions
from infer.runtime.pipeline import process_scene
from synth.cli import main as synth_main
from tests.helpers import run_cli
from train import export, quantize, slim
from train.export import default_overlap, default_tile, export_checkpoint, load_checkpoint, main
from train.task import load_matching_weights

FIT = ["--model.backbone", "resnet18", "--model.fpn_channels", "32", "--model.head_channels", "32",
       "--data.chip_size", "128", "--data.val_chip_size", "128", "--data.batch_size", "2",
       "--data.num_workers", "0", "--trainer.accelerator", "cpu", "--trainer.enable_model_summary", "false",
       "--trainer.enable_progress_bar", "false", "--trainer.logger", "false", "--trainer.max_steps", "3",
       "--trainer.limit_val_batches", "1", "--data.samples_per_epoch", "6"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")
REFERENCE = Path(__file__).parents[2] / "checkpoints" / "reference.ckpt"


@pytest.fixture(scope="module")
def exported(tiny_dataset, tmp_path_factory) -> SimpleNamespace:
    """A real 3-step fit on the tiny dataset, its checkpoint exported (fp32, default options)."""
    root = tmp_path_factory.mktemp("export")
    fit = run_cli("train", "fit", "--data.dataset", str(tiny_dataset), *FIT, "--trainer.default_root_dir",
                  str(root), env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert fit.returncode == 0, fit.stderr[-2000:]
    ckpt = next(root.rglob("*.ckpt"))
    report = export_checkpoint(ckpt, root / "model.onnx")
    return SimpleNamespace(ckpt=ckpt, path=root / "model.onnx", report=report, loaded=load_checkpoint(ckpt),
                           scene=tiny_dataset.parent / "val" / "scene_000.tif")


def _torch(model: torch.nn.Module, batch: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        return [t.numpy() for t in model(torch.from_numpy(batch))]


def test_graph_is_plain_onnx_with_dynamic_axes(exported):
    graph = onnx.load(exported.path)
    onnx.checker.check_model(graph, full_check=True)
    assert {node.domain for node in graph.graph.node} <= {"", "ai.onnx"}
    assert all(opset.domain in ("", "ai.onnx") for opset in graph.opset_import)
    assert [o.name for o in graph.graph.output] == ["heatmap", "box", "mask"]
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "", "height", "width"] and dims[1].dim_value == 3
    # the raster's own pixels go in; the graph normalizes them
    assert graph.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert OnnxModel(exported.path).info.graph_input == "raw"
    assert exported.report.parity.passed and exported.report.parity.detections.identical


@pytest.mark.parametrize("shape", [(1, 3, 128, 160), (2, 3, 256, 256)])
def test_onnxruntime_matches_pytorch_at_two_sizes(exported, shape):
    runtime = OnnxModel(exported.path, threads=1)
    pixels = np.random.default_rng(shape[-1]).integers(0, 256, shape, dtype=np.uint8)
    expected = _torch(exported.loaded.model, runtime.normalize(pixels))
    got = runtime.run(runtime.prepare(pixels))[:3]
    for name, want, have in zip(("heatmap", "box", "mask"), expected, got, strict=True):
        assert have.shape == want.shape, name
        np.testing.assert_allclose(have, want, atol=1e-4, rtol=0, err_msg=name)
    np.testing.assert_array_equal(got[0] > 0, expected[0] > 0)  # the same peaks, not just close values


def test_decoded_detections_identical_on_a_real_validation_chip(exported):
    runtime = OnnxModel(exported.path, threads=1)
    with rasterio.open(exported.scene) as src:
        pixels = src.read(window=((0, 256), (0, 256)))
    expected, got = _torch(exported.loaded.model, runtime.normalize(pixels[None])), runtime.run(pixels[None])[:3]
    # 0.3 is the runtime's default; a 3-step model rarely scores that high, so 0.05 too.
    for threshold in (0.3, 0.05):
        same = compare_detections([e[0] for e in expected], [g[0] for g in got], score_threshold=threshold,
                                  margin=1e-5)
        assert same.identical, same
        assert same.borderline <= 2, same  # only values within 1e-5 of a threshold may flip
    assert same.objects > 0 and same.region_pixels > 0  # the comparison was not of two empty sets


def test_metadata_round_trips_into_model_info(exported):
    sitewatch = torch.load(exported.ckpt, map_location="cpu", weights_only=True)["sitewatch"]
    info = OnnxModel(exported.path, threads=1).info
    assert [(c.name, c.kind, c.color, c.directional) for c in info.classes] == [
        (c["name"], c["kind"], c["color"], c["directional"]) for c in sitewatch["classes"]]
    assert [c.name for c in info.object_classes] == ["storehouse", "truck"]
    assert [c.name for c in info.region_classes] == ["earth_berm", "cleared_site"]
    assert info.bands == ("red", "green", "blue") and info.gsd_m == 0.5
    assert info.dtype == "uint8"  # scenes of another pixel type are refused at inference
    np.testing.assert_allclose(info.mean, sitewatch["normalization"]["mean"])
    np.testing.assert_allclose(info.std, sitewatch["normalization"]["std"])
    # 4 x 128 px chips; the overlap covers the longest training object, recorded in the checkpoint, + 10 m
    largest = sitewatch["largest_object_m"]
    assert 20 < largest < 60 and info.overlap == -(-math.ceil((largest + 10) / 0.5) // 32) * 32
    assert (info.tile, info.stride) == (512, 4)
    assert info.version == version("sitewatch")
    assert info.provenance["steps"] == 3 and info.provenance["backbone"] == "resnet18"
    assert info.provenance["dataset"] == "tiny" and info.provenance["precision"] == "fp32"
    assert info.provenance["train_seconds"] > 0
    assert info.provenance["checkpoint_sha256"] == hashlib.sha256(exported.ckpt.read_bytes()).hexdigest()
    props = {p.key: p.value for p in onnx.load(exported.path, load_external_data=False).metadata_props}
    assert ModelInfo.from_metadata(props) == info and "storehouse (object)" in props["sitewatch.classes"]
    pixels = np.full((3, 32, 32), 200, dtype=np.uint8)
    expected = (200 - np.asarray(info.mean)) / np.asarray(info.std)
    np.testing.assert_allclose(OnnxModel(exported.path).normalize(pixels)[:, 0, 0], expected, rtol=1e-6)


def test_fp16_export_is_within_its_tolerance(exported, tmp_path):
    out = tmp_path / "half.onnx"
    report = export_checkpoint(exported.ckpt, out, fp16=True)
    assert report.parity.passed and report.precision == "fp16"
    assert report.size_bytes < 0.6 * exported.report.size_bytes
    runtime = OnnxModel(out, threads=1)
    assert runtime.info.provenance["precision"] == "fp16"
    pixels = np.random.default_rng(1).integers(0, 256, (1, 3, 128, 160), dtype=np.uint8)
    expected, got = _torch(exported.loaded.model, runtime.normalize(pixels)), runtime.run(pixels)[:3]
    assert all(g.dtype == np.float32 for g in got)  # uint8 in, float32 out, float16 inside
    tolerance = export.TOLERANCE["fp16"]
    assert np.abs(got[1] - expected[1]).max() <= tolerance and np.abs(got[2] - expected[2]).max() <= tolerance
    peaks = (got[0] > 0) & (expected[0] > 0)
    assert peaks.sum() > 0.9 * (expected[0] > 0).sum()
    assert np.abs(got[0] - expected[0])[peaks].max() <= tolerance


def test_the_same_checkpoint_exported_again_alike_is_the_same_file(exported, tmp_path):
    """What `infer run` takes as the same model: a re-export must not differ by a time stamp."""
    first = export_checkpoint(exported.ckpt, tmp_path / "a.onnx", tile=256, overlap=64, check=False)
    time.sleep(1.1)  # a time of export to the second would differ now
    again = export_checkpoint(exported.ckpt, tmp_path / "b.onnx", tile=256, overlap=64, check=False)
    assert first.path.read_bytes() == again.path.read_bytes()


def test_cli_options_reach_the_metadata(exported, tmp_path, capsys):
    out = tmp_path / "sub" / "cli.onnx"
    code = run_command(main, [str(exported.ckpt), "--out", str(out), "--tile", "256", "--overlap", "64",
                              "--no-check"])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "parity check skipped" in printed
    info = OnnxModel(out).info
    assert (info.tile, info.overlap) == (256, 64)
    assert sorted(p.name for p in out.parent.iterdir()) == ["cli.onnx"]  # no temporary left behind


@pytest.mark.parametrize("peak_diff,box_diff,mismatches,passed", [
    (0.0, 1e-6, 0, True),  # a peak moved between tied neighbours: heatmap differs by a peak's height there
    (1e-3, 1e-6, 0, False),  # a common peak's value differs
    (0.0, 1e-3, 0, False),  # a box differs
    (0.0, 1e-6, 1, False),  # an object decoded differently
])
def test_fp32_parity_compares_the_heatmap_at_common_peaks(peak_diff, box_diff, mismatches, passed):
    report = export.ParityReport((1, 3, 256, 256), "fp32", {"heatmap": 9.2e-2, "box": box_diff, "mask": 1e-7},
                                 peak_diff, DetectionComparison(3, mismatches, 100, 0, 0))
    assert report.passed is passed
    assert "heatmap at common peaks" in report.summary()


def test_failed_parity_check_leaves_no_file(exported, tmp_path, monkeypatch):
    monkeypatch.setitem(export.TOLERANCE, "fp32", -1.0)  # nothing can pass
    with pytest.raises(InputError, match="file not written"):
        export_checkpoint(exported.ckpt, tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def _not_sitewatch(folder: Path) -> Path:
    torch.save({"state_dict": {}}, folder / "other.ckpt")
    return folder / "other.ckpt"


def _text(folder: Path) -> Path:
    (folder / "text.ckpt").write_text("not a checkpoint")
    return folder / "text.ckpt"


def _pickled(folder: Path) -> Path:
    """Hyperparameters saved as an `argparse.Namespace`, as older Lightning scripts did: a pickled object."""
    torch.save({"state_dict": {}, "hyper_parameters": argparse.Namespace(lr=0.1)}, folder / "pickled.ckpt")
    return folder / "pickled.ckpt"


@pytest.mark.parametrize("make_checkpoint,extra,code,needle", [
    (_pickled, [], 1, "(argparse.Namespace), not only weights and plain data; sitewatch loads weights only"),
    (lambda folder: folder / "missing.ckpt", [], 1, "checkpoint not found"),
    (_not_sitewatch, [], 1, "not a sitewatch checkpoint"),
    (_text, [], 1, "not a readable PyTorch checkpoint"),
    (lambda folder: folder / "missing.ckpt", ["--tile", "100"], 2, "multiple of 32"),
    (lambda folder: folder / "missing.ckpt", ["--opset", "99"], 2, "--opset"),
])
def test_bad_input_is_one_line_and_an_exit_code(tmp_path, capsys, make_checkpoint, extra, code, needle):
    checkpoint = make_checkpoint(tmp_path)
    out = tmp_path / "model.onnx"
    assert run_command(main, [str(checkpoint), "--out", str(out), *extra]) == code
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
    assert not out.exists()


@pytest.mark.parametrize("gsd_m,overlap", [(0.5, 160), (0.3, 256), (1.0, 96), (0.7, 128), (0.25, 288)])
def test_default_overlap_spans_70_m_in_multiples_of_32(gsd_m, overlap):
    assert default_overlap(gsd_m) == overlap
    assert overlap * gsd_m >= 70 and overlap % 32 == 0


@pytest.mark.parametrize("chip,overlap,tile", [(128, 160, 512), (256, 160, 1024), (512, 160, 1024),
                                               (None, 160, 1024), (96, 160, 384), (128, 288, 608)])
def test_default_tile_is_4_chips_capped_and_more_than_twice_the_overlap(chip, overlap, tile):
    assert default_tile(chip, overlap) == tile


def test_slim_checkpoint_exports_and_fine_tunes_like_the_full_one(exported, tmp_path, capsys):
    full = torch.load(exported.ckpt, map_location="cpu", weights_only=True)
    slim_path, half_path = tmp_path / "slim.ckpt", tmp_path / "half.ckpt"
    assert run_command(slim.main, [str(exported.ckpt), "--out", str(slim_path)]) == 0
    assert f"{slim_path}: " in capsys.readouterr().out
    slim.slim_checkpoint(exported.ckpt, half_path, half=True)
    kept = torch.load(slim_path, map_location="cpu", weights_only=True)
    assert "optimizer_states" in full and "optimizer_states" not in kept and "loops" not in kept
    assert kept["sitewatch"] == full["sitewatch"] and kept["hyper_parameters"] == full["hyper_parameters"]
    assert slim_path.stat().st_size < 0.5 * exported.ckpt.stat().st_size  # AdamW's two moments are gone
    assert half_path.stat().st_size < 0.6 * slim_path.stat().st_size

    rebuilt = load_checkpoint(slim_path).model.state_dict()
    for name, tensor in exported.loaded.model.state_dict().items():
        assert torch.equal(rebuilt[name], tensor), name
    halved = load_checkpoint(half_path).model
    batch = np.random.default_rng(2).standard_normal((1, 3, 128, 128), dtype=np.float32)
    expected, got = _torch(exported.loaded.model, batch), _torch(halved, batch)
    tolerance = export.TOLERANCE["fp16"]
    assert all(g.dtype == np.float32 for g in got)
    assert np.abs(got[1] - expected[1]).max() <= tolerance and np.abs(got[2] - expected[2]).max() <= tolerance
    peaks = (got[0] > 0) & (expected[0] > 0)  # the heatmap keeps only local maxima; near-ties may move a pixel
    assert peaks.sum() > 0.9 * (expected[0] > 0).sum()
    assert np.abs(got[0] - expected[0])[peaks].max() <= tolerance

    fresh = load_checkpoint(exported.ckpt).model
    for parameter in fresh.parameters():
        torch.nn.init.zeros_(parameter)
    assert load_matching_weights(fresh, str(half_path)) == len(fresh.state_dict())
    original = exported.loaded.model.state_dict()
    for name, tensor in fresh.state_dict().items():
        assert tensor.dtype == original[name].dtype, name
        torch.testing.assert_close(tensor, original[name], rtol=1e-3, atol=1e-6, msg=name)


@pytest.mark.parametrize("make_checkpoint,needle", [
    (lambda folder: folder / "missing.ckpt", "checkpoint not found"),
    (_not_sitewatch, "not a sitewatch checkpoint"),
    (_text, "not a readable PyTorch checkpoint"),
])
def test_slim_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, make_checkpoint, needle):
    checkpoint = make_checkpoint(tmp_path)
    out = tmp_path / "slim.ckpt"
    assert run_command(slim.main, [str(checkpoint), "--out", str(out)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
    assert not out.exists()


def test_slim_refuses_to_overwrite_its_source(exported, capsys):
    before = exported.ckpt.read_bytes()
    assert run_command(slim.main, [str(exported.ckpt), "--out", str(exported.ckpt)]) == 1
    assert "is the checkpoint itself" in capsys.readouterr().err
    assert exported.ckpt.read_bytes() == before


def test_the_smallest_region_reported_travels_into_the_model_and_can_be_set_at_export(exported, tmp_path, capsys):
    # the tiny dataset's classes give none: everything is reported
    assert [c.min_area_m2 for c in OnnxModel(exported.path).info.region_classes] == [0.0, 0.0]
    out = tmp_path / "model.onnx"
    assert run_command(main, [str(exported.ckpt), "--out", str(out), "--no-check", "--min-area",
                              "cleared_site=400"]) == 0
    assert [(c.name, c.min_area_m2) for c in OnnxModel(out).info.region_classes] == [("earth_berm", 0.0),
                                                                                       ("cleared_site", 400.0)]
    capsys.readouterr()
    assert run_command(main, [str(exported.ckpt), "--out", str(tmp_path / "bad.onnx"), "--min-area", "truck=4"]) == 2
    assert "truck is not a region class of this checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "bad.onnx").exists()


def test_regions_decoded_in_the_graph_pass_parity_and_run_as_the_host_decodes(exported, tmp_path, capsys):
    out = tmp_path / "decoding.onnx"
    assert run_command(main, [str(exported.ckpt), "--out", str(out), "--regions-in-graph", "--region-closing", "3"]) == 0
    assert "regions decoded in the graph as on the host" in capsys.readouterr().out
    model = OnnxModel(out, threads=1)
    assert model.info.region_decode == RegionDecode(0.5, 3.0)
    assert [i.name for i in model._session.get_inputs()] == ["image", "valid"]
    runs = {}
    for name, path in (("host", exported.path), ("graph", out)):
        folder = tmp_path / name
        folder.mkdir()
        summary = process_scene(OnnxModel(path, threads=1), exported.scene, folder,
                                RunOptions(progress=False, region_closing_m=3.0))
        runs[name] = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert sum(summary["counts"][c.name] for c in model.info.region_classes) > 0  # regions to compare
    assert runs["host"] == runs["graph"]


def test_a_graph_that_decodes_otherwise_than_its_record_fails_parity(exported, tmp_path, monkeypatch):
    real = export.decoding_regions
    monkeypatch.setattr(export, "decoding_regions", lambda proto, info: real(
        proto, replace(info, region_decode=RegionDecode(0.45, info.region_decode.closing_m))))
    with pytest.raises(InputError, match="regions decoded in the graph DIFFER from the host's in [0-9]+ pixels"):
        export_checkpoint(exported.ckpt, tmp_path / "model.onnx", regions_in_graph=True)
    assert list(tmp_path.iterdir()) == []


def test_int8_export_quantizes_every_convolution_but_the_heads_last(exported, tmp_path):
    out = tmp_path / "int8.onnx"
    report = export_checkpoint(exported.ckpt, out, int8=[exported.scene])
    assert report.precision == "int8" and report.parity.passed
    assert report.size_bytes < 0.4 * exported.report.size_bytes  # int8 weights: a quarter, plus scales
    graph = onnx.load(out).graph
    int8_weights = {t.name for t in graph.initializer if t.data_type == onnx.TensorProto.INT8}
    dequantized = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in int8_weights}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    float_convs = sorted(n.name for n in convs if n.input[1] not in dequantized)
    assert float_convs == quantize.head_convolutions(onnx.load(exported.path)) and len(float_convs) == 3
    assert len(convs) - len(float_convs) > 20
    model = OnnxModel(out, threads=1)
    assert model.info.provenance["precision"] == "int8"
    assert model.info.provenance["int8_calibration"]["files"] == [exported.scene.name]
    assert model.info.provenance["int8_calibration"]["tiles"] == 1  # a 512 px scene is one tile
    pixels, _ = export.parity_tile(model.info)
    got, want = model.run(pixels), OnnxModel(exported.path, threads=1).run(pixels)
    assert all(g.dtype == np.float32 for g in got[:3])
    assert np.abs(got.mask - want.mask).mean() < 0.02  # a 3-step network's heatmap is too flat to compare peaks
    summary = process_scene(model, exported.scene, tmp_path, RunOptions(progress=False))
    assert summary["counts"] and (tmp_path / summary["outputs"]["geojson"]).is_file()


def test_int8_reference_model_decides_as_pytorch_on_a_tile_it_was_not_calibrated_on(tmp_path):
    synth_main(["--out", str(tmp_path / "calibration"), "--size", "1024", "--seed", "5", "--quiet"])
    out = tmp_path / "int8.onnx"
    report = export_checkpoint(REFERENCE, out, int8=[tmp_path / "calibration" / "scene_000.tif"])
    assert report.parity.passed and report.parity.detections.objects >= 8
    network, runtime = load_checkpoint(REFERENCE).model, OnnxModel(out)
    for seed in (1, 2):  # the parity tile is seed 0's
        other = export.check_parity(network, runtime, "int8", seed=seed)
        decided = other.detections
        assert other.content and decided.objects >= 8 and decided.object_mismatches == 0, other.summary()
        assert decided.pixel_mismatches < 0.02 * decided.region_pixels, other.summary()


def test_head_convolutions_are_those_no_other_convolution_follows():
    tensor = onnx.helper.make_tensor_value_info
    nodes = [onnx.helper.make_node("Conv", ["x", "w"], ["a"], name="stem"),
             onnx.helper.make_node("Relu", ["a"], ["b"], name="relu"),
             onnx.helper.make_node("Conv", ["b", "w"], ["c"], name="logits"),
             onnx.helper.make_node("Sigmoid", ["c"], ["score"], name="sigmoid"),
             onnx.helper.make_node("Conv", ["b", "w"], ["size"], name="size")]
    graph = onnx.helper.make_graph(nodes, "g", [tensor("x", onnx.TensorProto.FLOAT, None)],
                                   [tensor(n, onnx.TensorProto.FLOAT, None) for n in ("score", "size")],
                                   [onnx.numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "w")])
    assert quantize.head_convolutions(onnx.helper.make_model(graph)) == ["logits", "size"]


@pytest.mark.parametrize("mismatches,pixels,passed", [(0, 0, True), (1, 40, True), (2, 40, False), (0, 60, False)])
def test_int8_parity_is_judged_by_the_share_of_decisions_that_differ(mismatches, pixels, passed):
    report = export.ParityReport((1, 3, 512, 512), "int8", {"heatmap": 0.03, "box": 2.2, "mask": 0.3}, 0.01,
                                 DetectionComparison(10, mismatches, 1000, pixels, 0))
    assert report.passed is passed
    assert ("within the allowance" in report.summary()) is (passed and bool(mismatches or pixels))


def _five_bands(folder: Path) -> Path:
    path = folder / "five.tif"
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=5, dtype="uint8") as dst:
        dst.write(np.full((5, 64, 64), 90, np.uint8))
    return path


def _no_data(folder: Path) -> Path:
    path = folder / "empty.tif"
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8", nodata=0) as dst:
        dst.write(np.zeros((3, 64, 64), np.uint8))
    return path


@pytest.mark.parametrize("make_scene,extra,code,needle", [
    (lambda folder: folder / "missing.tif", [], 1, "--int8: calibration scene not found: "),
    (_five_bands, [], 1, "--int8: calibration five.tif has 5 bands, the model expects 3"),
    (_no_data, [], 1, "--int8: no tile of the calibration scenes holds imagery"),
    (_five_bands, ["--fp16"], 2, "--fp16 and --int8 are two precisions: choose one"),
])
def test_int8_bad_calibration_is_one_line_and_writes_nothing(exported, tmp_path, capsys, make_scene, extra, code,
                                                             needle):
    out = tmp_path / "int8.onnx"
    scene = make_scene(tmp_path)
    assert run_command(main, [str(exported.ckpt), "--out", str(out), *extra, "--int8", str(scene)]) == code
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], lines
    assert not out.exists()
