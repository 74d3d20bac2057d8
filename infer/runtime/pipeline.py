"""One scene through the model: read → batch → ONNX Runtime → decode → stitch → write.

Outputs appear only when complete (temporary names, then rename); a failure
removes what it had started. Each run reports where its time went.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

from infer.contract.schema import ModelInfo
from infer.errors import InputError
from infer.files import remove_stale_partials
from infer.geo.geojson import write_feature_collection
from infer.geo.geopackage import Layer, write_geopackage
from infer.geo.rasterenv import is_virtual
from infer.pictures.contact_sheet import write_contact_sheet
from infer.pictures.overlay import Overview, OverviewCanvas, read_overview, write_overlay
from infer.runtime.decoder import TileDecoder, start_pool
from infer.runtime.maskwriter import MaskWriter
from infer.runtime.model import OnnxModel
from infer.runtime.options import ResolvedOptions, RunOptions
from infer.runtime.reader import SceneGrid, TileRead, TileReader, acquisition_date, open_grid
from infer.runtime.runfolder import output_paths
from infer.runtime.scenes import scene_name
from infer.runtime.stitch import RegionMaps, SceneStitcher, TileResult, drop_specks
from infer.runtime.vectors import footprint, object_features, output_crs_note, region_features


@dataclass
class Timings:
    """Seconds the calling thread spent per stage: waiting for tiles (read and prepared for the model by
    the reader threads), in ONNX Runtime, decoding and stitching (or waiting for the workers that decode),
    writing; `model` is ONNX Runtime alone."""

    read: float = 0.0
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


@dataclass
class DetectedScene:
    """A scene whose tiles have all been through the model, decoded and stitched, its mask cores on disk:
    what `write_scene` writes its outputs from. `overview`: the overview's imagery, or the future of its read."""

    info: ModelInfo
    plan: ResolvedOptions
    scene: Path
    grid: SceneGrid
    paths: dict[str, Path]
    stitcher: SceneStitcher
    masks: MaskWriter | None
    overview: Overview | Future
    timings: Timings
    tiles: int
    seconds: float

    def abort(self) -> None:
        """Drop what was started (the mask's working file)."""
        if self.masks is not None:
            self.masks.abort()


def process_scene(model: OnnxModel, scene: Path, out_dir: Path, options: RunOptions,
                  pool: Executor | None = None) -> dict:
    """Run one scene; returns its summary entry. Raises InputError for a scene that cannot be done."""
    return write_scene(detect_scene(model, scene, out_dir, options, pool))


def detect_scene(model: OnnxModel, scene: Path, out_dir: Path, options: RunOptions,
                 pool: Executor | None = None) -> DetectedScene:
    """Every tile of `scene` read, run, decoded and stitched, the mask's cores written; no output appears yet.

    Stages overlap (docs/design.md, decision 12): reader threads read and prepare tiles ahead;
    the model runs batch by batch; decoding runs beside it in `pool` (`start_pool`: `options.workers`
    processes, or one thread for one worker; one is started for this scene when none is given); the
    overview's imagery is made from the tiles as they are read; results are stitched and mask cores
    written in tile order.
    """
    info = model.info
    plan = options.resolve(info)
    grid = open_grid(scene, len(info.bands), info.gsd_m, info.dtype)
    canvas = OverviewCanvas(grid) if OverviewCanvas.fits(grid, plan.overlap) else None

    def prepare(read: TileRead) -> np.ndarray | None:
        """In a reader thread: the tile onto the overview, then the model's input made from it."""
        if canvas is not None:
            canvas.add(read.tile, read.pixels, read.valid)
        return model.prepare(read.pixels) if read.valid.any() else None

    reader = TileReader(grid, plan.tile, plan.overlap, threads=plan.reader_threads, prepare=prepare)
    paths = output_paths(out_dir, scene, info, plan.outputs)
    for path in paths.values():
        remove_stale_partials(path)
    timings = Timings()
    started = time.perf_counter()
    own_pool = start_pool(plan.workers) if pool is None else None
    decoder = TileDecoder(plan, info.stride, pool or own_pool)
    masks = MaskWriter(paths["mask"], grid, [c.color for c in info.region_classes]) if "mask" in paths else None
    stitcher = SceneStitcher()
    side = ThreadPoolExecutor(1) if canvas is None else None
    try:
        overview = side.submit(read_overview, grid) if side is not None else None
        bar = tqdm(total=len(reader.tiles), desc=scene_name(scene), unit="tile", leave=False, disable=not plan.progress)
        for batch in _batches(reader, plan.batch, timings):
            _run_batch(model, batch, decoder, timings)
            _stitch(decoder.ready(), stitcher, masks, timings)
            bar.update(len(batch))
        _stitch(decoder.rest(), stitcher, masks, timings)
        bar.close()
        if timings.counts.get("skipped_nodata_tiles", 0) == len(reader.tiles):
            raise InputError(f"{scene_name(scene)} has no valid pixels (all nodata)")
        overview = canvas.finish() if overview is None else overview
    except BaseException:
        decoder.cancel()
        if masks is not None:
            masks.abort()
        raise
    finally:
        if own_pool is not None:
            own_pool.shutdown(cancel_futures=True)
        if side is not None:
            side.shutdown(wait=False)
    return DetectedScene(info, plan, scene, grid, paths, stitcher, masks, overview, timings, len(reader.tiles),
                         time.perf_counter() - started)


def write_scene(detected: DetectedScene) -> dict:
    """The outputs of a detected scene, each appearing whole; returns its summary entry. Any thread may
    call it (a job writes one scene while it detects the next: `infer.runtime.job`).

    The pictures are drawn in side threads while the vectors are written; a failure removes every output
    this call wrote and the mask's working file.
    """
    d, started, written = detected, time.perf_counter(), []
    try:
        date = acquisition_date(d.scene)
        overview = d.overview.result() if isinstance(d.overview, Future) else d.overview
        with ThreadPoolExecutor(2) as side:
            counts = _write_scene_outputs(d.info, d.plan, d.scene, date, d.grid, d.stitcher, d.masks, d.paths,
                                          overview, side, written)
    except BaseException:
        d.abort()
        for path in written:  # a failed scene leaves none of the outputs it wrote (decision 8)
            path.unlink(missing_ok=True)
        raise
    d.timings.write += time.perf_counter() - started
    seconds = d.seconds + time.perf_counter() - started
    return {
        "scene": str(d.scene),
        "status": "done",
        "counts": counts,
        "megapixels": round(d.grid.megapixels, 3),
        "source_megapixels": round(d.grid.source_megapixels, 3),
        "seconds": round(seconds, 2),
        "mpx_per_s": round(d.grid.megapixels / max(seconds, 1e-9), 3),
        "split_seconds": {k: round(getattr(d.timings, k), 3)
                          for k in ("read", "model", "decode_stitch", "write")},
        "tiles": d.tiles,
        "skipped_nodata_tiles": d.timings.counts.get("skipped_nodata_tiles", 0),
        "georeferenced": d.grid.georeferenced,
        "date": date,
        "outputs": {k: str(p) for k, p in d.paths.items()},
    }


def _run_batch(model: OnnxModel, batch: list[TileRead], decoder: TileDecoder, timings: Timings) -> None:
    """Run the model on a batch of prepared tiles and hand each tile's outputs to the decoder."""
    t0 = time.perf_counter()
    valid = np.stack([r.valid for r in batch]) if model.info.region_decode is not None else None
    out = model.run(np.stack([r.inputs for r in batch]), valid)
    t1 = time.perf_counter()
    for i, read in enumerate(batch):
        regions = (out.mask[i] if out.mask is not None else
                   RegionMaps(out.region_class[i], out.region_score[i]) if out.region_class is not None else None)
        decoder.submit(read.tile, read.valid, None if out.heatmap is None else out.heatmap[i],
                       None if out.box is None else out.box[i], regions)
    timings.model += t1 - t0
    timings.decode_stitch += time.perf_counter() - t1


def _stitch(results: Iterator[TileResult], stitcher: SceneStitcher, masks: MaskWriter | None,
            timings: Timings) -> None:
    """Take decoded tiles in order: into the scene's results, their mask cores onto disk."""
    while True:
        t0 = time.perf_counter()
        result = next(results, None)
        if result is None:
            timings.decode_stitch += time.perf_counter() - t0
            return
        stitcher.add(result)
        t1 = time.perf_counter()
        if masks is not None:
            masks.write_core(result.tile, result.core_classes)
        timings.decode_stitch += t1 - t0
        timings.write += time.perf_counter() - t1


def _write_scene_outputs(info: ModelInfo, plan: ResolvedOptions, scene: Path, date: str | None, grid: SceneGrid,
                         stitcher: SceneStitcher, masks: MaskWriter | None, paths: dict[str, Path], overview: Overview,
                         side: ThreadPoolExecutor, written: list[Path]) -> dict[str, int]:
    """The scene's vectors, mask COG and pictures (those in `paths`), each appearing whole (and added to
    `written`); returns the count per class.

    The two pictures are drawn in `side` threads (PNG encoding and GDAL reads release the GIL) while
    this thread makes the vectors and the COG; the GeoJSON is written last, once the rest stands.
    """
    object_names = [c.name for c in info.object_classes]
    region_names = [c.name for c in info.region_classes]
    colors = {c.name: c.color for c in info.classes}
    rboxes, scores, classes = stitcher.objects()
    merged, specks = drop_specks(stitcher.regions(), plan.min_area_px)
    if masks is not None:
        masks.erase(specks)
    title = f"{scene_name(scene)} · {date}" if date else scene_name(scene)
    pictures = [side.submit(write_overlay, paths["overlay"], grid, rboxes, classes, merged, object_names,
                            region_names, colors, title=title, overview=overview)] if "overlay" in paths else []
    if "detections" in paths:
        pictures.append(side.submit(write_contact_sheet, paths["detections"], grid, rboxes, scores, classes, merged,
                                    object_names, region_names, colors))
    try:
        objects = object_features(rboxes, scores, classes, object_names,
                                  [c.directional for c in info.object_classes], grid,
                                  [c.oriented for c in info.object_classes])
        regions = region_features(merged, region_names, grid)
        if masks is not None:
            written.append(masks.finish())
        if "geopackage" in paths:
            layers = [Layer("objects", objects, {n: colors[n] for n in object_names}, filled=False),
                      Layer("regions", regions, {n: colors[n] for n in region_names}, filled=True)]
            written.append(write_geopackage(paths["geopackage"], [layer for layer in layers if layer.colors],
                crs="EPSG:4326" if grid.georeferenced else None,
                changed=_modified(scene)))
    finally:  # whatever happened here, the pictures are waited for and what they wrote is known
        failures = _wait_for(pictures, written)
    if failures:
        raise failures[0]
    dated = {"date": date} if date else {}
    trained = info.provenance.get("checkpoint_sha256")
    write_feature_collection(paths["geojson"], objects + regions,
                             {"scene": scene_name(scene), **dated, "sitewatch": info.version,
                              # the trained weights, alike in every export of them: `infer diff` and `track` flag two
                              **({"checkpoint_sha256": trained} if trained else {}),
                              "classes": {c.name: c.kind for c in info.classes}, "colors": colors,
                              # whose heading_deg runs 0-360 by the front (the others' 0-180, an axis)
                              "directional": [c.name for c in info.object_classes if c.directional],
                              "min_area_m2": {n: round(px * grid.gsd_m**2, 1)
                                              for n, px in zip(region_names, plan.min_area_px, strict=True)},
                              "footprint": footprint(overview.covered, overview.factor, grid),
                              **output_crs_note(grid)})
    counts = {n: int((classes == k).sum()) for k, n in enumerate(object_names)}
    counts.update({n: sum(1 for k, _, _ in merged if k == j) for j, n in enumerate(region_names)})
    return counts


def _modified(scene: Path) -> datetime | None:
    """The scene file's time, which its GeoPackage records as its own (a rerun writes the same bytes); None for
    a scene in a GDAL virtual file system (the time of writing is recorded)."""
    return None if is_virtual(scene) else datetime.fromtimestamp(scene.stat().st_mtime, timezone.utc)


def _wait_for(pictures: list[Future], written: list[Path]) -> list[BaseException]:
    """Wait for every picture; the paths of those written go to `written`, the others' errors are returned."""
    failures = []
    for picture in pictures:
        try:
            written.append(picture.result())
        except Exception as exc:  # each picture is its own outcome
            failures.append(exc)
    return failures

