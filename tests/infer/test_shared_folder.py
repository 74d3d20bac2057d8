"""Runs that share an output folder, and scene lists that name one file twice or two files alike."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infer.runtime.claims import scene_claim
from tests.helpers import run_cli
from tests.infer.oracle import plant, write_oracle, write_scene

TILING = ("--tile", "256", "--overlap", "64")



@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("scenes")
    return [write_scene(folder / f"s{k}.tif", plant(768, 768, [(102 + 40 * k, 102), (602, 502 - 40 * k)],
                                                    [(600, 40, 610, 700)]))
            for k in range(6)]


def _start(model: Path, scenes: list[Path], out: Path) -> subprocess.Popen:
    args = [sys.executable, "-m", "infer", "run", str(model), *map(str, scenes), "--out", str(out), "--quiet",
            *TILING]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    stdout, stderr = proc.communicate(timeout=300)
    return proc.returncode, stdout, stderr


def _by_this_run(stdout: str) -> int:
    """N of the last line's "(N by this run)"."""
    return int(re.search(r"\((\d+) by this run\)", stdout.strip().splitlines()[-1]).group(1))


def _outputs(out: Path, scene: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.glob(f"{scene.stem}*")}


def _summary(out: Path) -> dict[str, dict]:
    return {Path(e["scene"]).name: e for e in json.loads((out / "summary.json").read_text())["scenes"]}


def test_two_runs_on_one_folder_share_the_scenes_and_write_what_one_run_does(oracle, scenes, tmp_path):
    alone = tmp_path / "alone"
    assert run_cli("infer", "run", str(oracle), *map(str, scenes), "--out", str(alone), "--quiet",
                   *TILING).returncode == 0
    shared = tmp_path / "shared"
    first, second = _start(oracle, scenes, shared), _start(oracle, scenes, shared)
    results = [_finish(first), _finish(second)]
    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
    # each scene was done once, by one of them; each run says all six are done
    assert sum(_by_this_run(out) for _, out, _ in results) == len(scenes)
    assert all(out.strip().splitlines()[-1].startswith("6 scene(s) done") for _, out, _ in results)
    summary = _summary(shared)
    assert sorted(summary) == [s.name for s in scenes] and {e["status"] for e in summary.values()} == {"done"}
    for scene in scenes:
        assert _outputs(shared, scene) == _outputs(alone, scene), scene.name
    assert not list(shared.glob(".*partial*"))


def test_runs_on_one_folder_keep_each_others_summary_entries(oracle, scenes, tmp_path):
    out = tmp_path / "out"
    first, second = _start(oracle, scenes[:3], out), _start(oracle, scenes[3:], out)
    assert [_finish(first)[0], _finish(second)[0]] == [0, 0]
    summary = _summary(out)
    assert sorted(summary) == [s.name for s in scenes] and {e["status"] for e in summary.values()} == {"done"}


def test_a_scene_another_run_holds_is_waited_for_and_done_when_its_holder_lets_go(oracle, scenes, tmp_path):
    out = tmp_path / "out"
    held, free = scenes[0], scenes[1]
    with scene_claim(out, held, wait=False) as claimed:
        assert claimed
        proc = _start(oracle, [held, free], out)
        deadline = time.time() + 120
        while not (out / f"{free.stem}.geojson").exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert proc.poll() is None and not (out / f"{held.stem}.geojson").exists()  # waiting, not skipping
    code, stdout, stderr = _finish(proc)  # the holder let go without doing it: the run takes it over
    assert code == 0, stderr
    assert _by_this_run(stdout) == 2 and (out / f"{held.stem}.geojson").exists()


def _refused(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_two_files_with_one_name_are_refused_before_any_work(oracle, scenes, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    twin = other / scenes[0].name
    twin.write_bytes(scenes[0].read_bytes())
    out = tmp_path / "out"
    line = _refused(run_cli("infer", "run", str(oracle), str(scenes[0]), str(twin), "--out", str(out)))
    assert "would write the same outputs" in line and scenes[0].stem in line
    assert not out.exists()
    # the same name against what an earlier run wrote in the folder
    assert run_cli("infer", "run", str(oracle), str(scenes[0]), "--out", str(out), "--quiet", *TILING).returncode == 0
    before = _outputs(out, scenes[0])
    line = _refused(run_cli("infer", "run", str(oracle), str(twin), "--out", str(out)))
    assert "already holds the outputs of" in line and str(scenes[0]) in line
    assert _outputs(out, scenes[0]) == before


def test_one_scene_named_twice_and_a_folder_of_scenes(oracle, scenes, tmp_path):
    folder = scenes[0].parent
    again = folder / ".." / folder.name / scenes[1].name  # another spelling of scenes[1]
    out = tmp_path / "out"
    result = run_cli("infer", "run", str(oracle), str(folder), str(again), str(scenes[1]), "--out", str(out),
                     "--quiet", *TILING)
    assert result.returncode == 0, result.stderr
    assert _by_this_run(result.stdout) == len(scenes)
    assert sorted(_summary(out)) == [s.name for s in scenes]


def test_scenes_from_a_list_file_and_a_glob(oracle, scenes, tmp_path):
    listed = tmp_path / "scenes.txt"
    listed.write_text(f"# the first two\n{scenes[0]}\n\n{scenes[1]}\n")
    pattern = str(scenes[0].parent / "s[45].tif")
    out = tmp_path / "out"
    result = run_cli("infer", "run", str(oracle), str(listed), pattern, "--out", str(out), "--quiet", *TILING)
    assert result.returncode == 0, result.stderr
    assert sorted(_summary(out)) == ["s0.tif", "s1.tif", "s4.tif", "s5.tif"]
    line = _refused(run_cli("infer", "run", str(oracle), str(scenes[0].parent / "*.jp2"), "--out", str(out)))
    assert "no file matches" in line
    relative = tmp_path / "relative.txt"  # names relative to the current folder, as a shell would take them
    relative.write_text(f"{scenes[2].name}\n")
    line = _refused(run_cli("infer", "run", str(oracle), str(relative), "--out", str(out), cwd=tmp_path))
    assert line == f"error: scene not found: {scenes[2].name} (line 1 of {relative}, relative to the current " \
                   f"folder {tmp_path})"
    done = run_cli("infer", "run", str(oracle), str(relative), "--out", str(out), "--quiet", *TILING,
                   cwd=scenes[2].parent)
    assert done.returncode == 0 and "s2.tif" in _summary(out), done.stderr


@pytest.mark.parametrize("what", ["missing", "empty folder"])
def test_a_scene_that_is_not_there_stops_the_job_before_it_starts(oracle, tmp_path, what):
    scene = tmp_path / "nothing.tif"
    if what == "empty folder":
        scene = tmp_path / "empty"
        scene.mkdir()
    out = tmp_path / "out"
    line = _refused(run_cli("infer", "run", str(oracle), str(scene), "--out", str(out)))
    assert str(scene) in line
    assert not out.exists()


def test_a_rerun_made_otherwise_is_refused_before_any_work_and_a_copy_of_the_model_is_the_same(oracle, scenes,
                                                                                               tmp_path):
    """A done scene is skipped only by a run that would write the same: same model bytes, same settings."""
    out = tmp_path / "out"
    assert run_cli("infer", "run", str(oracle), str(scenes[0]), "--out", str(out), "--quiet", *TILING).returncode == 0
    before = _outputs(out, scenes[0])
    line = _refused(run_cli("infer", "run", str(oracle), str(scenes[0]), "--out", str(out), *TILING, "--score", "0.6"))
    assert f"holds {scenes[0].name} done with other settings: --score 0.3 (this run: 0.6)" in line
    line = _refused(run_cli("infer", "run", str(oracle), *map(str, scenes[:2]), "--out", str(out), "--tile", "512",
                            "--overlap", "64"))
    assert "--tile 256 (this run: 512)" in line
    other = write_oracle(tmp_path / "other.onnx", overlap=96)  # another file, whatever its outputs would be
    assert f"holds {scenes[0].name} done with another model" in _refused(
        run_cli("infer", "run", str(other), str(scenes[0]), "--out", str(out), *TILING))
    assert _outputs(out, scenes[0]) == before and not (out / f"{scenes[1].stem}.geojson").exists()
    copy = tmp_path / "elsewhere" / "model.onnx"
    copy.parent.mkdir()
    copy.write_bytes(oracle.read_bytes())
    result = run_cli("infer", "run", str(copy), str(scenes[0]), "--out", str(out), "--quiet", *TILING)
    assert result.returncode == 0 and _by_this_run(result.stdout) == 0, result.stderr
    for path in out.glob(f"{scenes[0].stem}*"):  # as the refusal says: its outputs deleted, it is done again
        path.unlink()
    result = run_cli("infer", "run", str(oracle), str(scenes[0]), "--out", str(out), "--quiet", *TILING,
                     "--score", "0.6")
    assert result.returncode == 0 and _by_this_run(result.stdout) == 1, result.stderr
    assert _summary(out)[scenes[0].name]["settings"]["score"] == 0.6


@pytest.mark.parametrize("damage", ["cut_short", "scenes_not_a_list", "entry_without_outputs"])
def test_a_damaged_summary_is_neither_replaced_by_a_run_nor_a_traceback_for_its_readers(oracle, scenes, tmp_path,
                                                                                        damage):
    """A summary is written whole, so one that cannot be read was damaged by hand or another tool: a run
    refuses to replace the record of the scenes it holds, and report, sites and diff say which file."""
    out = tmp_path / "out"
    assert run_cli("infer", "run", str(oracle), str(scenes[0]), "--out", str(out), "--quiet", *TILING).returncode == 0
    summary = out / "summary.json"
    text = summary.read_text()
    damaged = {"cut_short": text[: len(text) // 2], "scenes_not_a_list": '{"scenes": {}}',
               "entry_without_outputs": text.replace('"outputs"', '"outputz"')}[damage]
    summary.write_text(damaged)
    line = _refused(run_cli("infer", "run", str(oracle), str(scenes[1]), "--out", str(out), "--quiet", *TILING))
    assert line.startswith(f"error: {summary}") and line.endswith("repair it, or move it away to start afresh")
    assert summary.read_text() == damaged and not (out / f"{scenes[1].stem}.geojson").exists()
    for command in (["report", str(out)], ["sites", str(out), "--out", str(tmp_path / "sites")],
                    ["diff", str(out), str(out / f"{scenes[0].stem}.geojson"), "--out", str(tmp_path / "diff")]):
        result = run_cli("infer", *command)
        assert result.returncode in (1, 2) and result.stderr.startswith(f"error: {summary}"), result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
