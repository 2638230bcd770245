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

from robot_instseg.dataset.evaluate import mask_iou
from robot_instseg.tracking.masks import box_iou

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


def _box(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)


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
                    box_iou(_box(before), _box(mask))[0, 0] >= MIN_STILL_BOX_IOU and \
                    mask_iou(before, mask) < MIN_TEMPORAL_MASK_IOU:
                jumped.add(track_id)
            self.last[track_id] = mask
        return jumped
