"""The association's cost matrix, every (detection, track) pair in one compiled call.

Why: per frame the tracker scores a dozen detections against a dozen tracks two or three times, and in
Python each candidate pair cost a numba dispatch for its mask IoU, a 3D distance and a dozen numpy calls on
4-element arrays, more than the arithmetic (issue 28: host work per frame). Here the two sides are tables
of numbers and flat mask buffers, and one kernel applies ``Tracker``'s rules (its module docstring) to
every pair, with the same float64 operations in the same order as the numpy code it replaces.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from robot_instseg.jit import kernel, warmer
from robot_instseg.tracking.masks import flat_iou

FORBIDDEN = 1e6

# detection table columns
D_AREA, D_CLASS, D_HAS_3D, D_X, D_Y, D_Z, D_ORIGIN_X, D_ORIGIN_Y, D_HEIGHT, D_WIDTH, D_OFFSET = range(11)
# track table columns: predicted box, then the rest
(T_PX0, T_PY0, T_PX1, T_PY1, T_AREA, T_CLASS, T_HAS_3D, T_X, T_Y, T_Z, T_GATE, T_ORIGIN_X, T_ORIGIN_Y, T_HEIGHT,
 T_WIDTH, T_OFFSET, T_LOST, T_EXTENT_W, T_EXTENT_H, T_LOST_S) = range(20)


def packed_masks(masks: Sequence[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """The masks' pixels as one flat uint8 buffer, and each one's offset into it."""
    offsets = [0]
    for mask in masks:
        offsets.append(offsets[-1] + mask.size)
    if not masks:
        return np.zeros(0, np.uint8), offsets
    return np.concatenate([m.ravel() for m in masks]).view(np.uint8), offsets


def detection_table(areas: list, classes: list, centroids: list, origins: list, masks: Sequence[np.ndarray],
                    offsets: list) -> np.ndarray:
    """One row per detection (the D_* columns); a detection without a centroid has D_HAS_3D 0."""
    table = np.zeros((len(centroids), 11))
    table[:, D_AREA], table[:, D_CLASS] = areas, classes
    with_3d = [i for i, centroid in enumerate(centroids) if centroid is not None]
    if with_3d:
        table[with_3d, D_HAS_3D] = 1.0
        table[with_3d, D_X:D_Z + 1] = [centroids[i] for i in with_3d]
    if masks:
        table[:, D_ORIGIN_X:D_ORIGIN_Y + 1] = origins
        table[:, D_HEIGHT:D_WIDTH + 1] = [m.shape for m in masks]
        table[:, D_OFFSET] = offsets[:-1]
    return table


def pair_costs(det_idx: list[int], det_boxes: np.ndarray, det_table: np.ndarray, det_pixels: np.ndarray,
               tracks: np.ndarray, track_pixels: np.ndarray, min_iou: float, class_change_cost: float,
               use_masks: bool, gate_3d: bool) -> np.ndarray:
    """(len(det_idx), len(tracks)) costs: 1 - IoU (+ class change, + 0.5 for a lost track matched by
    proximity alone), FORBIDDEN where the pair may not match. ``use_masks``: mask IoU where the track has a
    mask (else box IoU against the predicted box); ``gate_3d``: apply the 3D gate."""
    return _pair_costs(np.asarray(det_idx, np.int64), det_boxes, det_table, det_pixels, tracks, track_pixels,
                       float(min_iou), float(class_change_cost), bool(use_masks), bool(gate_3d))


@kernel
def _pair_costs(det_idx: np.ndarray, det_boxes: np.ndarray, det: np.ndarray, det_pixels: np.ndarray,
                trk: np.ndarray, trk_pixels: np.ndarray, min_iou: float, class_change_cost: float,
                use_masks: bool, gate_3d: bool) -> np.ndarray:
    cost = np.full((len(det_idx), trk.shape[0]), FORBIDDEN)
    bound = min(min_iou, 0.999)
    for a in range(len(det_idx)):
        i = det_idx[a]
        b0, b1, b2, b3 = det_boxes[i, 0], det_boxes[i, 1], det_boxes[i, 2], det_boxes[i, 3]
        det_area = det[i, D_AREA]
        for b in range(trk.shape[0]):
            p0, p1, p2, p3 = trk[b, T_PX0], trk[b, T_PY0], trk[b, T_PX1], trk[b, T_PY1]
            # the box intersection bounds the mask IoU: min(intersection, either area) / their union
            inter = max(min(b2, p2) - max(b0, p0), 0.0) * max(min(b3, p3) - max(b1, p1), 0.0)
            trk_area = trk[b, T_AREA]
            if det_area > 0 and trk_area > 0:
                shared = min(inter, min(det_area, trk_area))
                overlap = shared / max(det_area + trk_area - shared, 1.0)
            else:
                overlap = inter
            near = trk[b, T_LOST] > 0 and _near(b0, b1, b2, b3, trk[b])
            if not ((overlap >= bound and inter > 0) or near):
                continue
            if gate_3d and det[i, D_HAS_3D] > 0 and trk[b, T_HAS_3D] > 0:
                dx, dy, dz = det[i, D_X] - trk[b, T_X], det[i, D_Y] - trk[b, T_Y], det[i, D_Z] - trk[b, T_Z]
                if np.sqrt(dx * dx + dy * dy + dz * dz) > trk[b, T_GATE]:
                    continue
            if use_masks and trk[b, T_HEIGHT] * trk[b, T_WIDTH] > 0:
                iou = _mask_iou(det[i], det_pixels, trk[b], trk_pixels)
            else:
                union = (b2 - b0) * (b3 - b1) + (p2 - p0) * (p3 - p1) - inter
                iou = inter / union if union > 0 else 0.0
            if iou < min_iou and not near:
                continue
            penalty = class_change_cost if det[i, D_CLASS] != trk[b, T_CLASS] else 0.0
            cost[a, b] = 1.0 - iou + penalty + (0.5 if iou < min_iou else 0.0)
    return cost


@kernel
def _near(b0: float, b1: float, b2: float, b3: float, t: np.ndarray) -> bool:
    """A returning object: the detection's centre within the lost track's predicted box at the size its object
    had when last seen whole, grown by that size (more the longer it was lost), of a similar area."""
    middle_x, middle_y = (t[T_PX0] + t[T_PX1]) / 2, (t[T_PY0] + t[T_PY1]) / 2
    size_x = max(max(t[T_PX1] - t[T_PX0], t[T_EXTENT_W]), 1.0)
    size_y = max(max(t[T_PY1] - t[T_PY0], t[T_EXTENT_H]), 1.0)
    scale = min(max(0.5 + t[T_LOST_S], 0.0), 1.5)
    grow_x, grow_y = size_x * scale, size_y * scale
    centre_x, centre_y = (b0 + b2) / 2, (b1 + b3) / 2
    inside = (centre_x >= middle_x - size_x / 2 - grow_x and centre_y >= middle_y - size_y / 2 - grow_y
              and centre_x <= middle_x + size_x / 2 + grow_x and centre_y <= middle_y + size_y / 2 + grow_y)
    ratio = max(b2 - b0, 1.0) * max(b3 - b1, 1.0) / (size_x * size_y)
    return inside and ratio >= 0.4 and ratio <= 2.5


@kernel
def _mask_iou(d: np.ndarray, det_pixels: np.ndarray, t: np.ndarray, trk_pixels: np.ndarray) -> float:
    """IoU of the detection's mask and the track's (its origin already moved by the predicted shift)."""
    return flat_iou(det_pixels, int(d[D_OFFSET]), int(d[D_ORIGIN_X]), int(d[D_ORIGIN_Y]), int(d[D_HEIGHT]),
                    int(d[D_WIDTH]), int(d[D_AREA]), trk_pixels, int(t[T_OFFSET]), int(t[T_ORIGIN_X]),
                    int(t[T_ORIGIN_Y]), int(t[T_HEIGHT]), int(t[T_WIDTH]), int(t[T_AREA]))


def track_row(predicted: list, last: list, area: int, class_id: int, centroid: Any, gate: float,
              origin: tuple, shape: tuple, offset: int, lost: bool, extent: list, lost_s: float) -> list:
    """One track's row of the table ``pair_costs`` reads (the T_* columns); ``origin``: its mask's top-left
    pixel before the predicted shift (the move of the box's centre from ``last`` to ``predicted``), which is
    added here as the tracker rounds it."""
    shift_x = round((predicted[0] + predicted[2] - last[0] - last[2]) / 2)  # half to even, as np.rint
    shift_y = round((predicted[1] + predicted[3] - last[1] - last[3]) / 2)
    x, y, z = (0.0, 0.0, 0.0) if centroid is None else centroid
    return [*predicted, area, class_id, centroid is not None, x, y, z, gate, origin[0] + shift_x,
            origin[1] + shift_y, shape[0], shape[1], offset, lost, extent[0], extent[1], lost_s]


@warmer
def _warm() -> None:
    mask = np.ones((2, 2), bool)
    pixels, offsets = packed_masks([mask])
    det = detection_table([4], [0], [np.zeros(3)], [[0, 0]], [mask], offsets)
    track = np.array([track_row([0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0], 4, 0, [0.0, 0.0, 0.0], 1.0, (0, 0),
                                (2, 2), 0, True, [2.0, 2.0], 0.1)])
    pair_costs([0], np.array([[0.0, 0.0, 2.0, 2.0]]), det, pixels, track, pixels, 0.2, 0.3, True, True)
