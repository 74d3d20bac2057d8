"""Sites: a scene's detections grouped into compounds, and how fortified each one is.

The rules (docs/sites.md says them for analysts):

- **Members** of sites are storehouses, earth berms and cleared sites. Two
  members closer than `SiteRules.link_m` belong to one site, and so does
  whatever is centred inside the convex hull of linked berms (a compound's
  ring may lie 60 m from its storehouses). A group with neither a
  storehouse nor cleared ground (berms alone, a field edge) is not a site.
- A storehouse is **fortified** when berms wall it in: of `bearings` rays
  from its centre, at least `walled_fraction` (three quarters) meet an
  earth berm within `wall_reach_m`. A ring with a gate walls a storehouse
  in, and so do berms flanking it on enough sides; one berm along one side
  (at most half the bearings) does not.
- A site's **outline** is the convex hull of its members. Its trucks are
  those centred inside it, and those near it (within `near_m` outside).
- **Berm length** is the centreline length of each berm polygon, from its
  area A and perimeter P: a ridge of length L and constant width w has
  A = L w and P = 2 (L + w), so L = (P/2 + sqrt(P²/4 - 4A)) / 2 (a closed
  ring, which has no ends, comes out one width short).

All distances are in metres, in a frame in metres (`infer.analysis.changes.to_metric`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from scipy.cluster.hierarchy import DisjointSet

from infer.analysis.changes import Thing


@dataclass(frozen=True)
class SiteRules:
    """The distances and fractions of the rules above; `--help` of `infer sites` quotes these defaults."""

    link_m: float = 15.0
    wall_reach_m: float = 150.0
    walled_fraction: float = 0.75
    near_m: float = 50.0
    bearings: int = 72


@dataclass(frozen=True)
class SiteRoles:
    """Which class plays which part (a dataset with other names maps them here)."""

    storehouse: str = "storehouse"
    berm: str = "earth_berm"
    cleared: str = "cleared_site"
    truck: str = "truck"


@dataclass
class Site:
    """One site; `outline` in the metric frame, member lists index the things given to `find_sites`."""

    number: int
    outline: shapely.Geometry
    storehouses: list[int]
    fortified: list[int]
    berms: list[int]
    cleared: list[int]
    trucks_inside: list[int]
    trucks_near: list[int]
    berm_m: float
    cleared_m2: float
    properties: dict = field(default_factory=dict)

    def describe(self) -> str:
        """One line an analyst reads: size, what stands there, how much is fortified."""
        length, width = rectangle_sides(self.outline)
        parts = [f"site {self.number}: {length:,.0f} m x {width:,.0f} m"]
        if self.storehouses:
            parts.append(f"{len(self.storehouses)} storehouse{'s' if len(self.storehouses) != 1 else ''}, "
                         f"{len(self.fortified)} fortified")
        if self.berms:
            parts.append(f"{self.berm_m:,.0f} m of earth berm")
        if self.cleared:
            parts.append(f"{self.cleared_m2:,.0f} m² cleared")
        trucks = len(self.trucks_inside) + len(self.trucks_near)
        if trucks:
            parts.append(f"{len(self.trucks_inside)} truck{'s' if len(self.trucks_inside) != 1 else ''} inside, "
                         f"{len(self.trucks_near)} near")
        return "; ".join(parts)


def rectangle_sides(geom: shapely.Geometry) -> tuple[float, float]:
    """Long and short side of the smallest rotated rectangle around `geom`, metres."""
    ring = shapely.minimum_rotated_rectangle(geom)
    coords = np.asarray(ring.exterior.coords) if ring.geom_type == "Polygon" else np.asarray(ring.coords)
    if len(coords) < 3:
        return (float(ring.length), 0.0)
    sides = sorted([math.dist(coords[0], coords[1]), math.dist(coords[1], coords[2])])
    return sides[1], sides[0]


def ridge_length(polygon: shapely.Geometry) -> float:
    """Centreline length of a ridge-shaped polygon (see the module's rules), metres."""
    area, half = polygon.area, polygon.length / 2
    return (half + math.sqrt(max(half * half - 4 * area, 0.0))) / 2


def walled_in(centre: shapely.Point, berms: shapely.STRtree, rules: SiteRules) -> float:
    """The fraction of `rules.bearings` rays from `centre` that meet a berm within `rules.wall_reach_m`."""
    angles = np.arange(rules.bearings) * (2 * math.pi / rules.bearings)
    x, y = centre.x, centre.y
    ends = np.column_stack([x + rules.wall_reach_m * np.cos(angles), y + rules.wall_reach_m * np.sin(angles)])
    rays = shapely.linestrings([[[x, y], end] for end in ends])
    ray_index, _ = berms.query(rays, predicate="intersects")
    return len(np.unique(ray_index)) / rules.bearings


def find_sites(things: Sequence[Thing], rules: SiteRules = SiteRules(), roles: SiteRoles = SiteRoles()
               ) -> tuple[list[Site], set[int]]:
    """The sites among `things` (their `metric` geometries, metres), numbered from the north-west, and the
    indices of the fortified storehouses (all of them, in sites or not)."""
    by_role = {role: [i for i, t in enumerate(things) if t.cls == getattr(roles, role)]
               for role in ("storehouse", "berm", "cleared", "truck")}
    berm_geoms = np.asarray([things[i].metric for i in by_role["berm"]], dtype=object)
    berm_tree = shapely.STRtree(berm_geoms)
    fortified = {i for i in by_role["storehouse"]
                 if walled_in(things[i].metric.centroid, berm_tree, rules) >= rules.walled_fraction}

    members = by_role["storehouse"] + by_role["berm"] + by_role["cleared"]
    groups = DisjointSet(members)
    geoms = np.asarray([things[i].metric for i in members], dtype=object)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="dwithin", distance=rules.link_m)
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        groups.merge(members[a], members[b])
    # Berm works (berms linked to berms) take in what stands inside their hull: a compound's ring may lie
    # 60 m from its storehouses.
    works = DisjointSet(range(len(berm_geoms)))
    left, right = berm_tree.query(berm_geoms, predicate="dwithin", distance=rules.link_m)
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        works.merge(a, b)
    anchors = by_role["storehouse"] + by_role["cleared"]
    centres = shapely.points([things[i].metric.centroid.coords[0] for i in anchors]) if anchors else np.array([])
    for work in works.subsets():
        hull = shapely.convex_hull(shapely.GeometryCollection([berm_geoms[b] for b in work]))
        for k in np.flatnonzero(shapely.contains(hull, centres)) if anchors else []:
            groups.merge(anchors[k], by_role["berm"][next(iter(work))])

    anchored = set(anchors)
    trucks = by_role["truck"]
    truck_centres = shapely.points([things[i].metric.centroid.coords[0] for i in trucks]) if trucks else np.array([])
    found = []
    for subset in groups.subsets():
        if not anchored & subset:
            continue
        outline = shapely.convex_hull(shapely.GeometryCollection([things[i].metric for i in sorted(subset)]))
        inside = shapely.contains(outline, truck_centres) if trucks else np.array([], bool)
        near = shapely.dwithin(outline, truck_centres, rules.near_m) & ~inside if trucks else np.array([], bool)
        berms = sorted(i for i in subset if i in set(by_role["berm"]))
        cleared = sorted(i for i in subset if i in set(by_role["cleared"]))
        found.append(Site(
            number=0, outline=outline,
            storehouses=sorted(i for i in subset if i in set(by_role["storehouse"])),
            fortified=sorted(i for i in subset if i in fortified), berms=berms, cleared=cleared,
            trucks_inside=[trucks[k] for k in np.flatnonzero(inside)],
            trucks_near=[trucks[k] for k in np.flatnonzero(near)],
            berm_m=sum(ridge_length(things[i].metric) for i in berms),
            cleared_m2=sum(things[i].metric.area for i in cleared)))
    found.sort(key=lambda s: (-round(s.outline.centroid.y, 3), round(s.outline.centroid.x, 3)))
    for number, site in enumerate(found, start=1):
        site.number = number
    return found, fortified


def site_properties(site: Site) -> dict:
    """The GeoJSON properties of a site (rounded for people)."""
    length, width = rectangle_sides(site.outline)
    return {"site": site.number, "area_m2": round(site.outline.area, 1), "length_m": round(length, 1),
            "width_m": round(width, 1), "storehouses": len(site.storehouses),
            "fortified_storehouses": len(site.fortified), "berm_m": round(site.berm_m, 1),
            "cleared_m2": round(site.cleared_m2, 1), "trucks_inside": len(site.trucks_inside),
            "trucks_near": len(site.trucks_near), "summary": site.describe()}


__all__ = ["Site", "SiteRoles", "SiteRules", "find_sites", "rectangle_sides", "ridge_length", "site_properties",
           "walled_in"]
