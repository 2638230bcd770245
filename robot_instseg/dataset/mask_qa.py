"""Mask QA: flags for masks an annotator should look at again.

  tiny        fewer than 50 pixels
  fragmented  more than 10 connected components (8-connected)
  ragged      perimeter^2 / area above 200 (a disc is 4*pi = 12.6; long thin or frayed shapes score high)
"""

from __future__ import annotations

import cv2
import numpy as np

MIN_AREA = 50
MAX_COMPONENTS = 10
MAX_PERIMETER2_PER_AREA = 200.0
FLAGS = ("tiny", "fragmented", "ragged")


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
