"""Complete an instance's visible surface from depth where its mask stops short of the object.

Why: the centroid's error with the model's masks comes from the masks, not from the depth: a mask
that misses a tool's head or the strip of a box along an occluder moves the centroid whatever
the depth says (on perfect depth the same masks keep most of that error). Depth shows where the
surface goes on. A pixel next to the mask joins the instance's surface when all of these hold:

- no instance owns it (the ownership of overlaps stays as resolved);
- it stands at least ``MIN_HEIGHT_M`` above the support plane (not the table around the object);
- its depth is within ``BAND_SHARE`` of the object's size (in metres, the mask's extent at its
  median depth; at least ``BAND_MIN_M``) of the mask's median depth (not an object behind it);
- it lies in the mask's box grown by ``MARGIN_SHARE`` of its size, and is 4-connected to the mask
  through such pixels.

Fewer than ``MIN_ADDED_SHARE`` of the mask's pixels to add (a rim of pixels along a depth edge,
which the fusion's edge rule drops anyway) leaves the mask as it is.

The search runs on the grid of every ``STEP``-th pixel (connectivity on that grid; an added grid
pixel adds its STEP x STEP block, free pixels only), and what does not depend on the instance
(free, finite, above the plane) is computed once per frame, to bound the cost. The completed
surface feeds the centroid, the box and the cloud; the published mask and ``~/labels`` stay the
model's.
"""

from __future__ import annotations

import numpy as np

from robot_instseg.geometry.intrinsics import Intrinsics
from robot_instseg.geometry.support_plane import SupportPlane
from robot_instseg.jit import kernel, warmer

MIN_HEIGHT_M = 0.01
BAND_SHARE = 0.3
BAND_MIN_M = 0.02
MARGIN_SHARE = 0.25
MARGIN_MIN_PX = 4
STEP = 2
MIN_MASK_READINGS = 20
MIN_ADDED_SHARE = 0.05  # of the mask's grid pixels: less (a rim of edge pixels) is not worth a larger box


class SurfaceCompletion:
    """One frame's completion: its depth, support plane and free pixels, then ``complete`` per instance."""

    def __init__(self, depth_m: np.ndarray, k: Intrinsics, plane: SupportPlane, free: np.ndarray) -> None:
        self.k, self.free, self.depth_m = k, free, depth_m
        self._plane = (np.asarray(plane.normal, np.float64), float(plane.offset))

    def complete(self, mask: np.ndarray, x0: int, y0: int) -> tuple[np.ndarray, int, int]:
        """(mask, x0, y0) of the instance's surface: ``mask`` (at ``x0, y0`` in the image) with the pixels
        the module's rules add, on a box that may be larger (``mask`` itself when nothing is added)."""
        k = self.k
        out, left, top, grown = complete_surface(mask, x0, y0, self.depth_m, self.free, k.fx, k.fy, k.cx, k.cy,
                                          self._plane[0], self._plane[1])
        return (out, left, top) if grown else (mask, x0, y0)


@kernel
def complete_surface(mask: np.ndarray, x0: int, y0: int, depth_m: np.ndarray, free: np.ndarray, fx: float, fy: float,
              cx: float, cy: float, normal: np.ndarray, offset: float) -> tuple[np.ndarray, int, int, bool]:
    """The module's rules on the STEP grid of the search box: (surface mask, x0, y0, grown?). Images are read
    through row slices stepped by STEP (an index like depth_m[v, u] makes numba test it for wrap-around and
    keeps the loop scalar)."""
    h, w = mask.shape
    height, width = depth_m.shape
    rows, cols = (height + STEP - 1) // STEP, (width + STEP - 1) // STEP
    margin = max(MARGIN_MIN_PX, int(MARGIN_SHARE * max(h, w)))
    gx0, gy0 = max(-(-(x0 - margin) // STEP), 0), max(-(-(y0 - margin) // STEP), 0)  # the search box
    gx1, gy1 = min((x0 + w + margin - 1) // STEP + 1, cols), min((y0 + h + margin - 1) // STEP + 1, rows)
    gh, gw = gy1 - gy0, gx1 - gx0
    unchanged = (mask, x0, y0, False)
    least = max(1, int(MIN_ADDED_SHARE * np.count_nonzero(mask) / (STEP * STEP)))
    # open: free, with a reading, at least MIN_HEIGHT_M above the plane (float32 as SupportPlane.heights)
    opened = np.zeros((gh, gw), np.bool_)
    offset32, above = np.float32(offset), np.float32(MIN_HEIGHT_M)
    ray_x = np.empty(gw, np.float32)
    for c in range(gw):
        ray_x[c] = np.float32(((gx0 + c) * STEP - cx) * (normal[0] / fx))
    n_open = 0
    for r in range(gh):
        ray_y = np.float32(((gy0 + r) * STEP - cy) * (normal[1] / fy) + normal[2])
        depth_row, free_row = depth_m[(gy0 + r) * STEP, gx0 * STEP:], free[(gy0 + r) * STEP, gx0 * STEP:]
        open_row = opened[r]
        for c in range(gw):
            is_open = free_row[STEP * c] & ((ray_x[c] + ray_y) * depth_row[STEP * c] - offset32 > above)  # NaN: False
            open_row[c] = is_open
            n_open += is_open
    if n_open < least:  # most masks: nothing above the table around them to add
        return unchanged
    # the mask's pixels on the grid: from grid row r_first and column c_first (mask column u_first) on
    inside = np.zeros((gh, gw), np.bool_)
    readings = np.empty(gh * gw, np.float32)
    count = 0
    r_first = max(0, -(-(y0 - gy0 * STEP) // STEP))  # first grid row at or below the mask's top
    c_first = max(0, -(-(x0 - gx0 * STEP) // STEP))
    u_first = (gx0 + c_first) * STEP - x0  # >= 0: the mask column of grid column c_first
    n_cols = max(0, min(gw - c_first, (w - u_first + STEP - 1) // STEP))
    for r in range(r_first, gh):
        v = (gy0 + r) * STEP - y0
        if v >= h:
            break
        mask_row = mask[v, u_first:]
        depth_row = depth_m[(gy0 + r) * STEP, (gx0 + c_first) * STEP:]
        inside_row = inside[r, c_first:]
        for j in range(n_cols):
            if mask_row[STEP * j]:
                inside_row[j] = True
                z = depth_row[STEP * j]
                if np.isfinite(z):
                    readings[count] = z
                    count += 1
    if count < MIN_MASK_READINGS:
        return unchanged
    median = np.partition(readings[:count], count // 2)[count // 2]
    band = np.float32(max(BAND_SHARE * max(h, w) * np.float64(median) / fx, BAND_MIN_M))
    candidate = np.zeros((gh, gw), np.bool_)  # free, so never inside
    n_candidates = 0
    for r in range(gh):
        depth_row, open_row, candidate_row = depth_m[(gy0 + r) * STEP, gx0 * STEP:], opened[r], candidate[r]
        for c in range(gw):
            near = open_row[c] & (np.abs(depth_row[STEP * c] - median) < band)
            candidate_row[c] = near
            n_candidates += near
    if n_candidates < least:
        return unchanged
    # candidates 4-connected to the mask through candidates or mask pixels
    added = np.zeros((gh, gw), np.bool_)
    seen = inside.copy()
    stack = np.empty(gh * gw, np.int64)
    top = 0
    flat_inside = inside.ravel()
    for i in range(gh * gw):
        if flat_inside[i]:
            stack[top] = i
            top += 1
    n_added = 0
    while top > 0:
        top -= 1
        r, c = divmod(stack[top], gw)
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            rr, cc = r + dr, c + dc
            if 0 <= rr < gh and 0 <= cc < gw and not seen[rr, cc] and candidate[rr, cc]:
                seen[rr, cc] = True
                added[rr, cc] = True
                n_added += 1
                stack[top] = rr * gw + cc
                top += 1
    if n_added < least:
        return unchanged
    r0, r1, c0, c1 = gh, -1, gw, -1
    for r in range(gh):
        for c in range(gw):
            if added[r, c]:
                r0, r1, c0, c1 = min(r0, r), max(r1, r), min(c0, c), max(c1, c)
    # the mask and the added grid pixels' blocks on the box that holds both
    by, bx = (gy0 + r0) * STEP, (gx0 + c0) * STEP  # image pixel of the blocks' origin
    bh, bw = min((r1 - r0 + 1) * STEP, height - by), min((c1 - c0 + 1) * STEP, width - bx)
    out_y, out_x = min(y0, by), min(x0, bx)
    out = np.zeros((max(y0 + h, by + bh) - out_y, max(x0 + w, bx + bw) - out_x), np.bool_)
    for v in range(bh):  # each added grid pixel's STEP x STEP block, free pixels only
        added_row, free_row, out_row = added[r0 + v // STEP, c0:], free[by + v, bx:], out[by + v - out_y, bx - out_x:]
        for u in range(bw):
            out_row[u] = added_row[u // STEP] & free_row[u]
    for r in range(h):
        mask_row, out_row = mask[r], out[y0 - out_y + r, x0 - out_x:]
        for c in range(w):
            out_row[c] |= mask_row[c]
    return out, out_x, out_y, True


@warmer
def _warm() -> None:
    complete_surface(np.ones((2, 2), bool), 2, 2, np.ones((8, 8), np.float32), np.ones((8, 8), bool), 1.0, 1.0, 4.0, 4.0,
              np.array([0.0, 0.0, -1.0]), -1.0)
