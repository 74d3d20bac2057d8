"""Peak memory of `infer run` as scenes grow: it must not grow with the scene.

Each size runs in its own process, so its peak RSS is its own. `--free-like
MODEL` runs the near-free model with MODEL's interface (`bench.free_model`)
instead of a real one: the pipeline's own memory, quickly, at any size.
`--batches` runs each size at several `--batch` values: what ONNX Runtime's
memory grows by per tile of a batch (`--name infer_memory_batch` keeps it apart).
`python -m bench.infer_memory (--model checkpoints/demo.onnx | --free-like checkpoints/reference.onnx)
[--sizes 4096 8192 16384] [--workers N] [--batches 1 4 8] [--name NAME]` writes bench/results/NAME.json
(infer_memory.json unless named).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.free_model import write_free_model
from bench.machine import describe
from infer.runtime.model import OnnxModel

CHILD = """
import resource, sys, time
from infer.cli.console import run_command
from infer.cli.run import main
t = time.perf_counter()
code = run_command(main, [sys.argv[1], sys.argv[2], "--out", sys.argv[3], "--quiet", "--workers", sys.argv[4],
                          "--batch", sys.argv[5]])
print(code, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=Path("checkpoints/demo.onnx"))
    p.add_argument("--free-like", type=Path, help="run the free model with this exported model's interface")
    p.add_argument("--workers", type=int, default=1, help="decoding processes (default: 1)")
    p.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192, 16384])
    p.add_argument("--batches", type=int, nargs="+", default=[4], help="tiles per model call (default: 4)")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    p.add_argument("--name", default="infer_memory", help="result file stem")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = (write_free_model(OnnxModel(args.free_like).info, Path(tmp) / "free.onnx") if args.free_like
                 else args.model)
        for size in args.sizes:
            scene_dir = Path(tmp) / str(size)
            subprocess.run([sys.executable, "-m", "train", "synth", "--out", str(scene_dir), "--size", str(size),
                            "--seed", "8", "--quiet"], check=True, capture_output=True)
            for batch in args.batches:
                out = subprocess.run([sys.executable, "-c", CHILD, str(model), str(scene_dir / "scene_000.tif"),
                                      str(scene_dir / f"run_{batch}"), str(args.workers), str(batch)],
                                     capture_output=True, text=True, check=True)
                code, seconds, rss_kb = out.stdout.strip().splitlines()[-1].split()
                rows.append({"size_px": size, "batch": batch, "megapixels": round(size * size / 1e6, 1),
                             "exit_code": int(code), "seconds": round(float(seconds), 1),
                             "peak_rss_mib": round(int(rss_kb) / 1024, 1)})
                print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["peak_rss_mib"]
    described = f"free model like {args.free_like}" if args.free_like else str(args.model)
    result = {"benchmark": args.name, "machine": describe(), "model": described, "workers": args.workers,
              "results": rows}
    if len(args.batches) == 1:
        result["growth_vs_smallest"] = {r["size_px"]: round(r["peak_rss_mib"] / base, 3) for r in rows}
    else:  # per size, the peak's growth per tile of a batch, from the smallest batch to the largest
        first, last = min(args.batches), max(args.batches)
        result["mib_per_tile"] = {
            size: round((peak[last] - peak[first]) / (last - first), 1)
            for size in args.sizes
            for peak in [{r["batch"]: r["peak_rss_mib"] for r in rows if r["size_px"] == size}]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
