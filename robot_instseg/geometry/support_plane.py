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
    z = depth_m[::pitch, ::pitch]
    vs, us = np.nonzero(free[::pitch, ::pitch] & np.isfinite(z))
    if len(vs) < MIN_SAMPLES:
        return None
    zs = z[vs, us].astype(np.float64)
    points = np.stack([(us * pitch - k.cx) * (zs / k.fx), (vs * pitch - k.cy) * (zs / k.fy), zs])
    inliers = np.ones(len(zs), bool)
    for _ in range(REFITS + 1):
        count = int(np.count_nonzero(inliers))
        if count < MIN_SAMPLES:
            return None
        weights = inliers.astype(np.float64)  # moments of the inliers, without copying them out
        centre = points @ weights / count
        scatter = (points * weights) @ points.T / count - np.outer(centre, centre)
        normal = cv2.eigen(scatter)[2][2]  # direction of least spread (eigenvectors as rows, largest first)
        if normal @ centre > 0:
            normal = -normal  # toward the camera, which is at the origin
        distance = np.abs(normal @ points - normal @ centre)
        spread = distance[inliers]
        mad = upper_median(spread)
        inliers = distance <= max(INLIER_MADS * MAD_TO_SIGMA * mad, INLIER_MIN_M)
    share = float(inliers.mean())
    typical_z = upper_median(zs)
    if share < MIN_INLIER_SHARE or MAD_TO_SIGMA * mad > MAX_SIGMA_PER_M * typical_z:
        return None
    return SupportPlane(normal=normal, offset=float(normal @ centre), inlier_share=share)
