"""Tiny synthetic datasets for the training tests, generated, never downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from synth.cli import main as synth_main
from tests.helpers import FOUR_CLASSES


def write_dataset_yaml(folder: Path, train: str = "train", val: str = "val", **overrides) -> Path:
    spec = {"name": "tiny", "classes": FOUR_CLASSES, "bands": ["red", "green", "blue"], "gsd_m": 0.5,
            "train": train, "val": val, **overrides}
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Two small training scenes and one validation scene; returns the dataset YAML."""
    root = tmp_path_factory.mktemp("tiny")
    synth_main(["--out", str(root / "train"), "--scenes", "2", "--size", "512", "--seed", "21", "--quiet"])
    synth_main(["--out", str(root / "val"), "--scenes", "1", "--size", "512", "--seed", "22", "--quiet"])
    return write_dataset_yaml(root)
