"""Scenes of one area at several dates run through a model, for `infer diff --model` and `infer track --model`.

Everything that can refuse the job (the model, the options, a scene the
model cannot read, a date that shows other ground than the first) is
checked before any output is written. A finished scene is not redone, so a
killed comparison resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from infer.analysis.changes import ground_gap_m, no_common_ground
from infer.errors import InputError
from infer.runtime.options import RunOptions
from infer.runtime.runfolder import (
    is_done,
    output_paths,
    refuse_other_owners,
    run_settings,
    summary_path,
    update_summary,
)
from infer.runtime.scenes import scene_name


def open_model_for(model_path: Path, device: str, options: RunOptions, scenes: Sequence[Path]):
    """The model at `model_path`, with `options` checked against it and every scene of `scenes` checked
    readable by it and, when georeferenced, on the first scene's ground."""
    from infer.runtime.model import OnnxModel
    from infer.runtime.reader import open_grid
    from infer.runtime.vectors import outline

    model = OnnxModel(model_path, device=device)
    options.resolve(model.info)
    grids = [open_grid(scene, len(model.info.bands), model.info.gsd_m, model.info.dtype) for scene in scenes]
    if all(g.georeferenced for g in grids):
        first = outline(grids[0])
        for scene, grid in zip(scenes[1:], grids[1:], strict=True):
            other = outline(grid)
            if not first.intersects(other):
                raise InputError(no_common_ground(scene_name(scenes[0]), scene_name(scene),
                                                  ground_gap_m(first, other)))
    return model


def run_dates(model, scenes: Sequence[Path], folders: Sequence[Path], options: RunOptions) -> list[Path]:
    """Inference over each scene into its folder (a finished one is kept), each an `infer run` folder with its
    summary (so `infer report` and the other commands take it); the result GeoJSON of each."""
    from infer.runtime.pipeline import process_scene

    settings = run_settings(model.sha256, options.resolve(model.info))
    for scene, folder in zip(scenes, folders, strict=True):  # before any output: one made otherwise is refused
        if folder.is_dir():
            refuse_other_owners(folder, [scene], settings)
    results = []
    for scene, folder in zip(scenes, folders, strict=True):
        folder.mkdir(parents=True, exist_ok=True)
        if not is_done(folder, scene, model.info) or not (folder / "summary.json").is_file():
            entry = process_scene(model, scene, folder, options)
            update_summary(summary_path(folder), {str(scene): {**entry, "settings": settings}})
        results.append(output_paths(folder, scene, model.info)["geojson"])
    return results


__all__ = ["open_model_for", "run_dates"]
