"""The plane the objects stand on (a table, a shelf, the floor), fitted to the depth no instance owns.

Why: a mask the model drew short of its object (a handle it missed, the strip along an
occluder's edge) can be completed from depth, but only with a way to tell the object's surface
from the table around it, which touches it at the same depth. Height above the support plane
tells them apart. The plane is fitted to readings no instance owns, on a coarse grid, by
principal axes refitted on its inliers (within ``INLIER_MADS`` robust deviations, at least
``INLIER_MIN_M``); where those inliers are not a clear majority of the free readings, or where
they lie in a slab thicker than sensor noise (``MAX_SIGMA_PER_M`` of robust deviation per metre of
distance), there is no plane (no table in view, a cluttered shelf), and nothing is completed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from robot_instseg.geometry.intrinsics import Intrinsics
from robot_instseg.geometry.robust import MAD_TO_SIGMA, upper_median
from robot_instseg.jit import kernel, warmer

GRID_SAMPLES = 1200  # the grid's pitch is chosen for about this many samples per frame (640x480: 16 px)
MIN_SAMPLES = 200
REFITS = 2
INLIER_MADS = 3.0
INLIER_MIN_M = 0.003
MIN_INLIER_SHARE = 0.5
MAX_SIGMA_PER_M = 0.01


@dataclass(frozen=True)
class SupportPlane:
    """Points p with ``normal @ p == offset``; ``normal`` is a unit vector pointing toward the camera."""

    normal: np.ndarray  # (3,)
    offset: float
    inlier_share: float  # of the free readings sampled

    def heights(self, depth_m: np.ndarray, u0: int, v0: int, step: int, k: Intrinsics) -> np.ndarray:
        """Height above the plane (m; NaN where no reading) of every pixel of ``depth_m``, a crop whose
        pixel (0, 0) is image pixel (u0, v0), sampled every ``step`` pixels."""
        rows, cols = depth_m.shape
        x = ((np.arange(cols) * step + (u0 - k.cx)) * (self.normal[0] / k.fx)).astype(np.float32)
        y = ((np.arange(rows) * step + (v0 - k.cy)) * (self.normal[1] / k.fy) + self.normal[2]).astype(np.float32)
        ray = x[None, :] + y[:, None]  # normal . (the pixel's ray at depth 1), float32 like sensor depth
        ray *= depth_m
        ray -= np.float32(self.offset)
        return ray


def fit_support_plane(depth_m: np.ndarray, k: Intrinsics, free: np.ndarray) -> Optional[SupportPlane]:
    """The dominant plane of the readings where ``free`` is true, or None when there is none to trust."""
    pitch = max(1, int(round(np.sqrt(depth_m.shape[0] * depth_m.shape[1] / GRID_SAMPLES))))
    points = _samples(depth_m, free, pitch, k.fx, k.fy, k.cx, k.cy)
    if points.shape[1] < MIN_SAMPLES:
        return None
    inliers = np.ones(points.shape[1], np.bool_)
    for _ in range(REFITS + 1):
        count = int(np.count_nonzero(inliers))
        if count < MIN_SAMPLES:
            return None
        centre, scatter = _moments_of(points, inliers, count)
        normal = cv2.eigen(scatter)[2][2]  # direction of least spread (eigenvectors as rows, largest first)
        if normal @ centre > 0:
            normal = -normal  # toward the camera, which is at the origin
        inliers, mad = _refit(points, inliers, normal, centre, INLIER_MADS * MAD_TO_SIGMA, INLIER_MIN_M)
    share = float(inliers.mean())
    typical_z = upper_median(points[2])
    if share < MIN_INLIER_SHARE or MAD_TO_SIGMA * mad > MAX_SIGMA_PER_M * typical_z:
        return None
    return SupportPlane(normal=normal, offset=float(normal @ centre), inlier_share=share)


@kernel
def _samples(depth_m: np.ndarray, free: np.ndarray, pitch: int, fx: float, fy: float, cx: float,
             cy: float) -> np.ndarray:
    """(3, N) camera-frame points of the free readings on the grid of every pitch-th pixel, row by row."""
    height, width = depth_m.shape
    points = np.empty((3, ((height + pitch - 1) // pitch) * ((width + pitch - 1) // pitch)))
    count = 0
    for v in range(0, height, pitch):
        for u in range(0, width, pitch):
            z = depth_m[v, u]
            if free[v, u] and np.isfinite(z):
                z64 = np.float64(z)
                points[0, count] = (u - cx) * (z64 / fx)
                points[1, count] = (v - cy) * (z64 / fy)
                points[2, count] = z64
                count += 1
    return points[:, :count].copy()


@kernel
def _moments_of(points: np.ndarray, inliers: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of the inlier points."""
    centre = np.zeros(3)
    second = np.zeros((3, 3))
    for i in range(points.shape[1]):
        if inliers[i]:
            for a in range(3):
                centre[a] += points[a, i]
                for b in range(a, 3):
                    second[a, b] += points[a, i] * points[b, i]
    centre /= count
    scatter = np.empty((3, 3))
    for a in range(3):
        for b in range(a, 3):
            scatter[a, b] = scatter[b, a] = second[a, b] / count - centre[a] * centre[b]
    return centre, scatter


@kernel
def _refit(points: np.ndarray, inliers: np.ndarray, normal: np.ndarray, centre: np.ndarray, mads: float,
           least: float) -> tuple[np.ndarray, float]:
    """(the points within max(mads x MAD, least) of the plane, the MAD of the current inliers' distances)."""
    n = points.shape[1]
    level = normal[0] * centre[0] + normal[1] * centre[1] + normal[2] * centre[2]
    distance = np.empty(n)
    spread = np.empty(n)
    count = 0
    for i in range(n):
        distance[i] = abs(normal[0] * points[0, i] + normal[1] * points[1, i] + normal[2] * points[2, i] - level)
        if inliers[i]:
            spread[count] = distance[i]
            count += 1
    mad = np.partition(spread[:count], count // 2)[count // 2]
    return distance <= max(mads * mad, least), mad


@warmer
def _warm() -> None:
    points = _samples(np.ones((4, 4), np.float32), np.ones((4, 4), np.bool_), 1, 1.0, 1.0, 2.0, 2.0)
    inliers = np.ones(points.shape[1], np.bool_)
    centre, _ = _moments_of(points, inliers, points.shape[1])
    _refit(points, inliers, np.array([0.0, 0.0, -1.0]), centre, 1.0, 0.0)
