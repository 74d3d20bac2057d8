"""`python -m infer sites RUN_DIR_OR_GEOJSON … [--out DIR]`: detections grouped into sites, with fortification.

Each scene's storehouses, earth berms and cleared ground are grouped into
sites and each storehouse is found fortified or not, by the rules of
`infer.analysis.sites` (docs/sites.md). Writes DIR/sites.geojson (one
polygon per site, WGS84), DIR/sites.gpkg (layers `sites` and
`storehouses`, styled for QGIS) and DIR/sites.txt (a line per site), and
prints the lines. `infer report` shows the sites of a run folder that holds
them.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import shapely
import shapely.affinity

from infer.analysis.changes import Side, read_side, to_metric
from infer.analysis.sites import SiteRoles, SiteRules, find_sites, site_properties
from infer.cli.console import OneLineArgumentParser, ensure_writable_folder, finite_float
from infer.errors import InputError, UsageError
from infer.files import output_set, write_text_atomic
from infer.geo.crs import to_wgs84
from infer.geo.geojson import features, write_feature_collection
from infer.geo.geopackage import Layer, write_geopackage
from infer.runtime.runfolder import read_summaries

#: Colours of sites and storehouses in the GeoPackage's styles, by `defence`.
DEFENCE_COLORS = {"fortified": "#d7301f", "open": "#fdae61"}
SITES_FILES = ("sites.geojson", "sites.gpkg", "sites.txt")


def build_parser() -> OneLineArgumentParser:
    rules = SiteRules()
    p = OneLineArgumentParser(
        prog="python -m infer sites",
        description="Group each scene's detections into sites (storehouses, the earth berms ringing them and "
                    "the cleared ground they stand on) and say which storehouses are fortified; writes "
                    "sites.geojson, sites.gpkg and sites.txt.")
    p.add_argument("inputs", type=Path, nargs="+",
                   help="`infer run` folders (every finished scene) or result GeoJSON files (or labels)")
    p.add_argument("--out", type=Path, help="output folder (default: the run folder, when one is given)")
    p.add_argument("--link", type=finite_float, default=rules.link_m, metavar="METRES",
                   help=f"members closer than this belong to one site (default: {rules.link_m:g})")
    p.add_argument("--wall-reach", type=finite_float, default=rules.wall_reach_m, metavar="METRES",
                   help="a berm walls a storehouse in along a bearing when it lies within this distance "
                        f"(default: {rules.wall_reach_m:g})")
    p.add_argument("--walled", type=finite_float, default=rules.walled_fraction, metavar="FRACTION",
                   help=f"a storehouse walled in on at least this fraction of its {rules.bearings} bearings is "
                        f"fortified (default: {rules.walled_fraction:g}: a ring with a gate, not one berm along a side)")
    p.add_argument("--near", type=finite_float, default=rules.near_m, metavar="METRES",
                   help=f"trucks this close outside a site are near it (default: {rules.near_m:g})")
    p.add_argument("--pixel-size", type=finite_float, default=1.0, metavar="METRES",
                   help="metres per pixel when the inputs are in pixel coordinates (default: 1)")
    add_role_options(p)
    return p


def add_role_options(p: OneLineArgumentParser) -> None:
    """`--storehouse-class` and the other roles' options (`SiteRoles`), for `sites` and `track` alike."""
    roles = SiteRoles()
    for role, help_name in (("storehouse", "storehouses"), ("berm", "earth berms"), ("cleared", "cleared ground"),
                            ("truck", "trucks")):
        p.add_argument(f"--{role}-class", default=getattr(roles, role), metavar="CLASS",
                       help=f"the class of {help_name} (default: {getattr(roles, role)})")


def roles_of(args: argparse.Namespace, sides: Sequence[Side]) -> SiteRoles:
    """The roles `add_role_options` read; `UsageError` for one given a class that no input's model has: a
    misspelt class would find no sites without a word. Checked only where every input records its model's
    classes (`infer run` GeoJSON does; labels do not, and a class they lack may simply be absent)."""
    roles = SiteRoles(args.storehouse_class, args.berm_class, args.cleared_class, args.truck_class)
    if any(side.classes is None for side in sides):
        return roles
    known = {name for side in sides for name in side.classes or ()}
    for role, name in asdict(roles).items():
        if name not in known:
            raise UsageError(f"--{role}-class {name}: no input's model has that class "
                             f"(classes: {', '.join(sorted(known))})")
    return roles


def _geojsons(inputs: Sequence[Path]) -> list[Path]:
    found = []
    for path in inputs:
        if path.is_dir():
            found += [Path(e["outputs"]["geojson"]) for e in read_summaries(path) if e.get("status") == "done"]
        elif path.is_file():
            found.append(path)
        else:
            raise UsageError(f"not found: {path}")
    if not found:
        raise UsageError("no finished scene in the inputs")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.link < 0 or args.wall_reach <= 0 or args.near < 0 or args.pixel_size <= 0 \
            or not 0 < args.walled <= 1:
        raise UsageError("--wall-reach and --pixel-size must be positive, --link and --near not negative, "
                         "--walled in (0, 1]")
    out = args.out
    if out is None:
        folders = [p for p in args.inputs if p.is_dir()]
        if len(args.inputs) != 1 or not folders:
            raise UsageError("--out is needed unless the input is one run folder")
        out = folders[0]
    rules = SiteRules(link_m=args.link, wall_reach_m=args.wall_reach, walled_fraction=args.walled, near_m=args.near)
    try:
        sides = [read_side(path) for path in _geojsons(args.inputs)]
    except InputError as exc:
        raise UsageError(str(exc)) from None
    if len({s.pixel_coordinates for s in sides}) > 1:
        raise UsageError("some inputs are in pixel coordinates and others in WGS84: run them apart")
    roles = roles_of(args, sides)
    site_features, storehouse_features, lines = [], [], []
    for side in sides:
        crs, _ = to_metric([side])
        things = side.objects + side.regions
        scale = args.pixel_size if side.pixel_coordinates else 1.0
        if scale != 1.0:
            for t in things:
                t.metric = shapely.affinity.scale(t.geom, scale, scale, origin=(0, 0))

        def output(geom: shapely.Geometry, crs=crs, scale=scale) -> shapely.Geometry:
            if crs is None:
                return shapely.affinity.scale(geom, 1 / scale, 1 / scale, origin=(0, 0))
            return to_wgs84(geom, crs)

        sites, fortified = find_sites(things, rules, roles)
        scene = side.source.stem
        site_of = {i: s.number for s in sites for i in s.storehouses}
        for site in sites:
            props = {"scene": scene, **site_properties(site),
                     "defence": "fortified" if site.fortified else "open"}
            site_features.append((output(site.outline), props))
            lines.append(f"{scene} {site.describe()}")
        for i, t in enumerate(things):
            if t.cls == roles.storehouse:
                storehouse_features.append((t.geom, {"scene": scene, "site": site_of.get(i, 0),
                                                     "defence": "fortified" if i in fortified else "open"}))
        if not sites:
            lines.append(f"{scene}: no site")
    ensure_writable_folder(out)
    pixel = sides[0].pixel_coordinates
    sites_out = features([g for g, _ in site_features], [p for _, p in site_features])
    storehouses_out = features([g for g, _ in storehouse_features], [p for _, p in storehouse_features])
    extra = {"rules": asdict(rules), "roles": asdict(roles), "sources": [str(s.source) for s in sides]}
    if pixel:
        extra["coordinates"] = "pixel (x right, y down): the inputs have no georeferencing"
    with output_set(out) as staged:  # the whole set, or none of it
        write_geopackage(staged / "sites.gpkg", [
            Layer("sites", sites_out, DEFENCE_COLORS, filled=True, styled_by="defence"),
            Layer("storehouses", storehouses_out, DEFENCE_COLORS, filled=False, styled_by="defence")],
            crs=None if pixel else "EPSG:4326")
        write_feature_collection(staged / "sites.geojson", sites_out, extra)
        write_text_atomic(staged / "sites.txt", "\n".join(lines) + "\n")
    print("\n".join(lines))
    print("wrote " + ", ".join(str(out / name) for name in SITES_FILES))
    return 0
