"""The `infer run` output folder: what each scene's outputs are called, when a scene is done, the summaries.

The one owner of that format: `infer run` writes it, `infer diff --model`
reuses it, `infer report` and `infer diff` read it back. A scene is done
when every output exists, since each appears only when complete
(docs/design.md, decision 8); the summary records how each scene went and
what made it (`run_settings`): a rerun skips a done scene only if made alike.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infer.contract.schema import ClassSchema
from infer.errors import InputError, UsageError
from infer.files import lock_path, locked, remove_stale_partials, write_text_atomic
from infer.runtime.scenes import same_file, scene_stem

if TYPE_CHECKING:  # options import this module's output names
    from infer.runtime.options import ResolvedOptions

#: Per scene: output kind → file name suffix after the scene's stem.
OUTPUT_SUFFIXES = {"geojson": ".geojson", "geopackage": ".gpkg", "mask": "_mask.tif", "overlay": "_overlay.png",
                   "detections": "_detections.png"}
#: The output every run writes: the scene's record, which `infer diff`, `infer report` and later runs read.
RECORD_OUTPUT = "geojson"


def output_paths(out_dir: Path, scene: Path, schema: ClassSchema,
                 kinds: Collection[str] = tuple(OUTPUT_SUFFIXES)) -> dict[str, Path]:
    """The outputs of one scene in `out_dir` by kind, of those in `kinds` (a run's `--outputs`), for a model
    of `schema`'s classes: one without region classes writes no mask."""
    return {kind: out_dir / f"{scene_stem(scene)}{suffix}" for kind, suffix in OUTPUT_SUFFIXES.items()
            if kind in kinds and (kind != "mask" or schema.region_classes)}


def is_done(out_dir: Path, scene: Path, schema: ClassSchema, kinds: Collection[str] = tuple(OUTPUT_SUFFIXES)) -> bool:
    """A scene is done when all its outputs of `kinds` exist (each appears only when complete)."""
    return all(p.exists() for p in output_paths(out_dir, scene, schema, kinds).values())


#: `run_settings` keys → how a user names them.
SETTING_NAMES = {"model_sha256": "model", "tile": "--tile", "overlap": "--overlap", "score": "--score",
                 "mask_threshold": "mask threshold", "closing_px": "--region-closing (px)",
                 "min_area_px": "--min-area (px)", "max_objects": "--max-objects"}


def run_settings(model_sha256: str, options: ResolvedOptions) -> dict[str, Any]:
    """What decides a scene's outputs besides the scene: the model's bytes and the options that change
    them. Batch, threads, workers and device do not (decision 12); `--outputs` is `is_done`'s. Its values
    are what JSON gives back (lists, not tuples), so a summary's record compares equal."""
    return {"model_sha256": model_sha256, "tile": options.tile, "overlap": options.overlap,
            "score": options.score, "mask_threshold": options.mask_threshold, "closing_px": options.closing_px,
            "min_area_px": list(options.min_area_px), "max_objects": options.max_objects}


def other_settings(out_dir: Path, entry: dict[str, Any], settings: dict[str, Any]) -> str | None:
    """How the scene of a done `entry` in `out_dir` was made otherwise than `settings` say, in the user's
    words; None when alike, unrecorded (entries of runs before settings were recorded are taken as alike),
    or no longer there (its record output deleted: the scene is to be done again)."""
    recorded = entry.get("settings")
    if entry.get("status") != "done" or not isinstance(recorded, dict):
        return None
    if not (out_dir / f"{scene_stem(Path(entry['scene']))}{OUTPUT_SUFFIXES[RECORD_OUTPUT]}").exists():
        return None
    differ = [key for key in settings if settings[key] != recorded.get(key)]
    if not differ:
        return None
    if "model_sha256" in differ:
        return "another model"
    return "other settings: " + ", ".join(f"{SETTING_NAMES[key]} {recorded.get(key)} (this run: {settings[key]})"
                                          for key in differ)


def summary_path(out_dir: Path, shard: int = 0, shards: int = 1) -> Path:
    """`summary.json`, or `summary-I-of-N.json` for shard I of N, so nodes never write one file."""
    return out_dir / ("summary.json" if shards == 1 else f"summary-{shard}-of-{shards}.json")


def write_summary(path: Path, entries: dict[str, dict[str, Any]]) -> None:
    """The summary of one node's scenes (`entries` by scene path), replaced whole."""
    write_text_atomic(path, json.dumps({"scenes": list(entries.values())}, indent=1) + "\n")


def previous_entries(path: Path) -> dict[str, dict[str, Any]]:
    """The entries of an earlier summary by scene path; empty when there is none or it is unreadable."""
    try:
        return {e["scene"]: e for e in json.loads(path.read_text())["scenes"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def update_summary(path: Path, updates: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Merge `updates` (entries by scene path) into the summary at `path` and return all its entries.

    Under the summary's lock, reading what is there first: runs sharing the folder (duplicates a
    scheduler started) keep each other's entries instead of the last writer's alone.
    """
    with locked(lock_path(path.parent, path.name)):
        remove_stale_partials(path)  # what a run killed while writing the summary left
        entries = previous_entries(path)
        entries.update(updates)
        write_summary(path, entries)
    return entries


def refuse_other_owners(out_dir: Path, scenes: list[Path], settings: dict[str, Any] | None = None) -> None:
    """`UsageError` when a summary in `out_dir` records a different file done under one of `scenes`' names,
    or one of them done otherwise than `settings` (`run_settings`) say: a rerun would skip it, and its
    outputs would not be this run's."""
    if not summary_files(out_dir):
        return
    try:
        entries = read_summaries(out_dir)
    except InputError as exc:  # damaged by hand or by another tool: this run would replace what it records
        raise UsageError(f"{exc}; this run would replace it: repair it, or move it away to start afresh") from None
    owners = {scene_stem(Path(e["scene"])): e for e in entries if e["status"] == "done"}
    for scene in scenes:
        owner = owners.get(scene_stem(scene))
        if owner is None:
            continue
        if not same_file(owner["scene"], scene):
            raise UsageError(f"{out_dir} already holds the outputs of {owner['scene']} under the names {scene} "
                             f"would write ({scene_stem(scene)}.geojson, ...); use another --out folder or rename the scene")
        if settings is not None and (how := other_settings(out_dir, owner, settings)):
            raise UsageError(f"{out_dir} holds {scene.name} done with {how}; use another --out folder, or "
                             f"delete its outputs ({scene_stem(scene)}.*) to redo it")


def summary_files(folder: Path) -> list[Path]:
    """`summary.json` and every shard's `summary-I-of-N.json` in `folder`."""
    return sorted([*folder.glob("summary.json"), *folder.glob("summary-*-of-*.json")])


def read_summaries(folder: Path) -> list[dict[str, Any]]:
    """Scene entries of `summary_files`; `InputError` naming the file for one that is not a summary as
    `infer run` writes it (readers index its entries without further checks)."""
    paths = summary_files(folder)
    if not paths:
        raise InputError(f"{folder} has no summary.json: is it an `infer run` output folder?")
    entries = []
    for path in paths:
        try:
            scenes = json.loads(path.read_text())["scenes"]
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError(f"{path} is not an `infer run` summary") from None
        if not isinstance(scenes, list):
            raise InputError(f"{path} is not an `infer run` summary")
        for n, entry in enumerate(scenes):
            if not _well_formed(entry):
                raise InputError(f"{path}: its scene entry {n} is not one `infer run` writes")
        entries += scenes
    return entries


def _well_formed(entry: Any) -> bool:
    """A summary entry with what readers take from it: the scene and status, and for a done scene its
    outputs (kind: path), counts (class: number), megapixels and seconds."""
    def number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    if not (isinstance(entry, dict) and isinstance(entry.get("scene"), str) and isinstance(entry.get("status"), str)):
        return False
    if entry["status"] != "done":
        return True
    outputs, counts = entry.get("outputs"), entry.get("counts")
    return (isinstance(outputs, dict) and all(isinstance(v, str) for v in outputs.values())
            and RECORD_OUTPUT in outputs and isinstance(counts, dict) and all(map(number, counts.values()))
            and number(entry.get("megapixels")) and number(entry.get("seconds")))


def finished_scene(folder: Path) -> tuple[Path, Path | None]:
    """The one finished scene of a run folder: (its GeoJSON, the scene if it still exists)."""
    done = [e for e in read_summaries(folder) if e.get("status") == "done"]
    if len(done) != 1:
        raise InputError(f"{folder} holds {len(done)} finished scenes; diff needs exactly one per folder "
                         "(or pass the GeoJSON files)")
    scene = Path(done[0]["scene"])
    return Path(done[0]["outputs"]["geojson"]), scene if scene.is_file() else None


__all__ = ["OUTPUT_SUFFIXES", "RECORD_OUTPUT", "finished_scene", "is_done", "other_settings", "output_paths", "previous_entries", "read_summaries",
           "refuse_other_owners", "run_settings", "summary_files", "summary_path", "update_summary", "write_summary"]
