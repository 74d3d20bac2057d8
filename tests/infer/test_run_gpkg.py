"""`infer gpkg`: a whole run in one GeoPackage, opened with GDAL/OGR (pyogrio) with its styles inside."""

from __future__ import annotations

import json

import pyogrio
import pyogrio.raw

from tests.helpers import run_cli
from tests.infer.oracle import plant, write_scene

CENTRES = [(62 + 128 * i, 62 + 128 * j) for i in range(4) for j in range(4)]
RING = [(96, 96, 104, 416), (408, 96, 416, 416), (96, 96, 416, 104), (96, 408, 240, 416), (272, 408, 416, 416)]


def test_a_run_with_its_sites_and_changes_opens_as_one_styled_geopackage(oracle, tmp_path):
    scenes = [write_scene(tmp_path / "a.tif", plant(512, 512, CENTRES[:3], [(300, 20, 330, 200)])),
              write_scene(tmp_path / "b.tif", plant(512, 512, [(182, 182), (262, 262), (182, 262)], RING))]
    out = tmp_path / "out"
    assert run_cli("infer", "run", str(oracle), *map(str, scenes), "--out", str(out), "--quiet", "--tile", "256",
                   "--overlap", "64").returncode == 0
    assert run_cli("infer", "sites", str(out)).returncode == 0
    assert run_cli("infer", "diff", str(out / "a.geojson"), str(out / "b.geojson"), "--out",
                   str(tmp_path / "diff")).returncode == 0
    result = run_cli("infer", "gpkg", str(out), "--changes", str(tmp_path / "diff" / "changes.geojson"))
    assert result.returncode == 0, result.stderr
    path = out / "run.gpkg"
    features = {name: json.loads((out / f"{name}.geojson").read_text())["features"] for name in ("a", "b")}
    objects = [(n, f) for n, fs in features.items() for f in fs if "heading_deg" in f["properties"]]
    regions = [(n, f) for n, fs in features.items() for f in fs if "heading_deg" not in f["properties"]]
    sites = json.loads((out / "sites.geojson").read_text())["features"]
    changes = json.loads((tmp_path / "diff" / "changes.geojson").read_text())["features"]
    assert len(objects) == 6 and len(regions) >= 2 and sites and changes
    for layer, expected in (("objects", objects), ("regions", regions), ("sites", sites), ("changes", changes)):
        info = pyogrio.read_info(path, layer=layer)
        assert info["crs"] == "EPSG:4326" and info["features"] == len(expected), layer
    _, _, _, fields = pyogrio.raw.read(path, layer="objects", read_geometry=False)
    scene_of = list(fields[0])
    assert scene_of == [f"{n}.tif" for n, _ in objects]  # a scene at a time, each row naming its scene
    assert [round(v, 4) for v in fields[2]] == [f["properties"]["score"] for _, f in objects]
    styles = pyogrio.raw.read(path, layer="layer_styles", read_geometry=False)[3]
    qml = dict(zip(styles[2], styles[5], strict=True))
    assert set(qml) == {"objects", "regions", "sites", "changes"}
    assert 'value="storehouse"' in qml["objects"] and "255,64,64,255" in qml["objects"]  # the overlay's red
    assert 'value="earth_berm"' in qml["regions"] and 'value="storehouse"' not in qml["regions"]
    assert 'attr="defence"' in qml["sites"] and 'attr="change"' in qml["changes"]


def test_a_bad_changes_file_is_refused_before_anything_is_written(oracle, tmp_path):
    scene = write_scene(tmp_path / "a.tif", plant(512, 512, CENTRES[:3], []))
    out = tmp_path / "out"
    assert run_cli("infer", "run", str(oracle), str(scene), "--out", str(out), "--quiet").returncode == 0
    (tmp_path / "bad.geojson").write_text("{not json")
    placeless = {"type": "Feature", "geometry": None, "properties": {"class": "truck", "change": "new"}}
    (tmp_path / "placeless.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [placeless]}))
    for bad, message in (("bad.geojson", "is not valid JSON"),
                         (out / "a.geojson", "is not a changes GeoJSON: its features have no 'change'")):
        result = run_cli("infer", "gpkg", str(out), "--changes", str(tmp_path / bad))
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr
        assert not (out / "run.gpkg").exists()
    # a change without a place (RFC 7946 allows a null geometry) is left out, not a traceback
    result = run_cli("infer", "gpkg", str(out), "--changes", str(tmp_path / "placeless.geojson"))
    assert result.returncode == 0 and (out / "run.gpkg").exists(), result.stderr
