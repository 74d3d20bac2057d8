"""How a scene is run: the options a user gives, checked once against the model that will run them.

`infer run` and `infer diff --model` build a `RunOptions` from their flags
and call `resolve` before any work starts, so a bad value is one line and
exit code 2 (docs/design.md, decision 9), whichever command took it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infer.contract.defaults import DEFAULT_SCORE, MASK_THRESHOLD, REGION_CLOSING_M
from infer.contract.schema import INPUT_MULTIPLE, ModelInfo
from infer.errors import UsageError
from infer.runtime.runfolder import OUTPUT_SUFFIXES, RECORD_OUTPUT

#: Closing looks up to two radii around a pixel, and a tile's core lies overlap / 2 inside it.
CLOSING_RADII_PER_OVERLAP = 4


@dataclass(frozen=True)
class ResolvedOptions:
    """Run options with the model's recommendations filled in and every value checked; pixels of the model grid."""

    tile: int
    overlap: int
    batch: int
    score: float
    mask_threshold: float
    closing_px: float
    reader_threads: int
    progress: bool
    workers: int
    min_area_px: tuple[float, ...]  # per region class: smaller pieces are not reported
    max_objects: int  # per tile, the highest scores
    axis_aligned: tuple[bool, ...]  # per object class: boxes without an axis (`ClassInfo.oriented` False)
    outputs: tuple[str, ...]  # the kinds of `OUTPUT_SUFFIXES` each scene gets


@dataclass(frozen=True)
class RunOptions:
    """What a user may set for a run; None means the model's recommendation."""

    tile: int | None = None
    overlap: int | None = None
    batch: int = 4
    score: float = DEFAULT_SCORE
    mask_threshold: float | None = None  # None: the graph's when it decodes its regions, else MASK_THRESHOLD
    region_closing_m: float | None = None  # metres, 0: masks as thresholded; None as for mask_threshold
    reader_threads: int = 2
    progress: bool = True
    workers: int = 1  # decoding processes; 1: one decoding thread beside the model
    min_area_m2: tuple[tuple[str, float], ...] = ()  # (region class, m²) overriding the model's own
    max_objects: int | None = None  # per tile; None: `most_objects(tile, stride, classes)`
    outputs: tuple[str, ...] = tuple(OUTPUT_SUFFIXES)  # which outputs each scene gets; RECORD_OUTPUT always

    def resolve(self, info: ModelInfo) -> ResolvedOptions:
        """The options for `info`'s model; `UsageError` naming the flag for the first bad value."""
        tile = info.tile if self.tile is None else self.tile
        overlap = info.overlap if self.overlap is None else self.overlap
        if self.batch < 1:
            raise UsageError(f"--batch must be at least 1, got {self.batch}")
        if not (math.isfinite(self.score) and 0 <= self.score <= 1):
            raise UsageError(f"--score must be between 0 and 1, got {self.score:g}")
        mask_threshold, closing_m = self.region_decoding(info)
        if not (math.isfinite(mask_threshold) and 0 <= mask_threshold < 1):
            raise UsageError(f"mask threshold must lie in [0, 1), got {mask_threshold:g}")
        if tile <= 0 or tile % INPUT_MULTIPLE:
            raise UsageError(f"--tile must be a positive multiple of {INPUT_MULTIPLE}, got {tile}")
        if not 0 <= overlap < tile:
            raise UsageError(f"--overlap must be at least 0 and less than the tile ({tile}), got {overlap}")
        if not (math.isfinite(closing_m) and closing_m >= 0):
            raise UsageError(f"--region-closing must be >= 0 metres, got {closing_m:g}")
        closing_px = closing_m / info.gsd_m
        if CLOSING_RADII_PER_OVERLAP * closing_px > overlap:
            raise UsageError(f"--region-closing of {closing_m:g} m needs an overlap of at least "
                             f"{math.ceil(CLOSING_RADII_PER_OVERLAP * closing_px)} px, got {overlap}")
        if self.reader_threads < 1:
            raise UsageError(f"reader threads must be at least 1, got {self.reader_threads}")
        if self.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {self.workers}")
        min_area = {c.name: c.min_area_m2 for c in info.region_classes}
        for name, value in self.min_area_m2:
            if name not in min_area:
                raise UsageError(f"--min-area: {name} is not a region class of this model "
                                 f"(region classes: {', '.join(min_area) or 'none'})")
            if not (math.isfinite(value) and value >= 0):
                raise UsageError(f"--min-area {name}: must be a finite number of m² >= 0, got {value:g}")
            min_area[name] = value
        if self.max_objects is not None and self.max_objects < 1:
            raise UsageError(f"--max-objects must be at least 1, got {self.max_objects}")
        unknown = [kind for kind in self.outputs if kind not in OUTPUT_SUFFIXES]
        if unknown or RECORD_OUTPUT not in self.outputs:
            raise UsageError(f"--outputs: {f'no output {unknown[0]!r}' if unknown else f'{RECORD_OUTPUT} is missing'}; "
                             f"give some of {', '.join(OUTPUT_SUFFIXES)}, always with {RECORD_OUTPUT} (each scene's "
                             "record, which reruns, diff and report read)")
        max_objects = most_objects(tile, info.stride, len(info.object_classes)) if self.max_objects is None \
            else self.max_objects
        return ResolvedOptions(tile, overlap, self.batch, self.score, mask_threshold, closing_px,
                               self.reader_threads, self.progress, self.workers,
                               tuple(v / info.gsd_m**2 for v in min_area.values()), max_objects,
                               tuple(not c.oriented for c in info.object_classes),
                               tuple(kind for kind in OUTPUT_SUFFIXES if kind in self.outputs))


    def region_decoding(self, info: ModelInfo) -> tuple[float, float]:
        """(mask threshold, closing radius in metres) of the run: what was asked, else the graph's when it
        decodes its regions (`ModelInfo.region_decode`), else the defaults. A graph that decodes its
        regions cannot decode them otherwise: asking for another value is a `UsageError`."""
        decode = info.region_decode
        if decode is None:
            return (MASK_THRESHOLD if self.mask_threshold is None else self.mask_threshold,
                    REGION_CLOSING_M if self.region_closing_m is None else self.region_closing_m)
        for flag, asked, fixed, unit in (("mask threshold", self.mask_threshold, decode.threshold, ""),
                                         ("--region-closing", self.region_closing_m, decode.closing_m, " m")):
            if asked is not None and asked != fixed:
                raise UsageError(f"{flag} {asked:g}{unit}: this model decodes its regions in its graph at "
                                 f"{fixed:g}{unit}; export it without --regions-in-graph to choose at run time")
        return decode.threshold, decode.closing_m


def most_objects(tile: int, stride: int, object_classes: int) -> int:
    """The most objects a tile's outputs can hold: peaks survive 3 x 3 suppression at most one per 2 x 2
    output cells, per class. The default cap, so that no dense stand is cut short (a cap of 500 kept 497
    of a stand of trees at 0.1 m); a smaller `--max-objects` bounds the work of a noisy model."""
    cells = -(-tile // stride)
    return max(1, object_classes) * (-(-cells // 2)) ** 2


__all__ = ["CLOSING_RADII_PER_OVERLAP", "ResolvedOptions", "RunOptions", "most_objects"]
