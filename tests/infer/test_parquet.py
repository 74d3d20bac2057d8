"""`infer parquet`: a run's detections in one GeoParquet file, read back by GeoPandas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely
from shapely.geometry import shape

from tests.helpers import run_cli
from tests.infer.oracle import plant, write_scene

geopandas = pytest.importorskip("geopandas")
pq = pytest.importorskip("pyarrow.parquet")

CENTRES = [(62 + 128 * i, 62 + 128 * j) for i in range(4) for j in range(4)]


@pytest.fixture(scope="module")
def run_folder(oracle, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("parquet")
    scenes = [write_scene(root / "a.tif", plant(512, 512, CENTRES, [(300, 20, 330, 200)])),
              write_scene(root / "b.tif", plant(512, 512, CENTRES[:5], [(40, 300, 60, 480), (400, 400, 440, 500)]))]
    result = run_cli("infer", "run", str(oracle), *map(str, scenes), "--out", str(root / "out"), "--quiet",
                     "--tile", "256", "--overlap", "64")
    assert result.returncode == 0, result.stderr
    return root / "out"


def test_every_detection_is_read_back_by_geopandas_in_wgs84(run_folder):
    result = run_cli("infer", "parquet", str(run_folder))
    assert result.returncode == 0, result.stderr
    path = run_folder / "detections.parquet"
    frame = geopandas.read_parquet(path)
    assert frame.crs.equals("OGC:CRS84")
    expected = []
    for name in ("a", "b"):
        for f in json.loads((run_folder / f"{name}.geojson").read_text())["features"]:
            expected.append((f"{name}.tif", f["properties"], shape(f["geometry"])))
    assert len(frame) == len(expected) == 16 + 1 + 5 + 2
    for (scene, props, geom), (_, row) in zip(expected, frame.iterrows(), strict=True):
        assert row["scene"] == scene and row["class"] == props["class"]
        assert row["kind"] == ("object" if props["class"] == "storehouse" else "region")
        assert shapely.equals_exact(row.geometry, geom, tolerance=1e-12)
        assert row["score"] == pytest.approx(props["score"], abs=1e-6)
        if row["kind"] == "region":
            assert row["area_m2"] == props["area_m2"] and row.isna()["heading_deg"]
        else:
            assert row["heading_deg"] == pytest.approx(props["heading_deg"], abs=1e-4)
    assert pq.ParquetFile(path).metadata.num_row_groups == 2  # a scene at a time


def test_the_bbox_covering_lets_a_reader_filter_by_area(run_folder):
    assert run_cli("infer", "parquet", str(run_folder), "--out", str(run_folder / "all.parquet")).returncode == 0
    everything = geopandas.read_parquet(run_folder / "all.parquet")
    query = everything[everything["class"] == "earth_berm"].geometry.iloc[0].bounds
    near = geopandas.read_parquet(run_folder / "all.parquet", bbox=query)
    meets = everything[everything.geometry.envelope.intersects(shapely.box(*query))]
    assert 0 < len(near) == len(meets) < len(everything)
    assert set(near.geometry.to_wkb()) == set(meets.geometry.to_wkb())


def test_a_folder_without_a_run_is_refused_in_one_line(tmp_path):
    result = run_cli("infer", "parquet", str(tmp_path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "summary.json" in result.stderr
    assert not (tmp_path / "detections.parquet").exists()


def test_the_run_report_links_the_parquet_file(run_folder):
    assert run_cli("infer", "parquet", str(run_folder)).returncode == 0
    assert run_cli("infer", "report", str(run_folder)).returncode == 0
    page = (run_folder / "report.html").read_text()
    assert "href='detections.parquet'" in page and "href='summary.json'" in page
