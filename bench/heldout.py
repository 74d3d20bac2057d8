"""The held-out scene benchmarks score models on: synthesized fresh from a seed no training or validation scene uses."""

from __future__ import annotations

from pathlib import Path

from synth.cli import main as synth

HELDOUT_SEED = 4242


def synth_heldout(folder: Path, size: int, seed: int = HELDOUT_SEED) -> tuple[Path, Path]:
    """Write the scene into `folder`; returns (GeoTIFF, truth GeoJSON)."""
    synth(["--out", str(folder), "--size", str(size), "--seed", str(seed), "--quiet"])
    return folder / "scene_000.tif", folder / "scene_000.geojson"
