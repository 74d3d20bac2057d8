"""`infer` is the torch-free runtime: it must import and answer where torch cannot be imported."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import run_cli
from tests.infer.oracle import plant, write_scene

BLOCK_TORCH = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'torch' or name.startswith('torch.'):\n"
    "            raise ModuleNotFoundError('torch is blocked in this test')\n"
    "sys.meta_path.insert(0, Block())\n"
)


@pytest.fixture(scope="module")
def without_torch(tmp_path_factory) -> dict[str, str]:
    """An environment in which no Python process can import torch: the blocker as a `sitecustomize` on
    PYTHONPATH, which every interpreter started with it runs first, the commands a test starts included."""
    folder = tmp_path_factory.mktemp("torch_blocked")
    (folder / "sitecustomize.py").write_text(BLOCK_TORCH)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(folder), os.environ.get("PYTHONPATH"))))}


def _run(code: str, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)


def test_every_runtime_and_generator_module_imports_without_torch(without_torch):
    code = (
        "import importlib, pkgutil, sys, infer, synth\n"
        "names = [m.name for p in (infer, synth) for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "assert 'torch' not in sys.modules and len(names) > 30, names\n"
        "print('ok')\n"
    )
    result = _run(code, without_torch)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_the_blocker_really_blocks_torch_in_a_command_a_command_starts(without_torch):
    code = "import subprocess, sys; sys.exit(subprocess.run([sys.executable, '-c', 'import torch']).returncode)\n"
    result = _run(code, without_torch)
    assert result.returncode != 0 and "torch is blocked" in result.stderr


def test_infer_cli_answers_without_torch(without_torch):
    result = run_cli("infer", "run", "--help", env=without_torch)
    assert "--shard" in result.stdout, result.stderr[-2000:]


def test_every_command_runs_end_to_end_without_torch(without_torch, oracle, tmp_path):
    """Each `infer` command run for real, as a user runs it, where torch cannot be imported: no lazy import
    reaches torch. (`diff --model` runs scenes through the code `track --model` does.)"""
    scenes = [str(write_scene(tmp_path / f"date{k}.tif", plant(512, 512, [(102, 102), (202, 302)][:k], [(300, 20, 312, 400)])))
              for k in (1, 2, 3)]
    run, track = tmp_path / "run", tmp_path / "track"
    commands = [
        ("run", str(oracle), *scenes[:2], "--out", str(run)),
        ("track", *scenes, "--model", str(oracle), "--out", str(track)),
        ("diff", str(run / "date1.geojson"), str(run / "date2.geojson"), "--out", str(tmp_path / "diff")),
        ("sites", str(run), "--out", str(tmp_path / "sites")),
        ("evaluate", str(run / "date2.geojson"), str(run / "date1.geojson"), "--scene", scenes[1]),
        ("report", str(run)),
        ("gpkg", str(run)),
        ("parquet", str(run)),
    ]
    for command in commands:
        result = run_cli("infer", *command, env=without_torch)
        assert result.returncode == 0 and "torch" not in result.stderr, (command[0], result.stderr[-2000:])
    assert (track / "timeline.json").exists() and sorted(p.name for p in (track / "runs").iterdir()) == [
        "1_date1", "2_date2", "3_date3"]


@pytest.mark.slow  # every runtime test again (about 3.5 minutes on 2 cores): run by `make test-all`
def test_the_runtime_tests_pass_without_torch(without_torch):
    """An inference node (`pip install .[dev]`, no torch) can test itself: `pytest tests/infer` passes, the
    oracle model built with onnx; only the tests that export a network from torch are skipped."""
    args = ["-q", "-p", "no:cacheprovider", "-p", "no:warnings", "tests/infer", "--ignore", "tests/infer/test_torch_free.py"]
    result = _run(f"import sys, pytest\nsys.exit(pytest.main({args!r}))\n", without_torch, timeout=900)
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0 and " passed" in summary and "error" not in summary, \
        result.stdout[-2000:] + result.stderr[-2000:]
    assert int(summary.split(" passed")[0].split()[-1]) > 80, summary
