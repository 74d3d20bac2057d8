"""The shell scripts a GPU visit runs: they parse, and the inference session keeps to its time budget."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script", sorted((ROOT / "bench").glob("*.sh")), ids=lambda p: p.name)
def test_script_parses(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_inference_session_skips_what_no_longer_fits(tmp_path: Path) -> None:
    """With 5 s of budget and no CUDA provider, the session names the steps it skips and writes nothing."""
    out = tmp_path / "out"
    env = {**os.environ, "SITE": "0", "PY": sys.executable, "BUDGET_S": "5", "OUT": str(out)}
    done = subprocess.run(["bash", "bench/gpu_infer_session.sh", "2048"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any("no CUDA provider" in line for line in lines)
    skipped = [line for line in lines if "skipped" in line]
    assert any("bench.pipeline_ceiling" in line for line in skipped), done.stdout
    assert "done" in lines[-1]
    assert not any(out.iterdir())
