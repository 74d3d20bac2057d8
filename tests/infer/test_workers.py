"""The batch job's decoding workers: one that dies fails its scene, not the batch."""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor

import infer.cli.run as run_cli_module
import infer.runtime.job as job_module
from infer.cli.console import run_command
from tests.infer.oracle import plant, write_oracle, write_scene


class PoolWhoseFirstTaskKillsItsWorker(ProcessPoolExecutor):
    """A real spawn pool, except that the first task it is given is `os._exit` in the worker."""

    def __init__(self, workers: int) -> None:
        import multiprocessing

        super().__init__(workers, mp_context=multiprocessing.get_context("spawn"))
        self.killed = False

    def submit(self, fn, /, *args, **kwargs):
        if not self.killed:
            self.killed = True
            return super().submit(os._exit, 1)
        return super().submit(fn, *args, **kwargs)


def test_a_dead_worker_fails_its_scene_and_the_workers_are_restarted(tmp_path, monkeypatch):
    model = write_oracle(tmp_path / "oracle.onnx")
    scenes = [write_scene(tmp_path / f"s{k}.tif", plant(512, 512, [(102 + 40 * k, 102)], [(300, 20, 310, 500)]))
              for k in range(2)]
    started = []
    real_start = job_module.start_pool

    def start_pool(workers: int):
        started.append(workers)
        return PoolWhoseFirstTaskKillsItsWorker(workers) if len(started) == 1 else real_start(workers)

    monkeypatch.setattr(job_module, "start_pool", start_pool)
    args = [str(model), *map(str, scenes), "--out", str(tmp_path / "out"), "--quiet", "--tile", "256",
            "--overlap", "64", "--workers", "2"]
    assert run_command(run_cli_module.main, args) == 1
    entries = {os.path.basename(e["scene"]): e for e in json.loads((tmp_path / "out" / "summary.json").read_text())["scenes"]}
    assert entries["s0.tif"]["status"] == "failed" and "worker process died" in entries["s0.tif"]["error"]
    assert entries["s1.tif"]["status"] == "done" and started == [2, 2]
    assert not (tmp_path / "out" / "s0.geojson").exists() and (tmp_path / "out" / "s1.geojson").exists()

    monkeypatch.setattr(job_module, "start_pool", real_start)
    assert run_command(run_cli_module.main, args) == 0  # the rerun does the failed scene, skips the other
    assert (tmp_path / "out" / "s0.geojson").exists()
