"""`python -m infer track DATE1 DATE2 … --out DIR`: sites followed through many dates of one area.

Each DATE is a result GeoJSON (or an `infer run` folder holding one scene,
or the generator's labels), earliest first. Every date is registered to the
first, its sites found (`infer sites`' rules) and followed in time
(`infer.analysis.track`). Writes DIR/timeline.json and DIR/timeline.csv
(per site and date: present, storehouses, fortified, cleared m², berm m,
trucks inside and near), DIR/sites_over_time.geojson (each site's outline
at each date, WGS84, in the first date's georeferencing) and DIR/track.txt
(a line per site, also printed).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from infer.analysis.changes import DiffOptions, read_side
from infer.analysis.sites import SiteRules, site_properties
from infer.analysis.track import TIMELINE_FIELDS, follow, progress_line
from infer.cli.console import OneLineArgumentParser, ensure_writable_folder, finite_float
from infer.errors import InputError, UsageError
from infer.files import write_text_atomic
from infer.geo.crs import transform_geometry
from infer.geo.geojson import features, write_feature_collection


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="python -m infer track",
                              description="Follow sites through many dates of one area: each date registered "
                                          "to the first, per site a timeline of storehouses, fortified "
                                          "storehouses, cleared ground, berm length and trucks.")
    p.add_argument("dates", type=Path, nargs="+", help="result GeoJSONs or one-scene `infer run` folders, "
                                                       "earliest first (at least two)")
    p.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    p.add_argument("--search", type=finite_float, default=DiffOptions.search_m, metavar="METRES",
                   help=f"largest misregistration looked for (default: {DiffOptions.search_m:g})")
    p.add_argument("--no-align", action="store_true", help="do not estimate and remove shifts between dates")
    p.add_argument("--link", type=finite_float, default=SiteRules.link_m, metavar="METRES",
                   help=f"members closer than this belong to one site (default: {SiteRules.link_m:g})")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if len(args.dates) < 2:
        raise UsageError("track needs at least two dates")
    if args.search < 0 or args.link < 0:
        raise UsageError("--search and --link must not be negative")
    for path in args.dates:
        if not path.exists():
            raise UsageError(f"not found: {path}")
    try:
        sides = [read_side(path) for path in args.dates]
    except InputError as exc:
        raise UsageError(str(exc)) from None
    if any(s.pixel_coordinates for s in sides):
        raise UsageError("track needs georeferenced inputs (WGS84 GeoJSON); these are in pixel coordinates")
    tracking = follow(sides, SiteRules(link_m=args.link), options=DiffOptions(search_m=args.search,
                                                                                align=not args.no_align))
    labels = [s.date or "" for s in sides]
    ensure_writable_folder(args.out)
    crs = tracking.crs
    outlines, props = [], []
    for site in tracking.sites:
        for k, dated in enumerate(site.dates):
            if dated is not None and crs is not None:
                outlines.append(transform_geometry(dated.outline, crs, "EPSG:4326"))
                props.append({"site": site.number, "date_index": k + 1, "date": labels[k],
                              **{key: v for key, v in site_properties(dated).items() if key not in ("site", "summary")}})
    timeline = {"dates": labels, "sources": [str(s.source) for s in sides],
                "registration_offset_m": [[round(x, 2), round(y, 2)] for x, y in tracking.offsets],
                "registration_support": tracking.support, "rules": asdict(SiteRules(link_m=args.link)),
                "sites": [{"site": s.number, "timeline": s.timeline()} for s in tracking.sites]}
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["site", "date_index", "date", *TIMELINE_FIELDS])
    for site in tracking.sites:
        for k, row in enumerate(site.timeline()):
            writer.writerow([site.number, k + 1, labels[k], *(row[f] for f in TIMELINE_FIELDS)])
    lines = [progress_line(s, labels) for s in tracking.sites] or ["no site at any date"]
    write_feature_collection(args.out / "sites_over_time.geojson", features(outlines, props), {"dates": labels})
    write_text_atomic(args.out / "timeline.json", json.dumps(timeline, indent=1) + "\n")
    write_text_atomic(args.out / "timeline.csv", table.getvalue())
    write_text_atomic(args.out / "track.txt", "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {args.out / 'timeline.json'}, timeline.csv, sites_over_time.geojson, track.txt")
    return 0
