"""`infer.runtime.model`: the exported file opened with ONNX Runtime, its metadata, and no torch at run time."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from infer.cli.console import run_command
from infer.contract.parity import compare_detections
from infer.contract.schema import METADATA_KEY, ClassInfo, ModelInfo
from infer.errors import InputError, UsageError
from infer.runtime.model import OnnxModel, default_engine_cache, select_providers

#: The four classes interleaved by kind: outputs must follow kind order, not list order.
INTERLEAVED_CLASSES = [
    {"name": "storehouse", "kind": "object", "color": "#ff4040", "directional": False},
    {"name": "earth_berm", "kind": "region", "color": "#00c8ff", "directional": False},
    {"name": "truck", "kind": "object", "color": "#ffdc00", "directional": True},
    {"name": "cleared_site", "kind": "region", "color": "#c850ff", "directional": False},
]
MEAN, STD = [120.0, 110.0, 90.0], [20.0, 25.0, 30.0]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    """A small random-weight network in the checkpoint layout of `SiteDetectionTask`, exported.

    No training here (tests/train/test_export.py exports a real fit); torch is
    needed only to make the file, so a torch-free install skips these tests.
    """
    torch = pytest.importorskip("torch")
    from train.export import export_checkpoint
    from train.model.detector import SiteDetector

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        net = SiteDetector(2, 2, in_channels=3, fpn_channels=16, head_channels=16)
        root = tmp_path_factory.mktemp("model")
        torch.save({"state_dict": {f"model.{k}": v for k, v in net.state_dict().items()},
                    "hyper_parameters": {"backbone": "resnet18", "fpn_channels": 16, "head_channels": 16},
                    "global_step": 7, "epoch": 0,
                    "sitewatch": {"dataset": "unit", "classes": INTERLEAVED_CLASSES, "bands": ["red", "green", "blue"],
                                  "gsd_m": 0.4, "chip_size": 128, "device": "cpu", "train_seconds": 1.0,
                                  "normalization": {"mean": MEAN, "std": STD, "scale": 255.0}}},
                   root / "unit.ckpt")
        export_checkpoint(root / "unit.ckpt", root / "unit.onnx")
    finally:
        torch.set_num_threads(previous)
    return root / "unit.onnx"


def test_info_describes_the_model(model_path):
    model = OnnxModel(model_path, threads=1)
    info = model.info
    assert model.providers == ["CPUExecutionProvider"] and model.input_name == "image"
    assert [c.name for c in info.object_classes] == ["storehouse", "truck"]  # dataset order within a kind
    assert [c.name for c in info.region_classes] == ["earth_berm", "cleared_site"]
    assert info.classes[2] == ClassInfo("truck", "object", "#ffdc00", True)
    assert info.bands == ("red", "green", "blue") and info.mean == tuple(MEAN) and info.std == tuple(STD)
    assert info.gsd_m == 0.4 and info.stride == 4 and info.scale == 255.0
    assert (info.tile, info.overlap) == (512, 192)  # 4 x 128 px chips; 70 m / 0.4 m = 175 -> 192
    assert info.provenance["steps"] == 7 and info.provenance["dataset"] == "unit"


def test_normalize_uses_the_metadata_statistics(model_path):
    model = OnnxModel(model_path, threads=1)
    pixels = np.random.default_rng(0).integers(0, 4000, (2, 3, 32, 64)).astype(np.uint16)
    expected = (pixels - np.array(MEAN)[:, None, None]) / np.array(STD)[:, None, None]
    out = model.normalize(pixels)
    assert out.dtype == np.float32 and out.shape == pixels.shape
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(model.normalize(pixels[0]), out[0])

    scene = pixels[0].astype(np.float32)
    scene[:, :4] = np.nan  # nodata as NaN
    valid = np.ones((32, 64), dtype=bool)
    valid[:4] = False
    masked = model.normalize(scene, valid)
    assert np.all(masked[:, :4] == 0) and np.isfinite(masked).all()
    np.testing.assert_allclose(masked[:, 4:], out[0, :, 4:])
    with pytest.raises(ValueError, match="C = 3"):
        model.normalize(pixels[:, :2])
    with pytest.raises(ValueError, match="valid"):
        model.normalize(scene, valid[:, :10])


def test_run_gives_the_documented_shapes(model_path):
    model = OnnxModel(model_path, threads=1)
    batch = model.prepare(np.full((2, 3, 64, 96), 100, dtype=np.uint8))
    heatmap, box, mask = model.run(batch)[:3]
    assert heatmap.shape == (2, 2, 16, 24) and box.shape == (2, 7, 16, 24) and mask.shape == (2, 2, 64, 96)
    assert all(a.dtype == np.float32 for a in (heatmap, box, mask))
    assert 0 <= heatmap.min() and heatmap.max() <= 1 and 0 <= mask.min() and mask.max() <= 1
    with pytest.raises(ValueError, match="multiples of 32"):
        model.run(batch[:, :, :50])
    with pytest.raises(ValueError, match="B, 3, H, W"):
        model.run(batch[:, :2])
    with pytest.raises(ValueError, match="float32 as `prepare` gives it, got float64"):
        model.run(batch.astype(np.float64))


def test_onnx_runtime_threads_sleep_between_operators_instead_of_spinning(model_path):
    """A spinning thread takes the core a scene's readers and decoding were to run on."""
    options = OnnxModel(model_path)._session.get_session_options()
    for key in ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning"):
        assert options.get_session_config_entry(key) == "0"


def test_io_binding_gives_the_outputs_of_a_plain_run(model_path):
    """The path a GPU session takes (inputs bound once, outputs allocated by the session and copied back),
    here bound to the CPU, against `InferenceSession.run`."""
    plain, bound = OnnxModel(model_path), OnnxModel(model_path, io_binding=True)
    assert (plain.io_binding, bound.io_binding) == (False, True)  # a CPU session runs plainly by default
    batch = plain.prepare(np.random.default_rng(3).integers(0, 255, (2, 3, 64, 96)).astype(np.uint8))
    expected, got = plain.run(batch), bound.run(batch)
    assert expected.heatmap is not None and expected.mask is not None
    for name in ("heatmap", "box", "mask"):
        assert getattr(got, name).shape == getattr(expected, name).shape
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))
    again = bound.run(batch[:1])  # a binding per run: another batch size takes new output shapes
    np.testing.assert_array_equal(again.heatmap, expected.heatmap[:1])


def test_tensorrt_engines_are_kept_in_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_engine_cache() == tmp_path / "sitewatch" / "tensorrt"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_engine_cache() == tmp_path / "home" / ".cache" / "sitewatch" / "tensorrt"


def test_provider_choice():
    everything = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    cached = ("TensorrtExecutionProvider", {"trt_engine_cache_enable": "True", "trt_engine_cache_path": "/engines"})
    assert select_providers("cuda", everything, Path("/engines")) == [cached, *everything[1:]]
    assert select_providers("cuda", everything[1:]) == everything[1:]
    assert select_providers("cpu", everything) == ["CPUExecutionProvider"]
    with pytest.raises(InputError, match="install onnxruntime-gpu or use --device cpu"):
        select_providers("cuda", ["AzureExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(UsageError, match="device must be one of cpu, cuda"):
        select_providers("gpu", everything)


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="this onnxruntime has CUDA")
def test_cuda_without_a_cuda_provider_is_one_line(model_path, capsys):
    assert run_command(lambda argv: OnnxModel(model_path, device="cuda") and 0, []) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["error: CUDA requested but onnxruntime has no CUDA provider; "
                     "install onnxruntime-gpu or use --device cpu"]


@pytest.mark.gpu
@pytest.mark.skipif("CUDAExecutionProvider" not in ort.get_available_providers(), reason="no CUDA provider")
def test_cuda_matches_cpu(model_path):
    gpu, cpu = OnnxModel(model_path, device="cuda"), OnnxModel(model_path)
    batch = cpu.prepare(np.random.default_rng(0).integers(0, 255, (1, 3, 128, 128)))
    assert gpu.providers[0] in ("TensorrtExecutionProvider", "CUDAExecutionProvider") and gpu.io_binding
    same = compare_detections([o[0] for o in cpu.run(batch)[:3]], [o[0] for o in gpu.run(batch)[:3]], margin=1e-3)
    assert same.identical, same


def test_files_that_are_not_sitewatch_models_are_one_line_errors(model_path, tmp_path):
    onnx = pytest.importorskip("onnx")
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    bare = onnx.load(model_path)
    del bare.metadata_props[:]
    onnx.save(bare, tmp_path / "bare.onnx")
    cases = [(tmp_path / "missing.onnx", "model file not found"), (text, "is not a loadable ONNX model"),
             (tmp_path / "bare.onnx", "no sitewatch metadata")]
    for path, needle in cases:
        with pytest.raises(InputError, match=needle) as error:
            OnnxModel(path)
        assert "\n" not in str(error.value)
    with pytest.raises(UsageError, match="threads"):
        OnnxModel(model_path, threads=0)


def test_metadata_round_trip_and_validation():
    info = ModelInfo(classes=(ClassInfo("a", "object", "#ff0000"), ClassInfo("b", "region", "#00ff00", min_area_m2=25)),
                     bands=("nir",), mean=(300.0,), std=(50.0,), gsd_m=0.3, tile=512, overlap=256,
                     version="9.9", provenance={"steps": 1})
    metadata = info.to_metadata()
    assert all(isinstance(v, str) for v in metadata.values())
    back = ModelInfo.from_metadata(metadata)
    assert back == info and back.provenance == {"steps": 1}
    record = json.loads(metadata[METADATA_KEY])
    broken = [{}, {METADATA_KEY: "{not json"}, {METADATA_KEY: json.dumps({**record, "format": 99})},
              {METADATA_KEY: json.dumps({**record, "std": [0.0]})},
              {METADATA_KEY: json.dumps({k: v for k, v in record.items() if k != "bands"})}]
    for case in broken:
        with pytest.raises(InputError) as error:
            ModelInfo.from_metadata(case)
        assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="overlap"):
        ModelInfo(info.classes, ("nir",), (0.0,), (1.0,), 0.3, tile=256, overlap=256)
    assert back.region_classes[0].min_area_m2 == 25
    # a model exported before classes had a smallest area reads as 0 (everything reported)
    old = {**record, "classes": [{k: v for k, v in c.items() if k != "min_area_m2"} for c in record["classes"]]}
    assert ModelInfo.from_metadata({METADATA_KEY: json.dumps(old)}).region_classes[0].min_area_m2 == 0
    region, thing = ClassInfo("b", "region", "#00ff00"), ClassInfo("a", "object", "#ff0000")
    for classes, message in (((replace(thing, min_area_m2=5), region), "min_area_m2 is for region"),
                             ((thing, replace(region, min_area_m2=float("nan"))), "finite number >= 0"),
                             ((replace(thing, color="red"), region), "color must be written #rrggbb, got 'red'")):
        with pytest.raises(ValueError, match=message):
            ModelInfo(classes, ("nir",), (0.0,), (1.0,), 0.3, tile=512, overlap=256)


def test_compare_detections_tells_shifts_from_borderline_flips():
    heatmap = np.zeros((1, 8, 8), np.float32)
    heatmap[0, 3, 4] = 0.9
    box = np.zeros((7, 8, 8), np.float32)
    box[4] = 1.0  # cos 2t: heading 0
    mask = np.full((1, 32, 32), 0.2, np.float32)
    mask[0, 0, 0] = 0.5004
    reference = [heatmap, box, mask]
    assert compare_detections(reference, reference).identical
    moved = box.copy()
    moved[0, 3, 4] = 0.5  # half a cell = 2 px to the right
    assert compare_detections(reference, [heatmap, moved, mask]).object_mismatches == 2
    flipped = mask.copy()
    flipped[0, 0, 0] = 0.4999
    assert compare_detections(reference, [heatmap, box, flipped]).pixel_mismatches == 1
    near = compare_detections(reference, [heatmap, box, flipped], margin=1e-3)
    assert near.identical and near.borderline == 1 and near.region_pixels == 1 and near.objects == 1
    turned = box.copy()
    turned[6] = -1.0  # the direction logit: the other end in front, heading pi
    assert compare_detections(reference, [heatmap, turned, mask]).object_mismatches == 2
    assert compare_detections(reference, [heatmap, turned, mask], min_iou=0.9).identical  # the same outline
    assert compare_detections(reference, [heatmap, moved, mask], min_iou=0.9).object_mismatches == 2
    assert compare_detections(reference, [heatmap, moved, mask], min_iou=0.3).identical


def test_runtime_imports_and_runs_without_torch(model_path):
    code = ("import sys; sys.modules['torch'] = None; sys.modules['onnx'] = None\n"
            "import numpy as np\n"
            "from infer.runtime.model import OnnxModel\n"
            "m = OnnxModel(sys.argv[1], threads=1)\n"
            "out = m.run(m.prepare(np.zeros((1, 3, 64, 64), np.uint8)))\n"
            "assert 'torch' not in {k for k, v in sys.modules.items() if v is not None}\n"
            "print([o.shape for o in out[:3]])\n")
    result = subprocess.run([sys.executable, "-c", code, str(model_path)], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(1, 2, 16, 16)" in result.stdout
