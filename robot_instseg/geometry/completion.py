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

from typing import Optional

import cv2
import numpy as np

from robot_instseg.geometry.intrinsics import Intrinsics
from robot_instseg.geometry.robust import upper_median
from robot_instseg.geometry.support_plane import SupportPlane

MIN_HEIGHT_M = 0.01
BAND_SHARE = 0.3
BAND_MIN_M = 0.02
MARGIN_SHARE = 0.25
MARGIN_MIN_PX = 4
STEP = 2
MIN_MASK_READINGS = 20
MIN_ADDED_SHARE = 0.05  # of the mask's grid pixels: less (a rim of edge pixels) is not worth a larger box


class SurfaceCompletion:
    """One frame's completion: built once from its depth, support plane and free pixels, then
    ``complete`` per instance."""

    def __init__(self, depth_m: np.ndarray, k: Intrinsics, plane: SupportPlane, free: np.ndarray) -> None:
        self.k = k
        self.free = free
        self._z = np.ascontiguousarray(depth_m[::STEP, ::STEP])
        # NaN (no reading) compares false: never a candidate
        self._open = free[::STEP, ::STEP] & (plane.heights(self._z, 0, 0, STEP, k) > MIN_HEIGHT_M)

    def complete(self, mask: np.ndarray, x0: int, y0: int) -> tuple[np.ndarray, int, int]:
        """(mask, x0, y0) of the instance's surface: ``mask`` (at ``x0, y0`` in the image) with the pixels
        the module's rules add, on a box that may be larger."""
        h, w = mask.shape
        rows, cols = self._z.shape
        margin = max(MARGIN_MIN_PX, int(MARGIN_SHARE * max(h, w)))
        gx0, gy0 = max(-(-(x0 - margin) // STEP), 0), max(-(-(y0 - margin) // STEP), 0)  # the search box
        gx1, gy1 = min((x0 + w + margin - 1) // STEP + 1, cols), min((y0 + h + margin - 1) // STEP + 1, rows)
        opened = self._open[gy0:gy1, gx0:gx1]
        least = max(1, int(MIN_ADDED_SHARE * np.count_nonzero(mask) / (STEP * STEP)))
        if np.count_nonzero(opened) < least:  # most masks: nothing above the table around them to add
            return mask, x0, y0
        z = self._z[gy0:gy1, gx0:gx1]
        inside = np.zeros(z.shape, bool)
        mx0, my0 = -(-x0 // STEP), -(-y0 // STEP)  # the first grid column and row on the mask
        on_grid = mask[my0 * STEP - y0::STEP, mx0 * STEP - x0::STEP]
        inside[my0 - gy0:my0 - gy0 + on_grid.shape[0], mx0 - gx0:mx0 - gx0 + on_grid.shape[1]] = on_grid
        median = _mask_median(z, inside)
        if median is None:
            return mask, x0, y0
        band = max(BAND_SHARE * max(h, w) * median / self.k.fx, BAND_MIN_M)
        candidate = opened & (np.abs(z - median) < band)  # free, so never inside
        if np.count_nonzero(candidate) < least:
            return mask, x0, y0
        count, components = cv2.connectedComponents((candidate | inside).view(np.uint8), connectivity=4)
        touching = np.zeros(count, bool)
        touching[components[inside]] = True
        touching[0] = False
        added = touching[components] & candidate
        if np.count_nonzero(added) < least:
            return mask, x0, y0
        return self._merge(mask, x0, y0, added, gx0, gy0)

    def _merge(self, mask: np.ndarray, x0: int, y0: int, added: np.ndarray, gx0: int,
               gy0: int) -> tuple[np.ndarray, int, int]:
        """The mask and the added grid pixels' blocks (free pixels only) on the box that holds both."""
        h, w = mask.shape
        c0, r0, used_w, used_h = cv2.boundingRect(added.view(np.uint8))
        blocks = cv2.resize(added[r0:r0 + used_h, c0:c0 + used_w].view(np.uint8), None, fx=STEP, fy=STEP,
                            interpolation=cv2.INTER_NEAREST)
        by, bx = (gy0 + r0) * STEP, (gx0 + c0) * STEP  # image pixel of the blocks' origin
        bh, bw = min(blocks.shape[0], self.free.shape[0] - by), min(blocks.shape[1], self.free.shape[1] - bx)
        top, left = min(y0, by), min(x0, bx)
        out = np.zeros((max(y0 + h, by + bh) - top, max(x0 + w, bx + bw) - left), bool)
        out[by - top:by - top + bh, bx - left:bx - left + bw] = blocks[:bh, :bw].view(bool)
        out &= self.free[top:top + out.shape[0], left:left + out.shape[1]]
        out[y0 - top:y0 - top + h, x0 - left:x0 - left + w] |= mask
        return out, left, top


def _mask_median(z: np.ndarray, inside: np.ndarray) -> Optional[float]:
    readings = z[inside]
    readings = readings[np.isfinite(readings)]
    if len(readings) < MIN_MASK_READINGS:
        return None
    return upper_median(readings)
