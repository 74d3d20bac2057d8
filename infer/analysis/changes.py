"""What changed between two dates, from two sets of detections (or labels) of the same area.

Everything is compared in metres, in the UTM zone of the area. Two dates of
imagery are rarely registered to better than a few metres, so the shift
between them is estimated first from objects that plainly did not move (a
vote over the offsets of same-class neighbours; the most supported offset
wins, trucks that drove off cannot outvote storehouses that stayed) and
removed. Then objects are paired one to one by class and distance
(Hungarian assignment): paired ones persist, the rest are `gone` (before
only) or `new` (after only). Regions are compared as areas: what the after
date adds to a class's union and what it removes, cleaned of slivers
narrower than a metre or two, pieces smaller than a minimum area dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from shapely import affinity

from infer.contract.geometry import elongated_length
from infer.errors import InputError
from infer.geo.crs import from_wgs84, metric_crs, to_wgs84
from infer.geo.geojson import located_features, read_feature_collection
from infer.runtime.runfolder import finished_scene

LISTED_PIECES = 5  # new region pieces named one by one in the summary, largest first


@dataclass
class Thing:
    cls: str
    geom: shapely.Geometry  # as read: WGS84, or pixels for unreferenced inputs
    metric: shapely.Geometry  # metres (or pixels), in the comparison frame
    properties: dict[str, Any]


@dataclass
class Side:
    """One date: its objects and regions, where they came from and what imagery shows them."""

    source: Path
    objects: list[Thing]
    regions: list[Thing]
    date: str | None
    scene: Path | None
    pixel_coordinates: bool
    colors: dict[str, str] = field(default_factory=dict)
    footprint: Thing | None = None  # the ground the date saw (valid pixels), when its file records it
    min_area_m2: dict[str, float] = field(default_factory=dict)  # smallest region piece reported, per class
    checkpoint: str | None = None  # SHA-256 of the trained weights that detected it, when its file records them
    classes: tuple[str, ...] | None = None  # every class its model has, when its file records them (labels do not)


@dataclass(frozen=True)
class DiffOptions:
    tolerance_m: float = 5.0  # objects closer than this after registration are the same thing
    search_m: float = 20.0  # largest misregistration looked for
    min_support: int = 3  # objects that must agree on an offset before it is applied
    min_area_m2: float = 50.0  # smaller region changes are noise
    sliver_m: float = 1.5  # region changes narrower than this are edges, not change
    align: bool = True


@dataclass
class Change:
    cls: str
    kind: str  # object | region
    change: str  # new | gone | persisting
    geom: shapely.Geometry  # output coordinates (WGS84 or pixels)
    properties: dict[str, Any]
    metric: shapely.Geometry | None = None  # in the comparison frame
    thing: Thing | None = None  # the object that came, went or stayed (None for regions)


@dataclass
class DiffResult:
    changes: list[Change]
    offset: tuple[float, float]  # after → before shift removed, metres east, north (pixels x, y unreferenced)
    offset_support: int
    units: str  # "m" or "px"
    classes: list[tuple[str, str]]  # (name, kind) in first-seen order
    common_area_m2: float | None = None  # the ground both dates saw; None when neither file records its footprint
    outside: int = 0  # objects left out because only one date saw where they are


def _kind(collection: dict, props: dict) -> str:
    kinds = collection.get("classes") or {}
    if props["class"] in kinds:
        return kinds[props["class"]]
    return "object" if "heading_deg" in props else "region"


def _scene_for(path: Path, collection: dict) -> Path | None:
    """The imagery next to a GeoJSON: the file its `scene` member names, or a .tif of the same stem."""
    candidates = [path.with_suffix(".tif")]
    if collection.get("scene"):
        candidates.insert(0, path.parent / Path(str(collection["scene"])).name)
    return next((p for p in candidates if p.is_file() and p.suffix.lower() in (".tif", ".tiff", ".png", ".jpg")),
                None)


def resolve_input(path: Path) -> tuple[Path, Path | None]:
    """A GeoJSON file, or an `infer run` folder holding one scene: (GeoJSON, its scene if known)."""
    if path.is_file():
        return path, None
    if not path.is_dir():
        raise InputError(f"not found: {path}")
    return finished_scene(path)


def read_side(path: Path, scene: Path | None = None) -> Side:
    geojson, found_scene = resolve_input(path)
    collection = read_feature_collection(geojson)
    pixel = "coordinates" in collection
    objects, regions = [], []
    for n, feat, shape in located_features(geojson, collection):
        props = dict(feat.get("properties") or {})
        if "class" not in props:
            raise InputError(f"{geojson}: feature {n} has no 'class'")
        geom = shapely.make_valid(shape)
        thing = Thing(str(props["class"]), geom, geom, props)
        (objects if _kind(collection, props) == "object" else regions).append(thing)
    seen = collection.get("footprint")
    try:
        ground = None if seen is None else shapely.make_valid(shapely.geometry.shape(seen))
    except (AttributeError, KeyError, TypeError, ValueError, shapely.errors.GEOSException):
        raise InputError(f"{geojson}: its 'footprint' is not a GeoJSON geometry") from None
    try:
        smallest = {str(k): float(v) for k, v in (collection.get("min_area_m2") or {}).items()}
    except (AttributeError, TypeError, ValueError):
        raise InputError(f"{geojson}: its 'min_area_m2' is not a mapping of class to m²") from None
    checkpoint, classes = collection.get("checkpoint_sha256"), collection.get("classes")
    return Side(geojson, objects, regions, collection.get("date"),
                scene or found_scene or _scene_for(geojson, collection), pixel, dict(collection.get("colors") or {}),
                None if ground is None else Thing("footprint", ground, ground, {}), smallest,
                str(checkpoint) if checkpoint else None, tuple(map(str, classes)) if isinstance(classes, dict) else None)


def different_models(sides: Sequence[Side], labels: Sequence[str]) -> str | None:
    """A note when the dates were detected by different trained models, None otherwise.

    What two models see differently would show as change, so a comparison across them is flagged. A date whose
    file does not record its weights (labels, results of an older version) is not counted. `labels`: a name
    per date, as the outputs call them.
    """
    by_model: dict[str, list[str]] = {}
    for side, label in zip(sides, labels, strict=True):
        if side.checkpoint:
            by_model.setdefault(side.checkpoint, []).append(label)
    if len(by_model) < 2:
        return None
    groups = "; ".join(f"{', '.join(names)} by checkpoint {sha[:12]}" for sha, names in by_model.items())
    return (f"note: the dates were detected by different models ({groups}): some changes may be what the "
            "models see differently, not what changed on the ground")


def to_metric(sides: Sequence[Side]) -> tuple[CRS | None, str]:
    """Project every geometry of `sides` into one frame in metres (a UTM zone); pixel inputs stay in pixels."""
    if len({s.pixel_coordinates for s in sides}) > 1:
        raise InputError("one input is in pixel coordinates and another in WGS84: they cannot be compared")
    if sides[0].pixel_coordinates:
        return None, "px"
    things = [t for s in sides for t in s.objects + s.regions + ([s.footprint] if s.footprint else [])]
    if not things:
        return None, "m"
    crs = metric_crs([t.geom for t in things])
    # one call for all: reprojecting geometry by geometry costs more than the arithmetic (same results)
    for t, metric in zip(things, from_wgs84(np.array([t.geom for t in things], dtype=object), crs), strict=True):
        t.metric = metric
    return crs, "m"


def _centres(things: list[Thing]) -> np.ndarray:
    return np.array([t.metric.centroid.coords[0] for t in things]).reshape(-1, 2)


def estimate_offset(before: list[Thing], after: list[Thing], options: DiffOptions) -> tuple[np.ndarray, int]:
    """Shift of `after` relative to `before` that most same-class object pairs agree on, and how many agree
    (zero shift and 0 when fewer than `min_support` do).

    Every same-class pair closer than `search_m` votes for its offset; votes
    are binned in cells a third of the tolerance wide, the fullest 3 × 3
    block of cells wins and the median of its votes is the shift.
    """
    votes = []
    for cls in {t.cls for t in before}:
        a, b = _centres([t for t in before if t.cls == cls]), _centres([t for t in after if t.cls == cls])
        if len(a) and len(b):
            near = cKDTree(a).query_ball_tree(cKDTree(b), options.search_m)
            votes += [b[j] - a[i] for i, js in enumerate(near) for j in js]
    if not votes:
        return np.zeros(2), 0
    offsets = np.array(votes)
    cell = options.tolerance_m / 3
    bins = np.floor(offsets / cell).astype(np.int64)
    keys, counts = np.unique(bins, axis=0, return_counts=True)
    count_of = {tuple(k): c for k, c in zip(keys.tolist(), counts.tolist(), strict=True)}
    block = [sum(count_of.get((x + dx, y + dy), 0) for dx in (-1, 0, 1) for dy in (-1, 0, 1)) for x, y in keys.tolist()]
    centre = keys[int(np.argmax(block))]
    support = offsets[np.all(np.abs(bins - centre) <= 1, axis=1)]
    if len(support) < options.min_support:
        return np.zeros(2), 0
    return np.median(support, axis=0), len(support)


def pair_objects(before: list[Thing], after: list[Thing], tolerance: float) -> list[tuple[int, int, float]]:
    """One-to-one pairs closer than `tolerance` with the least total distance.

    Candidate pairs come from a KD-tree; each connected group of candidates
    is solved on its own (Hungarian), so thousands of objects stay cheap.
    """
    if not before or not after:
        return []
    a, b = _centres(before), _centres(after)
    near = cKDTree(a).query_ball_tree(cKDTree(b), tolerance)
    row = np.array([i for i, js in enumerate(near) for _ in js], dtype=np.int64)
    col = np.array([j for js in near for j in js], dtype=np.int64)
    if not len(row):
        return []
    n = len(a)
    graph = coo_matrix((np.ones(len(row)), (row, col + n)), shape=(n + len(b),) * 2)
    _, labels = connected_components(graph, directed=False)
    pairs = []
    for group in np.unique(labels[row]):
        rows = np.unique(row[labels[row] == group])
        cols = np.unique(col[labels[col + n] == group])
        cost = np.linalg.norm(a[rows][:, None, :] - b[cols][None, :, :], axis=-1)
        r, c = linear_sum_assignment(np.where(cost <= tolerance, cost, 1e9))
        pairs += [(int(rows[i]), int(cols[j]), float(cost[i, j])) for i, j in zip(r, c, strict=True)
                  if cost[i, j] <= tolerance]
    return pairs


def _extent(geom: shapely.Geometry, scale: float) -> str:
    """Sides of the smallest rotated rectangle around a piece, as "270 m x 165 m"."""
    corners = np.asarray(geom.minimum_rotated_rectangle.exterior.coords)[:3]
    sides = sorted((float(np.linalg.norm(corners[1] - corners[0])), float(np.linalg.norm(corners[2] - corners[1]))),
                   reverse=True)
    return f"{sides[0] * scale:.0f} m x {sides[1] * scale:.0f} m"


def _cleaned(geom: shapely.Geometry, options: DiffOptions, scale: float, min_area_m2: float) -> list[shapely.Polygon]:
    eps = options.sliver_m / 2 / scale
    opened = geom.buffer(-eps, join_style="mitre").buffer(eps, join_style="mitre")
    parts = [g for g in getattr(opened, "geoms", [opened]) if isinstance(g, shapely.Polygon)]
    return [g for g in parts if g.area * scale * scale >= min_area_m2]


def smallest_change_m2(cls: str, sides: Sequence[Side], options: DiffOptions) -> float:
    """The smallest change of region class `cls` reported: `options.min_area_m2`, or the smallest piece of
    the class the inputs report (their `min_area_m2` header) when that is larger: a change below what
    either date could show is the outline moving, not the ground."""
    return max([options.min_area_m2] + [s.min_area_m2.get(cls, 0.0) for s in sides])


def diff(before: Side, after: Side, options: DiffOptions = DiffOptions(), pixel_m: float = 1.0) -> DiffResult:
    """Changes from `before` to `after`. `pixel_m`: metres per pixel when the inputs are in pixels."""
    crs, units = to_metric([before, after])
    scale = pixel_m if units == "px" else 1.0  # metres per comparison unit
    common = common_ground(before, after, scale)
    outside = 0
    if common is not None:
        outside = keep_inside(before, common) + keep_inside(after, common)
    in_units = replace(options, tolerance_m=options.tolerance_m / scale, search_m=options.search_m / scale)
    offset, support = (estimate_offset(before.objects, after.objects, in_units) if options.align
                       else (np.zeros(2), 0))
    for t in after.objects + after.regions:
        t.metric = affinity.translate(t.metric, -offset[0], -offset[1])
    changes, classes = compare(before, after, options, crs, scale, after_offset=offset)
    shift = (float(offset[0] * scale), float(offset[1] * scale))
    area = None if common is None else round(common.area * scale * scale, 1)
    return DiffResult(changes, shift, support, units, classes, area, outside)


def compare(before: Side, after: Side, options: DiffOptions, crs: CRS | None, scale: float = 1.0,
            after_offset: np.ndarray | None = None) -> tuple[list[Change], list[tuple[str, str]]]:
    """Changes between two dates already registered in one comparison frame (`crs`; None: pixels of
    `scale` metres). With `after_offset`, the shift removed from `after`, what only the after date shows
    is reported where its own georeferencing puts it; without, everything is reported in the comparison
    frame (for a series: the first date's). Returns the changes and the classes seen, as (name, kind)."""

    def out(metric_geom: shapely.Geometry, shift: np.ndarray | None) -> shapely.Geometry:
        moved = metric_geom if shift is None else affinity.translate(metric_geom, shift[0], shift[1])
        return moved if crs is None else to_wgs84(moved, crs)

    in_frame: dict[int, shapely.Geometry] = {}
    if after_offset is None:  # every object's output geometry, reprojected in one call
        things = before.objects + after.objects
        metric = np.array([t.metric for t in things], dtype=object)
        outputs = metric if crs is None or not len(things) else to_wgs84(metric, crs)
        in_frame = {id(t): g for t, g in zip(things, outputs, strict=True)}

    def placed(thing: Thing) -> shapely.Geometry:
        return thing.geom if after_offset is not None else in_frame[id(thing)]

    tolerance = options.tolerance_m / scale
    changes: list[Change] = []
    classes = list(dict.fromkeys([(t.cls, "object") for t in before.objects + after.objects]
                                 + [(t.cls, "region") for t in before.regions + after.regions]))
    for cls, kind in classes:
        if kind == "object":
            b = [t for t in before.objects if t.cls == cls]
            a = [t for t in after.objects if t.cls == cls]
            pairs = pair_objects(b, a, tolerance)
            paired_b, paired_a = {i for i, _, _ in pairs}, {j for _, j, _ in pairs}
            for _, j, d in pairs:
                props = {**a[j].properties, "change": "persisting", "moved_m": round(d * scale, 2)}
                changes.append(Change(cls, kind, "persisting", placed(a[j]), props, a[j].metric, a[j]))
            changes += [Change(cls, kind, "gone", placed(t), {**t.properties, "change": "gone"}, t.metric, t)
                        for i, t in enumerate(b) if i not in paired_b]
            changes += [Change(cls, kind, "new", placed(t), {**t.properties, "change": "new"}, t.metric, t)
                        for j, t in enumerate(a) if j not in paired_a]
            continue
        union_b = shapely.union_all([t.metric for t in before.regions if t.cls == cls])
        union_a = shapely.union_all([t.metric for t in after.regions if t.cls == cls])
        for change, geom in (("new", union_a.difference(union_b)), ("gone", union_b.difference(union_a))):
            for piece in _cleaned(geom, options, scale, smallest_change_m2(cls, (before, after), options)):
                props = {"class": cls, "change": change, "area_m2": round(piece.area * scale * scale, 1),
                         "length_m": round(elongated_length(piece) * scale, 1), "extent_m": _extent(piece, scale)}
                changes.append(Change(cls, kind, change, out(piece, after_offset if change == "new" else None),
                                      props, piece))
    return changes, classes


def common_ground(before: Side, after: Side, scale: float) -> shapely.Geometry | None:
    """Where both dates saw the ground (the footprints' intersection, in the comparison frame); the one
    footprint known when only one is; None when neither is. `InputError` when they do not overlap."""
    known = [s.footprint.metric for s in (before, after) if s.footprint is not None]
    if not known:
        return None
    common = shapely.intersection_all(known)
    if len(known) == 2 and common.area <= 0:
        raise InputError(no_common_ground(before.source.name, after.source.name, known[0].distance(known[1]) * scale))
    return common


def no_common_ground(before: str, after: str, gap_m: float) -> str:
    """The refusal of two inputs whose footprints lie `gap_m` apart (0: they touch)."""
    apart = f"{gap_m / 1000:.1f} km apart" if gap_m >= 1000 else (f"{gap_m:.0f} m apart" if gap_m > 0 else "touching")
    return f"{before} and {after} do not cover the same ground (their footprints are {apart}): there is nothing to compare"


def ground_gap_m(a: shapely.Geometry, b: shapely.Geometry) -> float:
    """Metres between two WGS84 geometries (0 when they meet), measured in the UTM zone of the first."""
    crs = metric_crs([a])
    return float(from_wgs84(a, crs).distance(from_wgs84(b, crs)))


def keep_inside(side: Side, common: shapely.Geometry) -> int:
    """Keep the objects centred on the common ground and the regions' parts on it; returns how many
    objects were left out."""
    centres = _centres(side.objects)
    inside = shapely.contains_xy(common, centres[:, 0], centres[:, 1]) if len(centres) else np.zeros(0, bool)
    left_out = int((~inside).sum())
    side.objects = [t for t, keep in zip(side.objects, inside, strict=True) if keep]
    for t in side.regions:
        t.metric = t.metric.intersection(common)
    side.regions = [t for t in side.regions if not t.metric.is_empty]
    return left_out


def summary_lines(result: DiffResult, before: Side, after: Side) -> list[str]:
    """A few plain sentences an analyst can paste into a report."""
    when = f"{before.date or before.source.name} → {after.date or after.source.name}"
    lines = [f"Changes {when}:"]
    if before.date and after.date and after.date < before.date:
        lines.append(f"  note: the dates run backwards (the later input, {after.source.name}, is dated "
                     f"{after.date}, before {before.date}): 'new' is what only {after.source.name} shows")
    models = different_models([before, after], [before.date or before.source.name, after.date or after.source.name])
    if models:
        lines.append(f"  {models}")
    if result.common_area_m2 is not None:
        area = (f"{result.common_area_m2 / 1e6:,.2f} km²" if result.common_area_m2 >= 1e5
                else f"{result.common_area_m2:,.0f} m²")
        lines.append(f"  compared where both dates saw the ground: {area}"
                     + (f"; {result.outside} object(s) outside it left out" if result.outside else ""))
    if not result.classes:
        lines.append("  nothing was detected at either date")
    for cls, kind in result.classes:
        mine = [c for c in result.changes if c.cls == cls]
        if kind == "object":
            n = {k: sum(1 for c in mine if c.change == k) for k in ("new", "gone", "persisting")}
            lines.append(f"  {cls}: {n['new']} new, {n['gone']} gone, {n['persisting']} persisting")
            continue
        added = [c for c in mine if c.change == "new"]
        removed = [c for c in mine if c.change == "gone"]
        text = (f"  {cls}: {sum(c.properties['area_m2'] for c in added):,.0f} m² added in {len(added)} piece(s), "
                f"{sum(c.properties['area_m2'] for c in removed):,.0f} m² removed in {len(removed)} piece(s)")
        if added and all(c.properties["length_m"] ** 2 >= 4 * c.properties["area_m2"] for c in added):
            text += f"; {sum(c.properties['length_m'] for c in added):,.0f} m of length added"
        lines.append(text)
        for c in sorted(added, key=lambda c: -c.properties["area_m2"])[:LISTED_PIECES]:
            lines.append(f"    new {cls} of {c.properties['extent_m']} ({c.properties['area_m2']:,.0f} m²)")
        if len(added) > LISTED_PIECES:
            lines.append(f"    and {len(added) - LISTED_PIECES} smaller")
    dx, dy = result.offset
    if result.offset_support:
        axes = ("east", "north") if result.units == "m" else ("in x", "in y")
        lines.append(f"  registration: the after date sits {dx:+.1f} m {axes[0]}, {dy:+.1f} m {axes[1]} of the "
                     f"before date ({result.offset_support} objects agree); removed before matching")
    return lines
