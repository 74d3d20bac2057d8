"""Free-space bookkeeping for placing things without unrealistic overlaps."""

from __future__ import annotations

from collections import defaultdict

import shapely
from shapely.geometry.base import BaseGeometry


class Occupancy:
    """Polygons already placed, bucketed on a coarse grid for fast overlap checks."""

    def __init__(self, allowed: BaseGeometry, cell: float = 64.0) -> None:
        self.allowed = allowed
        shapely.prepare(self.allowed)
        self.cell = cell
        self._items: list[BaseGeometry] = []
        self._is_road: list[bool] = []
        self._grid: dict[tuple[int, int], list[int]] = defaultdict(list)

    def _cells(self, geom: BaseGeometry) -> list[tuple[int, int]]:
        x0, y0, x1, y1 = geom.bounds
        c = self.cell
        return [
            (i, j)
            for i in range(int(x0 // c), int(x1 // c) + 1)
            for j in range(int(y0 // c), int(y1 // c) + 1)
        ]

    def overlaps(self, geom: BaseGeometry, ignore_roads: bool = False) -> bool:
        """True when `geom` touches anything already placed (roads count unless ignored)."""
        seen: set[int] = set()
        for key in self._cells(geom):
            for k in self._grid.get(key, ()):
                if k not in seen and not (ignore_roads and self._is_road[k]):
                    seen.add(k)
                    if self._items[k].intersects(geom):
                        return True
        return False

    def free(self, geom: BaseGeometry, ignore_roads: bool = False) -> bool:
        """True when `geom` lies inside the allowed area and touches nothing placed."""
        return self.allowed.contains(geom) and not self.overlaps(geom, ignore_roads)

    def add(self, geom: BaseGeometry, road: bool = False) -> None:
        shapely.prepare(geom)
        self._items.append(geom)
        self._is_road.append(road)
        for key in self._cells(geom):
            self._grid[key].append(len(self._items) - 1)
