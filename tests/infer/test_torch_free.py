"""`infer` is the torch-free runtime: it must import and answer where torch cannot be imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

BLOCK_TORCH = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'torch' or name.startswith('torch.'):\n"
    "            raise ModuleNotFoundError('torch is blocked in this test')\n"
    "sys.meta_path.insert(0, Block())\n"
)


def _run(code: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True,
                          timeout=timeout)


def test_every_runtime_and_generator_module_imports_without_torch():
    code = (
        "import importlib, pkgutil, infer, synth\n"
        "names = [m.name for p in (infer, synth) for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "assert 'torch' not in sys.modules and len(names) > 30, names\n"
        "print('ok')\n"
    )
    result = _run(code)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_the_blocker_really_blocks_torch():
    result = _run("import torch\n")
    assert result.returncode != 0 and "torch is blocked" in result.stderr


def test_infer_cli_answers_without_torch():
    code = "import runpy; sys.argv = ['infer', 'run', '--help']; runpy.run_module('infer', run_name='__main__')\n"
    result = _run(code)
    assert "--shard" in result.stdout, result.stderr[-2000:]


def _pytest_without_torch(paths: list[str], ignore: list[str]) -> str:
    """Run pytest on `paths` with torch blocked; its summary line, asserted a pass."""
    args = ["-q", "-p", "no:cacheprovider", "-p", "no:warnings", *paths] + [a for i in ignore for a in ("--ignore", i)]
    result = _run(f"import pytest\nsys.exit(pytest.main({args!r}))\n", timeout=900)
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0 and " passed" in summary, result.stdout[-2000:] + result.stderr[-2000:]
    assert "error" not in summary, summary
    return summary


def test_every_command_runs_end_to_end_without_torch():
    """`infer run` (itself and through `track --model`, which `diff --model` shares), `track`, `diff`,
    `report` and `parquet`, each run for real with torch blocked: no lazy import reaches torch."""
    summary = _pytest_without_torch(["tests/infer/test_track.py", "tests/infer/test_parquet.py"], [])
    assert int(summary.split(" passed")[0].split()[-1]) > 18, summary


@pytest.mark.slow  # every runtime test again (about 3.5 minutes on 2 cores): run by `make test-all`
def test_the_runtime_tests_pass_without_torch():
    """An inference node (`pip install .[dev]`, no torch) can test itself: `pytest tests/infer` passes, the
    oracle model built with onnx; only the tests that export a network from torch are skipped."""
    summary = _pytest_without_torch(["tests/infer"], ["tests/infer/test_torch_free.py"])
    assert int(summary.split(" passed")[0].split()[-1]) > 80, summary
