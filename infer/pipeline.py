"""One scene through the model: read → normalize → batch → ONNX Runtime → decode → stitch → write.

Outputs appear only when complete (temporary names, then rename); a failure
removes what it had started. Each run reports where its time went.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from infer.contact_sheet import write_contact_sheet
from infer.decode import REGION_CLOSING_M, decode_objects
from infer.errors import InputError
from infer.geojson import write_feature_collection
from infer.maskwriter import MaskWriter
from infer.model import OnnxModel
from infer.overlay import write_overlay
from infer.reader import TileRead, TileReader, acquisition_date, open_grid
from infer.stitch import SceneObjects, ScenePieces, core_class_map
from infer.vectors import object_features, output_crs_note, region_features


@dataclass
class RunOptions:
    tile: int | None = None  # None: the model's recommendation
    overlap: int | None = None
    batch: int = 4
    score: float = 0.3
    mask_threshold: float = 0.5
    region_closing_m: float = REGION_CLOSING_M  # 0: region masks as thresholded
    reader_threads: int = 2
    progress: bool = True


@dataclass
class Timings:
    """Seconds per stage; `model` is ONNX Runtime alone."""

    read: float = 0.0
    preprocess: float = 0.0
    model: float = 0.0
    decode_stitch: float = 0.0
    write: float = 0.0
    counts: dict = field(default_factory=dict)


def output_paths(out_dir: Path, scene: Path) -> dict[str, Path]:
    stem = scene.stem
    return {"geojson": out_dir / f"{stem}.geojson", "mask": out_dir / f"{stem}_mask.tif",
            "overlay": out_dir / f"{stem}_overlay.png", "detections": out_dir / f"{stem}_detections.png"}


def is_done(out_dir: Path, scene: Path) -> bool:
    """A scene is done when all its outputs exist (each appears only when complete)."""
    return all(p.exists() for p in output_paths(out_dir, scene).values())


def _batches(reads: Iterable[TileRead], size: int, timings: Timings) -> Iterator[list[TileRead]]:
    """Group tiles with any valid pixel; all-nodata tiles are skipped unread by the model."""
    batch: list[TileRead] = []
    it = iter(reads)
    while True:
        start = time.perf_counter()
        read = next(it, None)
        timings.read += time.perf_counter() - start
        if read is None:
            break
        if not read.valid.any():
            timings.counts["skipped_nodata_tiles"] = timings.counts.get("skipped_nodata_tiles", 0) + 1
            continue
        batch.append(read)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def region_closing_px(closing_m: float, gsd_m: float, overlap: int) -> float:
    """The closing radius in model pixels; InputError unless every tile core sees all it depends on.

    Closing looks up to two radii around a pixel, and a core lies overlap / 2 inside its tile.
    """
    if closing_m < 0:
        raise InputError(f"region closing must be >= 0 metres, got {closing_m:g}")
    radius = closing_m / gsd_m
    if 4 * radius > overlap:
        raise InputError(f"region closing of {closing_m:g} m needs an overlap of at least "
                         f"{math.ceil(4 * radius)} px, got {overlap}")
    return radius


def process_scene(model: OnnxModel, scene: Path, out_dir: Path, options: RunOptions) -> dict:
    """Run one scene; returns its summary entry. Raises InputError for a scene that cannot be done."""
    info = model.info
    object_names = [c.name for c in info.object_classes]
    region_names = [c.name for c in info.region_classes]
    directional = [c.directional for c in info.object_classes]
    colors = {c.name: c.color for c in info.classes}
    tile = options.tile or info.tile
    overlap = info.overlap if options.overlap is None else options.overlap
    if tile % 32:
        raise InputError(f"tile must be a multiple of 32, got {tile}")
    grid = open_grid(scene, len(info.bands), info.gsd_m, info.dtype)
    closing_px = region_closing_px(options.region_closing_m, grid.gsd_m, overlap)
    reader = TileReader(grid, tile, overlap, threads=options.reader_threads)
    paths = output_paths(out_dir, scene)
    timings = Timings()
    started = time.perf_counter()
    masks = MaskWriter(paths["mask"], grid, [colors[n] for n in region_names])
    objects, pieces = SceneObjects(), ScenePieces()
    try:
        bar = tqdm(total=len(reader.tiles), desc=scene.name, unit="tile", leave=False, disable=not options.progress)
        for batch in _batches(reader, options.batch, timings):
            t0 = time.perf_counter()
            pixels = np.stack([r.pixels for r in batch])
            valid = np.stack([r.valid for r in batch])
            inputs = model.normalize(pixels, valid)
            t1 = time.perf_counter()
            heatmap, box, mask = model.run(inputs)
            t2 = time.perf_counter()
            cores = []
            for i, read in enumerate(batch):
                objects.add_tile(read.tile, decode_objects(heatmap[i], box[i], options.score, stride=info.stride))
                mask[i][:, ~read.valid] = 0.0
                classes = core_class_map(mask[i], read.tile, options.mask_threshold, closing_px, read.valid)
                r0, c0, r1, c1 = read.tile.core
                core_probs = mask[i][:, r0 - read.tile.row:r1 - read.tile.row, c0 - read.tile.col:c1 - read.tile.col]
                pieces.add_core(classes, core_probs, read.tile)
                cores.append((read.tile, classes))
            t3 = time.perf_counter()
            for t, classes in cores:
                masks.write_core(t, classes)
            t4 = time.perf_counter()
            timings.preprocess += t1 - t0
            timings.model += t2 - t1
            timings.decode_stitch += t3 - t2
            timings.write += t4 - t3
            bar.update(len(batch))
        bar.close()
        if timings.counts.get("skipped_nodata_tiles", 0) == len(reader.tiles):
            raise InputError(f"{scene.name} has no valid pixels (all nodata)")
        t0 = time.perf_counter()
        rboxes, scores, classes = objects.arrays()
        merged = pieces.merged()
        features = object_features(rboxes, scores, classes, object_names, directional, grid)
        features += region_features(merged, region_names, grid)
        masks.finish()
        date = acquisition_date(scene)
        write_overlay(paths["overlay"], grid, rboxes, classes, merged, object_names, region_names, colors,
                      title=f"{scene.name} · {date}" if date else scene.name)
        write_contact_sheet(paths["detections"], grid, rboxes, scores, classes, merged, object_names,
                            region_names, colors)
        dated = {"date": date} if date else {}
        write_feature_collection(paths["geojson"], features,
                                 {"scene": scene.name, **dated, "model": info.version,
                                  "classes": {c.name: c.kind for c in info.classes}, "colors": colors,
                                  **output_crs_note(grid)})
        timings.write += time.perf_counter() - t0
    except BaseException:
        masks.abort()
        for p in paths.values():
            p.with_name(f".{p.name}.partial").unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - started
    counts = {n: int((classes == k).sum()) for k, n in enumerate(object_names)}
    counts.update({n: sum(1 for k, _, _ in merged if k == j) for j, n in enumerate(region_names)})
    return {
        "scene": str(scene),
        "status": "done",
        "counts": counts,
        "megapixels": round(grid.megapixels, 3),
        "seconds": round(seconds, 2),
        "mpx_per_s": round(grid.megapixels / max(seconds, 1e-9), 3),
        "split_seconds": {k: round(getattr(timings, k), 3)
                          for k in ("read", "preprocess", "model", "decode_stitch", "write")},
        "tiles": len(reader.tiles),
        "skipped_nodata_tiles": timings.counts.get("skipped_nodata_tiles", 0),
        "georeferenced": grid.georeferenced,
        "date": date,
        "outputs": {k: str(p) for k, p in paths.items()},
    }
