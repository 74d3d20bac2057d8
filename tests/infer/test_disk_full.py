"""A full disk: one line naming the file, exit 1, no final-named output of the failed scene, no partials.

A real full file system: a small tmpfs mounted by the test (root only; skipped elsewhere, with the reason).
"""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

from infer.errors import OutputError
from infer.files import LOCK_FOLDER, write_text_atomic
from infer.runtime.maskwriter import MaskWriter
from infer.runtime.reader import open_grid
from infer.runtime.tiling import Tile
from synth.cli import main as synth_main
from tests.helpers import run_cli
from tests.infer.oracle import plant, write_oracle, write_scene


@pytest.fixture
def small_disk(tmp_path, request):
    """A tmpfs of 400 kB (or the size a test gives as its indirect parameter)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    size = getattr(request, "param", "400k")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip() or 'mount failed'}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_a_full_disk_fails_the_write_in_one_line_and_keeps_the_old_file(small_disk):
    target = write_text_atomic(small_disk / "summary.json", "old\n")
    with pytest.raises(OutputError, match=r"cannot write .*summary.json: No space left on device"):
        write_text_atomic(target, "x" * 1_000_000)
    assert target.read_text() == "old\n" and sorted(p.name for p in small_disk.iterdir()) == ["summary.json"]


def test_a_scene_that_fills_the_disk_fails_alone_and_leaves_nothing(small_disk, tmp_path):
    model = write_oracle(tmp_path / "oracle.onnx")
    pixels = plant(1024, 1024, [(102, 102)], [(300, 20, 310, 1000)])
    pixels[2] = np.random.default_rng(0).integers(0, 256, (1024, 1024))  # noise the oracle ignores: a big overview
    scene = write_scene(tmp_path / "big.tif", pixels)
    out = small_disk / "out"
    result = run_cli("infer", "run", str(model), str(scene), "--out", str(out), "--quiet", "--tile", "256",
                     "--overlap", "64")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0] and "big" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    left = sorted(p.name for p in out.iterdir() if p.name != LOCK_FOLDER)
    assert left == ["summary.json"], left  # neither a final-named output of the scene nor a partial file
    entry = json.loads((out / "summary.json").read_text())["scenes"][0]
    assert entry["status"] == "failed" and "No space left on device" in entry["error"]


@pytest.mark.parametrize("small_disk", ["300k"], indirect=True)
def test_a_mask_whose_copy_fills_the_disk_is_one_line_saying_so(small_disk, tmp_path, capfd):
    """The mask's working file fits, its COG does not: GDAL's copy fails with libtiff's "Seek error at
    scanline", which names no reason. The error names the mask and the full disk, and leaves no part.
    libtiff prints nothing itself (it printed "_tiffSeekProc: No space left on device." lines to stderr,
    ahead of a command's one line)."""
    scene = write_scene(tmp_path / "noise.tif", np.zeros((3, 1024, 1024), np.uint8))
    masks = MaskWriter(small_disk / "noise_mask.tif", open_grid(scene, 3, 0.5), ["#00bfff", "#bf40ff"])
    noise = np.random.default_rng(0).integers(0, 3, (1024, 1024), dtype=np.uint8)  # 1.6 bits a pixel
    masks.write_core(Tile(0, 0, 1024, 1024, (0, 0, 1024, 1024)), noise)
    with pytest.raises(OutputError) as raised:
        masks.finish()
    assert str(raised.value).startswith(f"cannot write {small_disk / 'noise_mask.tif'}: No space left on device (")
    masks.abort()
    assert [p.name for p in small_disk.iterdir()] == []
    assert capfd.readouterr().err == ""


def test_the_generator_on_a_full_disk_exits_1_naming_the_scene_and_leaves_nothing(small_disk):
    result = run_cli("synth", "--out", str(small_disk / "scenes"), "--size", "1024", "--quiet")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: cannot write {small_disk / 'scenes' / 'scene_000.tif'}: No space left on device"]
    assert list((small_disk / "scenes").iterdir()) == []


def test_chips_and_a_slimmed_checkpoint_on_a_full_disk_exit_1_in_one_line_and_leave_no_part(small_disk, tmp_path):
    """`train chips` wrote each chip under its final name and `train slim` let torch's RuntimeError through."""
    pytest.importorskip("torch")  # the training side: not on an inference node
    made = run_cli("synth", "--out", str(tmp_path / "scenes"), "--size", "1024", "--seed", "3", "--quiet")
    assert made.returncode == 0, made.stderr
    chips = run_cli("train", "chips", str(tmp_path / "scenes" / "scene_000.tif"),
                    str(tmp_path / "scenes" / "scene_000.geojson"), "--out", str(small_disk / "chips"))
    slim = run_cli("train", "slim", "checkpoints/reference.ckpt", "--out", str(small_disk / "slim.ckpt"))
    for result, target in ((chips, "chips/images/scene_000_"), (slim, "slim.ckpt")):
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: cannot write {small_disk / target}"), last
        assert ": No space left on device" in last, last
    left = [p for p in small_disk.rglob("*") if p.is_file()]
    assert left == [], left  # no chip, checkpoint or temporary file under any name


@pytest.mark.parametrize("small_disk", ["600k"], indirect=True)
def test_a_set_of_outputs_that_fills_the_disk_leaves_the_earlier_set_whole(small_disk, tmp_path):
    """`infer track` writes a dozen files; rerun on other dates with the disk too full for them, it fails in one
    line and every file of the earlier run is as it was: not its first GeoJSONs replaced and the rest old.
    (Its new files are written beside the old ones until all stand, so they need room for a second set.)"""
    assert synth_main(["--out", str(tmp_path / "s"), "--size", "1024", "--dates", "3", "--quiet"]) == 0
    dates = [str(tmp_path / "s" / name) for name in ("scene_000.geojson", "scene_000_t2.geojson",
                                                       "scene_000_t3.geojson")]
    out = small_disk / "track"
    assert run_cli("infer", "track", *dates, "--out", str(out)).returncode == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert len(before) > 10
    room = os.statvfs(small_disk)
    (small_disk / "filler").write_bytes(b"x" * (room.f_bavail * room.f_frsize - 60_000))  # 60 kB left: the
    # GeoJSONs fit, the GeoPackage (170 kB) does not
    result = run_cli("infer", "track", *dates[:2], "--out", str(out))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0], result.stderr
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after.keys() == before.keys() and all(after[k] == before[k] for k in before)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [LOCK_FOLDER]  # no staging folder left
