"""How fast the review pictures' PNGs are encoded, and how large they come out.

The imagery of a synthetic scene's overview (what `infer run` draws its
overlay on: a 2048² scene at its own size), encoded in turn by Pillow at zlib
level 1, Pillow at level 1 with run-length matching, and `save_png` (OpenCV's
libpng, `PNG_SETTINGS`), each into a file as a run writes it; medians of
several runs each, taken in turn.

`python -m bench.png_encoding [--size 2048] [--runs 5]` writes bench/results/png_encoding.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import zlib
from pathlib import Path

from PIL import Image

from bench.machine import describe
from infer.pictures.drawing import save_png
from infer.pictures.overlay import read_overview
from infer.runtime.reader import open_grid
from synth.cli import main as synth

#: name -> how it writes an image to a path.
ENCODERS = {
    "Pillow, zlib level 1": lambda image, path: image.save(path, format="PNG", compress_level=1),
    "Pillow, zlib level 1, run-length matching": lambda image, path: image.save(
        path, format="PNG", compress_level=1, compress_type=zlib.Z_RLE),
    "save_png (OpenCV, sub filter, level 1, run-length matching)": save_png,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=2048, help="the scene's side, px (its overview at most 2048)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synth(["--out", str(tmp / "scene"), "--size", str(args.size), "--seed", "5", "--quiet"])
        overview = read_overview(open_grid(tmp / "scene" / "scene_000.tif", 3, 0.5))
        image = Image.fromarray(overview.rgb)
        seconds: dict[str, list[float]] = {name: [] for name in ENCODERS}
        sizes = {}
        for _ in range(args.runs + 1):  # the first round warms up, untimed
            for name, encode in ENCODERS.items():
                path = tmp / "picture.png"
                start = time.perf_counter()
                encode(image, path)
                seconds[name].append(time.perf_counter() - start)
                sizes[name] = path.stat().st_size
    results = [{"encoder": name, "seconds": round(statistics.median(times[1:]), 3), "bytes": sizes[name]}
               for name, times in seconds.items()]
    result = {"benchmark": "png_encoding", "machine": describe(), "picture_px": list(image.size),
              "runs": args.runs, "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "png_encoding.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
