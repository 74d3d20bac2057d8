"""One scene through the model: read → normalize → batch → ONNX Runtime → decode → stitch → write.

Outputs appear only when complete (temporary names, then rename); a failure
removes what it had started. Each run reports where its time went.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from infer.contract.schema import ModelInfo
from infer.errors import InputError
from infer.files import remove_stale_partials
from infer.geo.geojson import write_feature_collection
from infer.pictures.contact_sheet import write_contact_sheet
from infer.pictures.overlay import write_overlay
from infer.runtime.maskwriter import MaskWriter
from infer.runtime.model import OnnxModel
from infer.runtime.options import RunOptions
from infer.runtime.reader import SceneGrid, TileRead, TileReader, acquisition_date, open_grid
from infer.runtime.runfolder import output_paths
from infer.runtime.stitch import SceneStitcher
from infer.runtime.vectors import object_features, output_crs_note, region_features


@dataclass
class Timings:
    """Seconds per stage; `model` is ONNX Runtime alone."""

    read: float = 0.0
    preprocess: float = 0.0
    model: float = 0.0
    decode_stitch: float = 0.0
    write: float = 0.0
    counts: dict = field(default_factory=dict)


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


def process_scene(model: OnnxModel, scene: Path, out_dir: Path, options: RunOptions) -> dict:
    """Run one scene; returns its summary entry. Raises InputError for a scene that cannot be done."""
    info = model.info
    plan = options.resolve(info)
    grid = open_grid(scene, len(info.bands), info.gsd_m, info.dtype)
    reader = TileReader(grid, plan.tile, plan.overlap, threads=plan.reader_threads)
    paths = output_paths(out_dir, scene)
    for path in paths.values():
        remove_stale_partials(path)
    timings = Timings()
    started = time.perf_counter()
    masks = MaskWriter(paths["mask"], grid, [c.color for c in info.region_classes])
    stitcher = SceneStitcher(plan, info.stride)
    try:
        bar = tqdm(total=len(reader.tiles), desc=scene.name, unit="tile", leave=False, disable=not plan.progress)
        for batch in _batches(reader, plan.batch, timings):
            _run_batch(model, batch, stitcher, masks, timings)
            bar.update(len(batch))
        bar.close()
        if timings.counts.get("skipped_nodata_tiles", 0) == len(reader.tiles):
            raise InputError(f"{scene.name} has no valid pixels (all nodata)")
        t0 = time.perf_counter()
        counts = _write_scene_outputs(info, scene, grid, stitcher, masks, paths)
        timings.write += time.perf_counter() - t0
    except BaseException:
        masks.abort()
        raise
    seconds = time.perf_counter() - started
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
        "date": acquisition_date(scene),
        "outputs": {k: str(p) for k, p in paths.items()},
    }


def _run_batch(model: OnnxModel, batch: list[TileRead], stitcher: SceneStitcher, masks: MaskWriter,
               timings: Timings) -> None:
    """Normalize, run the model, stitch each tile's outputs and write its mask core."""
    t0 = time.perf_counter()
    inputs = model.normalize(np.stack([r.pixels for r in batch]), np.stack([r.valid for r in batch]))
    t1 = time.perf_counter()
    heatmap, box, mask = model.run(inputs)
    t2 = time.perf_counter()
    cores = [stitcher.add_tile(read, heatmap[i], box[i], mask[i]) for i, read in enumerate(batch)]
    t3 = time.perf_counter()
    for read, classes in zip(batch, cores, strict=True):
        masks.write_core(read.tile, classes)
    timings.preprocess += t1 - t0
    timings.model += t2 - t1
    timings.decode_stitch += t3 - t2
    timings.write += time.perf_counter() - t3


def _write_scene_outputs(info: ModelInfo, scene: Path, grid: SceneGrid, stitcher: SceneStitcher,
                         masks: MaskWriter, paths: dict[str, Path]) -> dict[str, int]:
    """The scene's vectors, mask COG and pictures, each appearing whole; returns the count per class."""
    object_names = [c.name for c in info.object_classes]
    region_names = [c.name for c in info.region_classes]
    colors = {c.name: c.color for c in info.classes}
    rboxes, scores, classes = stitcher.objects.arrays()
    merged = stitcher.pieces.merged()
    features = object_features(rboxes, scores, classes, object_names,
                               [c.directional for c in info.object_classes], grid)
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
    counts = {n: int((classes == k).sum()) for k, n in enumerate(object_names)}
    counts.update({n: sum(1 for k, _, _ in merged if k == j) for j, n in enumerate(region_names)})
    return counts
