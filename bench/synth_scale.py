"""Time and peak memory of the synthetic generator at growing scene sizes.

Each size runs in its own process so its peak RSS is its own.
`python -m bench.synth_scale --out bench/results [--sizes 2048 8000 20000]`
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.machine import describe

CHILD = """
import resource, sys, time
from synth.cli import main
t = time.perf_counter()
main(["--out", sys.argv[1], "--size", sys.argv[2], "--quiet", "--bands", sys.argv[3]])
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def measure(size: int, bands: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CHILD, tmp, str(size), bands], capture_output=True,
                             text=True, check=True)
        wall = time.perf_counter() - start
        seconds, max_rss_kb = out.stdout.strip().splitlines()[-1].split()
        tif = next(Path(tmp).glob("*.tif"))
        return {
            "size_px": size,
            "bands": bands,
            "megapixels": round(size * size / 1e6, 1),
            "seconds": round(float(seconds), 1),
            "wall_seconds": round(wall, 1),
            "mpx_per_s": round(size * size / 1e6 / float(seconds), 2),
            "peak_rss_mib": round(int(max_rss_kb) / 1024, 1),
            "file_mib": round(tif.stat().st_size / 2**20, 1),
        }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    p.add_argument("--sizes", type=int, nargs="+", default=[2048, 8000, 20000])
    p.add_argument("--bands", default="rgb")
    args = p.parse_args()
    rows = []
    for size in args.sizes:
        rows.append(measure(size, args.bands))
        print(json.dumps(rows[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "synth_scale", "machine": describe(), "results": rows}
    (args.out / "synth_scale.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
