"""Scenes of a batch job in one process: claim, skip what is done, run, record.

The one place the per-scene rules of a job live (docs/batch-jobs.md), used by
`infer run` in its own process and by each Ray worker (`infer.runtime.ray_job`):
a scene is claimed before it is run (runs and workers may share the output
folder), skipped when an earlier run finished it, and recorded in the merged
summary, with the worker that did it, whatever happened.

A scene's outputs (vectors, mask COG, pictures: about a third of a scene's
time when the model is fast) are written in a thread of their own while the
next scene is read and run (docs/design.md, decision 12); the scene keeps its
claim until they stand and it is recorded. One scene is written at a time.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infer.runtime.claims import scene_claim
from infer.runtime.decoder import start_pool
from infer.runtime.model import OnnxModel
from infer.runtime.options import RunOptions
from infer.runtime.pipeline import detect_scene, write_scene
from infer.runtime.runfolder import (
    is_done,
    other_settings,
    previous_entries,
    run_settings,
    update_summary,
)


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


@dataclass
class _Writing:
    """A detected scene whose outputs are being written, and the claim it holds until they are."""

    scene: Path
    claim: ExitStack
    written: Future


class SceneJob:
    """Runs scenes of one output folder with one model, each claimed first, the summary merged after each."""

    def __init__(self, model: OnnxModel, out: Path, options: RunOptions, summary: Path) -> None:
        self.model, self.out, self.options, self.summary = model, out, options, summary
        self.settings = run_settings(model.sha256, options.resolve(model.info))
        self.pools = DecodePools(options.workers)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="scene-writer")
        self._writing: _Writing | None = None

    def close(self) -> None:
        """Finish the scene being written (its outputs and its summary entry: a job interrupted while it
        detects the next one loses nothing of it), then stop."""
        try:
            if self._writing is not None:
                self._finish()
        finally:
            self._writer.shutdown()
            self.pools.close()

    def run(self, scenes: Iterable[Path], report: Callable[[SceneOutcome], None] = lambda outcome: None
            ) -> list[SceneOutcome]:
        """Every scene, each outcome also given to `report` as it comes: scenes another process holds are
        left to the end, then waited for. Each scene's outputs are written while the next one is detected."""
        outcomes, held_elsewhere = [], []

        def settle(outcome: SceneOutcome) -> None:
            outcomes.append(outcome)
            report(outcome)

        def step(scene: Path, wait: bool) -> bool:
            if wait and self._writing is not None:  # never wait for a claim while holding one: two runs
                settle(self._finish())  # each waiting for the other's would wait forever
            started = self._start(scene, wait)
            if self._writing is not None:
                settle(self._finish())
            if isinstance(started, SceneOutcome):
                settle(started)
            elif isinstance(started, _Writing):
                self._writing = started
            return started is not None

        for scene in scenes:
            if not step(scene, wait=False):
                held_elsewhere.append(scene)
        for scene in held_elsewhere:
            step(scene, wait=True)
        if self._writing is not None:
            settle(self._finish())
        return outcomes

    def claimed(self, scene: Path, wait: bool) -> SceneOutcome | None:
        """`scene` run under its claim, its outputs written before this returns; None when another process
        holds it and `wait` is False."""
        started = self._start(scene, wait)
        if isinstance(started, _Writing):
            self._writing = started
            return self._finish()
        return started

    def _start(self, scene: Path, wait: bool) -> SceneOutcome | _Writing | None:
        """Claim `scene` and detect it, its writing handed to the writer thread (a `_Writing`, which holds the
        claim from then on); or what became of it when there is nothing to write (skipped, failed); None when
        another process holds it."""
        with ExitStack() as claim:
            if not claim.enter_context(scene_claim(self.out, scene, wait=wait)):
                return None
            previous = previous_entries(self.summary).get(str(scene), {})
            if how := other_settings(self.out, previous, self.settings):  # done meanwhile by a run made otherwise
                return SceneOutcome(scene, "failed", {"scene": str(scene), "status": "failed",
                                                      "error": f"done by another run with {how}; left as it is"})
            if is_done(self.out, scene, self.model.info, self.options.outputs) and previous.get("status") == "done":
                return SceneOutcome(scene, "skipped")
            try:
                detected = detect_scene(self.model, scene, self.out, self.options, pool=self.pools.current)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # a bad scene is recorded and skipped, never fatal to the batch
                return self._record(scene, None, exc)
            try:
                written = self._writer.submit(write_scene, detected)
            except BaseException:
                detected.abort()
                raise
            return _Writing(scene, claim.pop_all(), written)

    def _finish(self) -> SceneOutcome:
        """Wait for the scene being written, record it and let its claim go."""
        writing, self._writing = self._writing, None
        with writing.claim:
            try:
                entry = writing.written.result()
            except Exception as exc:  # a scene whose outputs failed (a full disk) is recorded as failed
                return self._record(writing.scene, None, exc)
            return self._record(writing.scene, entry, None)

    def _record(self, scene: Path, entry: dict[str, Any] | None, failure: Exception | None) -> SceneOutcome:
        """Put the scene's entry (or its failure) in the summary; its outcome. Called under its claim."""
        if failure is not None:
            if isinstance(failure, BrokenProcessPool):
                message = "a decoding worker process died (killed, or out of memory?); workers restarted"
                self.pools.restart()
            else:
                message = str(failure).splitlines()[0] if str(failure) else type(failure).__name__
            entry = {"scene": str(scene), "status": "failed", "error": message}
        entry["worker"] = worker_name()
        if entry["status"] == "done":
            entry["settings"] = self.settings
        update_summary(self.summary, {str(scene): entry})
        return SceneOutcome(scene, entry["status"], entry)


__all__ = ["DecodePools", "SceneJob", "SceneOutcome", "worker_name"]
