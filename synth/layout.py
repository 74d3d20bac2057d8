"""Plan a whole synthetic scene: what stands where, at one or two dates.

Planning is pure vector work in the scene metre frame and cheap even for a
20000 x 20000 px scene; drawing happens later, window by window.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import numpy as np
from shapely.geometry import Polygon, box

from infer.geo.crs import utm_point
from synth import sites, surroundings
from synth.occupancy import Occupancy
from synth.shapes import Sun
from synth.things import Berm, Label, Storehouse, Surface, Thing

CRS = "EPSG:32637"  # UTM zone 37N
SITE_LONLAT = (40.93, 34.46)  # near the Al-Bukamal / Al-Qaim border crossing
EDGE_MARGIN_M = 15.0
#: A series' later dates are georeferenced up to this far off the first, east and north (metres).
MISREGISTRATION_M = 3.0


@dataclass(frozen=True)
class SceneSpec:
    """What the user asked for. Sizes in pixels, GSD in metres per pixel."""

    width: int
    height: int
    gsd: float = 0.5
    bands: str = "rgb"
    dtype: str = "uint8"
    seed: int = 0
    nodata_border: bool = False
    second_date: bool = False
    dates: int = 1  # 2 or more: a time series of progressive construction (`plan_scene`)

    @property
    def series(self) -> bool:
        return self.dates >= 2

    @property
    def band_names(self) -> tuple[str, ...]:
        return ("red", "green", "blue", "nir")[: 4 if self.bands == "rgbn" else 3]


@dataclass(frozen=True)
class Acquisition:
    """One date's look: sun, sensor radiometry, and how far its georeferencing is off (`offset_m`, east and
    north: the image and its labels are placed that far from where the ground is). `index` counts from 1."""

    index: int
    date: str
    sun: Sun
    gain: tuple[float, float, float, float]
    haze: tuple[float, float, float, float]
    shadow: float
    noise: float
    offset_m: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class Change:
    """One entry of `<name>_changes.geojson` (or, in a series, of `<name>_changes_t<K>.geojson`)."""

    change: str  # "new" or "gone"
    uid: int
    label: Label
    between: tuple[int, int] = (1, 2)  # the dates compared


@dataclass
class SceneLayout:
    spec: SceneSpec
    index: int
    origin: tuple[float, float]  # easting, northing of the top-left corner
    things: list[Thing]
    footprint: Polygon | None
    acquisitions: list[Acquisition]
    changes: list[Change] = field(default_factory=list)

    @property
    def width_m(self) -> float:
        return self.spec.width * self.spec.gsd

    @property
    def height_m(self) -> float:
        return self.spec.height * self.spec.gsd

    def labels(self, date: int) -> list[tuple[int, Label]]:
        """(id, label) of everything labeled that exists at `date`."""
        return [(thing.uid, label) for thing in self.things if (label := thing.label_at(date)) is not None]


def _acquisition(rng: np.random.Generator, index: int, date: dt.date, azimuth: float) -> Acquisition:
    gain = rng.uniform(0.9, 1.1) * rng.uniform(0.95, 1.05, size=4)
    haze = rng.uniform(0.0, 0.025) * np.array([0.7, 0.85, 1.0, 0.5])
    return Acquisition(
        index=index,
        date=date.isoformat(),
        sun=Sun(azimuth_deg=azimuth, elevation_deg=float(rng.uniform(35, 65))),
        gain=tuple(float(g) for g in gain),  # type: ignore[arg-type]
        haze=tuple(float(h) for h in haze),  # type: ignore[arg-type]
        shadow=float(rng.uniform(0.35, 0.5)),
        noise=float(rng.uniform(0.003, 0.007)),
    )


def _count(rng: np.random.Generator, per_km2: float, area_km2: float, at_least: int = 1) -> int:
    return max(at_least, int(rng.poisson(per_km2 * area_km2)))


def plan_scene(spec: SceneSpec, index: int = 0) -> SceneLayout:
    """Plan scene number `index` of a run; the same (spec, index) always gives the same plan."""
    rng = np.random.default_rng([spec.seed, index])
    width, height = spec.width * spec.gsd, spec.height * spec.gsd
    area_km2 = width * height / 1e6

    east, north = utm_point(*SITE_LONLAT, CRS)
    east += float(rng.uniform(-8000, 8000)) - width / 2
    north += float(rng.uniform(-8000, 8000)) + height / 2
    origin = (float(round(east)), float(round(north)))

    footprint = surroundings.plan_footprint(rng, width, height) if spec.nodata_border else None
    valid = footprint if footprint is not None else box(0, 0, width, height)
    allowed = valid.buffer(-EDGE_MARGIN_M)
    occ = Occupancy(allowed if not allowed.is_empty else box(0, 0, 0, 0))
    both, first, second = frozenset({1, 2}), frozenset({1}), frozenset({2})

    things: list[Thing] = []
    roads = surroundings.plan_roads(rng, width, height, area_km2)
    for road in roads:
        occ.add(road.polygon.buffer(3.0), road=True)
    things += roads

    extensions: list[tuple[Berm, Berm]] = []
    site_things: list[list[Thing]] = []  # what each site planner placed, numbered as sites below
    if spec.series and not occ.allowed.is_empty:
        for _ in range(_count(rng, 1.0, area_km2)):
            site_things.append(sites.plan_construction(rng, occ, spec.dates))
            things += site_things[-1]
    if not occ.allowed.is_empty:
        for _ in range(_count(rng, 2.0, area_km2)):
            site_things.append(sites.plan_compound(rng, occ, spec.second_date))
            things += site_things[-1]
        for k in range(_count(rng, 2.0, area_km2, at_least=2 if spec.second_date else 1)):
            site_things.append(sites.plan_cleared_site(rng, occ, second if spec.second_date and k == 0 else both))
            things += site_things[-1]
        for k in range(_count(rng, 3.0, area_km2)):
            placed, pair = sites.plan_lone_berm(rng, occ, extend=spec.second_date and k == 0)
            things += placed
            if pair:
                extensions.append((pair[0], pair[1]))
        for _ in range(_count(rng, 4.0, area_km2)):
            site_things.append(sites.plan_lone_storehouse(rng, occ, both))
            things += site_things[-1]
        if spec.second_date and not any(t.dates == second and isinstance(t, Storehouse) for t in things):
            site_things.append(sites.plan_lone_storehouse(rng, occ, second))
            things += site_things[-1]
        for _ in range(_count(rng, 0.8, area_km2, at_least=0)):
            things += surroundings.plan_fields(rng, occ, spec.second_date)
        for _ in range(_count(rng, 1.5, area_km2, at_least=0)):
            things += surroundings.plan_village(rng, occ)
        for k in range(_count(rng, 2.0, area_km2, at_least=2 if spec.second_date else 1)):
            dates = both
            if spec.second_date and k < 2:
                dates = first if k == 0 else second
            things += sites.plan_convoy(rng, occ, roads, dates)

    for uid, thing in enumerate(things, start=1):
        thing.uid = uid
    for number, group in enumerate((g for g in site_things if g), start=1):
        for thing in group:
            if not isinstance(thing, Surface):
                thing.site = number
    for before, after in extensions:
        after.uid = before.uid

    start = dt.date(2026, 1, 1) + dt.timedelta(days=int(rng.integers(0, 300)))
    az1 = float(rng.uniform(120, 165))
    acquisitions = [_acquisition(rng, 1, start, az1)]
    if spec.second_date:
        az2 = az1 + float(rng.choice([-1, 1])) * float(rng.uniform(12, 30))
        later = start + dt.timedelta(days=int(rng.integers(30, 90)))
        acquisitions.append(_acquisition(rng, 2, later, az2))
    if spec.series:
        always = frozenset(range(1, spec.dates + 1))
        for thing in things:
            if thing.dates == both:
                thing.dates = always
        day = start
        for k in range(2, spec.dates + 1):
            day += dt.timedelta(days=int(rng.integers(10, 31)))
            look = _acquisition(rng, k, day, az1 + float(rng.uniform(-20, 20)))
            shift = (float(rng.uniform(-MISREGISTRATION_M, MISREGISTRATION_M)),
                     float(rng.uniform(-MISREGISTRATION_M, MISREGISTRATION_M)))
            acquisitions.append(replace(look, offset_m=shift))

    layout = SceneLayout(spec, index, origin, things, footprint, acquisitions)
    if spec.second_date:
        layout.changes = _changes(things, extensions)
    if spec.series:
        layout.changes = [c for k in range(2, spec.dates + 1) for c in _changes(things, [], (k - 1, k))]
    return layout


def _changes(things: list[Thing], extensions: list[tuple[Berm, Berm]], between: tuple[int, int] = (1, 2)
             ) -> list[Change]:
    """Everything labeled that appears or disappears between two dates; `extensions` (first date's berm,
    second date's) are reported as the berm they add."""
    extended = {id(b) for pair in extensions for b in pair}
    earlier, later = between
    changes = []
    for thing in things:
        if id(thing) in extended:
            continue
        before, after = thing.label_at(earlier), thing.label_at(later)
        if (before is None) != (after is None):
            changes.append(Change("new" if after is not None else "gone", thing.uid, after or before, between))
        elif before is not None and not before.geom.equals(after.geom):  # a cleared site partly built on
            for change, part in (("gone", before.geom.difference(after.geom)), ("new", after.geom.difference(before.geom))):
                if part.area > 0:
                    changes.append(Change(change, thing.uid, Label(before.cls, part, {
                        "area_m2": round(part.area, 1), **thing.site_properties()}), between))
    for before, after in extensions:
        added = after.polygon.difference(before.polygon)
        props = {"length_m": round(after.ridge.length - before.ridge.length, 2), "area_m2": round(added.area, 1)}
        changes.append(Change("new", after.uid, Label("earth_berm", added, props)))
    return changes


def scene_name(index: int) -> str:
    return f"scene_{index:03d}"
