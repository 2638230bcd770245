"""Who owns a pixel that two instance masks claim: the instance with the most evidence there.

Evidence at a pixel = detection score x mask probability there (log score + log sigmoid
of the mask logit). A detection score alone says how sure the model is that an object
exists, not which object is in front; the mask logit alone lets a weak, spurious detection
with a sharp mask cut into a strong one. Their product is the chance that this pixel shows
this instance (the rule Mask2Former's panoptic fusion uses). Exact ties go to the higher
score, then the lower index. Measured on 150 unseen scenes (closing note of issue 11):
segm AP 0.787 for this rule, 0.766 for score order, 0.704 for the logit alone.

Two detections whose raw masks overlap with IoU >= ``SAME_OBJECT_IOU`` are two readings of
one object (another class, or a box split the class-aware NMS kept), not an occlusion. The
weaker is marked ``alternative_of`` the stronger; it takes part in no contest and keeps its
own full mask, so a per-class consumer (COCO AP, a class-hedging planner) still sees it.

Only pixels inside two or more boxes are compared; every other mask pixel is taken as is.
Without per-pixel logits (masks read back from a bag or built by hand) the score decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

SAME_OBJECT_IOU = 0.5


@dataclass
class Ownership:
    """The resolved frame: one owner per claimed pixel, and which instances are alternatives."""

    labels: np.ndarray  # HxW instance index + 1, 0 = background
    alternative_of: np.ndarray  # int64 per instance: index of the stronger reading, or -1


def box_overlaps(mask_boxes: np.ndarray) -> np.ndarray:
    """(N, N) bool: boxes i and j (x0, y0, x1, y1, exclusive) share at least one pixel; diagonal False."""
    b = mask_boxes.astype(np.int64).reshape(-1, 4)
    ix = np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0])
    iy = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1])
    shared = (ix > 0) & (iy > 0)
    np.fill_diagonal(shared, False)
    return shared


def mask_overlap_iou(box_a: np.ndarray, mask_a: np.ndarray, box_b: np.ndarray, mask_b: np.ndarray) -> float:
    """IoU of two box-cropped masks, computed on the boxes' intersection only."""
    x0, y0 = max(box_a[0], box_b[0]), max(box_a[1], box_b[1])
    x1, y1 = min(box_a[2], box_b[2]), min(box_a[3], box_b[3])
    if x1 <= x0 or y1 <= y0:
        return 0.0
    a = mask_a[y0 - box_a[1]:y1 - box_a[1], x0 - box_a[0]:x1 - box_a[0]]
    b = mask_b[y0 - box_b[1]:y1 - box_b[1], x0 - box_b[0]:x1 - box_b[0]]
    inter = np.count_nonzero(a & b)
    union = np.count_nonzero(mask_a) + np.count_nonzero(mask_b) - inter
    return inter / union if union else 0.0


def alternatives(mask_boxes: np.ndarray, masks: Sequence[np.ndarray], order: np.ndarray,
                 overlaps: np.ndarray, iou: float = SAME_OBJECT_IOU) -> np.ndarray:
    """Per instance, the stronger instance (earlier in ``order``) it is another reading of, or -1."""
    out = np.full(len(masks), -1, np.int64)
    primaries: list[int] = []
    for i in order.tolist():
        for j in primaries:
            if overlaps[i, j] and mask_overlap_iou(mask_boxes[i], masks[i], mask_boxes[j], masks[j]) >= iou:
                out[i] = j
                break
        else:
            primaries.append(i)
    return out


def resolve(image_shape: tuple[int, int], mask_boxes: np.ndarray, masks: Sequence[np.ndarray],
            scores: np.ndarray, logits: Optional[Sequence[np.ndarray]] = None,
            dtype: type = np.uint16) -> Ownership:
    """Give every claimed pixel to one instance (see the module docstring for the rule).

    ``masks[i]`` (bool) and ``logits[i]`` (float) cover ``mask_boxes[i]`` = (x0, y0, x1, y1).
    """
    n = len(masks)
    labels = np.zeros(image_shape, dtype)
    if n == 0:
        return Ownership(labels, np.full(len(scores), -1, np.int64))
    scores = np.asarray(scores, np.float32)
    order = np.argsort(-scores, kind="stable")  # best score first
    overlaps = box_overlaps(mask_boxes)
    alternative_of = alternatives(mask_boxes, masks, order, overlaps)
    primary = alternative_of < 0
    overlaps &= primary[:, None] & primary[None, :]
    contested = overlaps.any(axis=1)
    if logits is None or len(logits) != n:  # no evidence: paint worst first, the best score ends on top
        for i in order[::-1].tolist():
            if primary[i]:
                x0, y0, x1, y1 = (int(v) for v in mask_boxes[i])
                labels[y0:y1, x0:x1][masks[i]] = i + 1
        return Ownership(labels, alternative_of)
    coverage = np.zeros(image_shape, np.uint16)
    for i in np.flatnonzero(contested).tolist():
        x0, y0, x1, y1 = (int(v) for v in mask_boxes[i])
        coverage[y0:y1, x0:x1] += 1
    best = np.full(image_shape, -np.inf, np.float32) if contested.any() else None
    for i in order.tolist():
        if not primary[i]:
            continue
        x0, y0, x1, y1 = (int(v) for v in mask_boxes[i])
        mask = masks[i]
        if not contested[i]:
            labels[y0:y1, x0:x1][mask] = i + 1
            continue
        shared = mask & (coverage[y0:y1, x0:x1] > 1)
        labels[y0:y1, x0:x1][mask & ~shared] = i + 1  # inside no other box: nobody else claims it
        ys, xs = np.nonzero(shared)
        evidence = np.float32(np.log(max(float(scores[i]), 1e-12))) - np.logaddexp(0, -logits[i][ys, xs])
        ys, xs = ys + y0, xs + x0
        take = evidence > best[ys, xs]  # strict: on a tie the earlier (higher score) keeps it
        best[ys[take], xs[take]] = evidence[take]
        labels[ys[take], xs[take]] = i + 1
    return Ownership(labels, alternative_of)
