"""The scene list of a job, settled before any work: lists, globs and folders expanded, each file once,
output names unique.

A scene named twice (`a/x.tif` and `a/../a/x.tif`, or a link to it) is one
scene; two different files with one stem (`a/x.tif`, `b/x.tif`) would write
the same outputs, so the job refuses them, as it refuses a scene whose
outputs an earlier run in the same folder wrote for another file. A path in
one of GDAL's virtual file systems (`/vsizip/scenes.zip/a.tif`, `/vsis3/...`)
names a raster GDAL reads where it is: checked by opening it, kept as written.
A URL (`s3://`, `gs://`, `az://`, `https://`) is the virtual path that reads it
(`scene_path`), and its outputs are named after its file (`scene_stem`).
"""

from __future__ import annotations

import glob
import os
import urllib.parse
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from infer.errors import UsageError
from infer.geo.rasterenv import is_virtual, virtual_raster_problem

#: URL schemes of object stores, and GDAL's virtual file system that reads each (s3://b/k is /vsis3/b/k).
OBJECT_STORES = {"s3": "/vsis3/", "gs": "/vsigs/", "az": "/vsiaz/"}
#: How GDAL reads a raster over http(s): the whole URL, percent-encoded (a path keeps no doubled slash).
HTTP_PREFIX = "/vsicurl?url="

#: Raster files a folder given as a scene stands for (case-insensitive).
SCENE_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".png", ".jpg", ".jpeg")


def scene_path(text: str) -> Path:
    """A scene as written: a local or GDAL virtual path as it is, a URL as the virtual path that reads it."""
    scheme, separator, rest = text.partition("://")
    if separator and scheme.lower() in OBJECT_STORES:
        return Path(OBJECT_STORES[scheme.lower()] + rest)
    if separator and scheme.lower() in ("http", "https"):
        return Path(HTTP_PREFIX + urllib.parse.quote(text, safe=""))
    return Path(text)


def scene_url(scene: Path) -> str | None:
    """The http(s) URL a scene path reads (`scene_path`), None for any other."""
    text = str(scene)
    return urllib.parse.unquote(text[len(HTTP_PREFIX):]) if text.startswith(HTTP_PREFIX) else None


def scene_name(scene: Path) -> str:
    """The scene's file name: its path's, or its URL's last part."""
    url = scene_url(scene)
    return PurePosixPath(urllib.parse.urlsplit(url).path).name if url is not None else scene.name


def scene_source(scene: Path) -> str:
    """How a GDAL command (the `gdal_translate` or `gdalwarp` a refusal suggests) names the scene: a local file
    by its name, a virtual one by its GDAL path, a URL as `/vsicurl/` and the URL."""
    url = scene_url(scene)
    if url is not None:
        return "/vsicurl/" + url
    return str(scene) if is_virtual(scene) else scene.name


def scene_stem(scene: Path) -> str:
    """What a scene's outputs are named after (`scene.geojson`, …): its file name without the suffix."""
    return PurePosixPath(scene_name(scene)).stem


def scene_list(paths: Iterable[Path]) -> list[Path]:
    """The scenes `paths` name as absolute paths (links kept, `..` gone), sorted, each file once;
    `UsageError` for a missing path, a folder without rasters, or two files with one stem.

    A path may be a raster, a folder of them, a text file listing them (`.txt`, one a line, relative
    to the current folder), or a quoted glob (`"scenes/**/*.tif"`).
    """
    seen: dict[Path, Path] = {}
    for path, listed in _expanded(paths):
        if is_virtual(path):
            if problem := virtual_raster_problem(path):
                raise UsageError(f"scene not found: {path}{listed} ({problem})")
            seen.setdefault(path, path)
            continue
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SCENE_SUFFIXES)
            if not found:
                raise UsageError(f"{path} is a folder without rasters ({', '.join(SCENE_SUFFIXES)}){listed}")
        elif path.exists():
            found = [path]
        else:
            raise UsageError(f"scene not found: {path}{listed}")
        for scene in found:
            seen.setdefault(scene.resolve(), Path(os.path.abspath(scene)))
    by_stem: dict[str, Path] = {}
    for scene in seen.values():
        other = by_stem.setdefault(scene_stem(scene), scene)
        if other is not scene:
            raise UsageError(f"{other} and {scene} would write the same outputs ({scene_stem(scene)}.geojson, ...); "
                             "rename one, or run them into different --out folders")
    return sorted(seen.values())


def _expanded(paths: Iterable[Path]) -> Iterable[tuple[Path, str]]:
    """`paths` with each list file (`.txt`: one path a line; blank lines and `#` comments skipped) replaced
    by its lines, and each glob that names no file as such (`scenes/**/*.tif`, quoted) by its matches; each
    with where a list named it, for messages ("" when given as such)."""
    for path in paths:
        if path.suffix.lower() == ".txt" and path.is_file():
            try:
                lines = path.read_text().splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"cannot read the scene list {path}: {exc}") from None
            for n, line in enumerate(lines, start=1):
                if line.strip() and not line.lstrip().startswith("#"):
                    listed = scene_path(line.strip())
                    relative = "" if listed.is_absolute() else f", relative to the current folder {Path.cwd()}"
                    yield listed, f" (line {n} of {path}{relative})"
        elif not is_virtual(path) and not path.exists() and any(c in str(path) for c in "*?["):
            matches = sorted(glob.glob(str(path), recursive=True))
            if not matches:
                raise UsageError(f"no file matches {path}")
            yield from ((match, "") for match in map(Path, matches))
        else:
            yield path, ""


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two spellings name one file (True too when either no longer exists and they read the same)."""
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return str(a) == str(b)


__all__ = ["SCENE_SUFFIXES", "same_file", "scene_list", "scene_name", "scene_path", "scene_source", "scene_stem",
           "scene_url"]
