"""Score predicted GeoJSON against truth GeoJSON for one scene, in the scene's pixels.

COCO box AP with pycocotools (objects by the box of their polygon, regions by
the box of each connected piece), precision/recall/F1 at a chosen score and
IoU from the same matching, and pixel IoU of region classes computed window
by window.

A region class is an area, not a count: its instances are the connected
pieces of the union of its polygons, on both sides. Labels often cut one
continuous ridge into several features (the synthetic generator splits berms
at 400 m; digitizers stop at a map sheet); no mask can say where such a cut
was made, and scoring the cut pieces would cap a perfect answer's AP well
below 1. Training validation counts pieces of the truth mask the same way.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import shapely
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from rasterio.features import rasterize
from shapely import affinity

from infer.contract.defaults import DEFAULT_SCORE
from infer.contract.geometry import elongated_length
from infer.contract.label_formats import class_key, read_labels
from infer.errors import InputError
from infer.geo.crs import from_wgs84
from infer.geo.geojson import finite_number, located_features, read_feature_collection
from infer.geo.rasterenv import open_raster

IOU_THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)
STRIP_ROWS = 2048


@dataclass(frozen=True)
class Labeled:
    cls: str
    pixels: shapely.Geometry  # scene pixel coordinates
    score: float
    oriented: bool  # carries a heading: an object, not a region
    heading: float | None = None  # heading_deg: a bearing from true north


def read_in_pixels(path: Path, scene: Path) -> tuple[list[Labeled], int, int]:
    """Features of a GeoJSON as polygons in the scene's pixel grid; and the scene size."""
    collection = read_feature_collection(path)
    with open_raster(scene) as src:
        inverse, crs, size = ~src.transform, src.crs, (src.width, src.height)
    pixel_coords = "coordinates" in collection  # written for a picture without georeferencing
    out = []
    for n, feat, geom in located_features(path, collection):
        props = feat.get("properties") or {}
        if "class" not in props:
            raise InputError(f"{path}: feature {n} has no 'class'")
        if not pixel_coords:
            if crs is None:
                raise InputError(f"{path} is in WGS84 but {scene.name} has no georeferencing")
            m = inverse
            geom = affinity.affine_transform(from_wgs84(geom, crs), [m.a, m.b, m.d, m.e, m.c, m.f])
        heading, score = props.get("heading_deg"), props.get("score", 1.0)
        if not finite_number(score):
            raise InputError(f"{path}: feature {n} has score {score!r}: a number (1 for truth, or left out)")
        out.append(Labeled(str(props["class"]), geom, float(score), "heading_deg" in props,
                           float(heading) if finite_number(heading) else None))
    return out, size[0], size[1]


def area_pieces(items: list[Labeled], region_classes: set[str]) -> list[Labeled]:
    """Region features replaced by the connected pieces of their class's union.

    A piece made of several features is scored by their area-weighted mean score.
    """
    out = [t for t in items if t.cls not in region_classes]
    for name in sorted(region_classes):
        # Hand-drawn labels may self-intersect; made valid, they still unite.
        members = [Labeled(t.cls, shapely.make_valid(t.pixels), t.score, t.oriented)
                   for t in items if t.cls == name and not t.pixels.is_empty]
        if not members:
            continue
        union = shapely.union_all([t.pixels for t in members])
        pieces = list(getattr(union, "geoms", [union]))
        tree = shapely.STRtree([t.pixels for t in members])
        for piece in pieces:
            parts = [members[i] for i in tree.query(piece, predicate="intersects")]
            area = sum(p.pixels.area for p in parts)
            score = (sum(p.score * p.pixels.area for p in parts) / area if area
                     else max(p.score for p in parts))
            out.append(Labeled(name, piece, float(score), False))
    return out


def _coco(truth: list[Labeled], preds: list[Labeled], names: list[str], size: tuple[int, int]):
    cat = {n: i + 1 for i, n in enumerate(names)}

    def box(g: shapely.Geometry) -> list[float]:
        x0, y0, x1, y1 = g.bounds
        return [x0, y0, max(x1 - x0, 1e-3), max(y1 - y0, 1e-3)]

    gt = COCO()
    gt.dataset = {
        "images": [{"id": 1, "width": size[0], "height": size[1]}],
        "categories": [{"id": i, "name": n} for n, i in cat.items()],
        "annotations": [{"id": k + 1, "image_id": 1, "category_id": cat[t.cls], "bbox": box(t.pixels),
                         "area": box(t.pixels)[2] * box(t.pixels)[3], "iscrowd": 0} for k, t in enumerate(truth)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes([{"image_id": 1, "category_id": cat[p.cls], "bbox": box(p.pixels), "score": p.score}
                         for p in preds]) if preds else None
    return gt, dt, cat


def read_truth_labels(path: Path, scene: Path, label_format: str, names: set[str],
                      renamed: dict[str, str] | None = None) -> list[Labeled]:
    """The truth of one picture from a label file of another format (`infer.contract.label_formats`): every
    label an object, its class renamed by `renamed` (source name → class; "" leaves it out) or else to the
    one of `names` it matches by `class_key`."""
    by_key = {class_key(n): n for n in names}
    renamed = renamed or {}
    labels = read_labels(label_format, path, scene)
    if unknown := sorted(set(renamed) - {label.name for label in labels}):
        raise InputError(f"--class: {', '.join(unknown)} is not a class of {path.name} "
                         f"(its classes: {', '.join(sorted({label.name for label in labels})) or 'none'})")
    return [Labeled(renamed.get(label.name) or by_key.get(class_key(label.name), label.name),
                    shapely.Polygon(label.points), 1.0, True)
            for label in labels if renamed.get(label.name, True)]


def evaluate(pred_path: Path, truth_path: Path, scene: Path, iou: float = 0.5, score: float = DEFAULT_SCORE,
             regions: set[str] | None = None, truth_format: str = "geojson",
             renamed: dict[str, str] | None = None) -> dict:
    """Per class: AP@iou, AP@[.5:.95], precision/recall/F1 at `score` and `iou`; IoU for region classes.

    `truth_format`: "geojson", or a format of `infer.contract.label_formats` (pixels, one picture), whose
    class names `renamed` maps (source name → class; see `read_truth_labels`). Region
    classes are `regions`, or else those the predictions' header calls regions, or else the truth
    classes whose features carry no `heading_deg`.
    """
    preds, width, height = read_in_pixels(pred_path, scene)
    header = read_feature_collection(pred_path)
    kinds, directional = header.get("classes"), header.get("directional")
    if truth_format == "geojson":
        truth, _, _ = read_in_pixels(truth_path, scene)
    else:
        truth = read_truth_labels(truth_path, scene, truth_format, set(kinds or {}) | {p.cls for p in preds},
                                  renamed)
    known = {t.cls for t in truth} | {p.cls for p in preds} | set(kinds if isinstance(kinds, dict) else {})
    if regions is not None and (unknown := sorted(regions - known)):
        raise InputError(f"--regions: {', '.join(unknown)} is not a class of the predictions or the truth "
                         f"(classes: {', '.join(sorted(known)) or 'none'})")
    if regions is None and isinstance(kinds, dict):
        regions = {name for name, kind in kinds.items() if kind == "region"}
    if regions is None:
        regions = {t.cls for t in truth} - {t.cls for t in truth if t.oriented}
    truth_pieces, pred_pieces = area_pieces(truth, regions), area_pieces(preds, regions)
    names = sorted({t.cls for t in truth} | {p.cls for p in preds})
    thresholds = np.unique(np.append(IOU_THRESHOLDS, round(iou, 2)))
    gt, dt, cat = _coco(truth_pieces, pred_pieces, names, (width, height))
    results: dict[str, dict] = {}
    if dt is not None:
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.params.iouThrs = thresholds
        ev.params.maxDets = [1, 100, 100000]
        ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e12]], ["all"]
        with contextlib.redirect_stdout(io.StringIO()):
            ev.evaluate()
            ev.accumulate()
        t_iou = int(np.argmin(np.abs(thresholds - iou)))
        standard = [i for i, t in enumerate(thresholds) if np.isclose(IOU_THRESHOLDS, t).any()]
    for name in names:
        k = cat[name] - 1
        n_truth = sum(t.cls == name for t in truth_pieces)
        entry = {"truth": n_truth, "predicted": sum(p.cls == name for p in pred_pieces)}
        if dt is not None and n_truth:
            precision = ev.eval["precision"][:, :, k, 0, -1]
            ap = [float(precision[i][precision[i] > -1].mean()) if (precision[i] > -1).any() else 0.0
                  for i in range(len(thresholds))]
            entry[f"ap@{iou:g}"] = round(ap[t_iou], 4)
            entry["ap@[.5:.95]"] = round(float(np.mean([ap[i] for i in standard])), 4)
            tp, fp = _matches_at(ev, cat[name], t_iou, score)
            entry.update(_prf(tp, fp, n_truth))
            entry.update(heading_errors(_matched_pairs(ev, cat[name], t_iou, score, pred_pieces, truth_pieces),
                                        _heading_period(name, directional, truth_pieces, pred_pieces)))
        elif n_truth:
            entry.update({f"ap@{iou:g}": 0.0, "ap@[.5:.95]": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0})
        results[name] = entry
    for name, value in region_iou(truth, preds, width, height, regions).items():
        results.setdefault(name, {})["iou"] = round(value, 4)
    aps = [r[f"ap@{iou:g}"] for r in results.values() if f"ap@{iou:g}" in r]
    return {"classes": results, f"map@{iou:g}": round(float(np.mean(aps)), 4) if aps else 0.0,
            "map@[.5:.95]": round(float(np.mean([r["ap@[.5:.95]"] for r in results.values()
                                                 if "ap@[.5:.95]" in r])), 4) if aps else 0.0,
            "iou_threshold": iou, "score_threshold": score}


def _box_iou(a: shapely.Geometry, b: shapely.Geometry) -> float:
    ax0, ay0, ax1, ay1 = a.bounds
    bx0, by0, bx1, by1 = b.bounds
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / union if union > 0 else 0.0


def found_by_crowding(truth: list[Labeled], preds: list[Labeled], classes: list[str], iou: float = 0.5,
                      score: float = DEFAULT_SCORE) -> dict[str, dict[str, dict[str, float]]]:
    """Share of each object class found, split by whether the object stands crowded or apart.

    Crowded: another object of its class has its centre closer than this
    object's length — side by side, or overlapping; nose-to-tail convoys are
    apart. Found: a prediction of the class with score >= `score` overlaps its
    box (as AP scores it) by IoU >= `iou`. Tells whether misses are objects
    packed together, which a coarse output grid merges.
    """
    out = {}
    for name in classes:
        shapes = [t.pixels for t in truth if t.cls == name]
        found_here = [p.pixels for p in preds if p.cls == name and p.score >= score]
        if not shapes:
            continue
        centres = shapely.points([g.centroid.coords[0] for g in shapes])
        candidates = shapely.STRtree(found_here)
        groups: dict[str, list[bool]] = {"crowded": [], "apart": []}
        for i, g in enumerate(shapes):
            length = elongated_length(g)
            others = np.delete(shapely.distance(centres[i], centres), i)
            crowded = bool(others.size) and float(others.min()) < length
            hit = any(_box_iou(g, found_here[k]) >= iou for k in candidates.query(g.envelope))
            groups["crowded" if crowded else "apart"].append(hit)
        out[name] = {group: {"count": len(hits), "found": round(float(np.mean(hits)), 4) if hits else None}
                     for group, hits in groups.items()}
    return out


def _matched_pairs(ev: COCOeval, cat_id: int, t: int, score: float, preds: list[Labeled],
                   truth: list[Labeled]) -> list[tuple[Labeled, Labeled]]:
    """(prediction, truth) of each match at IoU threshold index `t` among predictions scoring `score` or more
    (annotation ids are 1 + the index in the lists COCO was given)."""
    pairs = []
    for e in ev.evalImgs:
        if e is None or e["category_id"] != cat_id or e["aRng"] != ev.params.areaRng[0]:
            continue
        for dt_id, dt_score, gt_id in zip(e["dtIds"], e["dtScores"], e["dtMatches"][t], strict=True):
            if gt_id > 0 and dt_score >= score:
                pairs.append((preds[int(dt_id) - 1], truth[int(gt_id) - 1]))
    return pairs


def _heading_period(name: str, directional: object, truth: list[Labeled], preds: list[Labeled]) -> float:
    """360 for a class whose heading runs by its front, 180 for an axis: as the predictions' header says, or
    (files without it) 360 when any of its headings is 180 or more."""
    if isinstance(directional, list):
        return 360.0 if name in directional else 180.0
    headings = [t.heading for t in truth + preds if t.cls == name and t.heading is not None]
    return 360.0 if any(h >= 180 for h in headings) else 180.0


def heading_errors(pairs: list[tuple[Labeled, Labeled]], period: float) -> dict[str, float]:
    """Over matched (prediction, truth) pairs that both carry a heading: the median angle between them, in
    degrees (on a circle of `period`: 180 for an axis); and for a heading by the front (360), the share with the
    front on the right end (within 90 degrees). Empty without such a pair."""
    errors = np.array([abs(p.heading - t.heading) % period for p, t in pairs
                       if p.heading is not None and t.heading is not None])
    if not len(errors):
        return {}
    errors = np.minimum(errors, period - errors)
    out = {"heading_error_deg": round(float(np.median(errors)), 1)}
    if period == 360.0:
        out["front_right"] = round(float(np.mean(errors < 90)), 4)
    return out


def _matches_at(ev: COCOeval, cat_id: int, t: int, score: float) -> tuple[int, int]:
    tp = fp = 0
    for e in ev.evalImgs:
        if e is None or e["category_id"] != cat_id or e["aRng"] != ev.params.areaRng[0]:
            continue
        keep = (np.asarray(e["dtScores"]) >= score) & ~np.asarray(e["dtIgnore"][t], bool)
        matched = np.asarray(e["dtMatches"][t]) > 0
        tp += int((matched & keep).sum())
        fp += int((~matched & keep).sum())
    return tp, fp


def _prf(tp: int, fp: int, n_truth: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / n_truth if n_truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def _burn(geoms: list, row: int, rows: int, width: int) -> np.ndarray:
    """A strip of `rows` rows from `row` of the union of `geoms` (pixel coordinates)."""
    if not geoms:
        return np.zeros((rows, width), bool)
    transform = rasterio.Affine.translation(0, row)
    return rasterize(geoms, out_shape=(rows, width), transform=transform).astype(bool)


def region_iou(truth: list[Labeled], preds: list[Labeled], width: int, height: int,
               region_classes: set[str]) -> dict[str, float]:
    """Pixel IoU per region class, rasterized strip by strip so memory stays bounded."""
    out = {}
    for name in sorted(region_classes):
        t_geoms = [t.pixels for t in truth if t.cls == name]
        p_geoms = [p.pixels for p in preds if p.cls == name]
        inter = union = 0
        for row in range(0, height, STRIP_ROWS):
            rows = min(STRIP_ROWS, height - row)
            a, b = (_burn(g, row, rows, width) for g in (t_geoms, p_geoms))
            inter += int((a & b).sum())
            union += int((a | b).sum())
        out[name] = inter / union if union else 1.0
    return out
