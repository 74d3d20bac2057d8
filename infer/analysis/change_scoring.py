"""Score a `changes.geojson` against known changes (the generator's `<name>_changes.geojson`).

A found change is right when it has the class and the kind of change of a
true one not matched yet, and lies on it: objects by centres within
`distance_m`, region changes by IoU of at least `min_iou`. True region
changes of one class and kind that touch are one change, as the diff reports
them. Persisting objects are not changes and are not scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import shapely
from scipy.cluster.hierarchy import DisjointSet
from shapely import affinity
from shapely.geometry import shape

from infer.geo.crs import from_wgs84, metric_crs


def _metric(feature: dict[str, Any], crs, shift: tuple[float, float]) -> shapely.Geometry:
    geom = from_wgs84(shapely.make_valid(shape(feature["geometry"])), crs)
    return affinity.translate(geom, -shift[0], -shift[1])


def _is_region(feature: dict[str, Any]) -> bool:
    return "heading_deg" not in feature["properties"]


def _dissolved(truth: Sequence[dict[str, Any]], geoms: Sequence[shapely.Geometry]
               ) -> list[tuple[tuple[str, str], bool, shapely.Geometry]]:
    """(class, change), is-region, metric geometry of each true change, with the region changes of one
    (class, change) that touch merged into connected pieces: the diff reports connected pieces of a
    class's union, so a ring closed by two labeled halves is one change on both sides."""
    entries, regions = [], {}
    for t, g in zip(truth, geoms, strict=True):
        key = (t["properties"]["class"], t["properties"]["change"])
        if _is_region(t):
            regions.setdefault(key, []).append(g)
        else:
            entries.append((key, False, g))
    for key, parts in regions.items():
        groups = DisjointSet(range(len(parts)))
        for i, j in zip(*shapely.STRtree(parts).query(parts, predicate="intersects"), strict=True):
            groups.merge(int(i), int(j))
        entries += [(key, True, shapely.union_all([parts[i] for i in group])) for group in groups.subsets()]
    return entries


def score_changes(truth: Sequence[dict[str, Any]], found: Sequence[dict[str, Any]],
                  after_shift_m: tuple[float, float] = (0.0, 0.0), distance_m: float = 1.5,
                  min_iou: float = 0.8) -> dict[str, Any]:
    """Precision and recall, overall and per (class, change). `after_shift_m`: misregistration of the after
    date (metres east, north), taken off found `new` things before comparing. Touching true region changes
    of one class and kind count as one (see `_dissolved`)."""
    changed = [f for f in found if f["properties"].get("change") != "persisting"]
    if not truth and not changed:
        return {"precision": 1.0, "recall": 1.0, "true": 0, "found": 0, "matched": 0, "per_change": {}}
    crs = metric_crs([shape((list(truth) or changed)[0]["geometry"])])
    entries = _dissolved(truth, [_metric(t, crs, (0.0, 0.0)) for t in truth])
    found_geoms = [_metric(f, crs, after_shift_m if f["properties"]["change"] == "new" else (0.0, 0.0))
                   for f in changed]
    used: set[int] = set()
    hits: list[bool] = []
    for key, region, tg in entries:
        hit = False
        for i, (f, fg) in enumerate(zip(changed, found_geoms, strict=True)):
            if i in used or (f["properties"]["class"], f["properties"]["change"]) != key:
                continue
            if region:
                union = tg.union(fg).area
                ok = union > 0 and tg.intersection(fg).area / union >= min_iou
            else:
                ok = tg.centroid.distance(fg.centroid) <= distance_m
            if ok:
                used.add(i)
                hit = True
                break
        hits.append(hit)
    per_change: dict[str, dict[str, int]] = {}
    for (cls, change), _, _ in entries:
        per_change.setdefault(f"{cls} {change}", {"true": 0, "found": 0, "matched": 0})["true"] += 1
    for ((cls, change), _, _), hit in zip(entries, hits, strict=True):
        per_change[f"{cls} {change}"]["matched"] += int(hit)
    for f in changed:
        per_change.setdefault(f"{f['properties']['class']} {f['properties']['change']}",
                              {"true": 0, "found": 0, "matched": 0})["found"] += 1
    return {"precision": len(used) / max(1, len(changed)), "recall": sum(hits) / max(1, len(entries)),
            "true": len(entries), "found": len(changed), "matched": len(used), "per_change": per_change}


__all__ = ["score_changes"]
