"""Planners for the labeled things: compounds, lone storehouses, berms, cleared sites, convoys.

Each planner draws sizes in metres, tries random positions until one is free
and returns the things it placed (empty when nothing fits). `second_date`
lets a planner mark things that appear or disappear at the later acquisition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from shapely import ops
from shapely.geometry import LineString, Polygon

from synth.occupancy import Occupancy
from synth.shapes import rectangle, ridge_buffer
from synth.things import Berm, ClearedSite, Road, Storehouse, Surface, Thing, Truck

ROOF_COLORS = [
    (0.58, 0.60, 0.62, 0.60),  # galvanised steel
    (0.70, 0.70, 0.68, 0.68),  # white-painted metal
    (0.30, 0.42, 0.55, 0.45),  # blue sheeting
    (0.30, 0.40, 0.30, 0.42),  # green sheeting
    (0.50, 0.34, 0.26, 0.45),  # rust-red
]
CAB_COLORS = [(0.75, 0.75, 0.74, 0.72), (0.55, 0.12, 0.10, 0.40), (0.22, 0.30, 0.20, 0.35), (0.18, 0.25, 0.45, 0.30)]
CARGO_COLORS = [(0.52, 0.46, 0.36, 0.50), (0.30, 0.34, 0.24, 0.40), (0.70, 0.70, 0.68, 0.68), (0.35, 0.38, 0.42, 0.40)]
ATTEMPTS = 40
MAX_BERM_M = 400.0  # a longer ridge is labeled as several berms
ROW_MARGIN_M = 5.0  # the working ground around a row of storehouses, no longer cleared once it is built


def _jitter(rng: np.random.Generator, color: tuple[float, ...], amount: float = 0.06) -> tuple[float, ...]:
    return tuple(float(c * (1 + rng.uniform(-amount, amount))) for c in color)


def _random_center(rng: np.random.Generator, occ: Occupancy, margin: float) -> tuple[float, float]:
    x0, y0, x1, y1 = occ.allowed.bounds
    return float(rng.uniform(x0 + margin, max(x0 + margin, x1 - margin))), float(
        rng.uniform(y0 + margin, max(y0 + margin, y1 - margin))
    )


def ring_ridge(cx: float, cy: float, length: float, width: float, angle: float, gate: float) -> LineString:
    """Ridge line of a berm around a rectangle, open at a gate centred on one long side."""
    corners = list(rectangle(cx, cy, length, width, angle).exterior.coords)[:4]
    # Corners: front-left, front-right, back-right, back-left; the gate sits on the back-left→front-left side.
    fl, fr, br, bl = (np.array(c) for c in corners)
    side = fl - bl
    mid = (fl + bl) / 2
    u = side / np.linalg.norm(side)
    gate_start, gate_end = mid + u * gate / 2, mid - u * gate / 2
    return LineString([gate_start, fl, fr, br, bl, gate_end])


def split_ridge(ridge: LineString, max_length: float = MAX_BERM_M) -> list[LineString]:
    """Equal consecutive pieces of at most `max_length`; their flat ends meet flush."""
    n = math.ceil(ridge.length / max_length)
    step = ridge.length / n
    return [ops.substring(ridge, k * step, (k + 1) * step) for k in range(n)]


def _storehouse(rng: np.random.Generator, cx: float, cy: float, length: float, width: float,
                angle: float, dates: frozenset[int], fortified_from: int | None) -> Storehouse:
    return Storehouse(cx, cy, length, width, angle, height=float(rng.uniform(5, 9)),
                      gable=bool(rng.random() < 0.7), color=_jitter(rng, ROOF_COLORS[rng.integers(len(ROOF_COLORS))]),
                      dates=dates, fortified_from=fortified_from)


def _truck(rng: np.random.Generator, cx: float, cy: float, angle: float, length: float,
           dates: frozenset[int]) -> Truck:
    return Truck(cx, cy, length, float(rng.uniform(2.5, 3.0)), angle,
                 cab_color=_jitter(rng, CAB_COLORS[rng.integers(len(CAB_COLORS))]),
                 cargo_color=_jitter(rng, CARGO_COLORS[rng.integers(len(CARGO_COLORS))]), dates=dates)


@dataclass
class CompoundPlan:
    """Where a compound's parts go, before anything is dated: a yard of `length` x `width` metres at
    `angle` around (`cx`, `cy`), its berm ring's ridge, and storehouse slots (row, centre) in rows."""

    cx: float
    cy: float
    length: float
    width: float
    angle: float
    berm_w: float
    berm_h: float
    ridge: LineString
    store_length: float
    store_width: float
    slots: list[tuple[int, np.ndarray]]
    two_rows: bool
    aisle: float
    band: float
    outer: Polygon  # the ground it holds in the occupancy

    @property
    def yard(self) -> Polygon:
        return rectangle(self.cx, self.cy, self.length, self.width, self.angle)


def _compound_plan(rng: np.random.Generator, occ: Occupancy) -> CompoundPlan | None:
    """A free place and the layout of a berm-ringed yard with rows of storehouse slots, or None."""
    max_len = min(200.0, 0.7 * min(occ.allowed.bounds[2] - occ.allowed.bounds[0],
                                   occ.allowed.bounds[3] - occ.allowed.bounds[1]))
    if max_len < 70:
        return None
    length = float(rng.uniform(70, max_len))
    width = float(rng.uniform(50, min(length, 140)))
    berm_w, berm_h, berm_gap = float(rng.uniform(3, 6)), float(rng.uniform(1.5, 3)), float(rng.uniform(3, 6))
    angle = float(rng.uniform(0, math.pi))
    for _ in range(ATTEMPTS):
        cx, cy = _random_center(rng, occ, length / 2)
        ring_len, ring_wid = length + 2 * berm_gap + berm_w, width + 2 * berm_gap + berm_w
        outer = rectangle(cx, cy, ring_len + berm_w + 16, ring_wid + berm_w + 16, angle)
        if occ.free(outer):
            break
    else:
        return None
    occ.add(outer)
    ridge = ring_ridge(cx, cy, ring_len, ring_wid, angle, gate=float(rng.uniform(10, 16)))
    sl = float(rng.uniform(20, min(60, 0.42 * length)))
    sw = float(rng.uniform(8, min(25, sl / 1.4)))
    gap = float(rng.uniform(6, 14))
    n_slots = int((length - 16 + gap) // (sl + gap))
    two_rows = width - 16 >= 2 * sw + 12
    aisle = float(rng.uniform(12, min(24, width - 16 - 2 * sw))) if two_rows else 0.0
    rows = [-(sw + aisle) / 2, (sw + aisle) / 2] if two_rows else [float(rng.uniform(-1, 1) * (width - 16 - sw) / 4)]
    u = np.array([math.cos(angle), math.sin(angle)])
    v = np.array([-math.sin(angle), math.cos(angle)])
    span = n_slots * sl + (n_slots - 1) * gap
    slots = [(r, np.array([cx, cy]) + u * (-span / 2 + sl / 2 + k * (sl + gap)) + v * row)
             for r, row in enumerate(rows) for k in range(n_slots)]
    band = 0.0 if two_rows else (rows[0] + (sw / 2 + 5 if rows[0] < 0 else -(sw / 2 + 5)))
    return CompoundPlan(cx, cy, length, width, angle, berm_w, berm_h, ridge, sl, sw, slots, two_rows, aisle, band,
                        outer)


def _yard_trucks(rng: np.random.Generator, plan: CompoundPlan, houses: list[Polygon], dates_of) -> list[Thing]:
    """Up to five trucks parked along the yard's long axis, clear of `houses`; `dates_of()` dates each."""
    heading = plan.angle if rng.random() < 0.5 else plan.angle + math.pi
    yard = rectangle(plan.cx, plan.cy, plan.length - 4, plan.width - 4, plan.angle)
    u = np.array([math.cos(plan.angle), math.sin(plan.angle)])
    v = np.array([-math.sin(plan.angle), math.cos(plan.angle)])
    trucks: list[Thing] = []
    for k in range(int(rng.integers(0, 6))):
        tl = float(rng.uniform(7, 16))
        c = np.array([plan.cx, plan.cy]) + u * (-plan.length / 2 + 12 + k * (tl + 5)) + v * plan.band
        truck = _truck(rng, float(c[0]), float(c[1]), heading, tl, dates_of())
        if yard.contains(truck.footprint) and not any(h.intersects(truck.footprint) for h in houses):
            trucks.append(truck)
    return trucks


def plan_compound(rng: np.random.Generator, occ: Occupancy, second_date: bool) -> list[Thing]:
    """A berm-ringed yard with rows of storehouses and parked trucks.

    Some storehouse slots stay empty at the first date; with `second_date`
    some of them are built by the second.
    """
    plan = _compound_plan(rng, occ)
    if plan is None:
        return []
    things: list[Thing] = [Surface(plan.yard)]
    things += [Berm(piece, plan.berm_w, plan.berm_h) for piece in split_ridge(plan.ridge)]
    houses: list[Polygon] = []
    for _, c in plan.slots:
        if rng.random() < 0.8:
            dates = frozenset({1, 2})
        elif second_date and rng.random() < 0.7:
            dates = frozenset({2})
        else:
            continue
        house = _storehouse(rng, float(c[0]), float(c[1]), plan.store_length, plan.store_width, plan.angle, dates,
                            fortified_from=1)
        houses.append(house.footprint.buffer(2.5))
        things.append(house)
    # Parked trucks along the long axis, in the aisle or in the band beside a single row.
    if plan.two_rows and plan.aisle < 8:
        return things
    return things + _yard_trucks(rng, plan, houses, lambda: frozenset({1, 2}) if rng.random() < 0.7 else (
        frozenset({1}) if second_date else frozenset({1, 2})))


def plan_construction(rng: np.random.Generator, occ: Occupancy, n_dates: int) -> list[Thing]:
    """A compound built over `n_dates` dates (2 or more): the yard cleared at date 1 or 2, a row of
    storehouses rising at each later date, the berm ring closed two dates after the clearing (from then
    its storehouses are fortified), an approach berm from the gate one date after that, and trucks in the
    yard at one date. Steps past the last date do not happen."""
    plan = _compound_plan(rng, occ)
    if plan is None:
        return []
    span = range(1, n_dates + 1)

    def from_date(first: int) -> frozenset[int]:
        return frozenset(d for d in span if d >= first)

    cleared = 1 if n_dates < 3 or rng.random() < 0.5 else 2
    closed = cleared + 2
    yard = plan.yard
    ground = ClearedSite(yard, _tracks(rng, yard, plan.length), dates=from_date(cleared))
    things: list[Thing] = [ground]
    if closed <= n_dates:
        things += [Berm(piece, plan.berm_w, plan.berm_h, dates=from_date(closed)) for piece in split_ridge(plan.ridge)]
        start = np.asarray(plan.ridge.coords[0])
        end = np.asarray(plan.ridge.coords[-1])
        outward = (start + end) / 2 - np.array([plan.cx, plan.cy])
        outward /= np.linalg.norm(outward)
        gate_mid = (start + end) / 2
        approach = LineString([gate_mid + outward * (plan.berm_w + 4) + (start - end) / 2 * 1.2,
                               gate_mid + outward * (plan.berm_w + 4 + float(rng.uniform(30, 60)))
                               + (start - end) / 2 * 1.2])
        zone = ridge_buffer(approach, plan.berm_w).buffer(8)
        if closed + 1 <= n_dates and occ.free(zone.difference(plan.outer.buffer(1.0))):
            occ.add(zone)
            things.append(Berm(approach, plan.berm_w, plan.berm_h, dates=from_date(closed + 1)))
    houses: list[Polygon] = []
    rows: dict[int, list[Polygon]] = {}
    for row, c in plan.slots:
        built = cleared + 1 + row
        if built > n_dates:
            continue
        house = _storehouse(rng, float(c[0]), float(c[1]), plan.store_length, plan.store_width, plan.angle,
                            from_date(built), fortified_from=closed if closed <= n_dates else None)
        houses.append(house.footprint.buffer(2.5))
        rows.setdefault(built, []).append(house.footprint)
        things.append(house)
    # each row built takes its strip of the yard, with a working margin, out of the cleared ground
    ground.built = [(built, shapely.convex_hull(shapely.union_all(row)).buffer(ROW_MARGIN_M).intersection(yard))
                  for built, row in rows.items()]
    ground.yard_from = closed if closed <= n_dates else None
    visit = int(rng.integers(cleared, n_dates + 1))
    if not (plan.two_rows and plan.aisle < 8):
        things += _yard_trucks(rng, plan, houses, lambda: frozenset({visit}))
    return things


def plan_lone_storehouse(rng: np.random.Generator, occ: Occupancy, dates: frozenset[int]) -> list[Thing]:
    """A single storehouse, often ringed by its own berm."""
    sl = float(rng.uniform(15, 60))
    sw = float(rng.uniform(8, min(25, sl / 1.2)))
    angle = float(rng.uniform(0, math.pi))
    ringed = rng.random() < 0.6
    offset = float(rng.uniform(6, 12))
    berm_w = float(rng.uniform(2, 5))
    extent = (sl + 2 * offset + 2 * berm_w + 14, sw + 2 * offset + 2 * berm_w + 14) if ringed else (sl + 16, sw + 16)
    for _ in range(ATTEMPTS):
        cx, cy = _random_center(rng, occ, extent[0] / 2)
        outer = rectangle(cx, cy, extent[0], extent[1], angle)
        if occ.free(outer):
            occ.add(outer)
            things: list[Thing] = [_storehouse(rng, cx, cy, sl, sw, angle, dates, fortified_from=1 if ringed else None)]
            if ringed:
                ridge = ring_ridge(cx, cy, sl + 2 * offset, sw + 2 * offset, angle, gate=float(rng.uniform(8, 12)))
                things.append(Berm(ridge, berm_w, float(rng.uniform(1.2, 2.5)), dates=dates))
            return things
    return []


def _berm_ridge(rng: np.random.Generator, start: np.ndarray, length: float) -> LineString:
    n_seg = int(rng.integers(1, 4))
    heading = float(rng.uniform(0, 2 * math.pi))
    pts = [start]
    for seg in range(n_seg):
        if seg:
            heading += float(rng.uniform(-0.7, 0.7))
        pts.append(pts[-1] + (length / n_seg) * np.array([math.cos(heading), math.sin(heading)]))
    return LineString(pts)


def plan_lone_berm(rng: np.random.Generator, occ: Occupancy, extend: bool) -> tuple[list[Thing], list[Berm]]:
    """A free-standing berm of 20-400 m. With `extend`, it is longer at the second date.

    Returns the things and, when extended, the (first date, second date) berms.
    """
    bx0, by0, bx1, by1 = occ.allowed.bounds
    extent = min(bx1 - bx0, by1 - by0)
    # An extended berm must fit twice over; keep it shorter so small scenes have one too.
    length = float(rng.uniform(40, max(41, min(250, 0.5 * extent)))) if extend else float(rng.uniform(20, 400))
    width, height = float(rng.uniform(2, 6)), float(rng.uniform(1, 3))
    for _ in range(ATTEMPTS * (3 if extend else 1)):
        start = np.array(_random_center(rng, occ, 10))
        ridge = _berm_ridge(rng, start, length)
        zone = ridge_buffer(ridge, width).buffer(8)
        if occ.free(zone):
            occ.add(zone)
            if not extend:
                return [Berm(ridge, width, height)], []
            cut = float(rng.uniform(0.45, 0.75)) * ridge.length
            before = Berm(ops.substring(ridge, 0, cut), width, height, dates=frozenset({1}))
            after = Berm(ridge, width, height, dates=frozenset({2}))
            return [before, after], [before, after]
    return [], []


def _tracks(rng: np.random.Generator, ground: Polygon, length: float) -> list[LineString]:
    """Two to six bent vehicle tracks across `ground`, from edge to edge."""
    tracks = []
    for _ in range(int(rng.integers(2, 7))):
        a, b = (np.asarray(ground.exterior.interpolate(float(rng.uniform(0, 1)), normalized=True).coords[0])
                for _ in range(2))
        bend = (a + b) / 2 + rng.normal(0, 0.1 * length, size=2)
        tracks.append(LineString([a, bend, b]))
    return tracks


def plan_cleared_site(rng: np.random.Generator, occ: Occupancy, dates: frozenset[int]) -> list[Thing]:
    """A graded quadrilateral of 40-300 m with vehicle tracks across it."""
    bx0, by0, bx1, by1 = occ.allowed.bounds
    top = min(300.0, 0.6 * min(bx1 - bx0, by1 - by0))
    if top < 40:
        return []
    length = float(rng.uniform(40, top))
    width = float(rng.uniform(40, length))
    angle = float(rng.uniform(0, math.pi))
    for _ in range(ATTEMPTS):
        cx, cy = _random_center(rng, occ, length / 2)
        corners = np.asarray(rectangle(cx, cy, length, width, angle).exterior.coords)[:4]
        corners += rng.uniform(-0.06, 0.06, size=(4, 2)) * np.array([length, width]).min()
        site = Polygon(corners)
        if site.is_valid and occ.free(site.buffer(10)):
            occ.add(site.buffer(10))
            return [ClearedSite(site, _tracks(rng, site, length), dates=dates)]
    return []


def plan_convoy(rng: np.random.Generator, occ: Occupancy, roads: list[Road], dates: frozenset[int]) -> list[Thing]:
    """Four to twelve trucks driving in the right-hand lane of a road."""
    candidates = [r for r in roads if r.paved] or roads
    if not candidates:
        return []
    for _ in range(ATTEMPTS // 4):
        road = candidates[int(rng.integers(len(candidates)))]
        n = int(rng.integers(4, 13))
        lengths = rng.uniform(7, 16, size=n)
        gaps = rng.uniform(6, 20, size=n)
        total = float(lengths.sum() + gaps.sum())
        if total > road.line.length - 40:
            continue
        direction = 1 if rng.random() < 0.5 else -1
        s = float(rng.uniform(20, road.line.length - 20 - total))
        trucks: list[Truck] = []
        for tl, gap in zip(lengths, gaps, strict=True):
            mid = s + tl / 2
            p = np.asarray(road.line.interpolate(mid).coords[0])
            ahead = np.asarray(road.line.interpolate(mid + 1.0).coords[0]) - np.asarray(
                road.line.interpolate(mid - 1.0).coords[0])
            h = direction * ahead / np.linalg.norm(ahead)
            right = np.array([-h[1], h[0]])
            c = p + right * road.width / 4
            trucks.append(_truck(rng, float(c[0]), float(c[1]), math.atan2(h[1], h[0]), float(tl), dates))
            s += tl + gap
        if all(occ.free(t.footprint, ignore_roads=True) for t in trucks):
            for t in trucks:
                occ.add(t.footprint.buffer(1.0))
            return list(trucks)
    return []
