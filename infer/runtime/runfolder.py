"""The `infer run` output folder: what each scene's outputs are called, when a scene is done, the summaries.

The one owner of that format: `infer run` writes it, `infer diff --model`
reuses it, `infer report` and `infer diff` read it back. A scene is done
when every output exists, since each appears only when complete
(docs/design.md, decision 8); the summary records how each scene went.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infer.errors import InputError
from infer.files import write_text_atomic

#: Per scene: output kind → file name suffix after the scene's stem.
OUTPUT_SUFFIXES = {"geojson": ".geojson", "mask": "_mask.tif", "overlay": "_overlay.png",
                   "detections": "_detections.png"}


def output_paths(out_dir: Path, scene: Path) -> dict[str, Path]:
    """The outputs of one scene in `out_dir`, by kind."""
    return {kind: out_dir / f"{scene.stem}{suffix}" for kind, suffix in OUTPUT_SUFFIXES.items()}


def is_done(out_dir: Path, scene: Path) -> bool:
    """A scene is done when all its outputs exist (each appears only when complete)."""
    return all(p.exists() for p in output_paths(out_dir, scene).values())


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


__all__ = ["OUTPUT_SUFFIXES", "finished_scene", "is_done", "output_paths", "previous_entries", "read_summaries",
           "summary_path", "write_summary"]
