"""Small shared test helpers: the four-class schema, run a CLI in a subprocess, map labels to pixels."""

from __future__ import annotations

import contextlib
import http.server
import io
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import rasterio
from rasterio.features import rasterize
from shapely.geometry.base import BaseGeometry

from infer.contract.schema import ClassInfo
from infer.geo.crs import from_wgs84

#: A headless browser for the reports' tests (Debian's `chromium`; CI installs it).
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


#: The synthetic default's classes, as a dataset YAML lists them.
FOUR_CLASSES = [
    {"name": "storehouse", "kind": "object", "color": "#ff4040"},
    {"name": "truck", "kind": "object", "color": "#ffdc00", "directional": True},
    {"name": "earth_berm", "kind": "region", "color": "#00c8ff"},
    {"name": "cleared_site", "kind": "region", "color": "#c850ff"},
]
#: The same as `ClassInfo`s, as a model's metadata carries them.
FOUR_CLASS_INFOS = tuple(ClassInfo(**c) for c in FOUR_CLASSES)


def convergence_deg(crs: str, x: float, y: float) -> float:
    """The meridians' convergence at map point (x, y) of `crs`, as PROJ's own factors give it: the bearing
    from true north of the grid's north there (a grid-east line bears 90 plus this)."""
    from pyproj import CRS, Proj, Transformer

    lon, lat = Transformer.from_crs(CRS.from_user_input(crs), CRS.from_epsg(4326), always_xy=True).transform(x, y)
    return float(Proj(crs).get_factors(lon, lat).meridian_convergence)


@contextlib.contextmanager
def served(folder: Path) -> Iterator[str]:
    """`folder` over HTTP on localhost, with the byte ranges GDAL's /vsicurl/ reads by; yields its base URL."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args) -> None:
            pass

        def send_head(self):
            path = Path(self.translate_path(self.path))
            if not path.is_file():
                self.send_error(404)
                return None
            data, size = path.read_bytes(), path.stat().st_size
            asked = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if asked:
                start = int(asked.group(1))
                end = min(int(asked.group(2)) if asked.group(2) else size - 1, size - 1)
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                data = data[start:end + 1]
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            return io.BytesIO(data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m ...` the way a user would, capturing output."""
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


def label_mask(src: rasterio.io.DatasetReader, geom_wgs84: BaseGeometry, buffer_m: float = 0.0) -> np.ndarray:
    """Pixels (bool, rows x cols of `src`) whose centres fall in a WGS84 label, optionally buffered."""
    geom = from_wgs84(geom_wgs84, src.crs)
    if buffer_m:
        geom = geom.buffer(buffer_m, join_style="mitre")
    if geom.is_empty:
        return np.zeros((src.height, src.width), dtype=bool)
    return rasterize([(geom, 1)], out_shape=(src.height, src.width), transform=src.transform, fill=0,
                     dtype="uint8").astype(bool)
