"""Low-resolution mask maps -> full-resolution instance masks, inside each instance's box only.

The geometry is the published reference decode, so our masks equal the frameworks' own
pixel for pixel (checked against a torch implementation in ``engine/reference_decode.py``):

1. The map's content window drops the letterbox padding in map space with Ultralytics'
   rounding (``scale_masks``): ``top = round(pad - 0.1)``, ``bottom = size - round(pad + 0.1)``.
2. That window is resized bilinearly to the full image with ``align_corners=False``
   (``F.interpolate``): source = (pixel + 0.5) * window / image - 0.5, clamped to the window.
3. A pixel is in the mask where the sampled value is above the threshold (logit > 0 for 0.5).

Only the pixels of each instance's box are computed, with two 1-D gathers and lerps (the
bilinear filter is separable), so the cost is the sum of box areas, never N full frames.
The sampled values are kept: they are the per-pixel evidence that resolves overlaps.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from robot_instseg.engine.preprocess import LetterboxTransform
from robot_instseg.jit import kernel, warmer

# region_values(i, y0, y1, x0, x1) -> float32 map of instance i over map rows y0:y1, cols x0:x1
RegionFn = Callable[[int, int, int, int, int], np.ndarray]


@dataclass(frozen=True)
class AxisTaps:
    """For every image pixel along one axis: the two map indices it blends and the weight of the second."""

    lower: np.ndarray  # int64, map index
    upper: np.ndarray  # int64, map index (= lower at the window's last pixel)
    weight: np.ndarray  # float32 in [0, 1], weight of ``upper``


def axis_taps(start: int, length: int, image_size: int) -> AxisTaps:
    """Bilinear taps resizing map window [start, start + length) to ``image_size`` pixels.

    Follows PyTorch's ``align_corners=False`` arithmetic in float32, so thresholds flip on
    the same pixels as the reference.
    """
    scale = np.float32(length) / np.float32(image_size)
    src = (np.arange(image_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    np.maximum(src, np.float32(0.0), out=src)
    lower = np.minimum(np.floor(src).astype(np.int64), length - 1)
    upper = np.minimum(lower + 1, length - 1)
    weight = np.clip(src - lower.astype(np.float32), 0.0, 1.0).astype(np.float32)
    return AxisTaps(lower + start, upper + start, weight)


def content_window(map_shape: tuple[int, int], transform: LetterboxTransform) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the map that shows the image, padding dropped.

    A letterboxed input loses its padding with the reference's rounding; a stretched (plain
    resize) input fills the whole map.
    """
    mh, mw = map_shape
    if not transform.letterbox:
        return 0, mh, 0, mw
    h, w = transform.image_shape
    gain = min(mh / h, mw / w)
    pad_w, pad_h = (mw - w * gain) / 2, (mh - h * gain) / 2
    top, left = round(pad_h - 0.1), round(pad_w - 0.1)
    bottom, right = mh - round(pad_h + 0.1), mw - round(pad_w + 0.1)
    return int(top), int(bottom), int(left), int(right)


@dataclass(frozen=True)
class MapSampler:
    """The image <- map sampling of one frame: the same taps serve every instance."""

    rows: AxisTaps
    cols: AxisTaps
    window: tuple[int, int, int, int]  # top, bottom, left, right in map pixels

    @classmethod
    def for_frame(cls, map_shape: tuple[int, int], transform: LetterboxTransform) -> "MapSampler":
        """The sampler of a frame; a camera's frames share one (kept for the last few sizes seen: its taps
        depend only on the map's shape and the letterbox)."""
        return _sampler((int(map_shape[0]), int(map_shape[1])), transform)

    def sample(self, box: tuple[int, int, int, int], values: Callable[[int, int, int, int], np.ndarray],
               threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(float32 values, values > threshold) of image pixels box = (x0, y0, x1, y1), exclusive ends.

        ``values(y0, y1, x0, x1)`` returns the map over that window (the only part read).
        """
        x0, y0, x1, y1 = box
        rows, cols = self.rows, self.cols
        my0, my1, mx0, mx1 = map_window(self, box)
        window = np.asarray(values(my0, my1, mx0, mx1), np.float32)
        return _sample_box(window, my0, mx0, rows.lower, rows.upper, rows.weight, cols.lower, cols.upper, cols.weight,
                           x0, y0, x1, y1, np.float32(threshold))

    def support(self, positive: np.ndarray) -> tuple[int, int, int, int]:
        """Image box (x0, y0, x1, y1) outside which no pixel can be sampled positive.

        ``positive`` is the full map's above-threshold test. A bilinear sample lies between
        its taps' values, so a pixel can only be positive when one of its taps is.
        """
        top, bottom, left, right = self.window
        inside = positive[top:bottom, left:right]
        rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
        if len(rows) == 0:
            return 0, 0, 0, 0
        y0 = int(np.searchsorted(self.rows.upper, rows[0] + top, "left"))
        y1 = int(np.searchsorted(self.rows.lower, rows[-1] + top, "right"))
        x0 = int(np.searchsorted(self.cols.upper, cols[0] + left, "left"))
        x1 = int(np.searchsorted(self.cols.lower, cols[-1] + left, "right"))
        return x0, y0, x1, y1


@functools.lru_cache(maxsize=16)
def _sampler(map_shape: tuple[int, int], transform: LetterboxTransform) -> MapSampler:
    """MapSampler.for_frame, computed once per (map shape, transform); its arrays are never written."""
    top, bottom, left, right = content_window(map_shape, transform)
    h, w = transform.image_shape
    return MapSampler(axis_taps(top, bottom - top, h), axis_taps(left, right - left, w), (top, bottom, left, right))


@kernel
def _sample_box(window: np.ndarray, my0: int, mx0: int, row_lower: np.ndarray, row_upper: np.ndarray,
                row_weight: np.ndarray, col_lower: np.ndarray, col_upper: np.ndarray, col_weight: np.ndarray,
                x0: int, y0: int, x1: int, y1: int, threshold: np.float32) -> tuple[np.ndarray, np.ndarray]:
    """The separable bilinear sample of ``window`` (map pixels from my0, mx0) over image box x0:x1, y0:y1, in
    float32 and in PyTorch's order (along x first, then y), and its test against ``threshold``."""
    values = np.empty((y1 - y0, x1 - x0), np.float32)
    mask = np.empty((y1 - y0, x1 - x0), np.bool_)
    _sample_into(window, my0, mx0, row_lower, row_upper, row_weight, col_lower, col_upper, col_weight, x0, y0, x1,
                 y1, threshold, values, mask)
    return values, mask


@kernel
def _sample_into(window: np.ndarray, my0: int, mx0: int, row_lower: np.ndarray, row_upper: np.ndarray,
                 row_weight: np.ndarray, col_lower: np.ndarray, col_upper: np.ndarray, col_weight: np.ndarray,
                 x0: int, y0: int, x1: int, y1: int, threshold: np.float32, values: np.ndarray,
                 mask: np.ndarray) -> None:
    """``_sample_box`` written into ``values`` and ``mask`` ((y1 - y0, x1 - x0) each)."""
    one = np.float32(1.0)
    across = np.empty((window.shape[0], x1 - x0), np.float32)
    for r in range(window.shape[0]):
        for c in range(x1 - x0):
            wc = col_weight[x0 + c]
            across[r, c] = window[r, col_lower[x0 + c] - mx0] * (one - wc) + window[r, col_upper[x0 + c] - mx0] * wc
    for r in range(y1 - y0):
        wr = row_weight[y0 + r]
        lower, upper = across[row_lower[y0 + r] - my0], across[row_upper[y0 + r] - my0]
        value_row, mask_row = values[r], mask[r]
        for c in range(x1 - x0):
            value = lower[c] * (one - wr) + upper[c] * wr
            value_row[c] = value
            mask_row[c] = value > threshold


@kernel
def _sample_linear(coefficients: np.ndarray, protos: np.ndarray, boxes: np.ndarray, row_lower: np.ndarray,
                   row_upper: np.ndarray, row_weight: np.ndarray, col_lower: np.ndarray, col_upper: np.ndarray,
                   col_weight: np.ndarray, threshold: np.float32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every instance's map (coefficients[i] . protos, over its box's map window only, summed in float64 and
    rounded to float32) sampled over its box: (values, masks, offsets), each instance's box pixels laid end to
    end from offsets[i], row-major. One call per frame: no window copied out of the prototypes per instance."""
    n, nm = coefficients.shape
    offsets = np.zeros(n + 1, np.int64)
    for i in range(n):
        offsets[i + 1] = offsets[i] + max(boxes[i, 2] - boxes[i, 0], 0) * max(boxes[i, 3] - boxes[i, 1], 0)
    values = np.empty(offsets[n], np.float32)
    mask = np.empty(offsets[n], np.bool_)
    for i in range(n):
        x0, y0, x1, y1 = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]
        if x1 <= x0 or y1 <= y0:
            continue
        my0, my1 = row_lower[y0], row_upper[y1 - 1] + 1
        mx0, mx1 = col_lower[x0], col_upper[x1 - 1] + 1
        window = np.empty((my1 - my0, mx1 - mx0), np.float32)
        total = np.empty(mx1 - mx0)
        for r in range(my1 - my0):
            total[:] = 0.0
            for k in range(nm):
                weight, proto_row = np.float64(coefficients[i, k]), protos[k, my0 + r, mx0:]
                for c in range(mx1 - mx0):
                    total[c] += weight * proto_row[c]
            window_row = window[r]
            for c in range(mx1 - mx0):
                window_row[c] = np.float32(total[c])
        h, w = y1 - y0, x1 - x0
        _sample_into(window, my0, mx0, row_lower, row_upper, row_weight, col_lower, col_upper, col_weight, x0, y0,
                     x1, y1, threshold, values[offsets[i]:offsets[i + 1]].reshape(h, w),
                     mask[offsets[i]:offsets[i + 1]].reshape(h, w))
    return values, mask, offsets


@warmer
def _warm() -> None:
    taps = axis_taps(0, 4, 8)
    _sample_box(np.zeros((4, 4), np.float32), 0, 0, taps.lower, taps.upper, taps.weight, taps.lower, taps.upper,
                taps.weight, 0, 0, 8, 8, np.float32(0.0))
    boxes = np.array([[0, 0, 8, 8], [2, 2, 2, 5]])  # a whole box and an empty one
    _sample_linear(np.zeros((2, 3), np.float32), np.zeros((3, 4, 4), np.float32), boxes, taps.lower, taps.upper,
                   taps.weight, taps.lower, taps.upper, taps.weight, np.float32(0.0))


def crop_boxes(boxes: np.ndarray, image_shape: tuple[int, int]) -> np.ndarray:
    """Float xyxy boxes -> the int boxes of the pixels the reference keeps: x1 <= u < x2, y1 <= v < y2.

    That is columns ceil(x1) .. ceil(x2) - 1 (rows alike), clipped to the image.
    """
    return _pixel_boxes(boxes, image_shape, np.ceil)


def covering_boxes(boxes: np.ndarray, image_shape: tuple[int, int]) -> np.ndarray:
    """Float xyxy boxes -> int32 boxes covering them (floor / ceil), clipped to the image."""
    return _pixel_boxes(boxes, image_shape, np.floor)


def _pixel_boxes(boxes: np.ndarray, image_shape: tuple[int, int], round_start) -> np.ndarray:
    h, w = image_shape
    out = np.empty((len(boxes), 4), np.int32)
    out[:, 0] = np.clip(round_start(boxes[:, 0]), 0, w)
    out[:, 1] = np.clip(round_start(boxes[:, 1]), 0, h)
    out[:, 2] = np.clip(np.ceil(boxes[:, 2]), 0, w)
    out[:, 3] = np.clip(np.ceil(boxes[:, 3]), 0, h)
    out[:, 2] = np.maximum(out[:, 2], out[:, 0])
    out[:, 3] = np.maximum(out[:, 3], out[:, 1])
    return out


def sample_in_boxes(sampler: MapSampler, mask_boxes: np.ndarray, region_values: RegionFn,
                    threshold: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per instance i: (bool mask, float32 values) over ``mask_boxes[i]``; pixels above ``threshold`` are in."""
    masks: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for i, (x0, y0, x1, y1) in enumerate(mask_boxes.tolist()):
        if x1 <= x0 or y1 <= y0:
            empty = np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), np.float32)
            masks.append(empty > threshold)
            values.append(empty)
            continue
        sampled, mask = sampler.sample((x0, y0, x1, y1), functools.partial(region_values, i), threshold)
        masks.append(mask)
        values.append(sampled)
    return masks, values


def sample_linear_in_boxes(sampler: MapSampler, mask_boxes: np.ndarray, coefficients: np.ndarray, protos: np.ndarray,
                           threshold: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``sample_in_boxes`` for maps that are linear combinations of prototypes (YOLO: instance i's map is
    coefficients[i] . protos), all instances in one compiled call; the masks and values are views of one buffer each."""
    rows, cols = sampler.rows, sampler.cols
    values, mask, offsets = _sample_linear(np.ascontiguousarray(coefficients, np.float32),
                                           np.ascontiguousarray(protos, np.float32), mask_boxes.astype(np.int64),
                                           rows.lower, rows.upper, rows.weight, cols.lower, cols.upper, cols.weight,
                                           np.float32(threshold))
    shapes = np.maximum(mask_boxes[:, 3:1:-1] - mask_boxes[:, 1::-1], 0).tolist()  # (h, w) per box
    bounds = offsets.tolist()
    return ([mask[bounds[i]:bounds[i + 1]].reshape(shape) for i, shape in enumerate(shapes)],
            [values[bounds[i]:bounds[i + 1]].reshape(shape) for i, shape in enumerate(shapes)])


def map_window(sampler: MapSampler, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """(my0, my1, mx0, mx1): the map rows and columns the pixels of a non-empty image box x0, y0, x1, y1 blend."""
    x0, y0, x1, y1 = box
    rows, cols = sampler.rows, sampler.cols
    return int(rows.lower[y0]), int(rows.upper[y1 - 1]) + 1, int(cols.lower[x0]), int(cols.upper[x1 - 1]) + 1


def tight_box(sampler: MapSampler, box: tuple[int, int, int, int], hit_rows: np.ndarray,
              hit_cols: np.ndarray) -> tuple[int, int, int, int]:
    """``box`` cut to the pixels that have a tap on a positive map row and column: ``hit_rows`` and
    ``hit_cols`` are the indices, ascending, of the rows and columns of its ``map_window`` holding a
    positive value (a bilinear sample lies between its taps' values, so no other pixel can be positive)."""
    x0, y0, x1, y1 = box
    if not len(hit_rows) or not len(hit_cols):
        return x0, y0, x0, y0
    my0, _, mx0, _ = map_window(sampler, box)
    rows, cols = sampler.rows, sampler.cols
    ty0 = max(y0, int(np.searchsorted(rows.upper, hit_rows[0] + my0, "left")))
    ty1 = min(y1, int(np.searchsorted(rows.lower, hit_rows[-1] + my0, "right")))
    tx0 = max(x0, int(np.searchsorted(cols.upper, hit_cols[0] + mx0, "left")))
    tx1 = min(x1, int(np.searchsorted(cols.lower, hit_cols[-1] + mx0, "right")))
    return tx0, ty0, max(tx0, tx1), max(ty0, ty1)


def support_boxes(sampler: MapSampler, mask_boxes: np.ndarray, region_values: RegionFn,
                  threshold: float) -> np.ndarray:
    """``mask_boxes`` each cut to the pixels that can be positive (``tight_box``). The map is read over each
    box's window only (a small product at map resolution), and the masks sampled in the cut boxes are the
    same pixels."""
    out = mask_boxes.copy()
    for i, (x0, y0, x1, y1) in enumerate(mask_boxes.tolist()):
        if x1 <= x0 or y1 <= y0:
            continue
        positive = np.asarray(region_values(i, *map_window(sampler, (x0, y0, x1, y1)))) > threshold
        out[i] = tight_box(sampler, (x0, y0, x1, y1), np.flatnonzero(positive.any(axis=1)),
                           np.flatnonzero(positive.any(axis=0)))
    return out


def full_map_boxes(sampler: MapSampler, boxes: np.ndarray, image_shape: tuple[int, int],
                   positive_map: Callable[[int], np.ndarray]) -> np.ndarray:
    """For decoders whose reference does not crop to the box (DETR-seg, Mask R-CNN): each
    instance's covering box grown to hold every pixel that can be positive."""
    out = covering_boxes(boxes, image_shape)
    for i in range(len(out)):
        sx0, sy0, sx1, sy1 = sampler.support(positive_map(i))
        if sx1 > sx0 and sy1 > sy0:
            x0, y0, x1, y1 = out[i]
            if x1 <= x0 or y1 <= y0:  # an empty box contributes nothing to the union
                out[i] = (sx0, sy0, sx1, sy1)
            else:
                out[i] = (min(x0, sx0), min(y0, sy0), max(x1, sx1), max(y1, sy1))
    return out
