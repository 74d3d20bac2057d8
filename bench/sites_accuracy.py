"""`infer sites` on a model's detections against `infer sites` on the truth, over the held-out scenes.

The scenes of `bench.heldout_suite` (0.5, 0.3 and 0.7 m, a no-data edge, a
second date), larger by default so each holds several compounds. Each goes
through `process_scene` with the default options; sites are then found in
the predictions and in the generator's truth with the same rules
(`infer.analysis.sites`) and compared (`infer.analysis.site_scoring`):
truth sites found, false sites, and per found site the error of its
storehouse and fortified-storehouse counts.

`python -m bench.sites_accuracy [--model checkpoints/reference.onnx] [--size 4096]`
writes bench/results/sites_accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bench.heldout_suite import heldout_runs
from bench.machine import describe
from infer.analysis.changes import read_side, to_metric
from infer.analysis.site_scoring import score_sites
from infer.analysis.sites import find_sites
from infer.runtime.model import OnnxModel


def sites_of(geojson: Path):
    side = read_side(geojson)
    to_metric([side])
    return find_sites(side.objects + side.regions)[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=Path("checkpoints/reference.onnx"))
    p.add_argument("--size", type=int, default=4096, help="scene side in the generator's pixels")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args()
    model = OnnxModel(args.model)
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        for name, seed, flags, _, truth, entry in heldout_runs(model, args.size, Path(tmp_name)):
            score = score_sites(sites_of(truth), sites_of(Path(entry["outputs"]["geojson"])))
            rows.append({"scene": name, "seed": seed, "flags": flags, **score})
            print(name, {k: v for k, v in score.items() if not k.endswith("errors")})
    errors = [e for r in rows for e in r["storehouse_errors"]]
    fortified = [e for r in rows for e in r["fortified_errors"]]
    truth = sum(r["truth_sites"] for r in rows)
    result = {"benchmark": "sites_accuracy", "machine": describe(), "model": str(args.model), "size_px": args.size,
              "scenes": rows, "truth_sites": truth, "found": sum(r["found"] for r in rows),
              "false_sites": sum(r["false_sites"] for r in rows),
              "recall": round(sum(r["found"] for r in rows) / max(truth, 1), 4),
              "within_one_storehouse": round(sum(abs(e) <= 1 for e in errors) / max(len(errors), 1), 4),
              "storehouse_count_exact": round(sum(e == 0 for e in errors) / max(len(errors), 1), 4),
              "fortified_count_exact": round(sum(e == 0 for e in fortified) / max(len(fortified), 1), 4)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sites_accuracy.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("scenes", "machine")}, indent=1))


if __name__ == "__main__":
    main()
