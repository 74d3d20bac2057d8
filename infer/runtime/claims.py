"""Locks that let several runs share one output folder: a claim per scene, and one for the summary.

A batch scheduler starts duplicates (a retry, a requeued array task), so two
`infer run` processes may work in one `--out` at once. Each scene is done by
whoever claims it first; the other goes on with the rest and comes back to
it at the end, when it finds it done (or claims it, if its holder died).

A claim is an exclusive `flock` on a file under `OUT/.sitewatch/` (`locked`):
the kernel drops it when the process ends, however it ends, so a dead run's
claim never blocks anyone.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

from infer.files import lock_path, locked
from infer.runtime.scenes import scene_stem


def scene_claim(out_dir: Path, scene: Path, wait: bool) -> AbstractContextManager[bool]:
    """The claim on `scene`'s outputs in `out_dir` (see `locked`): held by one process at a time."""
    return locked(lock_path(out_dir, scene_stem(scene)), wait)


__all__ = ["scene_claim"]
