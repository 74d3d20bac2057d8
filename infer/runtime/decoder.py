"""Per-tile decoding, in a thread beside the model or in worker processes, its results handed back in tile order.

docs/design.md, decision 12.

Decoding a tile's regions (threshold, closing, pieces and their outlines)
depends on that tile alone and is most of a tile's CPU work, so N worker
processes decode N tiles at once while the model runs the next batch.
Objects are decoded on the calling thread (a few peaks, cheap). Results come
back in the order the tiles went in, so the scene is stitched exactly as
one process would stitch it, whatever decoded it.

A tile's masks (or the class map and scores of a graph that decoded its
regions) travel to a worker through shared memory (one copy, no pickling
of megabytes); the worker returns the core's class map and its pieces. Workers are started with `spawn`, not `fork`: the parent holds ONNX
Runtime's and GDAL's threads and locks, which a forked child would inherit
mid-use. With one worker it is a thread of this process, which takes the
arrays as they are: numpy, OpenCV, SciPy and GDAL release the GIL, so it decodes
one batch while ONNX Runtime runs the next. As with any `spawn` pool, a script that runs scenes with workers
must guard its entry point with `if __name__ == "__main__":`.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.shared_memory import SharedMemory

import numpy as np
import shapely

from infer.runtime.options import ResolvedOptions
from infer.runtime.stitch import RegionMaps, TileResult, core_objects, core_regions
from infer.runtime.tiling import Tile

#: How often an idle worker looks for its parent, seconds.
PARENT_CHECK_S = 0.5

RegionResult = tuple[np.ndarray, list[tuple[int, shapely.Geometry, float, float]]]


def available_cores() -> int:
    """Cores this process may run on (its affinity, which containers and schedulers set), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def start_pool(workers: int) -> Executor:
    """A pool of `workers` decoding processes, or for one worker a single decoding thread.

    One thread is right when the model takes every core (ONNX Runtime on a CPU): it fills the cores
    ONNX Runtime leaves idle between its operators (its threads sleep there: `SESSION_CONFIG`)
    without a second copy of each tile's outputs.
    """
    if workers <= 1:
        return ThreadPoolExecutor(1, thread_name_prefix="sitewatch-decode")
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_exit_with_parent, initargs=(os.getpid(),))


def _exit_with_parent(parent: int) -> None:
    """In a worker: end when the run that started it is gone (a SIGKILL gives it no chance to stop its
    pool, and an idle worker would otherwise wait on its queue forever)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


@dataclass
class _Pending:
    tile: Tile
    objects: tuple[np.ndarray, np.ndarray, np.ndarray]
    regions: Future | RegionResult
    memory: SharedMemory | None = None

    def done(self) -> bool:
        return not isinstance(self.regions, Future) or self.regions.done()

    def result(self) -> TileResult:
        try:
            regions = self.regions.result() if isinstance(self.regions, Future) else self.regions
        finally:
            self.release()
        return TileResult(self.tile, *self.objects, *regions)

    def release(self) -> None:
        if self.memory is not None:
            self.memory.close()
            self.memory.unlink()
            self.memory = None


class TileDecoder:
    """Takes tiles' model outputs with `submit`, gives `TileResult`s back in submission order.

    `pool`: worker processes or one thread (`start_pool`); a tile without regions is decoded in `submit`. At most two
    batches, or two tiles per worker, are in flight; `ready` waits for the oldest beyond that, so
    memory stays bounded.
    """

    def __init__(self, options: ResolvedOptions, stride: int, pool: Executor) -> None:
        self.options, self.stride, self.pool = options, stride, pool
        self.ahead = 2 * max(options.workers, options.batch)
        self._pending: deque[_Pending] = deque()

    def submit(self, tile: Tile, valid: np.ndarray, heatmap: np.ndarray | None, box: np.ndarray | None,
               regions: np.ndarray | RegionMaps | None) -> None:
        """One tile's outputs (None for a kind the model has no classes of); `regions` is its (R, h, w)
        mask or the maps of a graph that decoded it (see `core_regions`)."""
        objects = core_objects(self.options, self.stride, tile, heatmap, box, valid)
        if regions is None:
            self._pending.append(_Pending(tile, objects, core_regions(self.options, tile, valid, regions)))
            return
        if isinstance(self.pool, ThreadPoolExecutor):  # shares this process's memory: no copy
            self._pending.append(_Pending(tile, objects, self.pool.submit(core_regions, self.options, tile, valid,
                                                                          regions)))
            return
        decoded = isinstance(regions, RegionMaps)
        arrays = [regions.classes, regions.scores] if decoded else [regions, valid]
        memory = SharedMemory(create=True, size=sum(a.nbytes for a in arrays))
        specs, offset = [], 0
        for array in arrays:
            np.ndarray(array.shape, array.dtype, buffer=memory.buf, offset=offset)[...] = array
            specs.append((array.shape, array.dtype.str, offset))
            offset += array.nbytes
        try:
            future = self.pool.submit(_regions_from_shared, self.options, tile, memory.name, specs, decoded)
        except BaseException:  # a broken pool refuses work: the block is freed, not leaked
            memory.close()
            memory.unlink()
            raise
        self._pending.append(_Pending(tile, objects, future, memory))

    def ready(self) -> Iterator[TileResult]:
        """Results whose turn has come: every finished one at the head, and the oldest while too many wait."""
        while self._pending and (len(self._pending) > self.ahead or self._pending[0].done()):
            yield self._pending.popleft().result()

    def rest(self) -> Iterator[TileResult]:
        """Every result still to come, in order, waiting for each."""
        while self._pending:
            yield self._pending.popleft().result()

    def cancel(self) -> None:
        """Drop what is in flight (after a failure) and free its shared memory."""
        for item in self._pending:
            if isinstance(item.regions, Future):
                item.regions.cancel()
            item.release()
        self._pending.clear()


def _regions_from_shared(options: ResolvedOptions, tile: Tile, name: str,
                         specs: list[tuple[tuple[int, ...], str, int]], decoded: bool) -> RegionResult:
    """In a worker: `core_regions` of what the parent put in shared memory `name`, arrays of (shape, dtype,
    offset) `specs`: the mask and valid pixels, or a decoding graph's class map and scores (`decoded`)."""
    memory = SharedMemory(name=name)
    try:
        first, second = (np.ndarray(shape, np.dtype(dtype), buffer=memory.buf, offset=offset)
                         for shape, dtype, offset in specs)
        maps = RegionMaps(first, second) if decoded else None
        classes, pieces = core_regions(options, tile, None, maps) if decoded else core_regions(options, tile, second, first)
        classes = np.array(classes)  # a view of the shared block when it is the maps' own core: copied out
        del first, second, maps
        return classes, pieces
    finally:
        memory.close()


__all__ = ["TileDecoder", "available_cores", "start_pool"]
