"""The ground sample distance of a georeferenced raster, in metres, for any CRS.

A pixel's size is the length of the geotransform's column vectors (so a
rotated grid measures what it really covers), in the CRS's linear units
converted to metres. Where that differs from the pixel's true size on the
ground by more than the tolerance (Web Mercator away from the equator), the
true size is used. Pixels that are not square on the ground (degrees of a
geographic CRS anywhere but the equator, or a grid with unequal steps) are
refused: the network was trained on square metres.
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath

from affine import Affine
from pyproj import CRS, Geod, Transformer

from infer.errors import InputError
from infer.geo.crs import utm_crs

#: Within this relative difference two pixel sizes count as the same.
GSD_TOLERANCE = 0.02
#: The most a scene's pixels are enlarged to the model's GSD (per side). Coarser imagery upsampled shows the
#: network blurs of a few pixels where it learned objects (a truck at 0.5 m is 16 x 5 px, at 2 m 4 x 1), and
#: multiplies the job by the square of the factor (a 10 m scene for a 0.5 m model: 400x the pixels).
MAX_UPSAMPLING = 2.0
_GEOD = Geod(ellps="WGS84")


def grid_steps(transform: Affine) -> tuple[float, float]:
    """Lengths of one column step and one row step, in the CRS's units (the columns' norms)."""
    return math.hypot(transform.a, transform.d), math.hypot(transform.b, transform.e)


def ground_steps(transform: Affine, crs, width: int, height: int) -> tuple[float, float] | None:
    """Geodesic metres of one column step and one row step at the raster's centre (None if not computable)."""
    to_lonlat = Transformer.from_crs(CRS.from_user_input(crs), CRS.from_epsg(4326), always_xy=True)
    col, row = width / 2, height / 2
    points = [transform @ (col, row), transform @ (col + 1, row), transform @ (col, row + 1)]
    try:
        (lon0, lat0), (lon1, lat1), (lon2, lat2) = (to_lonlat.transform(x, y, errcheck=True) for x, y in points)
    except Exception:  # pyproj's ProjError and friends: the centre lies outside the projection's domain
        return None
    along_columns = _GEOD.inv(lon0, lat0, lon1, lat1)[2]
    along_rows = _GEOD.inv(lon0, lat0, lon2, lat2)[2]
    steps = (float(along_columns), float(along_rows))
    return steps if all(math.isfinite(s) and s > 0 for s in steps) else None


def scene_gsd(name: str, transform: Affine, crs, width: int, height: int, model_gsd: float | None = None) -> float:
    """Metres per pixel of a georeferenced raster; `InputError` (one line) when its pixels are not square metres.

    `name` and `model_gsd` only shape the message (the suggested `gdalwarp` resolution).
    """
    crs = CRS.from_user_input(crs)
    ground = ground_steps(transform, crs, width, height)
    if crs.is_geographic:
        if ground is None or not _same(*ground):
            raise InputError(_not_square(name, transform, crs, width, height, model_gsd,
                                         "is in geographic coordinates (degrees), whose pixels are not square "
                                         "on the ground"))
        return (ground[0] + ground[1]) / 2
    factor = _metres_per_unit(crs)
    nominal = tuple(step * factor for step in grid_steps(transform))
    if not _same(*nominal):
        raise InputError(_not_square(name, transform, crs, width, height, model_gsd,
                                     f"has pixels of {nominal[0]:.3g} x {nominal[1]:.3g} m, not square"))
    size = (nominal[0] + nominal[1]) / 2
    if ground is None:
        return size
    if not _same(*ground):
        raise InputError(_not_square(name, transform, crs, width, height, model_gsd,
                                     f"has pixels of {ground[0]:.3g} x {ground[1]:.3g} m on the ground, not square"))
    true_size = (ground[0] + ground[1]) / 2
    return size if _same(size, true_size) else true_size


def check_upsampling(name: str, source_gsd: float, model_gsd: float, whose: str = "the model's") -> None:
    """`InputError` (one line) for a scene whose pixels are more than `MAX_UPSAMPLING` times the model's (`whose`
    names the GSD in the message: in training it is the dataset's)."""
    factor = source_gsd / model_gsd
    if factor > MAX_UPSAMPLING * (1 + GSD_TOLERANCE):
        raise InputError(f"{name} has pixels of {source_gsd:.3g} m, {round(factor, 1):g}x {whose} {model_gsd:g} m "
                         f"(at most {MAX_UPSAMPLING:g}x is upsampled): its objects would be a few blurred pixels; "
                         f"resample it yourself (gdalwarp -tr {model_gsd:g} {model_gsd:g}) to use it anyway")


def _same(a: float, b: float) -> bool:
    return abs(a / b - 1) <= GSD_TOLERANCE


def _metres_per_unit(crs: CRS) -> float:
    units = [axis.unit_conversion_factor for axis in crs.axis_info if axis.unit_conversion_factor]
    return float(units[0]) if units else 1.0


def check_rectified(name: str, src, model_gsd: float | None = None) -> None:
    """`InputError` (one line) for a raster without a geotransform that is placed on the ground by ground
    control points or RPCs: where its pixels lie and how large they are is known only through a warp, whose
    terms (polynomial, DEM) are the user's to choose. Read as it is, it would silently become pixel
    coordinates at the model's GSD. `src`: the open rasterio dataset."""
    if src.crs is not None and not src.transform.is_identity:
        return
    gcps, gcp_crs = src.gcps
    rpcs = src.rpcs
    if not gcps and rpcs is None:
        return
    centre = None
    try:
        if gcps:
            x, y = sum(g.x for g in gcps) / len(gcps), sum(g.y for g in gcps) / len(gcps)
            centre = Transformer.from_crs(gcp_crs, CRS.from_epsg(4326), always_xy=True).transform(x, y, errcheck=True)
        else:
            centre = (rpcs.long_off, rpcs.lat_off)
    except Exception:  # GCPs without a usable CRS: suggest the resolution alone
        pass
    how, options, dem = ((f"{len(gcps)} ground control points", "", "") if gcps else
                         ("RPCs", " -rpc", "; add -to RPC_DEM=dem.tif to correct for terrain"))
    stem = _stem(name)
    raise InputError(f"{name} has no geotransform, only {how}: where its pixels lie and their size are known only "
                     f"through a warp; orthorectify it first, e.g. {_gdalwarp(centre, model_gsd, options)} -of VRT "
                     f"{name} {stem}_ortho.vrt (a .vrt runs as a scene{dem})")


def _stem(name: str) -> str:
    """The name a suggested command's output takes after: the file's, without its suffix (`/vsicurl/…/a.tif`: a)."""
    return PurePosixPath(name).stem if name.startswith("/vsi") else name.rsplit(".", 1)[0]


def _gdalwarp(centre: tuple[float, float] | None, model_gsd: float | None, options: str = "") -> str:
    """The start of a `gdalwarp` line to the UTM zone of `centre` (lon, lat) at the model's GSD."""
    target = f" -t_srs EPSG:{utm_crs(*centre).to_epsg()}" if centre is not None else ""
    resolution = f" -tr {model_gsd:g} {model_gsd:g}" if model_gsd else ""
    return f"gdalwarp{options}{target}{resolution} -r bilinear"


def _not_square(name: str, transform: Affine, crs: CRS, width: int, height: int, model_gsd: float | None,
                why: str) -> str:
    """The refusal, with the `gdalwarp` line that makes the scene readable (to its UTM zone)."""
    centre = None
    try:
        x, y = transform @ (width / 2, height / 2)
        centre = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True).transform(x, y, errcheck=True)
    except Exception:  # no centre in lon/lat: suggest the resolution alone
        pass
    stem = _stem(name)
    return (f"{name} {why}; reproject it to square metre pixels first, e.g. "
            f"{_gdalwarp(centre, model_gsd)} {name} {stem}_utm.tif")


__all__ = ["GSD_TOLERANCE", "MAX_UPSAMPLING", "check_rectified", "check_upsampling", "grid_steps", "ground_steps",
           "scene_gsd"]
