"""The `infer run` output folder: what each scene's outputs are called, when a scene is done, the summaries.

The one owner of that format: `infer run` writes it, `infer diff --model`
reuses it, `infer report` and `infer diff` read it back. A scene is done
when every output exists, since each appears only when complete
(docs/design.md, decision 8); the summary records how each scene went.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from infer.contract.schema import ClassSchema
from infer.errors import InputError, UsageError
from infer.files import remove_stale_partials, write_text_atomic
from infer.runtime.claims import lock_path, locked
from infer.runtime.scenes import same_file

#: Per scene: output kind → file name suffix after the scene's stem.
OUTPUT_SUFFIXES = {"geojson": ".geojson", "geopackage": ".gpkg", "mask": "_mask.tif", "overlay": "_overlay.png",
                   "detections": "_detections.png"}
#: The output every run writes: the scene's record, which `infer diff`, `infer report` and later runs read.
RECORD_OUTPUT = "geojson"


def output_paths(out_dir: Path, scene: Path, schema: ClassSchema,
                 kinds: Collection[str] = tuple(OUTPUT_SUFFIXES)) -> dict[str, Path]:
    """The outputs of one scene in `out_dir` by kind, of those in `kinds` (a run's `--outputs`), for a model
    of `schema`'s classes: one without region classes writes no mask."""
    return {kind: out_dir / f"{scene.stem}{suffix}" for kind, suffix in OUTPUT_SUFFIXES.items()
            if kind in kinds and (kind != "mask" or schema.region_classes)}


def is_done(out_dir: Path, scene: Path, schema: ClassSchema, kinds: Collection[str] = tuple(OUTPUT_SUFFIXES)) -> bool:
    """A scene is done when all its outputs of `kinds` exist (each appears only when complete)."""
    return all(p.exists() for p in output_paths(out_dir, scene, schema, kinds).values())


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


def refuse_other_owners(out_dir: Path, scenes: list[Path]) -> None:
    """`UsageError` when a summary in `out_dir` records a different file done under one of `scenes`' names."""
    try:
        entries = read_summaries(out_dir)
    except InputError:  # no summary yet, or one that cannot be read: nothing recorded
        return
    owners = {Path(e["scene"]).stem: e["scene"] for e in entries
              if isinstance(e, dict) and e.get("status") == "done" and isinstance(e.get("scene"), str)}
    for scene in scenes:
        owner = owners.get(scene.stem)
        if owner is not None and not same_file(owner, scene):
            raise UsageError(f"{out_dir} already holds the outputs of {owner} under the names {scene} would "
                             f"write ({scene.stem}.geojson, ...); use another --out folder or rename the scene")


def read_summaries(folder: Path) -> list[dict[str, Any]]:
    """Scene entries of `summary.json` and of every shard's `summary-I-of-N.json`."""
    paths = sorted([*folder.glob("summary.json"), *folder.glob("summary-*-of-*.json")])
    if not paths:
        raise InputError(f"{folder} has no summary.json: is it an `infer run` output folder?")
    entries = []
    for path in paths:
        try:
            entries += json.loads(path.read_text())["scenes"]
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{path} is not an `infer run` summary") from None
    return entries


def finished_scene(folder: Path) -> tuple[Path, Path | None]:
    """The one finished scene of a run folder: (its GeoJSON, the scene if it still exists)."""
    done = [e for e in read_summaries(folder) if e.get("status") == "done"]
    if len(done) != 1:
        raise InputError(f"{folder} holds {len(done)} finished scenes; diff needs exactly one per folder "
                         "(or pass the GeoJSON files)")
    scene = Path(done[0]["scene"])
    return Path(done[0]["outputs"]["geojson"]), scene if scene.is_file() else None


__all__ = ["OUTPUT_SUFFIXES", "RECORD_OUTPUT", "finished_scene", "is_done", "output_paths", "previous_entries", "read_summaries",
           "refuse_other_owners", "summary_path", "update_summary", "write_summary"]
