"""What a synthetic scene contains: each thing knows its label and how it looks.

A thing is planned once (geometry, colour) and drawn per acquisition date,
since sun position changes shading and shadows. Geometry is in the scene
metre frame (see `shapes`). A thing's `dates` says at which acquisitions it
exists: {1}, {2} or {1, 2}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import IntEnum

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon

from synth.shapes import Sun, azimuth_deg, cast_shadow, rectangle, ridge_buffer


class Layer(IntEnum):
    """Drawing order: surfaces, then shadows darken them, then tall things on top."""

    SURFACE = 0
    SHADOW = 1
    TOP = 2


@dataclass(frozen=True)
class Primitive:
    """One filled polygon to draw.

    color: reflectance per band (red, green, blue, near-infrared).
    texture: amplitude of the fine surface texture.
    ground: how much of the ground's low-frequency albedo shows (1 for local soil, 0 for paint).
    z: order within the layer; higher draws later.
    """

    geom: Polygon
    color: tuple[float, float, float, float]
    layer: Layer
    z: int
    texture: float = 0.05
    ground: float = 0.0


@dataclass(frozen=True)
class Label:
    """A labeled thing: class name, polygon in the scene frame, extra GeoJSON properties. `heading_period`: 360
    for a `heading_deg` by the thing's front, 180 for its axis alone; that heading is the scene frame's (grid
    north), which the writer turns into a bearing from true north."""

    cls: str
    geom: Polygon
    properties: dict
    heading_period: float | None = None


def _rgbn(*values: float) -> tuple[float, float, float, float]:
    return tuple(float(v) for v in values)  # type: ignore[return-value]


SOIL = _rgbn(0.40, 0.34, 0.27, 0.44)
GRADED = _rgbn(0.47, 0.41, 0.33, 0.50)
ASPHALT = _rgbn(0.13, 0.13, 0.14, 0.16)
DIRT_TRACK = _rgbn(0.45, 0.39, 0.31, 0.48)
YARD = _rgbn(0.38, 0.35, 0.31, 0.41)
CROPS = {
    "green": _rgbn(0.07, 0.13, 0.06, 0.48),
    "bare": _rgbn(0.27, 0.22, 0.17, 0.30),
    "stubble": _rgbn(0.42, 0.36, 0.22, 0.40),
}

@dataclass
class Thing:
    """Base for everything in a scene."""

    dates: frozenset[int] = field(default=frozenset({1, 2}), kw_only=True)
    uid: int = field(default=0, kw_only=True)  # set by the planner; shared by one thing's two dates
    #: The site (compound, lone storehouse with its ring, cleared site) it belongs to, numbered from 1 by the
    #: planner; 0 for things of no site (roads, convoys, lone berms). In the labels as `site`.
    site: int = field(default=0, kw_only=True)

    def label(self) -> Label | None:
        return None

    def label_at(self, date: int) -> Label | None:
        """The label of date `date` (None where it is not there or not labeled); the same at every date
        unless a kind of thing says otherwise."""
        return self.label() if date in self.dates else None

    def site_properties(self) -> dict:
        return {"site": self.site} if self.site else {}

    def primitives(self, sun: Sun, date: int) -> list[Primitive]:
        raise NotImplementedError


@dataclass
class Storehouse(Thing):
    """A long storage building with a gable or flat metal roof."""

    cx: float
    cy: float
    length: float
    width: float
    angle: float
    height: float
    gable: bool
    color: tuple[float, float, float, float]
    #: The first date it stands inside a complete earth berm ring (a compound's, or its own), None if never:
    #: the truth `infer sites` is scored on, labeled per date as `fortified` (`SceneLayout.labels`).
    fortified_from: int | None = field(default=None, kw_only=True)

    def fortified_at(self, date: int) -> bool:
        return self.fortified_from is not None and date >= self.fortified_from

    def label_at(self, date: int) -> Label | None:
        label = super().label_at(date)
        if label is None:
            return None
        return replace(label, properties={**label.properties, "fortified": self.fortified_at(date)})

    @property
    def footprint(self) -> Polygon:
        return rectangle(self.cx, self.cy, self.length, self.width, self.angle)

    def label(self) -> Label:
        return Label(
            "storehouse",
            self.footprint,
            {
                "length_m": round(self.length, 2),
                "width_m": round(self.width, 2),
                "heading_deg": round(azimuth_deg(self.angle) % 180.0, 2),
                **self.site_properties(),
            },
            heading_period=180.0,
        )

    def primitives(self, sun: Sun, date: int) -> list[Primitive]:
        out = [Primitive(cast_shadow(self.footprint, self.height, sun), self.color, Layer.SHADOW, 0)]
        if not self.gable:
            return out + [Primitive(self.footprint, self.color, Layer.TOP, 80, texture=0.02)]
        # Two roof planes split along the ridge, each lit by how it faces the sun.
        normal = np.array([math.sin(self.angle), -math.cos(self.angle)])
        for side in (+1, -1):
            cx = self.cx + side * normal[0] * self.width / 4
            cy = self.cy + side * normal[1] * self.width / 4
            half = rectangle(cx, cy, self.length, self.width / 2, self.angle)
            shade = sun.slope_shade(side * normal, slope_deg=18.0)
            color = tuple(c * shade for c in self.color)
            out.append(Primitive(half, color, Layer.TOP, 80, texture=0.02))  # type: ignore[arg-type]
        return out


@dataclass
class Truck(Thing):
    """A truck: cab at the front (the +angle end), cargo body behind."""

    cx: float
    cy: float
    length: float
    width: float
    angle: float
    cab_color: tuple[float, float, float, float]
    cargo_color: tuple[float, float, float, float]

    @property
    def footprint(self) -> Polygon:
        return rectangle(self.cx, self.cy, self.length, self.width, self.angle)

    def label(self) -> Label:
        return Label(
            "truck",
            self.footprint,
            {
                "length_m": round(self.length, 2),
                "width_m": round(self.width, 2),
                "heading_deg": round(azimuth_deg(self.angle), 2),
                **self.site_properties(),
            },
            heading_period=360.0,
        )

    def primitives(self, sun: Sun, date: int) -> list[Primitive]:
        ux, uy = math.cos(self.angle), math.sin(self.angle)
        cab_len = min(2.6, 0.3 * self.length)
        cargo_len = self.length - cab_len - 0.6
        back = self.length / 2
        cargo = rectangle(self.cx - ux * (back - cargo_len / 2), self.cy - uy * (back - cargo_len / 2),
                          cargo_len, self.width, self.angle)
        cab = rectangle(self.cx + ux * (back - cab_len / 2), self.cy + uy * (back - cab_len / 2),
                        cab_len, self.width * 0.96, self.angle)
        chassis = _rgbn(0.06, 0.06, 0.07, 0.08)
        return [
            Primitive(cast_shadow(self.footprint, 3.4, sun), chassis, Layer.SHADOW, 0),
            Primitive(self.footprint, chassis, Layer.TOP, 90, texture=0.0),
            Primitive(cargo, self.cargo_color, Layer.TOP, 91, texture=0.03),
            Primitive(cab, self.cab_color, Layer.TOP, 92, texture=0.01),
        ]


@dataclass
class Berm(Thing):
    """A ridge of piled earth along a polyline, lit on the sun side, dark on the other."""

    ridge: LineString
    width: float
    height: float

    @property
    def polygon(self) -> Polygon:
        return ridge_buffer(self.ridge, self.width)

    def label(self) -> Label:
        poly = self.polygon
        return Label(
            "earth_berm",
            poly,
            {"length_m": round(self.ridge.length, 2), "width_m": round(self.width, 2),
             "area_m2": round(poly.area, 1), **self.site_properties()},
        )

    def primitives(self, sun: Sun, date: int) -> list[Primitive]:
        poly = self.polygon
        slope = math.degrees(math.atan2(self.height, self.width / 2))
        out = [
            Primitive(poly, SOIL, Layer.SURFACE, 50, texture=0.06, ground=0.7),
            Primitive(cast_shadow(poly, self.height * 0.5, sun), SOIL, Layer.SHADOW, 0),
        ]
        coords = np.asarray(self.ridge.coords)
        for a, b in zip(coords[:-1], coords[1:], strict=True):
            d = (b - a) / (np.linalg.norm(b - a) + 1e-12)
            left = np.array([d[1], -d[0]])
            for side in (left, -left):
                flank = Polygon([a, b, b + side * self.width, a + side * self.width]).intersection(poly)
                if flank.is_empty or flank.area < 1e-6:
                    continue
                shade = sun.slope_shade(side, slope_deg=slope)
                color = tuple(c * shade for c in SOIL)
                out.append(Primitive(flank, color, Layer.SURFACE, 51, texture=0.06, ground=0.7))  # type: ignore[arg-type]
        return out


@dataclass
class ClearedSite(Thing):
    """Graded ground of a different tone, sharp edges, vehicle tracks across it.

    Built on, it stops being a cleared site where it is built (`built`: from a date on, a part such as a
    row of storehouses with its margin), and all of it once it is a compound's yard (`yard_from`: the
    date its berm ring is closed), as the yards of single-date compounds are not labeled either. The
    pixels do not change: the labels of that date do.
    """

    polygon: Polygon
    tracks: list[LineString]
    built: list[tuple[int, Polygon]] = field(default_factory=list, kw_only=True)
    yard_from: int | None = field(default=None, kw_only=True)

    def label(self) -> Label:
        return self._label(self.polygon)

    def label_at(self, date: int) -> Label | None:
        if date not in self.dates or (self.yard_from is not None and date >= self.yard_from):
            return None
        standing = [part for first, part in self.built if first <= date]
        ground = self.polygon.difference(shapely.union_all(standing)) if standing else self.polygon
        if ground.is_empty:
            return None
        return self._label(ground)

    def _label(self, ground: Polygon) -> Label:
        mrr = ground.minimum_rotated_rectangle
        xs, ys = mrr.exterior.coords.xy
        sides = sorted([math.dist((xs[0], ys[0]), (xs[1], ys[1])), math.dist((xs[1], ys[1]), (xs[2], ys[2]))])
        return Label(
            "cleared_site",
            ground,
            {"length_m": round(sides[1], 1), "width_m": round(sides[0], 1), "area_m2": round(ground.area, 1),
             **self.site_properties()},
        )

    def primitives(self, sun: Sun, date: int) -> list[Primitive]:
        out = [Primitive(self.polygon, GRADED, Layer.SURFACE, 20, texture=0.015, ground=0.35)]
        rut = tuple(c * 0.82 for c in GRADED)
        for track in self.tracks:
            mark = track.buffer(0.7, cap_style="flat").intersection(self.polygon)
            if not mark.is_empty:
                out.append(Primitive(mark, rut, Layer.SURFACE, 21, texture=0.02, ground=0.35))  # type: ignore[arg-type]
        return out


@dataclass
class Road(Thing):
    """A paved road or a dirt track (not labeled)."""

    line: LineString
    width: float
    paved: bool

    @property
    def polygon(self) -> Polygon:
        return self.line.buffer(self.width / 2, cap_style="flat")

    def primitives(self, sun: Sun, date: int) -> list[Primitive]:
        if self.paved:
            shoulder = self.line.buffer(self.width / 2 + 1.5, cap_style="flat")
            return [
                Primitive(shoulder, DIRT_TRACK, Layer.SURFACE, 30, texture=0.05, ground=0.6),
                Primitive(self.polygon, ASPHALT, Layer.SURFACE, 31, texture=0.03),
            ]
        return [Primitive(self.polygon, DIRT_TRACK, Layer.SURFACE, 30, texture=0.06, ground=0.8)]


@dataclass
class Field(Thing):
    """An agricultural plot (distractor) whose crop may differ between dates."""

    polygon: Polygon
    crop_t1: str
    crop_t2: str

    def primitives(self, sun: Sun, date: int) -> list[Primitive]:
        crop = self.crop_t1 if date == 1 else self.crop_t2
        return [Primitive(self.polygon, CROPS[crop], Layer.SURFACE, 10, texture=0.12, ground=0.5)]


@dataclass
class Surface(Thing):
    """A flat patch of another material: a compound's yard (not labeled)."""

    polygon: Polygon
    color: tuple[float, float, float, float] = YARD

    def primitives(self, sun: Sun, date: int) -> list[Primitive]:
        return [Primitive(self.polygon, self.color, Layer.SURFACE, 40, texture=0.03, ground=0.6)]


@dataclass
class Building(Thing):
    """A house or other flat-roofed building (distractor, not labeled)."""

    polygon: Polygon
    height: float
    color: tuple[float, float, float, float]

    def primitives(self, sun: Sun, date: int) -> list[Primitive]:
        parapet = self.polygon.exterior.buffer(0.35)  # a lighter rim, as low walls on flat roofs look
        rim = tuple(min(1.0, c * 1.12) for c in self.color)
        return [
            Primitive(cast_shadow(self.polygon, self.height, sun), self.color, Layer.SHADOW, 0),
            Primitive(self.polygon, self.color, Layer.TOP, 70, texture=0.05),
            Primitive(parapet.intersection(self.polygon), rim, Layer.TOP, 71, texture=0.02),  # type: ignore[arg-type]
        ]
