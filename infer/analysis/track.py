"""Sites followed over many dates: every date registered to the first, its sites found, each followed in time.

Registration: each later date's objects vote for their shift against the
first date's (`infer.analysis.changes.estimate_offset`), and the shift is
removed. Sites are then found per date (`infer.analysis.sites`) and
followed: a date's site continues the site it overlaps most among those
seen before (by its latest outline); one that overlaps none starts a new
one. Sites are numbered in the order they first appear, from the north-west
within a date.

Objects are followed the same way: a date's object continues the track of
its class whose latest position lies within the diff tolerance (one to one,
least total distance), so an object missed at one date picks its track up
again. The changes between consecutive dates are those of `infer diff`,
computed in the registered frame, so every date's changes sit in the first
date's georeferencing.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

import numpy as np
import shapely
import shapely.affinity

from infer.analysis.changes import (
    Change,
    DiffOptions,
    Side,
    Thing,
    common_ground,
    compare,
    estimate_offset,
    keep_inside,
    pair_objects,
    to_metric,
)
from infer.analysis.sites import Site, SiteRoles, SiteRules, find_sites

#: Least IoU of a region piece that comes and goes (or goes and comes back) for it to count as flicker.
FLICKER_IOU = 0.5
#: What a timeline gives per site and date, in order.
TIMELINE_FIELDS = ("present", "storehouses", "fortified", "cleared_m2", "berm_m", "trucks_inside", "trucks_near")


@dataclass
class Followed:
    """One site through time: `dates[k]` is its `Site` at date k (None where it was not there)."""

    number: int
    dates: list[Site | None]

    def timeline(self) -> list[dict]:
        rows = []
        for site in self.dates:
            if site is None:
                rows.append(dict.fromkeys(TIMELINE_FIELDS, 0) | {"present": False})
                continue
            rows.append({"present": True, "storehouses": len(site.storehouses), "fortified": len(site.fortified),
                         "cleared_m2": round(site.cleared_m2, 1), "berm_m": round(site.berm_m, 1),
                         "trucks_inside": len(site.trucks_inside), "trucks_near": len(site.trucks_near)})
        return rows

    def latest(self) -> Site | None:
        return next((s for s in reversed(self.dates) if s is not None), None)


@dataclass
class ObjectTrack:
    """One object through time: `seen[k]` is its `Thing` at date k (None where it was not found)."""

    number: int
    cls: str
    seen: list[Thing | None]

    def dates_seen(self) -> list[int]:
        return [k for k, t in enumerate(self.seen) if t is not None]

    def latest(self) -> Thing:
        return next(t for t in reversed(self.seen) if t is not None)


@dataclass
class Tracking:
    """Every followed site and object, each date's shift removed (metres east, north) with its support, and
    the changes between consecutive dates (`changes[k]`: from date k to k + 1, in the first date's frame),
    those a neighbouring pair undoes set apart in `flicker`."""

    sites: list[Followed]
    objects: list[ObjectTrack]
    offsets: list[tuple[float, float]]
    support: list[int]
    crs: object  # the metric frame (a pyproj CRS), None for pixel inputs
    changes: list[list[Change]]
    flicker: list[list[Change]]  # per pair, the changes a neighbouring pair undoes (`split_flicker`)


def register(sides: Sequence[Side], options: DiffOptions | None = None
             ) -> tuple[object, list[tuple[float, float]], list[int]]:
    """Project every date into one metric frame and remove each later date's shift against the first.
    Returns the frame, the shifts removed and how many object pairs agreed on each (the first date: 0, 0)."""
    options = options or DiffOptions()
    crs, _ = to_metric(sides)
    offsets, support = [(0.0, 0.0)], [0]
    for side in sides[1:]:
        shift, votes = estimate_offset(sides[0].objects, side.objects, options) if options.align else (np.zeros(2), 0)
        for thing in side.objects + side.regions + ([side.footprint] if side.footprint else []):
            thing.metric = shapely.affinity.translate(thing.metric, -float(shift[0]), -float(shift[1]))
        offsets.append((float(shift[0]), float(shift[1])))
        support.append(int(votes))
    return crs, offsets, support


def follow(sides: Sequence[Side], rules: SiteRules | None = None, roles: SiteRoles | None = None,
           options: DiffOptions | None = None, keep_flicker: bool = False) -> Tracking:
    """Register `sides` (dates in order) and follow their sites and objects through time (defaults: each
    class's); changes that a neighbouring pair of dates undoes are set apart (`split_flicker`) unless
    `keep_flicker`."""
    rules, roles, options = rules or SiteRules(), roles or SiteRoles(), options or DiffOptions()
    crs, offsets, support = register(sides, options)
    followed: list[Followed] = []
    for k, side in enumerate(sides):
        sites, _ = find_sites(side.objects + side.regions, rules, roles)
        taken: set[int] = set()
        for site in sites:
            overlaps = [(shapely.intersection(f.latest().outline, site.outline).area, n)
                        for n, f in enumerate(followed) if n not in taken and f.latest() is not None]
            best = max(overlaps, default=(0.0, -1))
            if best[0] > 0:
                followed[best[1]].dates[k] = site
                taken.add(best[1])
            else:
                followed.append(Followed(len(followed) + 1, [None] * len(sides)))
                followed[-1].dates[k] = site
                taken.add(len(followed) - 1)
    changes = [consecutive_changes(sides[k - 1], sides[k], crs, options) for k in range(1, len(sides))]
    objects = follow_objects(sides, options.tolerance_m)
    flicker = [[] for _ in changes]
    if not keep_flicker:
        changes, flicker = split_flicker(changes, objects, {roles.berm})
    return Tracking(followed, objects, offsets, support, crs, changes, flicker)


def dates_out_of_order(sides: Sequence[Side]) -> str | None:
    """A note when the dates the inputs record do not run forward in the order given (which the timelines
    and changes follow), None otherwise; inputs without a date are not counted."""
    dated = [(side.source.name, side.date) for side in sides if side.date]
    for (name, date), (next_name, next_date) in itertools.pairwise(dated):
        if next_date < date:
            return (f"note: the dates are not in time order ({next_name}, dated {next_date}, is given after {name}, "
                    f"dated {date}): timelines and changes follow the order given")
    return None


def split_flicker(changes: list[list[Change]], objects: Sequence[ObjectTrack], earthworks: Collection[str],
                  min_iou: float = FLICKER_IOU) -> tuple[list[list[Change]], list[list[Change]]]:
    """Each pair's changes parted into those that stand and those a neighbouring pair undoes.

    An object whose track is seen before and after a date it was not found at was missed there: its
    `gone` into the gap and `new` out of it are not changes. A piece of an `earthworks` class (earth
    berms) that comes at one pair and goes at the next, or goes and comes back, overlapping by IoU ≥
    `min_iou`, was missed or invented at one date: earth is not raised and razed between two
    acquisitions. Other regions' changes stand (cleared ground is built on), and so does an object seen
    at one date only (a truck visits).
    """
    undone: set[int] = set()
    for track in objects:
        seen = track.dates_seen()
        for a, b in zip(seen, seen[1:], strict=False):
            if b > a + 1:
                undone |= {id(c) for c in changes[a] if c.thing is track.seen[a] and c.change == "gone"}
                undone |= {id(c) for c in changes[b - 1] if c.thing is track.seen[b] and c.change == "new"}
    for k in range(len(changes) - 1):
        later = [c for c in changes[k + 1] if c.kind == "region" and c.change != "persisting"]
        for c in changes[k]:
            if c.kind != "region" or c.change == "persisting" or c.cls not in earthworks:
                continue
            for d in later:
                if d.cls == c.cls and d.change != c.change and _iou(c.metric, d.metric) >= min_iou:
                    undone |= {id(c), id(d)}
    return ([[c for c in pair if id(c) not in undone] for pair in changes],
            [[c for c in pair if id(c) in undone] for pair in changes])


def _iou(a: shapely.Geometry, b: shapely.Geometry) -> float:
    union = shapely.union(a, b).area
    return shapely.intersection(a, b).area / union if union > 0 else 0.0


def follow_objects(sides: Sequence[Side], tolerance: float) -> list[ObjectTrack]:
    """Tracks of the registered `sides`' objects, numbered in the order they first appear."""
    tracks: list[ObjectTrack] = []
    for k, side in enumerate(sides):
        for cls in dict.fromkeys(t.cls for t in side.objects):
            here = [t for t in side.objects if t.cls == cls]
            open_tracks = [track for track in tracks if track.cls == cls]
            pairs = pair_objects([track.latest() for track in open_tracks], here, tolerance)
            for i, j, _ in pairs:
                open_tracks[i].seen[k] = here[j]
            paired = {j for _, j, _ in pairs}
            for j, thing in enumerate(here):
                if j not in paired:
                    tracks.append(ObjectTrack(len(tracks) + 1, cls, [None] * len(sides)))
                    tracks[-1].seen[k] = thing
    return tracks


def _detached(side: Side) -> Side:
    """A copy of `side` whose regions can be cut to the common ground without touching the original (its
    objects are the same: the changes name them)."""
    return replace(side, objects=list(side.objects), regions=[replace(t) for t in side.regions])


def consecutive_changes(before: Side, after: Side, crs: object, options: DiffOptions) -> list[Change]:
    """`infer diff`'s changes between two registered dates, on the ground both saw, in the comparison frame."""
    before, after = _detached(before), _detached(after)
    common = common_ground(before, after, 1.0)
    if common is not None:
        keep_inside(before, common)
        keep_inside(after, common)
    changes, _ = compare(before, after, options, crs)
    return changes


def area_timeline(sites: Sequence[Followed], dates: int) -> list[dict]:
    """The whole area's timeline: every field summed over the sites at each date (present: any site there)."""
    rows = [dict.fromkeys(TIMELINE_FIELDS, 0) | {"present": False} for _ in range(dates)]
    for site in sites:
        for total, row in zip(rows, site.timeline(), strict=True):
            total["present"] |= row["present"]
            for key in TIMELINE_FIELDS[1:]:
                total[key] = round(total[key] + row[key], 1)
    return rows


def berm_changed(site: Followed, changes: Sequence[Sequence[Change]], berm: str) -> bool:
    """Whether any standing change of class `berm` (after `split_flicker`) touches one of the site's outlines."""
    outlines = [s.outline for s in site.dates if s is not None]
    return any(c.cls == berm and c.change != "persisting" and c.metric is not None
               and any(c.metric.intersects(o) for o in outlines) for pair in changes for c in pair)


def progress_line(site: Followed, labels: Sequence[str], berm_moved: bool = True) -> str:
    """What an analyst would say of one site's timeline, e.g. "site 3: cleared 44,600 m² by date 2
    (2026-03-17); 6 storehouses by date 4 (...), 5 of them fortified". `berm_moved`: whether an earth berm
    change touches the site (`berm_changed`); without one its berm length is given once, as the median."""
    rows = site.timeline()

    def when(k: int) -> str:
        return f"date {k + 1} ({labels[k]})" if labels[k] else f"date {k + 1}"

    present = [k for k, r in enumerate(rows) if r["present"]]
    parts = [f"site {site.number}: seen from {when(present[0])}" + ("" if present[-1] == len(rows) - 1 else
                                                                    f" to {when(present[-1])}")]
    cleared = [k for k, r in enumerate(rows) if r["cleared_m2"] > 0]
    if cleared:
        top = max(rows[k]["cleared_m2"] for k in cleared)
        parts.append(f"cleared {top:,.0f} m² by {when(next(k for k in cleared if rows[k]['cleared_m2'] == top))}")
    most = max(r["storehouses"] for r in rows)
    if most:
        k = next(k for k, r in enumerate(rows) if r["storehouses"] == most)
        parts.append(f"{most} storehouse{'s' if most != 1 else ''} by {when(k)}, {rows[-1]['fortified']} of "
                     f"{rows[-1]['storehouses']} fortified at the last date")
        first_fortified = next((k for k, r in enumerate(rows) if r["fortified"]), None)
        if first_fortified is not None and first_fortified > present[0]:
            parts.append(f"fortified from {when(first_fortified)}")
    berms = [r["berm_m"] for r in rows if r["present"]]
    if berms and max(berms) > 0:
        if berm_moved and berms[0] != berms[-1]:
            parts.append(f"earth berm {berms[0]:,.0f} → {berms[-1]:,.0f} m")
        else:  # lengths that differ with no berm change between the dates are the outlines wavering
            parts.append(f"{float(np.median(berms)):,.0f} m of earth berm")
    visits = [k for k, r in enumerate(rows) if r["trucks_inside"]]
    if visits:
        parts.append("trucks inside at " + ", ".join(when(k) for k in visits))
    return "; ".join(parts)


__all__ = ["FLICKER_IOU", "TIMELINE_FIELDS", "Followed", "ObjectTrack", "Tracking", "area_timeline",
           "berm_changed", "consecutive_changes", "dates_out_of_order", "follow", "follow_objects", "progress_line", "register",
           "split_flicker"]
