"""Scenes of a batch job in one process: claim, skip what is done, run, record.

The one place the per-scene rules of a job live (docs/batch-jobs.md), used by
`infer run` in its own process and by each Ray worker (`infer.runtime.ray_job`):
a scene is claimed before it is run (runs and workers may share the output
folder), skipped when an earlier run finished it, and recorded in the merged
summary, with the worker that did it, whatever happened.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infer.runtime.claims import scene_claim
from infer.runtime.decoder import start_pool
from infer.runtime.model import OnnxModel
from infer.runtime.options import RunOptions
from infer.runtime.pipeline import process_scene
from infer.runtime.runfolder import is_done, previous_entries, update_summary


def worker_name() -> str:
    """Which process did a scene, as the summary records it: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


class DecodePools:
    """The decoding workers of a job, started again after one of them died (killed, out of memory)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.current = start_pool(workers)

    def restart(self) -> None:
        self.close()
        self.current = start_pool(self.workers)

    def close(self) -> None:
        if self.current is not None:
            self.current.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class SceneOutcome:
    """What became of one scene: `status` "done" (by this process), "failed", or "skipped" (done before)."""

    scene: Path
    status: str
    entry: dict[str, Any] | None = None

    @property
    def error(self) -> str | None:
        return None if self.entry is None else self.entry.get("error")


class SceneJob:
    """Runs scenes of one output folder with one model, each claimed first, the summary merged after each."""

    def __init__(self, model: OnnxModel, out: Path, options: RunOptions, summary: Path) -> None:
        self.model, self.out, self.options, self.summary = model, out, options, summary
        self.pools = DecodePools(options.workers)

    def close(self) -> None:
        self.pools.close()

    def run(self, scenes: Iterable[Path], report: Callable[[SceneOutcome], None] = lambda outcome: None
            ) -> list[SceneOutcome]:
        """Every scene, each outcome also given to `report` as it comes: scenes another process holds are
        left to the end, then waited for."""
        outcomes, held_elsewhere = [], []
        for scene in scenes:
            outcome = self.claimed(scene, wait=False)
            if outcome is None:
                held_elsewhere.append(scene)
                continue
            outcomes.append(outcome)
            report(outcome)
        for scene in held_elsewhere:
            outcomes.append(self.claimed(scene, wait=True))
            report(outcomes[-1])
        return outcomes

    def claimed(self, scene: Path, wait: bool) -> SceneOutcome | None:
        """`scene` run under its claim; None when another process holds it and `wait` is False."""
        with scene_claim(self.out, scene, wait=wait) as held:
            return self._run(scene) if held else None

    def _run(self, scene: Path) -> SceneOutcome:
        key = str(scene)
        if is_done(self.out, scene, self.model.info) and previous_entries(self.summary).get(key, {}).get("status") == "done":
            return SceneOutcome(scene, "skipped")
        try:
            entry = process_scene(self.model, scene, self.out, self.options, pool=self.pools.current)
            status = "done"
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a bad scene is recorded and skipped, never fatal to the batch
            if isinstance(exc, BrokenProcessPool):
                message = "a decoding worker process died (killed, or out of memory?); workers restarted"
                self.pools.restart()
            else:
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            entry, status = {"scene": key, "status": "failed", "error": message}, "failed"
        entry["worker"] = worker_name()
        update_summary(self.summary, {key: entry})
        return SceneOutcome(scene, status, entry)


__all__ = ["DecodePools", "SceneJob", "SceneOutcome", "worker_name"]
