"""`python -m infer track DATE1 DATE2 … --out DIR`: sites and objects followed through many dates of one area.

Each DATE is a result GeoJSON (or an `infer run` folder holding one scene,
or the generator's labels), earliest first; with `--model`, each is a scene
and inference runs first (into DIR/runs/, resumable). Every date is
registered to the first, its sites found (`infer sites`' rules) and followed
in time, and so are its objects (`infer.analysis.track`). Writes into DIR:

- timeline.json, timeline.csv: per site and date, present, storehouses,
  fortified, cleared m², berm m, trucks inside and near;
- sites_over_time.geojson, objects_over_time.geojson: each site's outline
  and each object at each date, WGS84, in the first date's georeferencing;
- changes_over_time.geojson: what came and went between consecutive dates;
- track.gpkg: those three as styled layers for QGIS;
- charts/area.png and charts/site_NNN.png, report.html and track.txt (a
  line per site, also printed).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from infer.analysis.changes import DiffOptions, Side, different_models, read_side
from infer.analysis.sites import SiteRules, site_properties
from infer.analysis.track import (
    TIMELINE_FIELDS,
    Tracking,
    area_timeline,
    berm_changed,
    dates_out_of_order,
    follow,
    progress_line,
)
from infer.analysis.track_report import write_track_report
from infer.cli.console import OneLineArgumentParser, ensure_writable_folder, finite_float
from infer.cli.dated_runs import open_model_for, run_dates
from infer.cli.sites import DEFENCE_COLORS, add_role_options, roles_of
from infer.contract.defaults import DEFAULT_SCORE
from infer.errors import InputError, UsageError
from infer.files import output_set, write_text_atomic
from infer.geo.crs import to_wgs84
from infer.geo.geojson import features, write_feature_collection
from infer.geo.geopackage import Layer, write_geopackage
from infer.geo.rasterenv import is_virtual
from infer.pictures.changes_picture import CHANGE_COLORS
from infer.pictures.timeline_chart import write_timeline_chart
from infer.runtime.options import RunOptions
from infer.runtime.scenes import scene_path, scene_stem

#: Object colours in track.gpkg for classes whose inputs name no colour (the generator's labels).
FALLBACK_COLORS = ("#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628", "#f781bf", "#999999")
FILES = ("timeline.json", "timeline.csv", "sites_over_time.geojson", "objects_over_time.geojson",
         "changes_over_time.geojson", "track.gpkg", "track.txt")


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="python -m infer track",
                              description="Follow sites and objects through many dates of one area: each date "
                                          "registered to the first, per site a timeline of storehouses, fortified "
                                          "storehouses, cleared ground, berm length and trucks, with charts, the "
                                          "changes between consecutive dates and an HTML report.")
    p.add_argument("dates", type=scene_path, nargs="+", help="result GeoJSONs or one-scene `infer run` folders, "
                                                       "earliest first (at least two); scenes with --model")
    p.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    p.add_argument("--model", type=Path, help="an exported .onnx model: the DATES are scenes to run it on first")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="with --model (default: cpu)")
    p.add_argument("--score", type=finite_float, default=DEFAULT_SCORE,
                   help=f"with --model: lowest object score kept (default: {DEFAULT_SCORE:g})")
    p.add_argument("--search", type=finite_float, default=DiffOptions.search_m, metavar="METRES",
                   help=f"largest misregistration looked for (default: {DiffOptions.search_m:g})")
    p.add_argument("--no-align", action="store_true", help="do not estimate and remove shifts between dates")
    p.add_argument("--tolerance", type=finite_float, default=DiffOptions.tolerance_m, metavar="METRES",
                   help="an object this close to where it was, after registration, is the same one "
                        f"(default: {DiffOptions.tolerance_m:g})")
    p.add_argument("--keep-flicker", action="store_true",
                   help="report changes that the next pair of dates undoes (an object missed at one date, a "
                        "region piece found at one date only) as changes; by default they are counted apart")
    p.add_argument("--link", type=finite_float, default=SiteRules.link_m, metavar="METRES",
                   help=f"members closer than this belong to one site (default: {SiteRules.link_m:g})")
    add_role_options(p)
    return p


def _read_dates(args) -> list[Side]:
    """Each date's detections; with --model, after running it on each scene (checked first, then run)."""
    paths, scenes = list(args.dates), [None] * len(args.dates)
    if args.model is not None:
        options = RunOptions(score=args.score)
        model = open_model_for(args.model, args.device, options, args.dates)
        ensure_writable_folder(args.out)
        folders = [args.out / "runs" / f"{k + 1}_{scene_stem(scene)}" for k, scene in enumerate(args.dates)]
        scenes = list(args.dates)
        paths = run_dates(model, args.dates, folders, options)
    return [read_side(path, scene) for path, scene in zip(paths, scenes, strict=True)]


def main(argv: Sequence[str] | None = None) -> int:
    """One job: any bad input stops it before anything is written (exit 2)."""
    args = build_parser().parse_args(argv)
    if len(args.dates) < 2:
        raise UsageError("track needs at least two dates")
    if args.search < 0 or args.link < 0 or args.tolerance <= 0:
        raise UsageError("--tolerance must be positive, --search and --link not negative")
    for path in args.dates:
        if not path.exists() and not (args.model is not None and is_virtual(path)):  # GDAL opens those, or says
            raise UsageError(f"not found: {path}")
    try:
        sides = _read_dates(args)
        if any(s.pixel_coordinates for s in sides):
            raise UsageError("track needs georeferenced inputs (WGS84 GeoJSON); these are in pixel coordinates")
        rules, roles = SiteRules(link_m=args.link), roles_of(args, sides)
        tracking = follow(sides, rules, roles, options=DiffOptions(search_m=args.search, tolerance_m=args.tolerance,
                                                                   align=not args.no_align),
                          keep_flicker=args.keep_flicker)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    labels = [s.date or "" for s in sides]
    ensure_writable_folder(args.out)
    lines = [progress_line(s, labels, berm_changed(s, tracking.changes, roles.berm)) for s in tracking.sites]
    lines = lines or ["no site at any date"]
    notes = [n for n in (dates_out_of_order(sides), different_models(sides, [s.date or s.source.name for s in sides]))
             if n]
    with output_set(args.out, replaces=["charts/site_*.png"]) as staged:  # the whole set, or none of it
        _write_outputs(staged, tracking, sides, labels, rules, lines, notes)
    print("\n".join([*notes, *lines]))
    print(f"wrote {args.out / 'report.html'}, {', '.join(FILES)} and charts/")
    return 0


def _write_outputs(out: Path, tracking: Tracking, sides: Sequence[Side], labels: Sequence[str], rules: SiteRules,
                   lines: Sequence[str], notes: Sequence[str] = ()) -> None:
    """Every file of `FILES`, the charts and the report; `lines`: a line per site, `notes`: lines said before them."""
    def wgs84(geoms: list) -> list:
        """Metric geometries to WGS84, in one call."""
        if not geoms:
            return []
        return list(to_wgs84(np.array(geoms, dtype=object), tracking.crs))

    sites_out, objects_out = _site_features(tracking, labels, wgs84), _object_features(tracking, sides, labels, wgs84)
    changes_out = [(c.geom, {**c.properties, "from_date_index": k + 1, "to_date_index": k + 2,
                             "from_date": labels[k], "to_date": labels[k + 1]})
                   for k, pair in enumerate(tracking.changes) for c in pair if c.change != "persisting"]
    changes_out = features([g for g, _ in changes_out], [p for _, p in changes_out])
    colors = {}
    for side in sides:
        colors.update(side.colors)
    for cls in dict.fromkeys(f["properties"]["class"] for f in objects_out):
        colors.setdefault(cls, FALLBACK_COLORS[len(colors) % len(FALLBACK_COLORS)])
    extra = {"dates": list(labels), "sources": [str(s.source) for s in sides]}
    write_feature_collection(out / "sites_over_time.geojson", sites_out, extra)
    write_feature_collection(out / "objects_over_time.geojson", objects_out, extra | {"colors": colors})
    write_feature_collection(out / "changes_over_time.geojson", changes_out, extra)
    write_geopackage(out / "track.gpkg", [
        Layer("sites_over_time", sites_out, DEFENCE_COLORS, filled=True, styled_by="defence"),
        Layer("objects_over_time", objects_out, colors, filled=False),
        Layer("changes_over_time", changes_out, CHANGE_COLORS, filled=True, styled_by="change")])
    counts = [dict(Counter(f"{c.cls} {c.change}" for c in pair if c.change != "persisting"))
              for pair in tracking.changes]
    flicker = [dict(Counter(f"{c.cls} {c.change}" for c in pair)) for pair in tracking.flicker]
    objects = {cls: {"tracks": n, "seen_at_every_date": sum(len(t.dates_seen()) == len(labels)
                                                            for t in tracking.objects if t.cls == cls)}
               for cls, n in Counter(t.cls for t in tracking.objects).items()}
    timeline = {"dates": list(labels), "sources": [str(s.source) for s in sides],
                "checkpoint_sha256": [s.checkpoint for s in sides],
                "registration_offset_m": [[round(x, 2), round(y, 2)] for x, y in tracking.offsets],
                "registration_support": tracking.support, "rules": asdict(rules),
                "area": area_timeline(tracking.sites, len(labels)), "changes_between_dates": counts,
                "flicker_between_dates": flicker,
                "objects": objects, "sites": [{"site": s.number, "timeline": s.timeline()} for s in tracking.sites]}
    write_text_atomic(out / "timeline.json", json.dumps(timeline, indent=1) + "\n")
    write_text_atomic(out / "timeline.csv", _timeline_csv(tracking, labels))
    write_text_atomic(out / "track.txt", "\n".join([*notes, *lines]) + "\n")
    (out / "charts").mkdir(exist_ok=True)
    charts = {0: write_timeline_chart(out / "charts" / "area.png", f"The whole area: {len(tracking.sites)} site(s)",
                                      labels, timeline["area"])}
    for site in tracking.sites:
        charts[site.number] = write_timeline_chart(out / "charts" / f"site_{site.number:03d}.png",
                                                   f"site {site.number}", labels, site.timeline())
    write_track_report(out, tracking, labels, [str(s.source) for s in sides], lines, charts,
                       [*FILES, "charts/area.png"], notes)


def _site_features(tracking: Tracking, labels: Sequence[str], wgs84) -> list[dict]:
    geoms, props = [], []
    for site in tracking.sites:
        for k, dated in enumerate(site.dates):
            if dated is not None:
                geoms.append(dated.outline)
                props.append({"site": site.number, "date_index": k + 1, "date": labels[k],
                              "defence": "fortified" if dated.fortified else "open",
                              **{key: v for key, v in site_properties(dated).items() if key not in ("site", "summary")}})
    return features(wgs84(geoms), props)


def _object_features(tracking: Tracking, sides: Sequence[Side], labels: Sequence[str], wgs84) -> list[dict]:
    """Each object at each date it was seen: its track, class, date and the site it stood in (0: none)."""
    site_of: dict[int, int] = {}
    for site in tracking.sites:
        for k, dated in enumerate(site.dates):
            if dated is not None:
                things = sides[k].objects + sides[k].regions
                for i in dated.storehouses + dated.trucks_inside:
                    site_of[id(things[i])] = site.number
    geoms, props = [], []
    for track in tracking.objects:
        seen = track.dates_seen()
        for k in seen:
            thing = track.seen[k]
            geoms.append(thing.metric)
            props.append({"track": track.number, "class": track.cls, "date_index": k + 1, "date": labels[k],
                          "site": site_of.get(id(thing), 0), "first_date_index": seen[0] + 1,
                          "last_date_index": seen[-1] + 1, "dates_seen": len(seen),
                          **({"score": thing.properties["score"]} if "score" in thing.properties else {})})
    return features(wgs84(geoms), props)


def _timeline_csv(tracking: Tracking, labels: Sequence[str]) -> str:
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["site", "date_index", "date", *TIMELINE_FIELDS])
    for site in tracking.sites:
        for k, row in enumerate(site.timeline()):
            writer.writerow([site.number, k + 1, labels[k], *(row[f] for f in TIMELINE_FIELDS)])
    return table.getvalue()
