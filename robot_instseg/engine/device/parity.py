"""Host pipeline vs device pipeline on the same frames: the check the tests run on CPU torch and
``scripts/compare_pipelines.py`` runs on a GPU (where float sums may round differently)."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from robot_instseg.engine.frame_pipeline import segment_frame
from robot_instseg.engine.segmenter import Segmenter


def compare_pipelines(host: Segmenter, device: Segmenter, images: Iterable[tuple[np.ndarray, str]]) -> dict:
    """Per frame: whether boxes, scores, classes, mask boxes, alternatives and whole-mask boxes (a model with
    the amodal head) are identical; per instance: raw, visible and whole mask IoU; per frame: label-image
    agreement. Returns a summary."""
    ious: list[float] = []
    agreement: list[float] = []
    mismatched: list[str] = []
    instances = whole = 0
    for k, (image, order) in enumerate(images):
        a, b = segment_frame(host, image, order), segment_frame(device, image, order)
        ra, rb = a.result.detections, b.result.detections
        same = (ra.boxes.shape == rb.boxes.shape and np.array_equal(ra.boxes, rb.boxes)
                and np.array_equal(ra.scores, rb.scores) and np.array_equal(ra.class_ids, rb.class_ids)
                and np.array_equal(ra.mask_boxes, rb.mask_boxes) and ra.class_names == rb.class_names
                and np.array_equal(a.visible.alternative_of, b.visible.alternative_of)
                and ra.has_amodal == rb.has_amodal and np.array_equal(ra.amodal_boxes, rb.amodal_boxes)
                and len(ra.amodal_reach) == len(rb.amodal_reach))
        if not same:
            mismatched.append(f"frame {k} ({image.shape[1]}x{image.shape[0]} {order}): {len(ra)} vs {len(rb)} "
                              "instances, boxes/scores/classes differ")
            continue
        pairs = [pair for kind in ("raw", "visible") for pair in zip(a.detections(kind).masks, b.detections(kind).masks)]
        wholes = list(zip(ra.amodal_masks, rb.amodal_masks)) + list(zip(ra.amodal_reach, rb.amodal_reach))
        for m1, m2 in pairs + wholes:  # whole masks (and reaches): the amodal head's
            union = np.count_nonzero(m1 | m2)
            ious.append(np.count_nonzero(m1 & m2) / union if union else 1.0)
        agreement.append(float((a.labels == b.labels).mean()))
        instances += len(ra)
        whole += len(ra.amodal_masks)
    return {"frames": len(agreement) + len(mismatched), "instances": instances, "whole_masks": whole,
            "mismatched_frames": mismatched,
            "min_iou": float(min(ious)) if ious else 1.0, "median_iou": float(np.median(ious)) if ious else 1.0,
            "min_label_agreement": min(agreement) if agreement else 1.0}
