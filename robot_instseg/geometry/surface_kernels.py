"""The compiled steps of ``geometry.fusion`` (its docstring states the rules): a frame's instances in a
few calls, not a dozen numpy calls per instance.

``frame_surfaces`` completes every instance's mask (``geometry.completion``), keeps its surface points
and takes their moments; ``oriented_boxes`` turns the principal axes (the eigenvectors, from ``cv2.eigen``
between the calls) into oriented boxes. Instances travel packed: one flat array of masks with offsets, one
(3, N) array of points.
Depth tests round in float32 as numpy's do (the constants are cast), so the kept points are the ones the
numpy steps kept.
"""

from __future__ import annotations

import math

import numpy as np

from robot_instseg.geometry.completion import complete_surface
from robot_instseg.geometry.robust import MAD_TO_SIGMA
from robot_instseg.jit import kernel, warmer

EDGE_JUMP_M = 0.01
EDGE_JUMP_REL = 0.02
BAND_MADS = 3.0
BAND_MIN_M = 0.01
MIN_POINTS = 20
BOX_PERCENTILES = (1.0, 99.0)
BOX_SAMPLES = 400  # the percentiles are read on about this many of the points (sorting is the box's cost)
MAX_POINTS = 1200
STATUS_REASONS = ("", "empty_mask", "no_depth_in_mask", "too_few_points")  # a status code's reason


@kernel
def free_pixels(mask_data: np.ndarray, mask_offsets: np.ndarray, boxes: np.ndarray, height: int,
                width: int) -> np.ndarray:
    """Full-frame bool image of the pixels no packed mask covers (``boxes`` rows: x0, y0, h, w). Written as uint8
    without a branch per pixel, which vectorises (a third faster than testing each mask pixel)."""
    free = np.ones((height, width), np.uint8)
    masks = mask_data.view(np.uint8)
    one = np.uint8(1)
    for i in range(len(boxes)):
        x0, y0, h, w = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]
        start = mask_offsets[i]
        for r in range(h):
            row, covered = free[y0 + r, x0:], masks[start + r * w:]  # row slices: no wrap-around test per pixel
            for c in range(w):
                row[c] &= one ^ covered[c]
    return free.view(np.bool_)


@kernel
def frame_surfaces(mask_data: np.ndarray, mask_offsets: np.ndarray, boxes: np.ndarray, depth_m: np.ndarray,
                   free: np.ndarray, fx: float, fy: float, cx: float, cy: float, normal: np.ndarray,
                   plane_offset: float, complete: bool):
    """Per packed instance: (status, coverage of the model's mask, the points' offsets into the (3, N) points,
    points, mean, scatter, extent); ``complete``: grow each mask first (a plane was found)."""
    n = len(boxes)
    status = np.zeros(n, np.int64)
    coverage = np.zeros(n)
    point_offsets = np.zeros(n + 1, np.int64)
    means, extents, scatters = np.zeros((n, 3)), np.zeros((n, 3)), np.zeros((n, 3, 3))
    kept = []
    for i in range(n):
        x0, y0, h, w = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]
        mask = mask_data[mask_offsets[i]:mask_offsets[i] + h * w].reshape(h, w)
        surface, sx0, sy0, grown = mask, x0, y0, False
        if complete:
            surface, sx0, sy0, grown = complete_surface(mask, x0, y0, depth_m, free, fx, fy, cx, cy, normal,
                                                        plane_offset)
        rows, n_valid, mask_pixels, code = surface_points(surface, sx0, sy0, depth_m, fx, fy, cx, cy)
        status[i] = code
        point_offsets[i + 1] = point_offsets[i] + rows.shape[1]
        kept.append(rows)
        if code:
            continue
        if grown:  # coverage describes the model's mask
            n_valid, mask_pixels = _readings(mask, x0, y0, depth_m)
        coverage[i] = n_valid / max(mask_pixels, 1)
        means[i], scatters[i], extents[i] = moments(rows)
    points = np.empty((3, point_offsets[n]))
    for i in range(n):
        points[:, point_offsets[i]:point_offsets[i + 1]] = kept[i]
    return status, coverage, point_offsets, points, means, scatters, extents


@kernel
def _readings(mask: np.ndarray, x0: int, y0: int, depth_m: np.ndarray) -> tuple[int, int]:
    """(mask pixels with a depth reading, mask pixels)."""
    h, w = mask.shape
    mask_pixels, n_valid = 0, 0
    for r in range(h):
        inside_row, depth_row = mask[r], depth_m[y0 + r, x0:]  # row slices: no wrap-around test per pixel
        for c in range(w):
            inside = inside_row[c]
            z = depth_row[c]
            mask_pixels += inside
            n_valid += inside & (z == z)  # NaN is no reading (depth holds no inf)
    return n_valid, mask_pixels


@kernel
def surface_points(mask: np.ndarray, x0: int, y0: int, depth_m: np.ndarray, fx: float, fy: float, cx: float,
                    cy: float) -> tuple[np.ndarray, int, int, int]:
    """(3, N) points kept by the rules of the module docstring, readings in the mask, mask pixels, status
    (an index of STATUS_REASONS). float32 depth tests round as numpy's do (the constants are float32)."""
    h, w = mask.shape
    height, width = depth_m.shape
    n_valid, mask_pixels = _readings(mask, x0, y0, depth_m)
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
        mask_row, depth_row = mask[r], depth_m[v, x0:]
        inner_row = 0 < v < height - 1
        above, middle, below = depth_m[max(v - 1, 0)], depth_m[v], depth_m[min(v + 1, height - 1)]
        for c in range(0, w, step):
            if not mask_row[c]:
                continue
            z = depth_row[c]
            if not np.isfinite(z):
                continue
            u = x0 + c
            nearest = z  # rule 1: the nearest reading of the 3x3 neighbourhood (NaN compares false)
            if inner_row and 0 < u < width - 1:
                left, centre, right = np.uintp(u - 1), np.uintp(u), np.uintp(u + 1)  # unsigned: no wrap-around test
                for neighbour in (above[left], above[centre], above[right], middle[left], middle[right], below[left],
                                  below[centre], below[right]):
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


@kernel
def moments(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, scatter matrix about the mean, extent max - min) of (3, N) points."""
    n = points.shape[1]
    mean, low, high = np.zeros(3), np.zeros(3), np.zeros(3)
    for d in range(3):  # each sum, minimum and maximum in a local: array slots as accumulators were 2x slower
        row = points[d]
        total, smallest, largest = 0.0, np.inf, -np.inf
        for i in range(n):
            value = row[i]
            total += value
            smallest, largest = min(smallest, value), max(largest, value)
        mean[d], low[d], high[d] = total / n, smallest, largest
    xx = xy = xz = yy = yz = zz = 0.0
    mx, my, mz = mean[0], mean[1], mean[2]
    for i in range(n):
        x, y, z = points[0, i] - mx, points[1, i] - my, points[2, i] - mz
        xx += x * x
        xy += x * y
        xz += x * z
        yy += y * y
        yz += y * z
        zz += z * z
    scatter = np.empty((3, 3))
    scatter[0, 0], scatter[0, 1], scatter[0, 2] = xx, xy, xz
    scatter[1, 0], scatter[1, 1], scatter[1, 2] = xy, yy, yz
    scatter[2, 0], scatter[2, 1], scatter[2, 2] = xz, yz, zz
    return mean, scatter, high - low


@kernel
def offsets(points: np.ndarray, mean: np.ndarray, axes: np.ndarray, stride: int) -> np.ndarray:
    """(3, M): every stride-th point's offset from ``mean`` along each column of ``axes``."""
    count = (points.shape[1] + stride - 1) // stride
    along = np.empty((3, count))
    for d in range(3):
        for j in range(count):
            i = j * stride
            along[d, j] = (axes[0, d] * (points[0, i] - mean[0]) + axes[1, d] * (points[1, i] - mean[1])
                           + axes[2, d] * (points[2, i] - mean[2]))
    return along


@kernel
def axes_and_offsets(points: np.ndarray, point_offsets: np.ndarray, status: np.ndarray, means: np.ndarray,
                     vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per instance with points: the right-handed axes (columns: the first two eigenvectors, rows of
    ``vectors[i]``, and their cross product) and every stride-th point's offset from the mean along them
    (stride: about BOX_SAMPLES of them); (axes, offsets (3, M), their per-instance offsets)."""
    n = len(status)
    axes = np.zeros((n, 3, 3))
    sample_offsets = np.zeros(n + 1, np.int64)
    for i in range(n):
        count = point_offsets[i + 1] - point_offsets[i]
        stride = max(1, count // BOX_SAMPLES)
        sample_offsets[i + 1] = sample_offsets[i] + (0 if status[i] else (count + stride - 1) // stride)
    along = np.empty((3, sample_offsets[n]))
    for i in range(n):
        if status[i]:
            continue
        a0, a1, a2 = vectors[i, 0, 0], vectors[i, 0, 1], vectors[i, 0, 2]
        b0, b1, b2 = vectors[i, 1, 0], vectors[i, 1, 1], vectors[i, 1, 2]
        axes[i, 0, 0], axes[i, 0, 1], axes[i, 0, 2] = a0, b0, a1 * b2 - a2 * b1
        axes[i, 1, 0], axes[i, 1, 1], axes[i, 1, 2] = a1, b1, a2 * b0 - a0 * b2
        axes[i, 2, 0], axes[i, 2, 1], axes[i, 2, 2] = a2, b2, a0 * b1 - a1 * b0
        rows = points[:, point_offsets[i]:point_offsets[i + 1]]
        stride = max(1, rows.shape[1] // BOX_SAMPLES)
        along[:, sample_offsets[i]:sample_offsets[i + 1]] = offsets(rows, means[i], axes[i], stride)
    return axes, along, sample_offsets


@kernel
def oriented_boxes(points: np.ndarray, point_offsets: np.ndarray, status: np.ndarray, means: np.ndarray,
                   vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per instance with points (status 0), from its eigenvectors (rows of ``vectors[i]``, largest spread
    first): (box centres, axes (the longer of the first two first, right-handed), sizes, quaternions x, y, z,
    w). Each side is the BOX_PERCENTILES order statistic of the sampled offsets along an axis (the value a
    sort would put at that rank, ``outer_ranks``), the ranks rounded half to even as numpy's round."""
    axes, along, sample_offsets = axes_and_offsets(points, point_offsets, status, means, vectors)
    n = len(status)
    centres, sizes, quaternions = np.zeros((n, 3)), np.zeros((n, 3)), np.zeros((n, 4))
    out_axes = axes.copy()
    lo, hi = np.empty(3), np.empty(3)
    for i in range(n):
        if status[i]:
            continue
        start, end = sample_offsets[i], sample_offsets[i + 1]
        last = end - start - 1
        low_rank = int(np.rint(last * BOX_PERCENTILES[0] / 100))
        high_rank = int(np.rint(last * BOX_PERCENTILES[1] / 100))
        for d in range(3):
            lo[d], hi[d] = outer_ranks(along[d, start:end], low_rank, high_rank)
        middle = (lo + hi) / 2
        for d in range(3):
            centres[i, d] = means[i, d] + (axes[i, d, 0] * middle[0] + axes[i, d, 1] * middle[1]
                                           + axes[i, d, 2] * middle[2])
        size = hi - lo
        if size[1] > size[0]:  # a round object: the second axis by spread can be the longer by extent
            for d in range(3):
                out_axes[i, d, 0], out_axes[i, d, 1], out_axes[i, d, 2] = axes[i, d, 1], axes[i, d, 0], -axes[i, d, 2]
            size[0], size[1] = size[1], size[0]
        sizes[i] = size
        quaternions[i] = quaternion(out_axes[i])
    return centres, out_axes, sizes, quaternions


@kernel
def outer_ranks(values: np.ndarray, low_rank: int, high_rank: int) -> tuple[float, float]:
    """(the low_rank-th, the high_rank-th smallest of ``values``), 0-based, finite values, in one pass that keeps
    the few smallest and the few largest seen: a box's percentiles lie that near the ends (rank 8 at most
    of 2 x BOX_SAMPLES), where this costs a third of a partial sort and touches nothing in place."""
    up = len(values) - 1 - high_rank
    smallest, largest = np.full(low_rank + 1, np.inf), np.full(up + 1, -np.inf)  # ascending, descending
    for i in range(len(values)):
        value = values[i]
        if value < smallest[low_rank]:
            j = low_rank
            while j > 0 and smallest[j - 1] > value:
                smallest[j] = smallest[j - 1]
                j -= 1
            smallest[j] = value
        if value > largest[up]:
            j = up
            while j > 0 and largest[j - 1] < value:
                largest[j] = largest[j - 1]
                j -= 1
            largest[j] = value
    return smallest[low_rank], largest[up]


@kernel
def quaternion(m: np.ndarray) -> np.ndarray:
    """(x, y, z, w) of a proper rotation matrix (Shepperd's method, stable for every angle)."""
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    q = np.zeros(4)
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q[0], q[1], q[2], q[3] = (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s
    else:
        i = 0
        if m[1, 1] > m[i, i]:
            i = 1
        if m[2, 2] > m[i, i]:
            i = 2
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q[i] = 0.25 * s
        q[j] = (m[j, i] + m[i, j]) / s
        q[k] = (m[k, i] + m[i, k]) / s
        q[3] = (m[k, j] - m[j, k]) / s
    norm = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    return q / norm


@warmer
def _warm() -> None:
    depth = np.ones((8, 8), np.float32)
    masks = np.ones(36, np.bool_)
    offsets_ = np.array([0, 36], np.int64)
    boxes = np.array([[1, 1, 6, 6]], np.int64)
    free = free_pixels(masks, offsets_, boxes, 8, 8)
    for complete in (False, True):
        status, _, point_offsets, points, means, _, _ = frame_surfaces(
            masks, offsets_, boxes, depth, free, 1.0, 1.0, 4.0, 4.0, np.array([0.0, 0.0, -1.0]), -1.0, complete)
    oriented_boxes(points, point_offsets, status, means, np.eye(3)[None])
    moments(points)
