"""Shared post-processing: thresholds, class-aware NMS, and pasting per-instance masks.

Masks are produced only inside each kept instance's box, at original-image resolution: the
low-resolution mask map is sampled through one affine warp per instance (cv2.warpAffine,
bilinear), so the cost scales with box area, never with N full frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import cv2
import numpy as np

from robot_instseg.engine.preprocess import LetterboxTransform


@dataclass(frozen=True)
class PostprocessSettings:
    """Thresholds and limits applied after the model (all changeable at run time)."""

    score_threshold: float = 0.25
    iou_threshold: float = 0.45
    mask_threshold: float = 0.5  # probability; decoders of logit maps compare against its logit
    max_detections: int = 100
    class_ids: Optional[frozenset] = None  # None = every class
    max_candidates: int = 30000  # most boxes entering NMS, best first
    extra: dict = field(default_factory=dict)


def logit(p: float) -> float:
    p = min(max(p, 1e-7), 1 - 1e-7)
    return float(np.log(p / (1 - p)))


def class_allowed(class_ids: np.ndarray, allowed: Optional[frozenset]) -> np.ndarray:
    if allowed is None:
        return np.ones(class_ids.shape, bool)
    return np.isin(class_ids, np.fromiter(allowed, np.int64, len(allowed)))


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    out = np.empty_like(boxes)
    half = boxes[:, 2:4] / 2
    out[:, :2] = boxes[:, :2] - half
    out[:, 2:] = boxes[:, :2] + half
    return out


def top_candidates(scores: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the ``limit`` best scores, best first (argpartition: no full sort of N)."""
    if len(scores) > limit:
        idx = np.argpartition(-scores, limit - 1)[:limit]
    else:
        idx = np.arange(len(scores))
    return idx[np.argsort(-scores[idx], kind="stable")]


def batched_nms(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float,
                max_detections: int) -> np.ndarray:
    """Class-aware greedy NMS (OpenCV's NMSBoxesBatched); kept indices, best score first.

    Greedy NMS decides each box from higher-scored boxes only, so NMS over the best-scored
    prefix keeps exactly what full NMS keeps from that prefix. When a prefix already yields
    ``max_detections`` boxes the rest cannot change the answer; the prefix grows only when it
    does not. Same result as one call over all N, at a fraction of the cost for large N.
    """
    if len(boxes) == 0:
        return np.zeros((0,), np.int64)
    order = np.argsort(-scores, kind="stable")
    xywh = boxes[order].astype(np.float64)
    xywh[:, 2:] -= xywh[:, :2]
    ordered_scores = scores[order].astype(np.float32)
    ordered_classes = class_ids[order].astype(np.int32)
    prefix = max(4 * max_detections, 256)
    while True:
        n = min(prefix, len(order))
        # No top_k: OpenCV's top_k caps the candidates considered, not the boxes kept.
        keep = cv2.dnn.NMSBoxesBatched(xywh[:n], ordered_scores[:n], ordered_classes[:n], 0.0,
                                       float(iou_threshold))
        keep = np.sort(np.asarray(keep, np.int64).reshape(-1))  # prefix positions = score order
        if len(keep) >= max_detections or n == len(order):
            return order[keep[:max_detections]]
        prefix *= 4


def integer_boxes(boxes: np.ndarray, image_shape: tuple[int, int]) -> np.ndarray:
    """Float xyxy boxes -> int32 boxes covering them (floor / ceil), clipped to the image."""
    h, w = image_shape
    out = np.empty((len(boxes), 4), np.int32)
    out[:, 0] = np.clip(np.floor(boxes[:, 0]), 0, w)
    out[:, 1] = np.clip(np.floor(boxes[:, 1]), 0, h)
    out[:, 2] = np.clip(np.ceil(boxes[:, 2]), 0, w)
    out[:, 3] = np.clip(np.ceil(boxes[:, 3]), 0, h)
    out[:, 2] = np.maximum(out[:, 2], out[:, 0])
    out[:, 3] = np.maximum(out[:, 3], out[:, 1])
    return out


# region_values(i, y0, y1, x0, x1) -> float32 map of instance i over map rows y0:y1, cols x0:x1
RegionFn = Callable[[int, int, int, int, int], np.ndarray]


def paste_masks(boxes: np.ndarray, transform: LetterboxTransform, map_shape: tuple[int, int],
                region_values: RegionFn, threshold: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sample each instance's mask map inside its image box; pixels above ``threshold`` are in.

    ``map_shape`` (h, w) is the mask map's size; it spans the model input, so one map pixel
    covers input_size / map_size input pixels. Returns (int boxes, bool crops).
    """
    mask_boxes = integer_boxes(boxes, transform.image_shape)
    map_h, map_w = map_shape
    in_h, in_w = transform.input_shape
    # dst pixel u (crop-local) -> map coordinate (pixel centres): a * u + b, per axis
    ax, ay = transform.scale_x * map_w / in_w, transform.scale_y * map_h / in_h
    x0, y0, x1, y1 = (mask_boxes[:, k].astype(np.float64) for k in range(4))
    bx = ((x0 + 0.5) * transform.scale_x + transform.pad_x) * map_w / in_w - 0.5
    by = ((y0 + 0.5) * transform.scale_y + transform.pad_y) * map_h / in_h - 0.5
    # The map window each instance needs (one pixel of margin for bilinear), all at once.
    mx0 = np.clip(np.floor(bx) - 1, 0, map_w - 1).astype(np.int64)
    my0 = np.clip(np.floor(by) - 1, 0, map_h - 1).astype(np.int64)
    mx1 = np.clip(np.ceil(bx + ax * (x1 - x0 - 1)) + 2, mx0 + 1, map_w).astype(np.int64)
    my1 = np.clip(np.ceil(by + ay * (y1 - y0 - 1)) + 2, my0 + 1, map_h).astype(np.int64)
    crops: list[np.ndarray] = []
    rows = zip(mask_boxes.tolist(), bx.tolist(), by.tolist(), mx0.tolist(), my0.tolist(), mx1.tolist(),
               my1.tolist())
    for i, ((cx0, cy0, cx1, cy1), bxi, byi, wx0, wy0, wx1, wy1) in enumerate(rows):
        size = (cx1 - cx0, cy1 - cy0)
        if size[0] <= 0 or size[1] <= 0:
            crops.append(np.zeros((size[1], size[0]), bool))
            continue
        region = np.ascontiguousarray(region_values(i, wy0, wy1, wx0, wx1), np.float32)
        matrix = np.array([[ax, 0.0, bxi - wx0], [0.0, ay, byi - wy0]], np.float64)
        sampled = cv2.warpAffine(region, matrix, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_REPLICATE)
        crops.append(sampled > threshold)
    return mask_boxes, crops
