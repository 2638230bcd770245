"""Our fast mask decode against the frameworks' reference decode, and what each scores.

For every frame the model runs once; the same selected instances get their masks both ways
(``engine.reference_decode``). Reported: per-instance IoU of fast vs reference masks, and,
with COCO ground truth, segm AP of the reference masks, our raw masks and our visible masks
(overlaps owned by mask evidence, as the node publishes them).
"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np

from robot_instseg.engine.reference_decode import ParityReport, decode_both, parity_ious
from robot_instseg.engine.types import Detections

MASK_KINDS = ("reference", "raw", "visible")


def reference_detections(fast: Detections, reference: np.ndarray) -> Detections:
    """``fast``'s instances with the reference's full-frame masks."""
    h, w = fast.image_shape
    out = fast[np.arange(len(fast))]
    out.mask_boxes = np.tile(np.array([[0, 0, w, h]], np.int32), (len(fast), 1))
    out.masks = [m for m in reference]
    out.mask_logits = []
    return out


def compare_decodes(segmenter, frames: Iterable[tuple[str, np.ndarray, Optional[int]]], gt=None) -> dict:
    """``frames``: (name, RGB image, COCO image id or None). Returns the parity summary and,
    when ``gt`` (a pycocotools COCO) is given, segm AP / AP50 per mask kind."""
    from robot_instseg.dataset.evaluate import category_map, coco_segm_metrics, results_for

    report = ParityReport()
    by_kind: dict[str, dict[int, Detections]] = {kind: {} for kind in MASK_KINDS}
    for name, image, image_id in frames:
        fast, reference = decode_both(segmenter, image)
        report.add(parity_ious(fast, reference), name)
        if gt is not None and image_id is not None:
            by_kind["reference"][image_id] = reference_detections(fast, reference)
            by_kind["raw"][image_id] = fast
            by_kind["visible"][image_id] = fast.visible_masks()
    summary = {"parity": report.summary()}
    if gt is not None:
        categories = category_map(gt, segmenter.class_names)
        for kind, detections in by_kind.items():
            metrics = coco_segm_metrics(gt, results_for(detections, categories), detections.keys())
            summary[kind] = {"AP": round(metrics["AP"], 4), "AP50": round(metrics["AP50"], 4),
                             "AP75": round(metrics["AP75"], 4)}
    return summary
