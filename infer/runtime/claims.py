"""Locks that let several runs share one output folder: a claim per scene, and one for the summary.

A batch scheduler starts duplicates (a retry, a requeued array task), so two
`infer run` processes may work in one `--out` at once. Each scene is done by
whoever claims it first; the other goes on with the rest and comes back to
it at the end, when it finds it done (or claims it, if its holder died).

A claim is an exclusive `flock` on a file under `OUT/.sitewatch/`. The
kernel drops it when the process ends, however it ends (a kill, a crash), so
a dead run's claim never blocks anyone. The lock files stay where they are:
unlinking a file another process may be waiting on would let two processes
hold locks on two different files.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from infer.errors import OutputError
from infer.runtime.scenes import scene_stem

LOCK_FOLDER = ".sitewatch"


def lock_path(out_dir: Path, name: str) -> Path:
    """The lock file for `name` (a scene's stem, or a summary's file name) in `out_dir`."""
    return out_dir / LOCK_FOLDER / "locks" / f"{name}.lock"


@contextmanager
def locked(path: Path, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on `path` for the block; yields False (and holds nothing) when `wait` is
    False and another process holds it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise OutputError(f"cannot create the lock file {path}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


def scene_claim(out_dir: Path, scene: Path, wait: bool) -> AbstractContextManager[bool]:
    """The claim on `scene`'s outputs in `out_dir` (see `locked`): held by one process at a time."""
    return locked(lock_path(out_dir, scene_stem(scene)), wait)


__all__ = ["LOCK_FOLDER", "lock_path", "locked", "scene_claim"]
