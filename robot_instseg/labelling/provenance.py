"""What a person did to each pre-annotation: compare one reviewed annotation with its prediction.

Regions keep their id when an annotator starts from a prediction (as Label Studio's editor
does), so a region with a predicted id is the predicted instance, accepted if mask and
class are unchanged, corrected otherwise. Regions with new ids are matched to the still
unmatched predictions of the same image by mask IoU (0.5 or more: corrected, redrawn);
the rest are added. Predictions nobody kept are deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from robot_instseg.dataset.evaluate import mask_iou

ACCEPTED, CORRECTED, ADDED, DELETED = "accepted", "corrected", "added", "deleted"
MIN_REDRAWN_IOU = 0.5


@dataclass
class Region:
    """One mask region of a prediction or an annotation."""

    region_id: str
    label: str
    mask: np.ndarray


@dataclass
class Outcome:
    """The fate of one instance: reviewed region (None if deleted) and its prediction (None if added)."""

    provenance: str
    reviewed: Optional[Region]
    predicted: Optional[Region]
    iou_to_prediction: Optional[float] = None

    @property
    def class_changed(self) -> bool:
        return self.reviewed is not None and self.predicted is not None and \
            self.reviewed.label != self.predicted.label


def compare(predicted: list[Region], reviewed: list[Region]) -> list[Outcome]:
    """One Outcome per reviewed region (accepted / corrected / added), then one per deleted prediction."""
    by_id = {p.region_id: p for p in predicted}
    used: set[str] = set()
    outcomes: list[Outcome] = []
    unmatched: list[Region] = []
    for r in reviewed:
        p = by_id.get(r.region_id)
        if p is None or p.region_id in used:
            unmatched.append(r)
            continue
        used.add(p.region_id)
        iou = mask_iou(p.mask, r.mask)
        same = r.label == p.label and bool(np.array_equal(p.mask, r.mask))
        outcomes.append(Outcome(ACCEPTED if same else CORRECTED, r, p, iou))
    for r in unmatched:
        best, best_iou = None, MIN_REDRAWN_IOU
        for p in predicted:
            if p.region_id not in used:
                iou = mask_iou(p.mask, r.mask)
                if iou >= best_iou:
                    best, best_iou = p, iou
        if best is None:
            outcomes.append(Outcome(ADDED, r, None))
        else:
            used.add(best.region_id)
            outcomes.append(Outcome(CORRECTED, r, best, best_iou))
    outcomes += [Outcome(DELETED, None, p) for p in predicted if p.region_id not in used]
    return outcomes
