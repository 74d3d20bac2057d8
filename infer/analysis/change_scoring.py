"""Score a `changes.geojson` against known changes (the generator's `<name>_changes.geojson`).

A found change is right when it has the class and the kind of change of a
true one not matched yet, and lies on it: objects by centres within
`distance_m`, region changes by IoU of at least `min_iou`. Persisting
objects are not changes and are not scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import shapely
from shapely import affinity
from shapely.geometry import shape

from infer.geo.crs import transform_geometry, utm_crs


def _metric(feature: dict[str, Any], crs, shift: tuple[float, float]) -> shapely.Geometry:
    geom = transform_geometry(shapely.make_valid(shape(feature["geometry"])), "EPSG:4326", crs)
    return affinity.translate(geom, -shift[0], -shift[1])


def _is_region(feature: dict[str, Any]) -> bool:
    return "heading_deg" not in feature["properties"]


def score_changes(truth: Sequence[dict[str, Any]], found: Sequence[dict[str, Any]],
                  after_shift_m: tuple[float, float] = (0.0, 0.0), distance_m: float = 1.5,
                  min_iou: float = 0.8) -> dict[str, Any]:
    """Precision and recall, overall and per (class, change). `after_shift_m`: misregistration of the after
    date (metres east, north), taken off found `new` things before comparing."""
    changed = [f for f in found if f["properties"].get("change") != "persisting"]
    if not truth and not changed:
        return {"precision": 1.0, "recall": 1.0, "true": 0, "found": 0, "matched": 0, "per_change": {}}
    anchor = shape((list(truth) or changed)[0]["geometry"]).centroid
    crs = utm_crs(anchor.x, anchor.y)
    truth_geoms = [_metric(t, crs, (0.0, 0.0)) for t in truth]
    found_geoms = [_metric(f, crs, after_shift_m if f["properties"]["change"] == "new" else (0.0, 0.0))
                   for f in changed]
    used: set[int] = set()
    hits: list[bool] = []
    for t, tg in zip(truth, truth_geoms, strict=True):
        key = (t["properties"]["class"], t["properties"]["change"])
        hit = False
        for i, (f, fg) in enumerate(zip(changed, found_geoms, strict=True)):
            if i in used or (f["properties"]["class"], f["properties"]["change"]) != key:
                continue
            if _is_region(t):
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
    for t, hit in zip(truth, hits, strict=True):
        entry = per_change.setdefault(f"{t['properties']['class']} {t['properties']['change']}",
                                      {"true": 0, "found": 0, "matched": 0})
        entry["true"] += 1
        entry["matched"] += int(hit)
    for f in changed:
        per_change.setdefault(f"{f['properties']['class']} {f['properties']['change']}",
                              {"true": 0, "found": 0, "matched": 0})["found"] += 1
    return {"precision": len(used) / max(1, len(changed)), "recall": sum(hits) / max(1, len(truth)),
            "true": len(truth), "found": len(changed), "matched": len(used), "per_change": per_change}
