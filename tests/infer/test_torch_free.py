"""`infer` is the torch-free runtime: it must import and answer where torch cannot be imported."""

from __future__ import annotations

import subprocess
import sys

BLOCK_TORCH = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'torch' or name.startswith('torch.'):\n"
    "            raise ImportError('torch is blocked in this test')\n"
    "sys.meta_path.insert(0, Block())\n"
)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True, timeout=120)


def test_every_infer_module_imports_without_torch():
    code = (
        "import importlib, pkgutil, infer\n"
        "for m in pkgutil.iter_modules(infer.__path__):\n"
        "    importlib.import_module(f'infer.{m.name}')\n"
        "assert 'torch' not in sys.modules\n"
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
