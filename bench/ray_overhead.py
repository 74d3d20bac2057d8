"""What running a batch on Ray costs against a plain `infer run`, on the same scenes, side by side.

Generates N synthetic scenes, then times, alternately and each several times,
the two commands a user would type: `infer run MODEL SCENES --out A` and the
same with `--ray --ray-workers W --ray-cpus C` (a local cluster started by the
command itself, so its start-up counts). Each run writes every output into a
fresh folder; the two ways' outputs are compared byte for byte.

`python -m bench.ray_overhead [--model checkpoints/reference.onnx] [--scenes 8] [--size 2048] [--workers 2] [--runs 3]`
writes bench/results/ray_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ray

from bench.machine import describe
from synth.cli import main as synth


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and not p.name.startswith(("summary", "."))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=Path("checkpoints/reference.onnx"))
    p.add_argument("--scenes", type=int, default=8)
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--workers", type=int, default=2, help="Ray workers")
    p.add_argument("--cpus", type=int, default=1, help="CPUs per Ray worker")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        synth(["--out", str(tmp / "scenes"), "--scenes", str(args.scenes), "--size", str(args.size), "--seed", "31",
               "--quiet"])
        scenes = sorted(map(str, (tmp / "scenes").glob("*.tif")))
        base = [sys.executable, "-m", "infer", "run", str(args.model), *scenes, "--quiet"]
        ray_args = ["--ray-workers", str(args.workers), "--ray-cpus", str(args.cpus)]
        ray.init(num_cpus=args.workers * args.cpus, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)  # the running cluster that the "joined" way joins, as on a real one
        address = ray.get_runtime_context().gcs_address
        ways = {"plain": [], "ray": ["--ray", *ray_args], "ray_joined": ["--ray", address, *ray_args]}
        walls: dict[str, list[float]] = {w: [] for w in ways}
        last: dict[str, Path] = {}
        for run in range(args.runs):
            for way, extra in ways.items():  # alternating, so drifts of the machine hit both alike
                last[way] = tmp / f"{way}-{run}"
                walls[way].append(timed([*base, "--out", str(last[way]), *extra]))
                print(way, run, round(walls[way][-1], 2))
        ray.shutdown()
        identical = outputs(last["plain"]) == outputs(last["ray"]) == outputs(last["ray_joined"])
    megapixels = args.scenes * args.size * args.size / 1e6
    median = {w: statistics.median(v) for w, v in walls.items()}
    result = {
        "benchmark": "ray_overhead",
        "machine": describe(),
        "model": str(args.model),
        "scenes": args.scenes, "size_px": args.size, "megapixels": round(megapixels, 2),
        "ray_workers": args.workers, "cpus_per_worker": args.cpus, "runs": args.runs,
        "wall_s": {w: [round(x, 2) for x in v] for w, v in walls.items()},
        "median_wall_s": {w: round(v, 2) for w, v in median.items()},
        "mpx_per_s": {w: round(megapixels / v, 3) for w, v in median.items()},
        "ray_overhead_fraction": round(median["ray"] / median["plain"] - 1, 3),
        "ray_joined_overhead_fraction": round(median["ray_joined"] / median["plain"] - 1, 3),
        "outputs_identical": identical,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ray_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}))


if __name__ == "__main__":
    main()
