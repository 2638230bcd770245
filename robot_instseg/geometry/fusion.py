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

import functools
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Callable, Optional

import cv2
import numpy as np

from robot_instseg.engine.types import Detections
from robot_instseg.geometry.intrinsics import Intrinsics
from robot_instseg.geometry.support_plane import fit_support_plane
from robot_instseg.geometry.surface_kernels import (  # noqa: F401 (the rules' constants are public here)
    BAND_MADS,
    BAND_MIN_M,
    BOX_PERCENTILES,
    BOX_SAMPLES,
    EDGE_JUMP_M,
    EDGE_JUMP_REL,
    MAX_POINTS,
    MIN_POINTS,
    STATUS_REASONS,
    frame_surfaces,
    free_pixels,
    moments,
    oriented_boxes,
    quaternion,
)


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
    quaternion: Optional[tuple[float, float, float, float]] = field(repr=False, default=None)  # of box_axes

    @property
    def distance(self) -> float:
        """Straight-line distance from the camera to the centroid."""
        return float(np.linalg.norm(self.centroid))

    def box_quaternion(self) -> tuple[float, float, float, float]:
        """(x, y, z, w) of the rotation whose columns are ``box_axes``."""
        return self.quaternion if self.quaternion is not None else rotation_to_quaternion(self.box_axes)


@dataclass
class FrameFusion:
    """3D of every instance of a frame (None where it has none) and, per such instance, why not."""

    instances: list[Optional[Instance3D]]
    reasons: list[str]  # "" where 3D was computed, else a reason code (too_few_points, no_depth_in_mask)
    occluded_by: Optional[list[list[int]]] = None  # per instance, what lies on it, read from depth (depth_order)

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
    mean, scatter, _ = moments(points)
    centres, axes, sizes, _ = _boxes(points, np.array([0, points.shape[1]]), np.zeros(1, np.int64), mean[None],
                                     scatter[None])
    return centres[0], axes[0], sizes[0]


def _boxes(points: np.ndarray, point_offsets: np.ndarray, status: np.ndarray, means: np.ndarray,
           scatters: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Oriented boxes (centres, axes, sizes, quaternions) of the packed instances whose status is 0."""
    ok = np.flatnonzero(status == 0).tolist()
    vectors = np.zeros((len(status), 3, 3))
    for i in ok:
        vectors[i] = cv2.eigen(scatters[i])[2]  # unit eigenvectors as rows, largest spread first
    return oriented_boxes(points, point_offsets, status, means, vectors)


def rotation_to_quaternion(r: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a proper rotation matrix (Shepperd's method, stable for every angle)."""
    x, y, z, w = quaternion(np.asarray(r, np.float64)).tolist()
    return x, y, z, w


def check_registered(detections: Detections, depth_m: np.ndarray, k: Intrinsics) -> None:
    """ValueError unless depth and intrinsics are at the image size (the kernels read depth at mask pixels)."""
    if depth_m.shape[:2] != tuple(detections.image_shape) or (k.height, k.width) != tuple(detections.image_shape):
        raise ValueError(f"depth {depth_m.shape[:2]} and intrinsics {k.height}x{k.width} must both be at the "
                         f"image size {detections.image_shape}; register them first")


def fuse(detections: Detections, depth_m: np.ndarray, k: Intrinsics, complete: bool = True,
         helper: Optional[Executor] = None) -> FrameFusion:
    """3D of every instance of ``detections`` (use the visible masks) from depth registered to the image;
    ``complete``: extend each mask over the surface depth shows beyond it (the module docstring).
    ``helper``: a thread that takes the first instances' surfaces while this one does the rest (same result)."""
    check_registered(detections, depth_m, k)
    n = len(detections)
    if n == 0:
        return FrameFusion([], [])
    mask_data, mask_offsets, boxes = _packed(detections)
    height, width = detections.image_shape
    free = free_pixels(mask_data, mask_offsets, boxes, height, width) if complete else np.ones((1, 1), bool)
    plane = fit_support_plane(depth_m, k, free) if complete else None
    normal, offset = (np.asarray(plane.normal, np.float64), float(plane.offset)) if plane else (np.zeros(3), 0.0)
    surfaces = functools.partial(frame_surfaces, mask_data, depth_m=depth_m, free=free, fx=k.fx, fy=k.fy, cx=k.cx,
                                 cy=k.cy, normal=normal, plane_offset=offset, complete=plane is not None)
    status, coverage, point_offsets, points, means, extents, centres, axes, sizes, quaternions = _surfaces(
        surfaces, mask_offsets, boxes, helper)
    cloud = points.T.astype(np.float32)
    out: list[Optional[Instance3D]] = [None] * n
    for i in np.flatnonzero(status == 0).tolist():
        start, end = int(point_offsets[i]), int(point_offsets[i + 1])
        out[i] = Instance3D(centroid=means[i], extent=extents[i], box_center=centres[i], box_axes=axes[i],
                            box_size=sizes[i], valid_points=end - start, coverage=float(coverage[i]),
                            points=cloud[start:end], quaternion=tuple(quaternions[i].tolist()))
    return FrameFusion(out, [STATUS_REASONS[code] for code in status.tolist()])


SPLIT_MIN_INSTANCES = 4  # fewer: handing half of them to the helper costs more than it saves


def _surfaces(surfaces: Callable[..., tuple], mask_offsets: np.ndarray, boxes: np.ndarray,
              helper: Optional[Executor]) -> tuple:
    """(status, coverage, point offsets, points, means, extents, box centres, axes, sizes, quaternions) of every
    instance; with a helper, split in two halves of about equal box area, the first on the helper, and joined
    as one call would return them."""
    n = len(boxes)
    if helper is None or n < SPLIT_MIN_INSTANCES:
        return _surfaces_and_boxes(surfaces, mask_offsets, boxes)
    area = np.cumsum(boxes[:, 2] * boxes[:, 3])
    half = int(np.clip(np.searchsorted(area, area[-1] / 2), 1, n - 1))
    pending = helper.submit(_surfaces_and_boxes, surfaces, mask_offsets[:half + 1], boxes[:half])
    b = _surfaces_and_boxes(surfaces, mask_offsets[half:], boxes[half:])
    # a helper that has not started yet (its core taken by another process) is not waited for
    a = _surfaces_and_boxes(surfaces, mask_offsets[:half + 1], boxes[:half]) if pending.cancel() else pending.result()
    point_offsets = np.concatenate([a[2], b[2][1:] + a[2][-1]])
    return (np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]), point_offsets,
            np.concatenate([a[3], b[3]], axis=1), *(np.concatenate([a[j], b[j]]) for j in range(4, 10)))


def _surfaces_and_boxes(surfaces: Callable[..., tuple], mask_offsets: np.ndarray, boxes: np.ndarray) -> tuple:
    """One run of ``frame_surfaces`` over the packed instances, and their oriented boxes."""
    status, coverage, point_offsets, points, means, scatters, extents = surfaces(mask_offsets=mask_offsets,
                                                                                 boxes=boxes)
    return (status, coverage, point_offsets, points, means, extents,
            *_boxes(points, point_offsets, status, means, scatters))


def _packed(detections: Detections) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The masks as one flat bool array, each one's offset into it, and boxes (x0, y0, h, w) as int64."""
    masks = detections.masks
    mask_offsets = np.zeros(len(masks) + 1, np.int64)
    np.cumsum([m.size for m in masks], out=mask_offsets[1:])
    boxes = np.empty((len(masks), 4), np.int64)
    boxes[:, :2] = detections.mask_boxes[:, :2]
    boxes[:, 2:] = [m.shape for m in masks]
    return np.concatenate([m.ravel() for m in masks]).astype(bool, copy=False), mask_offsets, boxes


def naive_centroid(mask: np.ndarray, x0: int, y0: int, depth_m: np.ndarray, k: Intrinsics) -> Optional[np.ndarray]:
    """The baseline we compare against: the plain mean of every masked pixel with a depth reading."""
    h, w = mask.shape
    z_box = depth_m[y0:y0 + h, x0:x0 + w]
    vs, us = np.nonzero(mask & np.isfinite(z_box))
    if len(vs) == 0:
        return None
    return back_project(us + x0, vs + y0, z_box[vs, us], k).mean(axis=0)
