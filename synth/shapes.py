"""Geometry and lighting helpers in the synthetic scene's metre frame.

The scene frame: x east, y south, in metres from the scene's top-left corner,
so pixel (col, row) has its centre at ((col + 0.5) * gsd, (row + 0.5) * gsd).
Angles are in radians from +x toward +y (clockwise as seen on a north-up
image).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import LineString, Polygon


def rectangle(cx: float, cy: float, length: float, width: float, angle: float) -> Polygon:
    """Oriented rectangle; corners front-left, front-right, back-right, back-left.

    "Front" is the +angle end of the long axis; "left" is the -y side when the
    rectangle faces +x.
    """
    ux, uy = math.cos(angle), math.sin(angle)
    lx, ly = uy, -ux  # left of the heading, in a y-down frame
    hl, hw = length / 2, width / 2
    return Polygon(
        [
            (cx + ux * hl + lx * hw, cy + uy * hl + ly * hw),
            (cx + ux * hl - lx * hw, cy + uy * hl - ly * hw),
            (cx - ux * hl - lx * hw, cy - uy * hl - ly * hw),
            (cx - ux * hl + lx * hw, cy - uy * hl + ly * hw),
        ]
    )


def azimuth_deg(angle: float) -> float:
    """Scene-frame direction angle → compass azimuth in degrees (0 = north, 90 = east)."""
    east, north = math.cos(angle), -math.sin(angle)
    return math.degrees(math.atan2(east, north)) % 360.0


def ridge_buffer(ridge: LineString, width: float) -> Polygon:
    """Thin polygon of `width` metres along a ridge line, flat ends, mitred bends."""
    return ridge.buffer(width / 2, cap_style="flat", join_style="mitre", mitre_limit=4.0)


@dataclass(frozen=True)
class Sun:
    """Sun position for one acquisition: compass azimuth and elevation, degrees."""

    azimuth_deg: float
    elevation_deg: float

    @property
    def toward(self) -> np.ndarray:
        """Unit horizontal vector toward the sun in the scene frame (x east, y south)."""
        a = math.radians(self.azimuth_deg)
        return np.array([math.sin(a), -math.cos(a)])

    def shadow_offset(self, height: float) -> tuple[float, float]:
        """Where the top of something `height` metres tall casts its shadow, relative to it."""
        length = height / math.tan(math.radians(self.elevation_deg))
        dx, dy = -self.toward * length
        return float(dx), float(dy)

    def slope_shade(self, normal_xy: np.ndarray, slope_deg: float, ambient: float = 0.35) -> float:
        """Brightness of a slope facing `normal_xy`, relative to flat ground (flat = 1).

        Lambertian: a slope tilted toward the sun is brighter than the ground
        around it, one facing away is darker.
        """
        s, el = math.radians(slope_deg), math.radians(self.elevation_deg)
        n = np.asarray(normal_xy, dtype=float)
        n = n / (np.linalg.norm(n) + 1e-12)
        sun3 = np.array([*(self.toward * math.cos(el)), math.sin(el)])
        normal3 = np.array([*(n * math.sin(s)), math.cos(s)])
        lambert = max(0.0, float(sun3 @ normal3))
        flat = math.sin(el)
        return (ambient + (1 - ambient) * lambert) / (ambient + (1 - ambient) * flat)


def cast_shadow(footprint: Polygon, height: float, sun: Sun) -> Polygon:
    """Ground shadow of a prism standing on `footprint`, excluding the footprint itself.

    The footprint swept along the shadow vector: the union of the footprint,
    its translate, and the quad each edge sweeps (exact for any shape,
    including rings, where a convex hull would shade the inside).
    """
    dx, dy = sun.shadow_offset(height)
    pieces = [footprint, affinity.translate(footprint, dx, dy)]
    rings = [footprint.exterior, *footprint.interiors]
    for ring in rings:
        pts = np.asarray(ring.coords)
        for a, b in zip(pts[:-1], pts[1:], strict=True):
            quad = Polygon([a, b, (b[0] + dx, b[1] + dy), (a[0] + dx, a[1] + dy)])
            if quad.area > 1e-9:
                pieces.append(quad)
    return shapely.union_all(pieces).difference(footprint)


def polyline_points(line: LineString, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every `spacing` metres along a line and the unit tangent at each."""
    distances = np.arange(0.0, line.length + 1e-9, spacing)
    pts = np.array([line.interpolate(d).coords[0] for d in distances])
    ahead = np.array([line.interpolate(min(d + 0.5, line.length)).coords[0] for d in distances])
    behind = np.array([line.interpolate(max(d - 0.5, 0.0)).coords[0] for d in distances])
    tangent = ahead - behind
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-12
    return pts, tangent
