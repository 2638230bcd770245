"""Mask QA: flags for masks an annotator should look at again.

  tiny        fewer than 50 pixels
  fragmented  more than 10 connected components (8-connected)
  ragged      perimeter^2 / area above 200 (a disc is 4*pi = 12.6; long thin or frayed shapes score high)
  temporal    (clips) a tracked object whose mask IoU with its previous kept frame falls below 0.5
              while its box barely moved (box IoU 0.8 or more): the mask, not the object, jumped
"""

from __future__ import annotations

import cv2
import numpy as np

MIN_AREA = 50
MAX_COMPONENTS = 10
MAX_PERIMETER2_PER_AREA = 200.0
FLAGS = ("tiny", "fragmented", "ragged")
ALL_FLAGS = (*FLAGS, "temporal")
MIN_TEMPORAL_MASK_IOU = 0.5
MIN_STILL_BOX_IOU = 0.8


def mask_flags(mask: np.ndarray) -> list[str]:
    """The QA flags of one HxW bool mask (empty list = looks fine)."""
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    area = int(m.sum())
    flags = []
    if area < MIN_AREA:
        flags.append("tiny")
    if area == 0:
        return flags
    count, _ = cv2.connectedComponents(m, connectivity=8)
    if count - 1 > MAX_COMPONENTS:
        flags.append("fragmented")
    contours, _ = cv2.findContours(m, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    if perimeter * perimeter / area > MAX_PERIMETER2_PER_AREA:
        flags.append("ragged")
    return flags


def qa_summary(entries: list[dict], decode) -> dict:
    """Counts per flag and the first offending annotation ids, over COCO entries with RLE masks."""
    counts = {flag: 0 for flag in FLAGS}
    examples: dict[str, list] = {flag: [] for flag in FLAGS}
    for index, entry in enumerate(entries):
        for flag in mask_flags(decode(entry)):
            counts[flag] += 1
            if len(examples[flag]) < 10:
                examples[flag].append({"id": entry.get("id", index), "image_id": entry["image_id"]})
    return {"checked": len(entries), "counts": counts, "examples": examples}


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """IoU of two x0, y0, x1, y1 boxes."""
    iw, ih = max(0, min(a[2], b[2]) - max(a[0], b[0])), max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two bool masks of one size."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


class TemporalCheck:
    """The temporal flag over one clip: remembers each track's mask on its last kept frame."""

    def __init__(self) -> None:
        self.last: dict[int, np.ndarray] = {}

    def update(self, tracked: list[tuple[int, np.ndarray]]) -> set[int]:
        """Feed one kept frame's (track id, mask) pairs (0 and below: untracked, as InstanceArray's
        track_id 0 means); returns the ids whose mask jumped while the box stayed."""
        jumped = set()
        for track_id, mask in tracked:
            if track_id <= 0 or not mask.any():
                continue
            before = self.last.get(track_id)
            if before is not None and before.shape == mask.shape and \
                    box_iou(_box(before), _box(mask)) >= MIN_STILL_BOX_IOU and \
                    mask_iou(before, mask) < MIN_TEMPORAL_MASK_IOU:
                jumped.add(track_id)
            self.last[track_id] = mask
        return jumped
