"""`infer.files`: outputs appear whole or not at all, and what a killed writer left is cleaned up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from infer.errors import OutputError
from infer.files import (
    LOCK_FOLDER,
    atomic_write,
    lock_path,
    locked,
    output_set,
    partial_path,
    remove_stale_partials,
    write_text_atomic,
)


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


def test_a_set_of_outputs_appears_together_and_a_killed_ones_folder_is_cleared(tmp_path):
    write_text_atomic(tmp_path / "a.txt", "old a\n")
    write_text_atomic(tmp_path / "b.txt", "old b\n")
    with pytest.raises(RuntimeError), output_set(tmp_path) as staged:
        write_text_atomic(staged / "a.txt", "new a\n")
        raise RuntimeError("the second file could not be made")
    assert [(tmp_path / n).read_text() for n in ("a.txt", "b.txt")] == ["old a\n", "old b\n"]
    with output_set(tmp_path) as staged:
        write_text_atomic(staged / "a.txt", "new a\n")
        (staged / "charts").mkdir()
        write_text_atomic(staged / "charts" / "c.txt", "new c\n")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
                  if p.is_file() and LOCK_FOLDER not in p.parts) == ["a.txt", "b.txt", "charts/c.txt"]
    assert (tmp_path / "a.txt").read_text() == "new a\n" and (tmp_path / "charts" / "c.txt").read_text() == "new c\n"

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = tmp_path / f".outputs.{socket.gethostname()}-{dead.stdout.strip()}.partial"
    (killed / "charts").mkdir(parents=True)
    (killed / "charts" / "c.txt").write_text("half")
    with output_set(tmp_path):
        pass
    assert not killed.exists()


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT"])
def test_a_stop_asked_for_while_a_set_moves_comes_once_the_set_stands(tmp_path, stop):
    """A scheduler's SIGTERM or a Ctrl-C that lands between two of a set's renames (sent here by the first
    rename itself) used to leave the first file new and the others old; now the process stops after the
    last, as the signal asks: SIGTERM ends it, Ctrl-C raises KeyboardInterrupt there."""
    for name in ("a.txt", "b.txt", "c.txt"):
        write_text_atomic(tmp_path / name, "old")
    script = ("import os, signal, sys; from pathlib import Path; from infer.files import output_set, write_text_atomic\n"
              # as in a terminal: a job started in the background (CI's) inherits SIGINT ignored
              "signal.signal(signal.SIGINT, signal.default_int_handler); signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
              "rename = os.replace\n"
              "def replace(source, target):\n"
              "    rename(source, target)\n"
              "    if '.outputs.' in str(source) and '.outputs.' not in str(target):  # a move out of the set's folder\n"
              f"        os.kill(os.getpid(), signal.{stop})\n"
              "os.replace = replace\n"
              "with output_set(Path(sys.argv[1])) as staged:\n"
              "    for name in ('a.txt', 'b.txt', 'c.txt'):\n"
              "        write_text_atomic(staged / name, 'new')\n"
              "print('after the set')\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert [(tmp_path / name).read_text() for name in ("a.txt", "b.txt", "c.txt")] == ["new"] * 3, done.stderr
    assert "after the set" not in done.stdout
    if stop == "SIGTERM":
        assert done.returncode == -signal.SIGTERM
    else:
        assert done.returncode != 0 and "KeyboardInterrupt" in done.stderr


def test_two_runs_move_their_sets_into_one_folder_one_after_the_other(tmp_path):
    """While one run moves its set (here: this test holding the folder's lock), another run's set waits, whole,
    and appears once the first is done: the folder never holds a mix of two sets."""
    script = ("import sys; from pathlib import Path; from infer.files import output_set, write_text_atomic\n"
              "with output_set(Path(sys.argv[1])) as staged:\n"
              "    write_text_atomic(staged / 'a.txt', 'second a'); write_text_atomic(staged / 'b.txt', 'second b')\n"
              "    print('staged', flush=True)\n")
    with locked(lock_path(tmp_path, "outputs")):
        second = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        assert second.stdout.readline() == "staged\n"
        try:
            second.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        assert second.returncode is None and not (tmp_path / "a.txt").exists()
        write_text_atomic(tmp_path / "a.txt", "first a")
        write_text_atomic(tmp_path / "b.txt", "first b")
    assert second.wait(timeout=30) == 0
    assert [(tmp_path / n).read_text() for n in ("a.txt", "b.txt")] == ["second a", "second b"]
