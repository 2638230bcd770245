"""Per-instance 3D from aligned depth: robust centroid, extent, oriented box, points.

For each instance, the pixels of its *visible* mask with a depth reading are back-projected
through the colour intrinsics (camera optical frame: x right, y down, z forward, metres).
Two rules drop the depth readings that do not belong to the object's surface:

1. Depth edges. A pixel more than ``max(EDGE_JUMP_M, EDGE_JUMP_REL * z)`` behind the nearest
   reading of its 3x3 neighbourhood lies across a depth discontinuity: it is background seen
   past the object's border, or a flying pixel (a sensor's mix of the two surfaces). The
   object's own rim is in front of its neighbours, so it is kept.
2. A depth band. Of the rest, only readings within ``BAND_MADS`` robust standard deviations
   (1.4826 x the median absolute deviation) of the median depth, and at least
   ``BAND_MIN_M``, are kept: a mask that leaks onto the table or onto an occluder brings
   depths far from the object's, and they are a minority of its pixels.

Before the rules run, the mask is completed from depth where it stops short of its object
(``geometry.completion``, over the support plane of ``geometry.support_plane``); ``fuse(...,
complete=False)`` reads the model's mask alone.

The centroid is the mean of the kept points. The oriented box has the principal axes of the
kept points (of the two of largest spread, the longer first; right-handed) and spans them from
the 1st to the 99th percentile along each axis. An instance with fewer than ``MIN_POINTS`` kept points has no 3D.
A large instance is read on a regular pixel grid (every s-th row and column) so that about
``MAX_POINTS`` pixels are used: the cost per instance is bounded, and a regular grid keeps the
mean unbiased. Coverage is counted on every pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import cv2
import numpy as np

from robot_instseg.engine.types import Detections
from robot_instseg.geometry.completion import SurfaceCompletion
from robot_instseg.geometry.intrinsics import Intrinsics
from robot_instseg.geometry.robust import MAD_TO_SIGMA
from robot_instseg.geometry.support_plane import fit_support_plane
from robot_instseg.jit import kernel, warmer

EDGE_JUMP_M = 0.01
EDGE_JUMP_REL = 0.02
BAND_MADS = 3.0
BAND_MIN_M = 0.01
MIN_POINTS = 20
BOX_PERCENTILES = (1.0, 99.0)
BOX_SAMPLES = 400  # the percentiles are read on about this many of the points (sorting is the box's cost)
MAX_POINTS = 1200


@dataclass
class Instance3D:
    """The 3D of one instance, metres, camera optical frame."""

    centroid: np.ndarray  # (3,) mean of the kept surface points
    extent: np.ndarray  # (3,) max - min of the kept points along x, y, z
    box_center: np.ndarray  # (3,) centre of the oriented box
    box_axes: np.ndarray  # (3, 3) columns: unit axes, largest spread first, right-handed
    box_size: np.ndarray  # (3,) size along each of box_axes
    valid_points: int  # points kept (on the sampling grid of a large instance)
    coverage: float  # mask pixels with a depth reading / mask pixels
    points: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 3), np.float32))

    @property
    def distance(self) -> float:
        """Straight-line distance from the camera to the centroid."""
        return float(np.linalg.norm(self.centroid))

    def box_quaternion(self) -> tuple[float, float, float, float]:
        """(x, y, z, w) of the rotation whose columns are ``box_axes``."""
        return rotation_to_quaternion(self.box_axes)


@dataclass
class FrameFusion:
    """3D of every instance of a frame (None where it has none) and, per such instance, why not."""

    instances: list[Optional[Instance3D]]
    reasons: list[str]  # "" where 3D was computed, else a reason code (too_few_points, no_depth_in_mask)

    def centroids(self) -> list[Optional[np.ndarray]]:
        """Each instance's centroid, None where it has no 3D."""
        return [g.centroid if g is not None else None for g in self.instances]


def back_project(us: np.ndarray, vs: np.ndarray, zs: np.ndarray, k: Intrinsics) -> np.ndarray:
    """(N, 3) float64 camera-frame points of pixels (u, v) at depths z."""
    z = zs.astype(np.float64)
    return np.stack([(us - k.cx) * (z / k.fx), (vs - k.cy) * (z / k.fy), z], axis=1)


def oriented_box(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre, axes as columns, size) of the principal-axis box spanning the points' 1st-99th percentiles;
    the first axis is the longer of the two largest-spread axes (size[0] >= size[1]).

    ``points`` is (3, N): one row per coordinate, so every reduction runs over contiguous memory."""
    mean, scatter, _ = _moments(points)
    vectors = cv2.eigen(scatter)[2]  # unit eigenvectors as rows, largest spread first
    return _box_on_axes(points, mean, vectors)


def _box_on_axes(points: np.ndarray, mean: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    (a0, a1, a2), (b0, b1, b2) = vectors[0].tolist(), vectors[1].tolist()
    axes = np.array([[a0, b0, a1 * b2 - a2 * b1],  # columns a, b and a x b: right-handed
                     [a1, b1, a2 * b0 - a0 * b2],
                     [a2, b2, a0 * b1 - a1 * b0]])
    along = np.sort(_offsets(points, mean, axes, max(1, points.shape[1] // BOX_SAMPLES)), axis=1)  # a regular subset
    last = along.shape[1] - 1
    lo = along[:, int(round(last * BOX_PERCENTILES[0] / 100))]
    hi = along[:, int(round(last * BOX_PERCENTILES[1] / 100))]
    centre, size = mean + axes @ ((lo + hi) / 2), hi - lo
    if size[1] > size[0]:  # a round object: the second axis by spread can be the longer by extent
        axes = axes[:, [1, 0, 2]] * np.array([1.0, 1.0, -1.0])  # swapped, still right-handed
        size = size[[1, 0, 2]]
    return centre, axes, size


@kernel
def _moments(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, scatter matrix about the mean, extent max - min) of (3, N) points."""
    n = points.shape[1]
    mean, low, high = np.zeros(3), np.full(3, np.inf), np.full(3, -np.inf)
    for d in range(3):
        for i in range(n):
            value = points[d, i]
            mean[d] += value
            low[d], high[d] = min(low[d], value), max(high[d], value)
        mean[d] /= n
    scatter = np.zeros((3, 3))
    for i in range(n):
        x, y, z = points[0, i] - mean[0], points[1, i] - mean[1], points[2, i] - mean[2]
        scatter[0, 0] += x * x
        scatter[0, 1] += x * y
        scatter[0, 2] += x * z
        scatter[1, 1] += y * y
        scatter[1, 2] += y * z
        scatter[2, 2] += z * z
    scatter[1, 0], scatter[2, 0], scatter[2, 1] = scatter[0, 1], scatter[0, 2], scatter[1, 2]
    return mean, scatter, high - low


@kernel
def _offsets(points: np.ndarray, mean: np.ndarray, axes: np.ndarray, stride: int) -> np.ndarray:
    """(3, M): every stride-th point's offset from ``mean`` along each column of ``axes``."""
    count = (points.shape[1] + stride - 1) // stride
    along = np.empty((3, count))
    for d in range(3):
        for j in range(count):
            i = j * stride
            along[d, j] = (axes[0, d] * (points[0, i] - mean[0]) + axes[1, d] * (points[1, i] - mean[1])
                           + axes[2, d] * (points[2, i] - mean[2]))
    return along


def rotation_to_quaternion(r: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a proper rotation matrix (Shepperd's method, stable for every angle)."""
    m = np.asarray(r, np.float64).tolist()
    trace = m[0][0] + m[1][1] + m[2][2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = ((m[2][1] - m[1][2]) / s, (m[0][2] - m[2][0]) / s, (m[1][0] - m[0][1]) / s, 0.25 * s)
    else:
        diagonal = [m[0][0], m[1][1], m[2][2]]
        i = diagonal.index(max(diagonal))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(1.0 + m[i][i] - m[j][j] - m[k][k])
        v = [0.0, 0.0, 0.0]
        v[i] = 0.25 * s
        v[j] = (m[j][i] + m[i][j]) / s
        v[k] = (m[k][i] + m[i][k]) / s
        q = (v[0], v[1], v[2], (m[k][j] - m[j][k]) / s)
    norm = math.sqrt(sum(c * c for c in q))
    return (q[0] / norm, q[1] / norm, q[2] / norm, q[3] / norm)


STATUS_REASONS = ("", "empty_mask", "no_depth_in_mask", "too_few_points")  # _surface_points' status codes


@kernel
def _surface_points(mask: np.ndarray, x0: int, y0: int, depth_m: np.ndarray, fx: float, fy: float, cx: float,
                    cy: float) -> tuple[np.ndarray, int, int, int]:
    """(3, N) points kept by the rules of the module docstring, readings in the mask, mask pixels, status
    (an index of STATUS_REASONS). float32 depth tests round as numpy's do (the constants are float32)."""
    h, w = mask.shape
    height, width = depth_m.shape
    mask_pixels, n_valid = 0, 0
    for r in range(h):
        for c in range(w):
            inside = mask[r, c]
            z = depth_m[y0 + r, x0 + c]
            mask_pixels += inside
            n_valid += inside & (z == z)  # NaN is no reading (depth holds no inf)
    empty = np.zeros((3, 0))
    if mask_pixels == 0:
        return empty, n_valid, mask_pixels, 1
    if n_valid == 0:
        return empty, n_valid, mask_pixels, 2
    step = max(1, int(math.ceil(math.sqrt(n_valid / MAX_POINTS))))
    edge_m, edge_rel = np.float32(EDGE_JUMP_M), np.float32(EDGE_JUMP_REL)
    us = np.empty(n_valid, np.int64)
    vs = np.empty(n_valid, np.int64)
    zs = np.empty(n_valid, np.float32)
    count = 0
    for r in range(0, h, step):
        v = y0 + r
        for c in range(0, w, step):
            u = x0 + c
            z = depth_m[v, u]
            if not mask[r, c] or not np.isfinite(z):
                continue
            nearest = z  # rule 1: the nearest reading of the 3x3 neighbourhood (NaN compares false)
            if 0 < v < height - 1 and 0 < u < width - 1:
                for neighbour in (depth_m[v - 1, u - 1], depth_m[v - 1, u], depth_m[v - 1, u + 1], depth_m[v, u - 1],
                                  depth_m[v, u + 1], depth_m[v + 1, u - 1], depth_m[v + 1, u], depth_m[v + 1, u + 1]):
                    if neighbour < nearest:
                        nearest = neighbour
            else:
                for dv in range(max(v - 1, 0), min(v + 2, height)):
                    for du in range(max(u - 1, 0), min(u + 2, width)):
                        if depth_m[dv, du] < nearest:
                            nearest = depth_m[dv, du]
            if z - nearest > max(edge_m, edge_rel * z):
                continue
            us[count], vs[count], zs[count] = c, r, z
            count += 1
    keep = np.ones(count, np.bool_)
    if count >= MIN_POINTS:  # rule 2: the robust band around the median depth
        median = np.partition(zs[:count], count // 2)[count // 2]
        deviation = np.abs(zs[:count] - median)
        band = np.float32(max(BAND_MADS * MAD_TO_SIGMA * np.partition(deviation, count // 2)[count // 2], BAND_MIN_M))
        keep = deviation <= band
    kept = int(np.count_nonzero(keep))
    if kept < MIN_POINTS:
        return empty, n_valid, mask_pixels, 3
    rows = np.empty((3, kept))
    j = 0
    for i in range(count):
        if keep[i]:
            z64 = np.float64(zs[i])
            rows[0, j] = (us[i] + x0 - cx) * (z64 / fx)
            rows[1, j] = (vs[i] + y0 - cy) * (z64 / fy)
            rows[2, j] = z64
            j += 1
    return rows, n_valid, mask_pixels, 0


def instance_3d(mask: np.ndarray, x0: int, y0: int, depth_m: np.ndarray,
                k: Intrinsics) -> tuple[Optional[Instance3D], str]:
    """3D of one instance whose mask covers ``depth_m[y0:y0+h, x0:x0+w]`` (float32 metres, NaN = no
    reading); (None, reason) when it has none."""
    rows, n_valid, mask_pixels, status = _surface_points(mask, x0, y0, depth_m, k.fx, k.fy, k.cx, k.cy)
    if status:
        return None, STATUS_REASONS[status]
    mean, scatter, extent = _moments(rows)
    centre, axes, size = _box_on_axes(rows, mean, cv2.eigen(scatter)[2])
    return Instance3D(centroid=mean, extent=extent, box_center=centre, box_axes=axes, box_size=size,
                      valid_points=rows.shape[1], coverage=n_valid / mask_pixels,
                      points=rows.T.astype(np.float32)), ""


@warmer
def _warm() -> None:
    depth = np.ones((8, 8), np.float32)
    rows = _surface_points(np.ones((6, 6), bool), 1, 1, depth, 1.0, 1.0, 4.0, 4.0)[0]
    mean, _, _ = _moments(rows)
    _offsets(rows, mean, np.eye(3), 1)


def fuse(detections: Detections, depth_m: np.ndarray, k: Intrinsics, complete: bool = True) -> FrameFusion:
    """3D of every instance of ``detections`` (use the visible masks) from depth registered to the image;
    ``complete``: extend each mask over the surface depth shows beyond it (the module docstring)."""
    if depth_m.shape[:2] != tuple(detections.image_shape) or (k.height, k.width) != tuple(detections.image_shape):
        raise ValueError(f"depth {depth_m.shape[:2]} and intrinsics {k.height}x{k.width} must both be at the "
                         f"image size {detections.image_shape}; register them first")
    free = _unowned(detections) if complete and len(detections) else None
    plane = fit_support_plane(depth_m, k, free) if free is not None else None
    completion = SurfaceCompletion(depth_m, k, plane, free) if plane is not None and free is not None else None
    out: list[Optional[Instance3D]] = []
    reasons: list[str] = []
    for i in range(len(detections)):
        mask = detections.masks[i]
        x0, y0 = (int(v) for v in detections.mask_boxes[i][:2])
        if completion is None:
            result, reason = instance_3d(mask, x0, y0, depth_m, k)
        else:
            surface = completion.complete(mask, x0, y0)
            result, reason = instance_3d(*surface, depth_m, k)
            if result is not None and surface[0] is not mask:  # coverage describes the model's mask
                result.coverage = _coverage(mask, x0, y0, depth_m)
        out.append(result)
        reasons.append(reason)
    return FrameFusion(out, reasons)


def _unowned(detections: Detections) -> np.ndarray:
    """Full-frame mask of the pixels no instance's (visible) mask covers."""
    free = np.ones(detections.image_shape, bool)
    for mask, (x0, y0, x1, y1) in zip(detections.masks, detections.mask_boxes):
        free[y0:y1, x0:x1] &= ~mask
    return free


def _coverage(mask: np.ndarray, x0: int, y0: int, depth_m: np.ndarray) -> float:
    h, w = mask.shape
    return int(np.count_nonzero(mask & np.isfinite(depth_m[y0:y0 + h, x0:x0 + w]))) / max(int(np.count_nonzero(mask)), 1)


def naive_centroid(mask: np.ndarray, x0: int, y0: int, depth_m: np.ndarray, k: Intrinsics) -> Optional[np.ndarray]:
    """The baseline we compare against: the plain mean of every masked pixel with a depth reading."""
    h, w = mask.shape
    z_box = depth_m[y0:y0 + h, x0:x0 + w]
    vs, us = np.nonzero(mask & np.isfinite(z_box))
    if len(vs) == 0:
        return None
    return back_project(us + x0, vs + y0, z_box[vs, us], k).mean(axis=0)
