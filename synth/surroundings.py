"""Planners for the unlabeled world: the data footprint, roads, fields and villages.

Distractors matter: a detector that has only seen labeled things on empty
sand learns "anything rectangular is a storehouse".
"""

from __future__ import annotations

import math

import numpy as np
from shapely.geometry import LineString, Polygon, box

from synth.occupancy import Occupancy
from synth.shapes import rectangle
from synth.things import Building, Field, Road, Thing

HOUSE_COLORS = [(0.52, 0.50, 0.47, 0.52), (0.64, 0.62, 0.58, 0.62), (0.53, 0.45, 0.36, 0.50), (0.44, 0.42, 0.40, 0.45)]


def plan_footprint(rng: np.random.Generator, width: float, height: float) -> Polygon:
    """The area with data: the scene less one or two slanted, jagged strips at its edges.

    Like the edge of a satellite strip crossing the scene at an angle.
    """
    footprint = box(0, 0, width, height)
    for side in rng.choice(4, size=int(rng.integers(1, 3)), replace=False):
        span = width if side in (0, 2) else height
        depth = float(min(width, height))
        d0, d1 = rng.uniform(0.03, 0.18, size=2) * depth
        t = np.linspace(0, 1, 60)
        along = t * span
        inset = d0 + (d1 - d0) * t + rng.normal(0, 1.0, size=t.size)
        if side == 0:  # top
            edge = list(zip(along, inset, strict=True))
            cut = Polygon([(0, -1)] + edge + [(width, -1)])
        elif side == 2:  # bottom
            edge = list(zip(along, height - inset, strict=True))
            cut = Polygon([(0, height + 1)] + edge + [(width, height + 1)])
        elif side == 1:  # right
            edge = list(zip(width - inset, along, strict=True))
            cut = Polygon([(width + 1, 0)] + edge + [(width + 1, height)])
        else:  # left
            edge = list(zip(inset, along, strict=True))
            cut = Polygon([(-1, 0)] + edge + [(-1, height)])
        footprint = footprint.difference(cut.buffer(0))
    return footprint if isinstance(footprint, Polygon) else max(footprint.geoms, key=lambda g: g.area)


def _wandering_line(rng: np.random.Generator, start: np.ndarray, heading: float, max_len: float,
                    bounds: tuple[float, float, float, float], wiggle: float) -> LineString:
    x0, y0, x1, y1 = bounds
    pts, turn, step = [start], 0.0, 20.0
    while len(pts) < 2 or len(pts) * step < max_len:  # a line needs two points, however small the scene
        turn = 0.85 * turn + rng.normal(0, wiggle)
        heading += turn
        p = pts[-1] + step * np.array([math.cos(heading), math.sin(heading)])
        pts.append(p)
        if not (x0 <= p[0] <= x1 and y0 <= p[1] <= y1):
            break
    return LineString(pts)


def plan_roads(rng: np.random.Generator, width: float, height: float, area_km2: float) -> list[Road]:
    """Paved roads crossing the scene and dirt tracks branching from them."""
    roads: list[Road] = []
    margin = 60.0
    bounds = (-margin, -margin, width + margin, height + margin)
    for _ in range(max(1, int(rng.poisson(0.6 * math.sqrt(area_km2))))):
        side = int(rng.integers(4))
        t = float(rng.uniform(0.1, 0.9))
        start = np.array([[t * width, -margin / 2], [width + margin / 2, t * height],
                          [t * width, height + margin / 2], [-margin / 2, t * height]][side])
        to_centre = np.array([width / 2, height / 2]) - start
        heading = math.atan2(to_centre[1], to_centre[0]) + float(rng.uniform(-0.6, 0.6))
        line = _wandering_line(rng, start, heading, 3 * (width + height), bounds, wiggle=0.006)
        roads.append(Road(line, float(rng.uniform(7, 10)), paved=True))
    for _ in range(int(rng.poisson(1.5 * area_km2))):
        parent = roads[int(rng.integers(len(roads)))]
        start = np.asarray(parent.line.interpolate(float(rng.uniform(0, 1)), normalized=True).coords[0])
        heading = float(rng.uniform(0, 2 * math.pi))
        line = _wandering_line(rng, start, heading, float(rng.uniform(100, 900)), bounds, wiggle=0.02)
        if line.length > 40:
            roads.append(Road(line, float(rng.uniform(3, 4.5)), paved=False))
    return roads


def plan_fields(rng: np.random.Generator, occ: Occupancy, second_date: bool) -> list[Thing]:
    """A block of agricultural plots separated by narrow tracks."""
    nx, ny = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    pw, ph, gap = float(rng.uniform(40, 120)), float(rng.uniform(30, 100)), 3.0
    angle = float(rng.uniform(0, math.pi))
    total_w, total_h = nx * pw + (nx - 1) * gap, ny * ph + (ny - 1) * gap
    u, v = np.array([math.cos(angle), math.sin(angle)]), np.array([-math.sin(angle), math.cos(angle)])
    x0, y0, x1, y1 = occ.allowed.bounds
    for _ in range(20):
        c = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        block = rectangle(float(c[0]), float(c[1]), total_w + 10, total_h + 10, angle)
        if occ.free(block):
            occ.add(block)
            fields: list[Thing] = []
            for i in range(nx):
                for j in range(ny):
                    p = c + u * (-total_w / 2 + pw / 2 + i * (pw + gap)) + v * (-total_h / 2 + ph / 2 + j * (ph + gap))
                    crop = str(rng.choice(["green", "bare", "stubble"]))
                    later = str(rng.choice(["green", "bare", "stubble"])) if second_date else crop
                    fields.append(Field(rectangle(float(p[0]), float(p[1]), pw, ph, angle), crop, later))
            return fields
    return []


def plan_village(rng: np.random.Generator, occ: Occupancy) -> list[Thing]:
    """A cluster of flat-roofed houses and a few larger L-shaped buildings."""
    x0, y0, x1, y1 = occ.allowed.bounds
    centre = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
    base = float(rng.uniform(0, math.pi / 2))
    radius = float(rng.uniform(40, 150))
    things: list[Thing] = []
    for _ in range(int(rng.integers(5, 26))):
        p = centre + rng.normal(0, radius / 2, size=2)
        a = float(rng.uniform(7, 15))
        b = a * float(rng.uniform(0.75, 1.0))
        angle = base + float(rng.normal(0, 0.05))
        house = rectangle(float(p[0]), float(p[1]), a, b, angle)
        if rng.random() < 0.15:  # a larger L-shaped building
            wing = rectangle(float(p[0]) + a / 2 * math.cos(angle), float(p[1]) + a / 2 * math.sin(angle),
                             a, b / 2, angle + math.pi / 2)
            house = house.union(wing)
        if house.geom_type == "Polygon" and occ.free(house.buffer(3)):
            occ.add(house.buffer(3))
            color = HOUSE_COLORS[int(rng.integers(len(HOUSE_COLORS)))]
            things.append(Building(house, float(rng.uniform(3, 7)), tuple(c * rng.uniform(0.94, 1.06) for c in color)))
    return things
