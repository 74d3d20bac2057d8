"""Scenes whose georeferencing is not plain north-up metres: rotated grids, feet, degrees, Web Mercator."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
import shapely
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

from infer.errors import InputError
from infer.geo.crs import from_wgs84
from infer.geo.gsd import scene_gsd
from tests.helpers import convergence_deg, run_cli
from tests.infer.oracle import ORIGIN, plant, write_scene

CENTRES = [(102, 102), (302, 202), (150, 330)]
BERM = (400, 40, 420, 360)  # rows 400-420, cols 40-360: 20 x 320 px = 10 m x 160 m



def _run(model: Path, scene: Path, out: Path):
    return run_cli("infer", "run", str(model), str(scene), "--out", str(out), "--quiet")


def _features(path: Path) -> dict[str, list[dict]]:
    by_class: dict[str, list[dict]] = {}
    for f in json.loads(path.read_text())["features"]:
        by_class.setdefault(f["properties"]["class"], []).append(f)
    return by_class


def _pixel_centres(features: list[dict], crs: str, transform: Affine) -> list[tuple[int, int]]:
    """Each feature's centroid, back in the scene's pixels through its own transform."""
    out = []
    for f in features:
        c = from_wgs84(shapely.geometry.shape(f["geometry"]), crs).centroid
        col, row = ~transform @ (c.x, c.y)
        out.append((round(col), round(row)))
    return sorted(out)


def _grid_bearings(features: list[dict], crs: str, period: float = 360.0) -> list[float]:
    """Each feature's heading less the meridians' convergence where it is: its bearing from the grid's north
    (headings are written to 0.1 degree)."""
    out = []
    for f in features:
        c = from_wgs84(shapely.geometry.shape(f["geometry"]), crs).centroid
        out.append((f["properties"]["heading_deg"] - convergence_deg(crs, c.x, c.y)) % period)
    return out


def test_a_rotated_scene_measures_what_the_north_up_one_does(oracle, tmp_path):
    pixels = plant(512, 512, CENTRES, [BERM])
    north_up = Affine(0.5, 0, ORIGIN[0], 0, -0.5, ORIGIN[1])
    rotated = north_up @ Affine.rotation(30)  # the grid turned 30 degrees: pixels still 0.5 m on a side
    results = {}
    for name, transform in (("north_up", north_up), ("rotated", rotated)):
        scene = write_scene(tmp_path / f"{name}.tif", pixels, transform=transform)
        assert _run(oracle, scene, tmp_path / name).returncode == 0
        results[name] = _features(tmp_path / name / f"{name}.geojson")
        # every object is where it was planted, through the scene's own (rotated) transform
        assert _pixel_centres(results[name]["storehouse"], "EPSG:32637", transform) == sorted(CENTRES)
    for name in results:
        sizes = [(f["properties"]["length_m"], f["properties"]["width_m"]) for f in results[name]["storehouse"]]
        assert sizes == [(12.0, 8.0)] * len(CENTRES), name
        (berm,) = results[name]["earth_berm"]
        assert berm["properties"]["area_m2"] == pytest.approx(10 * 160, rel=0.01), name
    # east in the pixels (the storehouses' axis) points 30 degrees south of east on the grid; headings are
    # bearings from true north, the grid's own turned by the meridians' convergence (1.1 degrees here)
    assert _grid_bearings(results["north_up"]["storehouse"], "EPSG:32637") == pytest.approx([90.0] * 3, abs=0.06)
    assert _grid_bearings(results["rotated"]["storehouse"], "EPSG:32637") == pytest.approx([120.0] * 3, abs=0.06)
    assert all(abs(f["properties"]["heading_deg"] - 90.0) > 1.0 for f in results["north_up"]["storehouse"])


def test_headings_in_a_polar_projection_are_bearings_from_true_north(oracle, tmp_path):
    """In Antarctic polar stereographic, at longitude 90 E the grid's east points away from the pole: north."""
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, 3031, always_xy=True).transform(90.0, -71.0)  # true scale: 0.5 m pixels
    transform = Affine(0.5, 0, x - 256 * 0.5, 0, -0.5, y + 256 * 0.5)
    scene = write_scene(tmp_path / "polar.tif", plant(512, 512, CENTRES, []), crs="EPSG:3031", transform=transform)
    assert _run(oracle, scene, tmp_path / "out").returncode == 0
    found = _features(tmp_path / "out" / "polar.geojson")["storehouse"]
    assert _pixel_centres(found, "EPSG:3031", transform) == sorted(CENTRES)
    headings = [f["properties"]["heading_deg"] for f in found]
    # axis-only storehouses: a bearing in [0, 180), so north is 0 (or a hair under 180 just west of 90 E)
    assert all(min(h, 180.0 - h) < 0.2 for h in headings), headings
    assert _grid_bearings(found, "EPSG:3031", period=180.0) == pytest.approx([90.0] * 3, abs=0.06)


def test_a_scene_in_us_feet_is_read_at_its_size_in_metres(oracle, tmp_path):
    feet = 0.5 / 0.3048006096012192  # 0.5 m pixels in US survey feet
    transform = Affine(feet, 0, 1_000_000, 0, -feet, 200_000)
    scene = write_scene(tmp_path / "feet.tif", plant(512, 512, CENTRES, []), crs="EPSG:2263", transform=transform)
    assert _run(oracle, scene, tmp_path / "out").returncode == 0
    found = _features(tmp_path / "out" / "feet.geojson")["storehouse"]
    assert _pixel_centres(found, "EPSG:2263", transform) == sorted(CENTRES)
    assert {(f["properties"]["length_m"], f["properties"]["width_m"]) for f in found} == {(12.0, 8.0)}


def test_a_scene_in_degrees_is_refused_in_one_line_naming_the_reprojection(oracle, tmp_path):
    degrees = 4.5e-6  # about 0.5 m north-south, 0.41 m east-west at 34.5 N
    scene = write_scene(tmp_path / "lonlat.tif", plant(256, 256, [(102, 102)], []), crs="EPSG:4326",
                        transform=Affine(degrees, 0, 39.0, 0, -degrees, 34.5))
    result = _run(oracle, scene, tmp_path / "out")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "geographic" in errors[0] and "gdalwarp -t_srs EPSG:32637 -tr 0.5 0.5" in errors[0]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [e["status"] for e in summary["scenes"]] == ["failed"]
    assert not (tmp_path / "out" / "lonlat.geojson").exists()


def test_pixel_sizes_in_metres_for_any_crs():
    utm = Affine(0.5, 0, 500_000, 0, -0.5, 4_000_000)
    assert scene_gsd("a.tif", utm, "EPSG:32633", 1000, 1000) == 0.5
    assert scene_gsd("a.tif", utm @ Affine.rotation(45), "EPSG:32633", 1000, 1000) == pytest.approx(0.5)
    # Web Mercator at 45 N: 0.5 grid metres are 0.5 cos(45 N) on the ground
    mercator = Affine(0.5, 0, 0, 0, -0.5, 5_621_521)
    assert scene_gsd("a.tif", mercator, "EPSG:3857", 1000, 1000) == pytest.approx(0.5 * 0.7071, rel=0.01)
    # degrees at the equator are square enough on the ground
    assert scene_gsd("a.tif", Affine(4.5e-6, 0, 10, 0, -4.5e-6, 0.001), "EPSG:4326", 100, 100) == pytest.approx(
        0.4993, rel=0.01)
    with pytest.raises(InputError, match="0.5 x 0.6 m, not square"):
        scene_gsd("a.tif", Affine(0.5, 0, 500_000, 0, -0.6, 4_000_000), "EPSG:32633", 1000, 1000)


def _antimeridian_origin(col: int, row: int, lat: float = 52.0) -> tuple[float, float]:
    """Map origin of a 0.5 m grid in UTM zone 1N that puts longitude 180 through pixel (col, row)."""
    from pyproj import Transformer

    east, north = Transformer.from_crs(4326, 32601, always_xy=True).transform(-180.0, lat)
    return east - col * 0.5, north + row * 0.5


def _parts_spans(geom: dict) -> list[tuple[float, float]]:
    """(west, east) longitude of each polygon of a GeoJSON geometry."""
    polygons = shapely.get_parts(shapely.geometry.shape(geom))
    return [(p.bounds[0], p.bounds[2]) for p in polygons]


def test_a_scene_across_the_antimeridian_is_cut_there_and_measured_as_elsewhere(oracle, tmp_path):
    """RFC 7946 §3.1.9: what crosses longitude 180 is written as its two parts either side, never as a polygon
    of a few metres spanning the globe; the sizes, places and dates' comparison are those of any other place."""
    pixels = plant(512, 512, CENTRES, [BERM])
    x0, y0 = _antimeridian_origin(302, 202)  # the line runs through the second storehouse and the berm
    transform = Affine(0.5, 0, x0, 0, -0.5, y0)
    scene = write_scene(tmp_path / "t1.tif", pixels, crs="EPSG:32601", transform=transform)
    later = pixels.copy()
    later[0, 100:104, 100:104] = 0  # the first storehouse is gone at the second date
    write_scene(tmp_path / "t2.tif", later, crs="EPSG:32601", transform=transform)
    assert run_cli("infer", "run", str(oracle), str(scene), str(tmp_path / "t2.tif"), "--out", str(tmp_path / "run"),
                   "--quiet").returncode == 0
    collection = json.loads((tmp_path / "run" / "t1.geojson").read_text())
    spans = [s for f in collection["features"] for s in _parts_spans(f["geometry"])]
    spans += _parts_spans(collection["footprint"])
    assert max(east - west for west, east in spans) < 0.01, spans  # about 700 m of longitude at 52 N
    found = _features(tmp_path / "run" / "t1.geojson")
    cut = [f for fs in found.values() for f in fs if f["geometry"]["type"] == "MultiPolygon"]
    assert sorted(f["properties"]["class"] for f in cut) == ["earth_berm", "storehouse"]
    for f in cut:
        (west, east), (west2, east2) = sorted(_parts_spans(f["geometry"]), key=lambda s: s[0])
        assert -180.0 <= west and east < -179.99 and 179.99 < west2 and east2 <= 180.0
    assert _pixel_centres(found["storehouse"], "EPSG:32601", transform) == sorted(CENTRES)
    import pyogrio  # the GeoPackage for QGIS holds the same cut geometries

    objects = pyogrio.read_dataframe(tmp_path / "run" / "t1.gpkg", layer="objects", read_geometry=True)
    assert len(objects) == len(found["storehouse"]) and "MultiPolygon" in set(objects.geometry.geom_type)
    assert {(f["properties"]["length_m"], f["properties"]["width_m"]) for f in found["storehouse"]} == {(12.0, 8.0)}
    # the grid's east, 2.4 degrees off true east here at the west edge of UTM zone 1
    assert _grid_bearings(found["storehouse"], "EPSG:32601") == pytest.approx([90.0] * 3, abs=0.06)
    (berm,) = found["earth_berm"]
    assert berm["properties"]["area_m2"] == pytest.approx(10 * 160, rel=0.01)

    result = run_cli("infer", "diff", str(tmp_path / "run" / "t1.geojson"), str(tmp_path / "run" / "t2.geojson"),
                     "--out", str(tmp_path / "diff"))
    assert result.returncode == 0, result.stderr
    changes = json.loads((tmp_path / "diff" / "changes.geojson").read_text())["features"]
    kinds = sorted((c["properties"]["class"], c["properties"]["change"]) for c in changes)
    assert kinds == [("storehouse", "gone"), ("storehouse", "persisting"), ("storehouse", "persisting")]
    gone = next(c for c in changes if c["properties"]["change"] == "gone")
    assert _pixel_centres([gone], "EPSG:32601", transform) == [CENTRES[0]]
    assert max(e - w for c in changes for w, e in _parts_spans(c["geometry"])) < 0.01
    assert run_cli("infer", "report", str(tmp_path / "run")).returncode == 0
    page = (tmp_path / "run" / "report.html").read_text()
    longitudes = [float(v) for v in re.findall(r"<td>(-?\d+\.\d{6})</td><td>5\d\.\d{6}</td>", page)]
    assert len(longitudes) == 2 * (len(CENTRES) + 1) - 1 and all(abs(v) > 179.99 for v in longitudes), longitudes


def test_cutting_at_the_antimeridian_and_joining_back():
    from infer.geo.crs import cut_at_antimeridian, from_wgs84, metric_crs, to_wgs84

    x0, y0 = _antimeridian_origin(0, 0)
    square = shapely.box(x0 - 50, y0 - 50, x0 + 50, y0 + 50)  # 100 m, the antimeridian through its middle
    elsewhere = shapely.box(x0 + 100, y0 - 50, x0 + 200, y0 + 50)
    cut = to_wgs84(np.array([square, elsewhere], dtype=object), "EPSG:32601")
    assert [g.geom_type for g in cut] == ["MultiPolygon", "Polygon"]
    assert sorted(round(p.bounds[0]) for p in cut[0].geoms) == [-180, 180]
    assert cut_at_antimeridian(cut[0]).equals(cut[0])  # cutting what is cut changes nothing
    assert metric_crs(cut).to_epsg() == 32601  # the zone where they are, not one at longitude 0
    back = from_wgs84(cut, "EPSG:32601")
    # the edges' new vertices on the meridian lie on lines straight in degrees: a few tenths of a mm off
    assert back[0].geom_type == "Polygon" and back[0].symmetric_difference(square).area < 0.1
    assert back[1].symmetric_difference(elsewhere).area < 1e-3


def test_a_scene_placed_only_by_control_points_is_refused_naming_the_warp_that_places_it(oracle, tmp_path):
    """Without a geotransform, a scene's GCPs (or RPCs) are all that say where its pixels lie and how large they
    are: it is refused with the orthorectifying gdalwarp, and that warp (GDAL's warper writing the VRT, as the
    line would) runs to the detections of the scene it came from."""
    from rasterio.control import GroundControlPoint
    from rasterio.rpc import RPC
    from rasterio.vrt import WarpedVRT

    from infer.runtime.reader import open_grid

    pixels = plant(512, 512, CENTRES, [BERM])
    placed = write_scene(tmp_path / "placed.tif", pixels)
    north_up = Affine(0.5, 0, ORIGIN[0], 0, -0.5, ORIGIN[1])
    corners = [(0, 0), (0, 512), (512, 0), (512, 512)]
    gcps = [GroundControlPoint(row=r, col=c, x=(north_up @ (c, r))[0], y=(north_up @ (c, r))[1]) for r, c in corners]
    profile = {"driver": "GTiff", "width": 512, "height": 512, "count": 3, "dtype": "uint8"}
    with warnings.catch_warnings():  # rasterio warns, creating it, that it has no geotransform
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(tmp_path / "gcp.tif", "w", **profile) as dst:
            dst.write(pixels)
            dst.gcps = (gcps, "EPSG:32637")
        with rasterio.open(tmp_path / "rpc.tif", "w", **profile) as dst:
            dst.write(pixels)
            dst.rpcs = RPC(height_off=0, height_scale=100, lat_off=34.5, lat_scale=0.01, long_off=40.9,
                           long_scale=0.01, line_off=256, line_scale=256, samp_off=256, samp_scale=256,
                           line_num_coeff=[0, 0, -1] + [0] * 17, line_den_coeff=[1] + [0] * 19,
                           samp_num_coeff=[0, 1] + [0] * 18, samp_den_coeff=[1] + [0] * 19)
    result = _run(oracle, tmp_path / "gcp.tif", tmp_path / "refused")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 1 and len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "only 4 ground control points" in errors[0]
    line = "gdalwarp -t_srs EPSG:32637 -tr 0.5 0.5 -r bilinear -of VRT gcp.tif gcp_ortho.vrt"
    assert line in errors[0] and not (tmp_path / "refused" / "gcp.geojson").exists()

    with rasterio.open(tmp_path / "gcp.tif") as src, WarpedVRT(src, src_crs=src.gcps[1], crs="EPSG:32637",
                                                               resolution=0.5) as vrt:
        rasterio.shutil.copy(vrt, tmp_path / "gcp_ortho.vrt", driver="VRT")
    for scene in (placed, tmp_path / "gcp_ortho.vrt"):
        assert _run(oracle, scene, tmp_path / scene.stem).returncode == 0
    ortho, original = (_features(tmp_path / n / f"{n}.geojson") for n in ("gcp_ortho", "placed"))
    assert _pixel_centres(ortho["storehouse"], "EPSG:32637", north_up) == sorted(CENTRES)
    assert [f["properties"] for f in ortho["storehouse"]] == [f["properties"] for f in original["storehouse"]]

    with pytest.raises(InputError, match=r"only RPCs: .* gdalwarp -rpc -t_srs EPSG:32637 -tr 0.5 0.5 -r bilinear "
                                         r"-of VRT rpc.tif rpc_ortho.vrt \(a .vrt runs as a scene; add -to RPC_DEM"):
        open_grid(tmp_path / "rpc.tif", 3, 0.5)


def test_a_heading_a_hair_west_of_north_is_written_0_not_360():
    from infer.runtime.reader import SceneGrid
    from infer.runtime.vectors import object_features

    grid = SceneGrid(Path("picture.png"), 100, 100, 1.0, Affine.identity(), None, 0.5, 3, "uint8", None, (100, 100))
    west_of_north = np.radians(-90.0 - 0.03)  # pixel angle: up (-y) turned 0.03 degrees towards -x
    rboxes = np.array([[50.0, 50.0, 20.0, 8.0, west_of_north]] * 2)
    found = object_features(rboxes, np.array([0.9, 0.9]), np.array([0, 1]), ["storehouse", "truck"], [False, True],
                            grid)
    assert [f["properties"]["heading_deg"] for f in found] == [0.0, 0.0]
