"""Real aerial imagery end to end: DeepForest's NEON tiles (PASCAL VOC tree boxes, PNG, no georeferencing).

import → train the reference recipe from random init on OSBS_029 → export → `infer run` on SOAP_061 →
`infer evaluate` against SOAP_061's own boxes. `make data-trees` fetches the tiles (`make test-all` does).
How well the model learns is the bench's business; this checks that real data goes through every step.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest
import yaml

from tests.helpers import run_cli

TREES = Path(__file__).parents[2] / "datasets" / "trees" / "voc"


@pytest.mark.slow  # about 2 minutes on 2 cores: run by `make test-all`, after `make data-trees`
def test_real_tree_tiles_import_train_export_run_and_evaluate(tmp_path):
    if not (TREES / "SOAP_061.png").is_file():
        pytest.skip("the DeepForest tiles are not here: make data-trees")
    source = tmp_path / "voc"
    source.mkdir()
    for name in ("OSBS_029.png", "OSBS_029.xml"):
        shutil.copy(TREES / name, source / name)
    dataset = tmp_path / "trees.yaml"
    dataset.write_text(yaml.safe_dump({"name": "trees", "bands": ["red", "green", "blue"], "gsd_m": 0.1,
                                       "classes": [{"name": "tree", "kind": "object", "color": "#30d030",
                                                    "oriented": False}],
                                       "train": "chips/train", "val": "chips/train"}))
    imported = run_cli("train", "import", "voc", str(source), "--dataset", str(dataset), "--out",
                       str(tmp_path / "chips"), "--val-fraction", "0")
    assert imported.returncode == 0, imported.stderr
    assert "train: 1 chips (61 tree)" in imported.stdout

    recipe = Path(__file__).parents[2] / "train" / "configs" / "synthetic.yaml"
    fit = run_cli("train", "fit", "--config", str(recipe), "--data.dataset", str(dataset), "--trainer.max_steps", "20",
                  "--data.samples_per_epoch", "40", "--data.batch_size", "2", "--data.num_workers", "0",
                  "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false",
                  "--trainer.default_root_dir", str(tmp_path / "run"), cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr[-2000:]
    assert "NotGeoreferencedWarning" not in fit.stderr
    model = tmp_path / "trees.onnx"
    export = run_cli("train", "export", str(tmp_path / "run" / "checkpoints" / "last.ckpt"), "--out", str(model))
    assert export.returncode == 0, export.stderr[-2000:]
    record = json.loads({p.key: p.value for p in onnx.load(model).metadata_props}["sitewatch"])
    assert [o.name for o in onnx.load(model).graph.output] == ["heatmap", "box"]
    assert record["overlap"] < 704  # from the largest tree, not a 60 m storehouse

    run = run_cli("infer", "run", str(model), str(TREES / "SOAP_061.png"), "--out", str(tmp_path / "out"),
                  "--score", "0.05", "--quiet")
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == ""
    assert not (tmp_path / "out" / "SOAP_061_mask.tif").exists()
    features = json.loads((tmp_path / "out" / "SOAP_061.geojson").read_text())["features"]
    assert all("heading_deg" not in f["properties"] for f in features)

    scored = run_cli("infer", "evaluate", str(tmp_path / "out" / "SOAP_061.geojson"), str(TREES / "SOAP_061.xml"),
                     "--scene", str(TREES / "SOAP_061.png"), "--class", "Alive=tree", "--class", "Dead=tree",
                     "--out", str(tmp_path / "eval.json"))
    assert scored.returncode == 0, scored.stderr
    report = json.loads((tmp_path / "eval.json").read_text())["classes"]
    assert set(report) == {"tree"} and report["tree"]["truth"] == 37
    assert 0.0 <= report["tree"]["ap@0.5"] <= 1.0
