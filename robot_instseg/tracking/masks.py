"""Mask IoU between instances stored as crops at integer boxes (Detections' layout), without
building full frames: only the overlap of the two boxes is compared."""

from __future__ import annotations

import numpy as np

from robot_instseg.jit import kernel, warmer


def crop_iou(mask_a: np.ndarray, x0a: int, y0a: int, mask_b: np.ndarray, x0b: int, y0b: int,
             area_a: int = -1, area_b: int = -1) -> float:
    """IoU of two boolean masks given as crops whose top-left pixels are (x0a, y0a) and (x0b, y0b)
    (``area_*``: their pixel counts, when the caller already has them)."""
    area_a = int(np.count_nonzero(mask_a)) if area_a < 0 else area_a
    area_b = int(np.count_nonzero(mask_b)) if area_b < 0 else area_b
    return flat_iou(np.ascontiguousarray(mask_a).ravel(), 0, x0a, y0a, mask_a.shape[0], mask_a.shape[1], area_a,
                    np.ascontiguousarray(mask_b).ravel(), 0, x0b, y0b, mask_b.shape[0], mask_b.shape[1], area_b)


@kernel
def flat_iou(pixels_a: np.ndarray, start_a: int, x0a: int, y0a: int, ha: int, wa: int, area_a: int,
             pixels_b: np.ndarray, start_b: int, x0b: int, y0b: int, hb: int, wb: int, area_b: int) -> float:
    """IoU of two masks stored row-major from ``start_*`` in flat buffers (bool or uint8), each ``h* x w*`` with its
    top-left pixel at (x0*, y0*) in the image and ``area_*`` pixels set: only the overlap of their boxes is read."""
    x0, y0 = max(x0a, x0b), max(y0a, y0b)
    x1, y1 = min(x0a + wa, x0b + wb), min(y0a + ha, y0b + hb)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    inter = shared_pixels(pixels_a, start_a + (y0 - y0a) * wa + x0 - x0a, wa,
                          pixels_b, start_b + (y0 - y0b) * wb + x0 - x0b, wb, x1 - x0, y1 - y0)
    union = area_a + area_b - inter
    return inter / union if union else 0.0


@kernel
def shared_pixels(pixels_a: np.ndarray, start_a: int, stride_a: int, pixels_b: np.ndarray, start_b: int,
                  stride_b: int, w: int, h: int) -> int:
    """Pixels set in both of two flat (row-major, bool or uint8) masks over a w x h window that starts at
    ``start_*`` in each, whose rows are ``stride_*`` apart.

    Read a row slice at a time and counted as uint8 into a 32-bit sum per row, the loop vectorises: indexing
    ``mask[y + r, x + c]`` made numba check each index for wrap-around (it cannot know x + c >= 0), which
    kept it scalar (about 7x slower)."""
    count = 0
    for r in range(h):
        row_a, row_b = pixels_a[start_a + r * stride_a:], pixels_b[start_b + r * stride_b:]
        row = np.int32(0)
        for c in range(w):
            row += np.uint8(row_a[c]) & np.uint8(row_b[c])
        count += row
    return count


@warmer
def _warm() -> None:
    crop_iou(np.ones((2, 2), bool), 0, 0, np.ones((2, 2), bool), 1, 1)


def box_intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection areas of xyxy boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    return np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    inter = box_intersection(a, b)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
