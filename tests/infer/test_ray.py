"""`infer run --ray` on a real local Ray cluster that the tests start: the same bytes, exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import run_cli, served
from tests.infer.oracle import plant, write_scene

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")

TILING = ("--tile", "256", "--overlap", "64")


@pytest.fixture(scope="module")
def cluster() -> str:
    """A local two-CPU cluster for the module (a start costs seconds); its address, for the CLI to join."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()



@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("scenes")
    return [write_scene(folder / f"r{k}.tif", plant(1536, 1536, [(102 + 40 * k, 102), (1202, 902 - 40 * k)],
                                                    [(900, 40, 910, 1400)]))
            for k in range(3)]


@pytest.fixture(scope="module")
def plain(oracle, scenes, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plain")
    assert run_cli("infer", "run", str(oracle), *map(str, scenes), "--out", str(out), "--quiet",
                   *TILING).returncode == 0
    return out


def _outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and not p.name.startswith(("summary", "."))}


def _ray_args(cluster: str, oracle: Path, scenes: list[Path], out: Path) -> list[str]:
    return ["infer", "run", str(oracle), *map(str, scenes), "--out", str(out), "--quiet", *TILING,
            "--ray", cluster, "--ray-workers", "2"]


def test_a_ray_job_writes_what_a_plain_run_does_and_a_rerun_skips_it(cluster, oracle, scenes, plain, tmp_path):
    out = tmp_path / "out"
    result = run_cli(*_ray_args(cluster, oracle, scenes, out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("3 scene(s) done (3 by this run), 0 failed")
    assert _outputs(out) == _outputs(plain)
    entries = json.loads((out / "summary.json").read_text())["scenes"]
    assert sorted(Path(e["scene"]).name for e in entries) == ["r0.tif", "r1.tif", "r2.tif"]
    assert all(e["status"] == "done" and e["worker"].split(":")[1].isdigit() for e in entries)
    assert len({e["worker"] for e in entries}) == 2  # both workers took scenes
    again = run_cli(*_ray_args(cluster, oracle, scenes, out))
    assert again.returncode == 0 and "(0 by this run)" in again.stdout


def test_a_bad_scene_fails_alone(cluster, oracle, scenes, tmp_path):
    broken = tmp_path / "broken.tif"
    broken.write_text("not a raster")
    out = tmp_path / "out"
    result = run_cli(*_ray_args(cluster, oracle, [scenes[0], broken, scenes[1]], out))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.tif" in errors[0] and "Traceback" not in result.stderr, result.stderr
    status = {Path(e["scene"]).name: e["status"] for e in json.loads((out / "summary.json").read_text())["scenes"]}
    assert status == {"r0.tif": "done", "broken.tif": "failed", "r1.tif": "done"}


def test_a_worker_killed_mid_scene_leaves_the_job_whole(cluster, oracle, scenes, plain, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", *_ray_args(cluster, oracle, scenes, out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim, held, deadline = None, None, time.time() + 120
    while victim is None and time.time() < deadline and proc.poll() is None:
        # a partial file is named after the scene and the process writing it: a worker in mid-scene
        partials = [p.name for p in out.glob(".*.partial*")] if out.is_dir() else []
        if partials:
            victim = int(partials[0].split(".partial")[0].rsplit("-", 1)[1])
            held = next(s for s in scenes if partials[0].startswith(f".{s.stem}"))
        time.sleep(0.01)
    assert victim is not None, "no scene was seen in progress"
    os.kill(victim, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert _outputs(out) == _outputs(plain)  # the scene it held was done again, once, whole
    assert not list(out.glob(".*.partial*"))
    entries = {Path(e["scene"]).name: e for e in json.loads((out / "summary.json").read_text())["scenes"]}
    assert entries[held.name]["status"] == "done" and not entries[held.name]["worker"].endswith(f":{victim}")


def test_a_worker_restarting_slowly_costs_its_scene_one_attempt(cluster, tmp_path):
    """A call made while Ray restarts a worker fails at once without running; the driver waits for the new
    process, so the scene that killed the old one is run again rather than failed three times over."""
    from infer.runtime.ray_job import SCENE_ATTEMPTS, WORKER_RESTARTS, _hand_out

    class DiesOnce:  # local, so Ray ships the class itself to its worker
        def __init__(self, marker: str) -> None:
            self.marker = Path(marker)
            if ray.get_runtime_context().was_current_actor_reconstructed:
                time.sleep(3 * SCENE_ATTEMPTS)  # a model loading on a busy node

        def run(self, scene: str):
            if not self.marker.exists():
                self.marker.touch()
                os._exit(1)
            return "done", {"scene": scene, "status": "done", "megapixels": 1.0}

        def ready(self) -> bool:
            return True

    worker = ray.remote(max_restarts=WORKER_RESTARTS, max_task_retries=0, num_cpus=1)(DiesOnce).remote(
        str(tmp_path / "died"))
    outcomes = _hand_out(ray, [worker], [Path("a.tif")], tmp_path / "summary.json", progress=False)
    assert [(o.scene.name, o.status) for o in outcomes] == [("a.tif", "done")]
    assert (tmp_path / "died").exists()


def test_a_head_address_nothing_answers_at_is_one_line_at_once(oracle, scenes, tmp_path):
    """Ray's own client retries such an address for minutes, writing a warning a second."""
    import socket

    with socket.socket() as probe:  # a port just free: nothing listens there
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    started = time.perf_counter()
    result = run_cli("infer", "run", str(oracle), str(scenes[0]), "--out", str(tmp_path / "out"), "--quiet",
                     "--ray", address)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: cannot join the Ray cluster at {address}: nothing answers")
    assert time.perf_counter() - started < 60 and not list((tmp_path / "out").glob("*"))


def test_an_address_where_another_service_answers_is_one_line_at_once(oracle, scenes, tmp_path):
    """A head's dashboard (HTTP) given for its GCS: Ray's client would try it for many minutes."""
    with served(tmp_path) as base:
        address = base.removeprefix("http://")
        started = time.perf_counter()
        result = run_cli("infer", "run", str(oracle), str(scenes[0]), "--out", str(tmp_path / "out"), "--quiet",
                         "--ray", address)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: cannot join the Ray cluster at {address}: what answers at {address} "
                                    "is not a Ray GCS")
    assert time.perf_counter() - started < 60 and not list((tmp_path / "out").glob("*"))
