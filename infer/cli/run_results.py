"""The finished scenes of an `infer run` folder, read one at a time, for the commands that gather a whole run."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from infer.errors import InputError, UsageError
from infer.geo.geojson import read_feature_collection
from infer.runtime.runfolder import read_summaries


def finished_results(folder: Path) -> tuple[list[tuple[str, Path]], bool]:
    """(scene name, result GeoJSON) of each finished scene of `folder`, and whether they are georeferenced
    (as the first says). `UsageError` when the folder holds no finished scene."""
    if not folder.is_dir():
        raise UsageError(f"not a folder: {folder}")
    try:
        done = [e for e in read_summaries(folder) if e.get("status") == "done"]
        if not done:
            raise InputError(f"{folder} has no finished scene")
        results = [(Path(e["scene"]).name, Path(e["outputs"]["geojson"])) for e in done]
        return results, "coordinates" not in read_feature_collection(results[0][1])
    except InputError as exc:
        raise UsageError(str(exc)) from None


def scene_collections(results: Sequence[tuple[str, Path]], georeferenced: bool) -> Iterator[tuple[str, dict]]:
    """Each scene's name and FeatureCollection, in turn; a scene georeferenced otherwise than the first stops
    the job (what is being written is then dropped whole)."""
    for name, path in results:
        collection = read_feature_collection(path)
        if ("coordinates" not in collection) != georeferenced:
            raise UsageError("the run mixes georeferenced scenes and scenes in pixel coordinates: "
                             "write them to two files")
        yield name, collection


def kind_of(collection: dict, properties: dict) -> str:
    """"object" or "region": as the collection's `classes` member says, else by the feature's fields."""
    return (collection.get("classes") or {}).get(properties.get("class"),
                                                  "object" if "length_m" in properties else "region")


__all__ = ["finished_results", "kind_of", "scene_collections"]
