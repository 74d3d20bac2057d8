"""Any mix of classes trains, exports and runs: objects only, regions only, one of each.

A kind without classes has no head, no graph output and nothing in the run's files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pyogrio
import pytest
import torch

from tests.helpers import FOUR_CLASSES, run_cli
from tests.train.conftest import write_dataset_yaml
from tests.train.test_training import FAST

MIXES = {
    "objects only": ["storehouse", "truck"],
    "regions only": ["cleared_site"],
    "one of each": ["truck", "earth_berm"],
}


def _subset(tiny_dataset: Path, root: Path, names: list[str]) -> Path:
    """The tiny dataset's scenes with labels of `names` alone, and its YAML listing only them."""
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        for tif in sorted((tiny_dataset.parent / split).glob("*.tif")):
            shutil.copy(tif, root / split / tif.name)
            labels = json.loads(tif.with_suffix(".geojson").read_text())
            labels["features"] = [f for f in labels["features"] if f["properties"]["class"] in names]
            (root / split / tif.with_suffix(".geojson").name).write_text(json.dumps(labels))
    return write_dataset_yaml(root, classes=[c for c in FOUR_CLASSES if c["name"] in names])


@pytest.mark.parametrize("mix", MIXES)
def test_a_mix_of_classes_trains_exports_and_runs(tiny_dataset, tmp_path, mix):
    names = MIXES[mix]
    dataset = _subset(tiny_dataset, tmp_path / "data", names)
    runs = tmp_path / "runs"
    fit = run_cli("train", "fit", "--data.dataset", str(dataset), *FAST, "--trainer.max_steps", "2",
                  "--trainer.limit_val_batches", "1", "--data.samples_per_epoch", "4",
                  "--trainer.default_root_dir", str(runs))
    assert fit.returncode == 0, fit.stderr[-2000:]
    checkpoint = next(runs.rglob("*.ckpt"))
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    objects = [n for n in names if n in ("storehouse", "truck")]
    regions = [n for n in names if n not in objects]
    assert any(k.startswith("model.object_head.") for k in state) == bool(objects)
    assert any(k.startswith("model.region_head.") for k in state) == bool(regions)

    model = tmp_path / "model.onnx"
    export = run_cli("train", "export", str(checkpoint), "--out", str(model))
    assert export.returncode == 0, export.stderr[-2000:]
    assert "passed" in export.stdout
    outputs = [o.name for o in onnx.load(model).graph.output]
    assert outputs == (["heatmap", "box"] if objects else []) + (["mask"] if regions else [])
    record = json.loads({p.key: p.value for p in onnx.load(model).metadata_props}["sitewatch"])
    assert [c["name"] for c in record["classes"]] == names

    scene = next((tmp_path / "data" / "val").glob("*.tif"))
    out = tmp_path / "out"
    run = run_cli("infer", "run", str(model), str(scene), "--out", str(out), "--score", "0.01")
    assert run.returncode == 0, run.stderr[-2000:]
    assert (out / f"{scene.stem}_mask.tif").exists() == bool(regions)
    header = json.loads((out / f"{scene.stem}.geojson").read_text())
    assert set(header["classes"]) == set(names)
    assert {f["properties"]["class"] for f in header["features"]} <= set(names)
    summary = json.loads((out / "summary.json").read_text())["scenes"][0]
    assert set(summary["counts"]) == set(names) and ("mask" in summary["outputs"]) == bool(regions)
    layers = [name for name, _ in pyogrio.list_layers(out / f"{scene.stem}.gpkg")]
    assert layers == (["objects"] if objects else []) + (["regions"] if regions else []) + ["layer_styles"]


def test_the_reference_recipe_serves_another_dataset_and_one_option_moves_its_outputs(tiny_dataset, tmp_path):
    """The recipe weighs earth berms, which this dataset lacks: said, not fatal; every output under the root."""
    dataset = _subset(tiny_dataset, tmp_path / "data", ["truck"])
    recipe = Path(__file__).parents[2] / "train" / "configs" / "synthetic.yaml"
    root = tmp_path / "elsewhere"
    (tmp_path / "cwd").mkdir()
    fit = run_cli("train", "fit", "--config", str(recipe), "--data.dataset", str(dataset), *FAST[:-2],
                  "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1", "--data.samples_per_epoch", "4",
                  "--trainer.default_root_dir", str(root), cwd=tmp_path / "cwd")
    assert fit.returncode == 0, fit.stderr[-2000:]
    assert "region_pos_weight: earth_berm is not a region class of this dataset" in fit.stdout + fit.stderr
    assert list((tmp_path / "cwd").iterdir()) == []
    assert {p.name for p in (root / "checkpoints").iterdir()} == {"best.ckpt", "last.ckpt"}
    assert next((root / "csv").rglob("metrics.csv")).is_file()
    assert any((root / "tensorboard").rglob("events.out.tfevents.*"))


def test_with_validation_off_the_best_checkpoint_is_left_out_without_warnings(tiny_dataset, tmp_path):
    recipe = Path(__file__).parents[2] / "train" / "configs" / "quick.yaml"
    fit = run_cli("train", "fit", "--config", str(recipe), "--data.dataset", str(tiny_dataset), *FAST[:-2],
                  "--trainer.max_steps", "2", "--trainer.limit_val_batches", "0", "--data.samples_per_epoch", "4",
                  "--trainer.default_root_dir", str(tmp_path / "run"))
    assert fit.returncode == 0, fit.stderr[-2000:]
    assert "validation is off (limit_val_batches 0): no best checkpoint" in fit.stdout + fit.stderr
    assert "ModelCheckpoint" not in fit.stderr
    assert {p.name for p in (tmp_path / "run" / "checkpoints").iterdir()} == {"last.ckpt"}
