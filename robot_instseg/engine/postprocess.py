"""Shared post-processing: thresholds, score activations, box conversion and class-aware NMS.

Mask sampling lives in ``mask_sampling``; overlap ownership in ``ownership``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import cv2
import numpy as np

from robot_instseg.jit import kernel, warmer


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
    """Inverse sigmoid of a probability, clamped away from 0 and 1."""
    p = min(max(p, 1e-7), 1 - 1e-7)
    return float(np.log(p / (1 - p)))


def class_allowed(class_ids: np.ndarray, allowed: Optional[frozenset]) -> np.ndarray:
    """Boolean mask of the detections whose class is in ``allowed`` (None = every class)."""
    if allowed is None:
        return np.ones(class_ids.shape, bool)
    return np.isin(class_ids, np.fromiter(allowed, np.int64, len(allowed)))


def candidates_above(class_scores: np.ndarray, threshold: float,
                     allowed: Optional[frozenset]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per candidate (column of the (classes, N) ``class_scores``) its best class (the first on a tie):
    (candidates whose best score is at least ``threshold`` and whose class is ``allowed``, their scores,
    their class ids), in one pass over the scores."""
    lookup = np.ones(class_scores.shape[0], np.bool_)
    if allowed is not None:
        lookup[:] = False
        lookup[[c for c in allowed if 0 <= c < len(lookup)]] = True
    return _candidates_above(class_scores, np.float32(threshold), lookup)


@kernel
def _candidates_above(class_scores: np.ndarray, threshold: np.float32,
                      allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    classes, n = class_scores.shape
    best = np.full(n, -np.inf, np.float32)
    best_class = np.zeros(n, np.int64)
    for c in range(classes):  # row by row: the scores are read in memory order
        for a in range(n):
            if class_scores[c, a] > best[a]:
                best[a], best_class[a] = class_scores[c, a], c
    keep = np.zeros(n, np.int64)
    count = 0
    for a in range(n):
        if best[a] >= threshold and allowed[best_class[a]]:
            keep[count] = a
            count += 1
    keep = keep[:count]
    return keep, best[keep], best_class[keep]


@warmer
def _warm() -> None:
    candidates_above(np.zeros((2, 4), np.float32), 0.5, None)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """Centre-size boxes to corner boxes."""
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
        kept = cv2.dnn.NMSBoxesBatched(xywh[:n], ordered_scores[:n], ordered_classes[:n],  # type: ignore[arg-type]
                                       0.0, float(iou_threshold))
        keep = np.sort(np.asarray(kept, np.int64).reshape(-1))  # prefix positions = score order
        if len(keep) >= max_detections or n == len(order):
            return order[keep[:max_detections]]
        prefix *= 4
