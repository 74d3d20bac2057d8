"""Describe the machine a benchmark ran on, for the results files."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import sys
from pathlib import Path


def _module_name(script: str) -> str:
    """`/repo/bench/synth_scale.py` → `bench.synth_scale`, as the user would type it."""
    parts = list(Path(script).with_suffix("").parts)
    return ".".join(parts[parts.index("bench"):]) if "bench" in parts else script


def describe() -> dict:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(next(line.split()[1] for line in f if line.startswith("MemTotal")))
    except (OSError, StopIteration):
        mem_kb = 0
    record = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "python": sys.version.split()[0],
        "command": "python -m " + shlex.join([_module_name(sys.argv[0]), *sys.argv[1:]]),
    }
    gpu = _gpu()
    if gpu:
        record["gpu"] = gpu
    return record


def _gpu() -> str | None:
    """The CUDA device's name where a benchmark has already imported torch and one is present."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    return f"{torch.cuda.get_device_name()} (torch {torch.__version__}, CUDA {torch.version.cuda})"
