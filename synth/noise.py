"""Deterministic noise as a function of ground position.

Every value depends only on (position, salt), never on which window asked
for it, so a scene rendered window by window is seamless and a rerun gives
the same bytes. Positions are in scene metres; pixel-tied noise uses global
pixel indices.
"""

from __future__ import annotations

import numpy as np

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)
_M3 = np.uint64(0xFF51AFD7ED558CCD)
_M4 = np.uint64(0xC4CEB9FE1A85EC53)


def hash_uniform(ix: np.ndarray, iy: np.ndarray, salt: int) -> np.ndarray:
    """Uniform floats in [0, 1) from integer lattice coordinates (broadcasting).

    A 64-bit finalizer (murmur3 style) mixes the coordinates; integer
    overflow wraps by design.
    """
    with np.errstate(over="ignore"):
        h = np.asarray(ix, dtype=np.int64).astype(np.uint64) * _M1
        h = h ^ (np.asarray(iy, dtype=np.int64).astype(np.uint64) * _M2)
        h = h ^ np.uint64(salt & 0xFFFFFFFFFFFFFFFF)
        h ^= h >> np.uint64(33)
        h *= _M3
        h ^= h >> np.uint64(33)
        h *= _M4
        h ^= h >> np.uint64(33)
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def _smooth_weights(coords: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    g = coords / cell
    i = np.floor(g).astype(np.int64)
    f = g - i
    return i, f * f * (3.0 - 2.0 * f)


def value_noise(xs: np.ndarray, ys: np.ndarray, cell: float, salt: int) -> np.ndarray:
    """Smooth value noise in [0, 1) on the grid `ys` x `xs` (rows, columns).

    xs, ys: 1-D pixel-centre coordinates in metres. cell: lattice spacing in
    metres. Interpolation is separable, so the cost is one pass per axis.
    """
    ix, wx = _smooth_weights(xs, cell)
    iy, wy = _smooth_weights(ys, cell)
    x0, y0 = ix.min(), iy.min()
    lattice = hash_uniform(
        np.arange(x0, ix.max() + 2)[None, :], np.arange(y0, iy.max() + 2)[:, None], salt
    ).astype(np.float32)
    cx = ix - x0
    along_x = lattice[:, cx] * (1 - wx)[None, :].astype(np.float32) + lattice[:, cx + 1] * wx[None, :].astype(np.float32)
    cy = iy - y0
    wy32 = wy[:, None].astype(np.float32)
    return along_x[cy, :] * (1 - wy32) + along_x[cy + 1, :] * wy32


def fractal_noise(
    xs: np.ndarray, ys: np.ndarray, cells: tuple[float, ...], salt: int, gain: float = 0.55
) -> np.ndarray:
    """Sum of value-noise octaves, zero-mean, roughly in [-0.5, 0.5]."""
    total = np.zeros((len(ys), len(xs)), dtype=np.float32)
    amplitude, norm = 1.0, 0.0
    for k, cell in enumerate(cells):
        total += amplitude * (value_noise(xs, ys, cell, salt * 1000003 + k) - 0.5)
        norm += amplitude
        amplitude *= gain
    return total / norm


def pixel_gaussian(rows: np.ndarray, cols: np.ndarray, salt: int) -> np.ndarray:
    """Standard normal noise per global pixel (rows x cols), for sensor noise."""
    u1 = hash_uniform(cols[None, :], rows[:, None], salt)
    u2 = hash_uniform(cols[None, :], rows[:, None], salt ^ 0x5BD1E995)
    return (np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)).astype(np.float32)
