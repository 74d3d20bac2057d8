"""Real Lightning training: a few steps, overfitting one chip, 2-process DDP, checkpoints, CLI errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from infer.runtime.model import OnnxModel
from tests.helpers import run_cli
from tests.train.conftest import write_dataset_yaml
from train.data.config import load_dataset_config
from train.data.normalization import compute_stats
from train.data.samples import DetectionSamples, collate
from train.data.scenes import SceneWindows, find_scenes, open_scene
from train.export import export_checkpoint
from train.losses import DetectionLoss
from train.metrics import DetectionMetrics
from train.model.detector import SiteDetector

FAST = ["--model.backbone", "resnet18", "--model.fpn_channels", "32", "--model.head_channels", "32",
        "--data.chip_size", "128", "--data.val_chip_size", "128", "--data.batch_size", "2", "--data.num_workers", "0",
        "--trainer.accelerator", "cpu", "--trainer.enable_model_summary", "false",
        "--trainer.enable_progress_bar", "false", "--trainer.logger", "false"]


def _fit_args(dataset: Path, root: Path, steps: int = 3) -> list[str]:
    return ["fit", "--data.dataset", str(dataset), *FAST, "--trainer.max_steps", str(steps),
            "--trainer.limit_val_batches", "2", "--data.samples_per_epoch", str(2 * steps),
            "--trainer.default_root_dir", str(root)]


def test_fit_writes_a_checkpoint_that_describes_its_model(tiny_dataset, tmp_path):
    result = run_cli("train", *_fit_args(tiny_dataset, tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    ckpts = list(tmp_path.rglob("*.ckpt"))
    assert ckpts
    checkpoint = torch.load(ckpts[0], map_location="cpu", weights_only=False)
    info = checkpoint["sitewatch"]
    assert [c["name"] for c in info["classes"]] == ["storehouse", "truck", "earth_berm", "cleared_site"]
    assert info["bands"] == ["red", "green", "blue"] and info["gsd_m"] == 0.5 and info["chip_size"] == 128
    assert len(info["normalization"]["mean"]) == 3 and info["normalization"]["scale"] > 1
    assert checkpoint["hyper_parameters"]["fpn_channels"] == 32
    assert checkpoint["global_step"] == 3


@pytest.mark.slow  # about 20 s of fitting on 2 cores: run by `make test-all`
def test_resume_from_checkpoint_continues_the_step_count(tiny_dataset, tmp_path):
    assert run_cli("train", *_fit_args(tiny_dataset, tmp_path / "a", steps=2)).returncode == 0
    ckpt = next((tmp_path / "a").rglob("*.ckpt"))
    first = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert first["sitewatch"]["train_seconds"] > 0
    first["sitewatch"]["train_seconds"] = 10_000.0  # as if the first run had taken hours
    torch.save(first, ckpt)
    result = run_cli("train", *_fit_args(tiny_dataset, tmp_path / "b", steps=4), "--ckpt_path", str(ckpt))
    assert result.returncode == 0, result.stderr[-2000:]
    resumed = torch.load(next((tmp_path / "b").rglob("*.ckpt")), map_location="cpu", weights_only=False)
    assert resumed["global_step"] == 4
    # The resumed run's training time is the first run's plus its own few seconds.
    assert 10_000.0 < resumed["sitewatch"]["train_seconds"] < 10_600.0


def test_recipe_keeps_the_best_and_the_latest_epoch(tiny_dataset, tmp_path):
    """`last.ckpt` of a shipped recipe is the final epoch, whatever the best was, so `--ckpt_path` resumes there."""
    config = Path(__file__).parents[2] / "train" / "configs" / "quick.yaml"
    args = ["fit", "--config", str(config), "--data.dataset", str(tiny_dataset), *FAST[:-2],
            "--trainer.max_epochs", "3", "--data.samples_per_epoch", "2", "--trainer.limit_val_batches", "1"]
    result = run_cli("train", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    folder = tmp_path / "runs" / "quick" / "checkpoints"
    last = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=False)
    best = torch.load(folder / "best.ckpt", map_location="cpu", weights_only=False)
    assert (last["epoch"], last["global_step"]) == (2, 3)
    with open(next((tmp_path / "runs" / "quick" / "csv").rglob("metrics.csv")), newline="") as f:
        scores = [float(row["val/map_50"]) for row in csv.DictReader(f) if row.get("val/map_50")]
    assert len(scores) == 3
    assert best["epoch"] == scores.index(max(scores))  # the first epoch with the highest validation mAP@0.5


@pytest.mark.slow  # about 20 s of fitting on 2 cores: run by `make test-all`
def test_fine_tuning_at_stride_2_starts_from_an_earlier_run_and_exports(tiny_dataset, tmp_path):
    assert run_cli("train", *_fit_args(tiny_dataset, tmp_path / "a", steps=2)).returncode == 0
    earlier = next((tmp_path / "a").rglob("*.ckpt"))
    result = run_cli("train", *_fit_args(tiny_dataset, tmp_path / "b", steps=1), "--model.object_stride", "2",
                     "--model.init_weights", str(earlier), "--model.region_pos_weight", "{earth_berm: 4}")
    assert result.returncode == 0, result.stderr[-2000:]
    # Everything but the new stride-2 conv block (weight, norm weight, norm bias) comes from the earlier run.
    model = SiteDetector(2, 2, fpn_channels=32, head_channels=32, object_stride=2)
    total = len(model.state_dict())
    assert f"init_weights: {total - 3} of {total} tensors from {earlier}" in result.stderr + result.stdout
    tuned = next((tmp_path / "b").rglob("*.ckpt"))
    hyper = torch.load(tuned, map_location="cpu", weights_only=False)["hyper_parameters"]
    assert hyper["object_stride"] == 2 and hyper["region_pos_weight"] == {"earth_berm": 4}
    export_checkpoint(tuned, tmp_path / "tuned.onnx")
    onnx_model = OnnxModel(tmp_path / "tuned.onnx", threads=1)
    assert onnx_model.info.stride == 2
    heatmap, box, mask = onnx_model.run(onnx_model.prepare(np.zeros((1, 3, 128, 128), np.uint8)))[:3]
    assert heatmap.shape == (1, 2, 64, 64) and box.shape == (1, 7, 64, 64) and mask.shape == (1, 2, 128, 128)


def test_a_fine_tune_with_all_but_the_region_head_frozen_changes_only_the_region_head(tiny_dataset, tmp_path):
    assert run_cli("train", *_fit_args(tiny_dataset, tmp_path / "a", steps=1)).returncode == 0
    earlier = next((tmp_path / "a").rglob("*.ckpt"))
    result = run_cli("train", *_fit_args(tiny_dataset, tmp_path / "b", steps=2), "--model.init_weights", str(earlier),
                     "--model.freeze", "[backbone, fpn, fusion, object_head]")
    assert result.returncode == 0, result.stderr[-2000:]
    before = torch.load(earlier, map_location="cpu", weights_only=True)["state_dict"]
    after = torch.load(next((tmp_path / "b").rglob("*.ckpt")), map_location="cpu", weights_only=True)["state_dict"]
    moved = {name for name in before if not torch.equal(before[name], after[name])}
    # The backbone's batch norms are in it: their running statistics would move in train mode.
    assert any("running_mean" in name for name in before if name.startswith("model.backbone."))
    assert moved and all(name.startswith("model.region_head.") for name in moved), sorted(moved)[:5]


@pytest.mark.slow  # about 20 s of fitting on 2 cores: run by `make test-all`
def test_two_process_cpu_ddp_fit(tiny_dataset, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = run_cli("train", *_fit_args(tiny_dataset, tmp_path, steps=2), "--trainer.strategy", "ddp",
                     "--trainer.devices", "2", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stderr + result.stdout
    assert list(tmp_path.rglob("*.ckpt"))


# The cases run one after another in one training process (`_in_one_process`): a process of its own for
# each cost about 6 s of imports. The ones that repeat a kind of check run in `make test-all` as well.
SLOW = pytest.mark.slow

BAD_CONFIGURATIONS = [
    (["--data.dataset", "no/such.yaml"], "not found"),
    pytest.param(["--model.lr", "fast"], "model.lr", marks=SLOW),
    pytest.param(["--trainer.max_stepz", "3"], "max_stepz", marks=SLOW),
    (["--model.init_weights", "no/such.ckpt"], "init_weights: checkpoint not found: no/such.ckpt"),
    (["--ckpt_path", "no/such.ckpt"], "--ckpt_path: checkpoint not found: no/such.ckpt"),
    (["--ckpt_path", "datasets/synthetic.yaml"], "--ckpt_path: datasets/synthetic.yaml is not a readable PyTorch "
                                                 "checkpoint"),
    pytest.param(["--model.object_stride", "8"], "object stride must be one of (2, 4), got 8", marks=SLOW),
    (["--model.backbone", "vgg"], "unknown backbone 'vgg'"),
    (["--model.freeze", "[backbone, wings]"], "freeze: unknown part wings (parts: backbone, fpn,"),
    pytest.param(["--model.freeze", "[backbone, fpn, fusion, object_head, region_head]"],
                 "freeze: that is the whole network, nothing would train", marks=SLOW),
    (["--model.region_pos_weight", "{truck: 4}"], "region_pos_weight: truck is an object class, not a region class"),
    pytest.param(["--model.region_pos_weight", "{earth_berm: 0}"], "region_pos_weight: weights must be positive",
                 marks=SLOW),
    (["--model.lr", ".nan"], "model: lr must be a finite number > 0, got nan"),
    pytest.param(["--model.mask_weight", ".inf"], "model: mask_weight must be a finite number >= 0, got inf",
                 marks=SLOW),
    (["--data.scale_jitter=-.inf"], "data: scale_jitter must be a finite number in [0, 1), got -inf"),
    (["--data.saturation", ".nan"], "data: saturation must be a finite number in [0, 1), got nan"),
    pytest.param(["--data.grey", "1.5"], "data: grey is a share of chips, a finite number in [0, 1], got 1.5",
                 marks=SLOW),
    (["--data.mosaic", ".nan"], "data: mosaic is a share of chips, a finite number in [0, 1], got nan"),
    pytest.param(["--data.brightness_contrast", "1.5"],
                 "data: brightness_contrast must be a finite number in [0, 1), got 1.5", marks=SLOW),
]

#: Runs `python -m train` on each argument list of argv[1] (JSON) in this one process, as its own process
#: would: whatever reaches file descriptor 2 (Python's stderr, logging, C libraries) is that case's stderr.
_CASES_DRIVER = """
import json, os, sys, tempfile
from train.__main__ import main
results = []
for args in json.loads(sys.argv[1]):
    sys.argv = ["train", *args]
    with tempfile.TemporaryFile() as caught:
        sys.stderr.flush()
        kept = os.dup(2)
        os.dup2(caught.fileno(), 2)
        try:
            try:
                code = main()
            except SystemExit as exc:
                code = exc.code
            except BaseException as exc:
                code = "raised " + type(exc).__name__
        finally:
            sys.stderr.flush()
            os.dup2(kept, 2)
            os.close(kept)
        caught.seek(0)
        results.append([code, caught.read().decode(errors="replace")])
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def bad_configurations_run(request, tiny_dataset, tmp_path_factory) -> dict[str, tuple[object, str]]:
    """Exit code and stderr of `train fit` on each case of this session's selection, run in one process."""
    wanted = [item.callspec.params["extra"] for item in request.session.items
              if item.originalname == "test_bad_configuration_is_one_line_and_nonzero"]
    root = tmp_path_factory.mktemp("bad_configurations")
    cases = [_fit_args(tiny_dataset, root / str(i)) + extra for i, extra in enumerate(wanted)]
    done = subprocess.run([sys.executable, "-c", _CASES_DRIVER, json.dumps(cases)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    return {json.dumps(extra): (code, err) for extra, (code, err) in zip(wanted, results, strict=True)}


@pytest.mark.parametrize("extra,needle", BAD_CONFIGURATIONS)
def test_bad_configuration_is_one_line_and_nonzero(bad_configurations_run, extra, needle):
    code, stderr = bad_configurations_run[json.dumps(extra)]
    assert code not in (0, None) and isinstance(code, int), (code, stderr[-1500:])
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in stderr, stderr[-1500:]


def test_labels_with_an_unknown_class_stop_training_with_one_line(tiny_dataset, tmp_path):
    import json
    import shutil

    bad = tmp_path / "data"
    shutil.copytree(tiny_dataset.parent, bad)
    labels = next((bad / "train").glob("*.geojson"))
    data = json.loads(labels.read_text())
    data["features"][0]["properties"]["class"] = "tank"
    labels.write_text(json.dumps(data))
    result = run_cli("train", *_fit_args(bad / tiny_dataset.name, tmp_path / "run"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "unknown class 'tank'" in result.stderr
    assert "Traceback" not in result.stderr


def test_overfitting_one_chip_reaches_map50_of_090(tiny_dataset):
    torch.manual_seed(0)
    config = load_dataset_config(tiny_dataset)
    scenes = [open_scene(t, g, config) for t, g in find_scenes(config.train)]
    windows = SceneWindows(scenes, chip_size=128)
    stats = compute_stats([s.path for s in scenes])
    data = DetectionSamples([windows], stats, 128, 2, train=False)
    busiest = max(range(len(data)), key=lambda i: len(data[i]["objects"]) + 10 * data[i]["mask"].any().item())
    batch = collate([data[busiest]])
    assert len(batch["objects"][0]) >= 2

    model = SiteDetector(2, 2, backbone="resnet18", fpn_channels=48, head_channels=48)
    loss_fn = DetectionLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(150):
        optimizer.zero_grad()
        loss = loss_fn(model.forward_train(batch["image"]), batch)["loss"]
        loss.backward()
        optimizer.step()
    model.eval()
    metrics = DetectionMetrics(["storehouse", "truck"], ["earth_berm", "cleared_site"])
    with torch.no_grad():
        metrics.update(*model(batch["image"]), batch["objects"], batch["mask"])
    result = metrics.compute()
    assert result["map_50"] >= 0.9, result
    assert np.isfinite(loss.item())


def test_a_chip_folder_that_lacks_an_image_stops_training_with_one_line(tiny_dataset, tmp_path):
    scene = next((tiny_dataset.parent / "train").glob("*.tif"))
    chips = tmp_path / "chips"
    made = run_cli("train", "chips", str(scene), str(scene.with_suffix(".geojson")), "--out", str(chips),
                   "--size", "128")
    assert made.returncode == 0, made.stderr
    gone = sorted((chips / "images").iterdir())[1]
    gone.unlink()
    dataset = write_dataset_yaml(tmp_path, train=str(chips), val=str(chips))
    result = run_cli("train", *_fit_args(dataset, tmp_path / "run"))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]  # after Lightning's own lines about the hardware
    assert last.startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    assert f"names 'images/{gone.name}', which is not a file" in last
