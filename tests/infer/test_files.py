"""`infer.files`: outputs appear whole or not at all, and what a killed writer left is cleaned up."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from infer.errors import OutputError
from infer.files import atomic_write, partial_path, remove_stale_partials, write_text_atomic


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = write_text_atomic(tmp_path / "out.txt", "old\n")
    with pytest.raises(OutputError, match=r"cannot write .*out.txt: disk full"), atomic_write(target) as temporary:
        temporary.write_text("half of the new")
        raise OSError("disk full")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_the_temporary_is_hidden_beside_the_target_and_names_its_writer(tmp_path):
    with atomic_write(tmp_path / "scene.geojson", suffix=".tif") as temporary:
        assert temporary.parent == tmp_path and temporary.name.startswith(".scene.geojson.")
        assert f"{socket.gethostname()}-{os.getpid()}" in temporary.name and temporary.suffix == ".tif"
        temporary.write_text("new")
        assert not (tmp_path / "scene.geojson").exists()
    assert (tmp_path / "scene.geojson").read_text() == "new"


def test_only_partials_of_dead_writers_on_this_machine_are_removed(tmp_path):
    target = tmp_path / "scene_mask.tif"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    stale = tmp_path / f".scene_mask.tif.{host}-{dead.stdout.strip()}.partial.tif"
    mine = partial_path(target, ".tif")
    elsewhere = tmp_path / f".scene_mask.tif.another-node-{dead.stdout.strip()}.partial"
    other_scene = tmp_path / f".scene2_mask.tif.{host}-{dead.stdout.strip()}.partial"
    for path in (stale, mine, elsewhere, other_scene):
        path.write_text("x")
    assert remove_stale_partials(target) == 1
    assert not stale.exists() and mine.exists() and elsewhere.exists() and other_scene.exists()
