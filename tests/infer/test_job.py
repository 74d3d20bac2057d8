"""A batch job in one process: each scene's outputs are written while the next scene is detected."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

import infer.runtime.job as job_module
import infer.runtime.pipeline as pipeline_module
from infer.errors import OutputError
from infer.runtime.job import SceneJob
from infer.runtime.model import OnnxModel
from infer.runtime.options import RunOptions
from infer.runtime.runfolder import previous_entries
from tests.infer.oracle import plant, write_scene


@pytest.fixture
def scenes(tmp_path) -> list[Path]:
    folder = tmp_path / "scenes"
    folder.mkdir()
    return [write_scene(folder / f"{name}.tif", plant(320, 320, [(102, 102), (202, 150)], [(200, 20, 220, 300)]))
            for name in ("first", "second", "third")]


def _job(oracle: Path, out: Path) -> SceneJob:
    out.mkdir(exist_ok=True)
    return SceneJob(OnnxModel(oracle), out, RunOptions(tile=256, overlap=64, progress=False), out / "summary.json")


def _run_job(oracle: Path, out: Path, scenes: list[Path]) -> list:
    job = _job(oracle, out)
    try:
        return job.run(scenes)
    finally:
        job.close()


def test_a_scene_is_written_while_the_next_one_is_detected(oracle, scenes, tmp_path, monkeypatch):
    """The first scene's writing waits until the second scene's detection has begun: run one after the
    other, the job would never get there and the wait would time out."""
    detect, write = job_module.detect_scene, job_module.write_scene
    second_started, overlapped = threading.Event(), []

    def detecting(model, scene, *args, **kwargs):
        if scene == scenes[1]:
            second_started.set()
        return detect(model, scene, *args, **kwargs)

    def writing(detected):
        if detected.scene == scenes[0]:
            overlapped.append(second_started.wait(timeout=60))
        return write(detected)

    monkeypatch.setattr(job_module, "detect_scene", detecting)
    monkeypatch.setattr(job_module, "write_scene", writing)
    outcomes = _run_job(oracle, tmp_path / "out", scenes)
    assert overlapped == [True]
    assert [(o.scene, o.status) for o in outcomes] == [(s, "done") for s in scenes]
    entries = previous_entries(tmp_path / "out" / "summary.json")
    assert [entries[str(s)]["counts"]["storehouse"] for s in scenes] == [2, 2, 2]
    assert all((tmp_path / "out" / f"{s.stem}_mask.tif").is_file() for s in scenes)


def test_a_job_interrupted_while_detecting_still_finishes_and_records_the_scene_it_was_writing(
        oracle, scenes, tmp_path, monkeypatch):
    detect = job_module.detect_scene

    def detecting(model, scene, *args, **kwargs):
        if scene == scenes[1]:
            raise KeyboardInterrupt
        return detect(model, scene, *args, **kwargs)

    monkeypatch.setattr(job_module, "detect_scene", detecting)
    job = _job(oracle, tmp_path / "out")
    with pytest.raises(KeyboardInterrupt):
        try:
            job.run(scenes)
        finally:
            job.close()
    entries = previous_entries(tmp_path / "out" / "summary.json")
    assert list(entries) == [str(scenes[0])] and entries[str(scenes[0])]["status"] == "done"
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name.startswith("first")) == [
        "first.geojson", "first.gpkg", "first_detections.png", "first_mask.tif", "first_overlay.png"]
    assert not any("second" in p.name for p in (tmp_path / "out").iterdir())  # nor a working file


def test_a_scene_whose_writing_fails_is_recorded_failed_leaves_nothing_and_the_job_goes_on(
        oracle, scenes, tmp_path, monkeypatch):
    geopackage = pipeline_module.write_geopackage

    def failing(path, *args, **kwargs):
        if path.stem == scenes[1].stem:
            raise OutputError(f"cannot write {path}: No space left on device")
        return geopackage(path, *args, **kwargs)

    monkeypatch.setattr(pipeline_module, "write_geopackage", failing)
    outcomes = _run_job(oracle, tmp_path / "out", scenes)
    assert [o.status for o in outcomes] == ["done", "failed", "done"]
    assert outcomes[1].error.endswith("No space left on device")
    assert not any("second" in p.name for p in (tmp_path / "out").iterdir())  # nor a working file
    assert previous_entries(tmp_path / "out" / "summary.json")[str(scenes[2])]["status"] == "done"


def test_a_job_never_waits_for_a_claim_while_it_holds_one(oracle, scenes, tmp_path):
    """Two runs on one folder, each at the end waiting for a scene the other holds: a job that kept the
    claim of the scene it is writing while it waited would wait forever for the other, which waits for it."""
    from infer.runtime.claims import scene_claim

    out = tmp_path / "out"
    out.mkdir()
    first, second = scenes[:2]
    other_has_first, finished = threading.Event(), threading.Event()
    with ExitStack() as other:  # "another run", holding both scenes at the start
        other.enter_context(scene_claim(out, first, wait=False))
        held_second = ExitStack()
        held_second.enter_context(scene_claim(out, second, wait=False))

        def other_run() -> None:
            time.sleep(1.0)  # the job has found both held and waits for the first
            other.close()  # lets the first scene go: the job claims it and detects it
            time.sleep(0.5)
            with scene_claim(out, first, wait=True):  # then wants it back, still holding the second
                other_has_first.set()
            held_second.close()

        def job_run() -> None:
            _run_job(oracle, out, [first, second])
            finished.set()

        threads = [threading.Thread(target=f, daemon=True) for f in (job_run, other_run)]
        for thread in threads:
            thread.start()
        assert finished.wait(timeout=60) and other_has_first.is_set()
    entries = previous_entries(out / "summary.json")
    assert [entries[str(s)]["status"] for s in (first, second)] == ["done", "done"]
