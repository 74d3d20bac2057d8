"""`infer` is the torch-free runtime: it must import and answer where torch cannot be imported."""

from __future__ import annotations

import subprocess
import sys

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


def test_the_runtime_tests_pass_without_torch():
    """An inference node (`pip install .[dev]`, no torch) can test itself: `pytest tests/infer` passes, the
    oracle model built with onnx; only the tests that export a network from torch are skipped."""
    code = ("import pytest\n"
            "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-p', 'no:warnings', 'tests/infer',\n"
            "                      '--ignore', 'tests/infer/test_torch_free.py']))\n")
    result = _run(code, timeout=900)
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0 and " passed" in summary, result.stdout[-2000:] + result.stderr[-2000:]
    assert "error" not in summary and int(summary.split(" passed")[0].split()[-1]) > 80, summary
