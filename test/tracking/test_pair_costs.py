"""The compiled cost matrix equals the association's rules written pair by pair in Python (the form the tracker
had before it was compiled): mask IoU of crops against shifted track masks, the box bound, proximity for lost
tracks, the 3D gate, class changes, and box IoU where a track has no mask."""

from __future__ import annotations

import math

import numpy as np

from robot_instseg.tracking.masks import box_intersection, box_iou, crop_iou
from robot_instseg.tracking.pair_costs import (
    FORBIDDEN,
    detection_table,
    packed_masks,
    pair_costs,
    track_row,
)

MIN_IOU, CLASS_COST = 0.2, 0.3


def _blob(rng: np.random.Generator) -> np.ndarray:
    """A random ellipse-ish crop with a few holes."""
    h, w = rng.integers(8, 60, size=2)
    yy, xx = np.mgrid[0:h, 0:w]
    mask = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2 <= 1.0
    mask &= rng.random((h, w)) > 0.05
    return mask


def _scene(rng: np.random.Generator, n: int) -> dict:
    masks = [_blob(rng) for _ in range(n)]
    origins = [[int(x), int(y)] for x, y in rng.integers(0, 120, size=(n, 2))]
    boxes = np.array([[x, y, x + m.shape[1], y + m.shape[0]] for (x, y), m in zip(origins, masks)], np.float64)
    boxes += rng.normal(0, 1.5, boxes.shape)
    centroids = [None if rng.random() < 0.2 else rng.normal(0, 0.15, 3) for _ in range(n)]
    return dict(masks=masks, origins=origins, boxes=boxes, classes=rng.integers(0, 3, n).tolist(),
                areas=[int(m.sum()) for m in masks], centroids=centroids)


def _reference(det: dict, det_idx: list[int], trk: dict, use_masks: bool, gate_3d: bool) -> np.ndarray:
    """The rules pair by pair, with the tracker's former numpy and Python calls."""
    predicted, last = np.array(trk["predicted"]), np.array(trk["last"])
    boxes = det["boxes"][det_idx]
    inter = box_intersection(boxes, predicted)
    det_area = np.array([det["areas"][i] for i in det_idx], np.float64)[:, None]
    trk_area = np.array(trk["areas"], np.float64)[None, :]
    shared = np.minimum(inter, np.minimum(det_area, trk_area))
    overlap = np.where((det_area > 0) & (trk_area > 0), shared / np.maximum(det_area + trk_area - shared, 1.0), inter)
    near = np.zeros_like(overlap, bool)
    lost = [b for b, flag in enumerate(trk["lost"]) if flag]
    if lost:
        p = predicted[lost]
        middle = (p[:, :2] + p[:, 2:]) / 2
        size = np.maximum(np.maximum(p[:, 2:] - p[:, :2], np.array(trk["extents"])[lost]), 1.0)
        p = np.concatenate([middle - size / 2, middle + size / 2], axis=1)
        grow = size * np.minimum(np.maximum(0.5 + np.array(trk["lost_s"])[lost], 0.0), 1.5)[:, None]
        centre = (boxes[:, None, :2] + boxes[:, None, 2:]) / 2
        inside = np.all((centre >= (p[:, :2] - grow)[None]) & (centre <= (p[:, 2:] + grow)[None]), axis=2)
        ratio = np.prod(np.maximum(boxes[:, 2:] - boxes[:, :2], 1.0), axis=1)[:, None] / np.prod(size, axis=1)[None]
        near[:, lost] = inside & (ratio >= 0.4) & (ratio <= 2.5)
    shifts = np.rint((predicted[:, :2] + predicted[:, 2:] - last[:, :2] - last[:, 2:]) / 2).astype(int).tolist()
    cost = np.full(overlap.shape, FORBIDDEN)
    for a, b in zip(*np.nonzero((overlap >= min(MIN_IOU, 0.999)) & (inter > 0) | near)):
        i = det_idx[a]
        c, t = det["centroids"][i], trk["centroids"][b]
        if gate_3d and c is not None and t is not None and math.dist(c, t) > trk["gates"][b]:
            continue
        if use_masks and trk["masks"][b].size:
            (x0, y0), (dx, dy) = det["origins"][i], shifts[b]
            iou = crop_iou(det["masks"][i], x0, y0, trk["masks"][b], trk["origins"][b][0] + dx,
                           trk["origins"][b][1] + dy, det["areas"][i], trk["areas"][b])
        else:
            iou = float(box_iou(boxes[a:a + 1], predicted[b:b + 1])[0, 0])
        if iou < MIN_IOU and not near[a, b]:
            continue
        penalty = CLASS_COST if det["classes"][i] != trk["classes"][b] else 0.0
        cost[a, b] = 1.0 - iou + penalty + (0.5 if iou < MIN_IOU else 0.0)
    return cost


def _tracks(rng: np.random.Generator, det: dict, m: int, with_masks: bool) -> dict:
    """Tracks near the detections: their masks, boxes moved a little, some lost, some without a mask."""
    source = rng.integers(0, len(det["masks"]), m)
    masks = [det["masks"][s] if with_masks and rng.random() > 0.1 else np.zeros((0, 0), bool) for s in source]
    last = [(det["boxes"][s] + rng.normal(0, 3, 4)).tolist() for s in source]
    step = rng.normal(0, 4, (m, 2))
    predicted = [[x0 + dx, y0 + dy, x1 + dx, y1 + dy] for (x0, y0, x1, y1), (dx, dy) in zip(last, step)]
    return dict(masks=masks, last=last, predicted=predicted,
                origins=[(int(det["origins"][s][0] + rng.integers(-3, 4)), int(det["origins"][s][1])) for s in source],
                areas=[int(mk.sum()) for mk in masks], classes=rng.integers(0, 3, m).tolist(),
                centroids=[None if rng.random() < 0.2 else rng.normal(0, 0.15, 3).tolist() for _ in range(m)],
                gates=rng.uniform(0.05, 0.3, m).tolist(), lost=(rng.random(m) < 0.4).tolist(),
                extents=rng.uniform(5, 70, (m, 2)).tolist(), lost_s=rng.uniform(0, 2, m).tolist())


def test_pair_costs_equal_the_rules_pair_by_pair() -> None:
    rng = np.random.default_rng(7)
    compared = matched = 0
    for trial in range(60):
        det = _scene(rng, int(rng.integers(1, 14)))
        trk = _tracks(rng, det, int(rng.integers(1, 14)), with_masks=trial % 5 != 0)
        det_idx = sorted(rng.choice(len(det["masks"]), int(rng.integers(1, len(det["masks"]) + 1)), replace=False)
                         .tolist())
        use_masks, gate_3d = trial % 7 != 0, trial % 3 != 0
        pixels, offsets = packed_masks(det["masks"])
        table = detection_table(det["areas"], det["classes"], det["centroids"], det["origins"], det["masks"], offsets)
        trk_pixels, trk_offsets = packed_masks(trk["masks"])
        rows = np.array([track_row(trk["predicted"][b], trk["last"][b], trk["areas"][b], trk["classes"][b],
                                   trk["centroids"][b], trk["gates"][b], trk["origins"][b], trk["masks"][b].shape,
                                   trk_offsets[b], trk["lost"][b], trk["extents"][b], trk["lost_s"][b])
                         for b in range(len(trk["masks"]))])
        got = pair_costs(det_idx, det["boxes"], table, pixels, rows, trk_pixels, MIN_IOU, CLASS_COST, use_masks,
                         gate_3d)
        want = _reference(det, det_idx, trk, use_masks, gate_3d)
        np.testing.assert_array_equal(got, want)
        compared += got.size
        matched += int((want < FORBIDDEN).sum())
    assert matched > 100 and matched < compared  # the rules both allow and forbid pairs here


def test_crop_iou_counts_windows_at_any_offset() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        a, b = _blob(rng), _blob(rng)
        ax, ay, bx, by = (int(v) for v in rng.integers(0, 40, 4))
        frame_a = np.zeros((120, 120), bool)
        frame_b = np.zeros((120, 120), bool)
        frame_a[ay:ay + a.shape[0], ax:ax + a.shape[1]] = a
        frame_b[by:by + b.shape[0], bx:bx + b.shape[1]] = b
        union = (frame_a | frame_b).sum()
        assert crop_iou(a, ax, ay, b, bx, by) == ((frame_a & frame_b).sum() / union if union else 0.0)
