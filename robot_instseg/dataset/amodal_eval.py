"""What lies behind, scored: amodal AP (COCOeval on the whole masks) and the accuracy of occlusion order.

Amodal AP is pycocotools' segm AP with both sides' ``amodal_segmentation`` standing in for their
masks (the KINS / COCOA protocol). Occlusion order is scored on the ground truth's covering pairs
(``synthetic.occlusion``) that overlap by at least ``MIN_PAIR_OVERLAP`` of the smaller whole object:
each ground-truth object is matched to the published instance whose visible mask overlaps it most (IoU
at least ``MATCH_IOU``, one instance per object, highest score first), and a pair is right when the
prediction says the same one lies on the other (``engine.occlusion``), wrong when it says the reverse or
nothing. Pairs with an unmatched object count as wrong in ``order_accuracy`` and are left out of
``order_accuracy_matched``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from robot_instseg.engine.occlusion import occlusion_order
from robot_instseg.engine.types import Detections
from robot_instseg.synthetic.occlusion import Occlusion

MIN_PAIR_OVERLAP = 0.05
MATCH_IOU = 0.5
PUBLISHED_SCORE = 0.25  # the node's default score threshold: occlusion order is read from what it publishes


@dataclass
class OrderCounts:
    """One way of ordering instances, scored on the ground truth's covering pairs (overlap at least
    ``min_overlap`` of the smaller whole object): right, reversed, and orders between matched instances
    whose objects do not overlap at all (spurious)."""

    min_overlap: float = MIN_PAIR_OVERLAP
    images: int = 0  # frames scored (none: this way of ordering was not available)
    pairs: int = 0
    matched_pairs: int = 0
    right: int = 0
    reversed: int = 0
    ordered: int = 0  # "j on i" claims between matched instances
    spurious: int = 0  # ... of objects that do not overlap

    def add(self, occluded_by: Sequence[Sequence[int]], match: Mapping[int, int], covering: Sequence[Occlusion],
            amodal_areas: Mapping[int, int]) -> None:
        """One frame: ``occluded_by`` per published instance; ``match`` ground-truth object -> instance index;
        ``covering`` every pair of the objects where one hides part of the other; ``amodal_areas`` per object."""
        self.images += 1
        objects = {i: j for j, i in match.items()}
        overlapping = {frozenset((o.occluded, o.occluder)) for o in covering}
        for lower, tops in enumerate(occluded_by):
            for upper in tops:
                if lower in objects and upper in objects:
                    self.ordered += 1
                    self.spurious += frozenset((objects[lower], objects[upper])) not in overlapping
        for o in covering:
            if o.pixels < self.min_overlap * min(amodal_areas[o.occluded], amodal_areas[o.occluder]):
                continue
            self.pairs += 1
            if o.occluded not in match or o.occluder not in match:
                continue
            lower, upper = match[o.occluded], match[o.occluder]
            self.matched_pairs += 1
            self.right += upper in occluded_by[lower] and lower not in occluded_by[upper]
            self.reversed += lower in occluded_by[upper]

    def summary(self) -> dict:
        return {"images": self.images, "pairs": self.pairs, "matched_pairs": self.matched_pairs, "right": self.right,
                "reversed": self.reversed, "ordered": self.ordered, "spurious": self.spurious,
                "order_accuracy": self.right / self.pairs if self.pairs else 0.0,
                "order_accuracy_matched": self.right / self.matched_pairs if self.matched_pairs else 0.0}


def amodal_ground_truth(gt):
    """A copy of a COCO ground truth whose masks, boxes and areas are the amodal ones; ValueError when an
    annotation has none."""
    from pycocotools.coco import COCO

    doc = copy.deepcopy(gt.dataset)
    for ann in doc["annotations"]:
        if "amodal_segmentation" not in ann:
            raise ValueError(f"annotation {ann.get('id')} has no amodal_segmentation: amodal ground truth needed "
                             "(scenes writes it)")
        ann["segmentation"], ann["bbox"], ann["area"] = ann["amodal_segmentation"], ann["amodal_bbox"], \
            ann["amodal_area"]
    whole = COCO()
    whole.dataset = doc
    whole.createIndex()
    return whole


def amodal_results(results: Sequence[dict]) -> list[dict]:
    """Results entries with their whole masks as the masks (entries without one are left out)."""
    return [{**r, "segmentation": r["amodal_segmentation"], "bbox": r["amodal_bbox"]} for r in results
            if "amodal_segmentation" in r]


def _matches(gt, image_id: int, detections: Detections) -> dict[int, int]:
    """Ground-truth annotation id -> index of the published instance it is matched to."""
    from pycocotools import mask as mask_utils

    from robot_instseg.dataset.evaluate import greedy_matches

    anns = gt.loadAnns(gt.getAnnIds(imgIds=[image_id], iscrowd=False))
    if not anns or not len(detections):
        return {}
    found = detections.to_rle()
    for rle in found:
        rle["counts"] = rle["counts"].encode()
    ious = mask_utils.iou(found, [gt.annToRLE(a) for a in anns], [0] * len(anns))  # (detections, annotations)
    return {anns[k]["id"]: d for d, k in greedy_matches(np.asarray(ious), detections.scores, MATCH_IOU)}


def order_accuracy(gt, detections: Mapping[int, Detections], min_overlap: float = MIN_PAIR_OVERLAP,
                   min_score: float = PUBLISHED_SCORE) -> dict:
    """Occlusion order of each image's published instances (score >= ``min_score``) on the ground truth's
    covering pairs (see the module docstring)."""
    counts = OrderCounts(min_overlap)
    for image_id, found in detections.items():
        published = found[np.flatnonzero(found.scores >= min_score)]
        if not published.has_amodal and len(published):
            raise ValueError("occlusion order needs a model with the amodal head")
        occluded_by = occlusion_order(published).occluded_by if len(published) else []
        anns = gt.loadAnns(gt.getAnnIds(imgIds=[int(image_id)], iscrowd=False))
        ids = {a["id"] for a in anns}
        covering = [Occlusion(a["id"], cover["id"], cover["pixels"]) for a in anns
                    for cover in a.get("occluded_by", []) if cover["id"] in ids]
        counts.add(occluded_by, _matches(gt, int(image_id), published), covering,
                   {a["id"]: a["amodal_area"] for a in anns})
    return {**counts.summary(), "min_overlap": min_overlap, "min_score": min_score}


def amodal_report(gt, results: Sequence[dict], detections: Mapping[int, Detections]) -> dict:
    """Amodal AP and occlusion order, as one dict (the visible AP to compare with is the caller's segm AP,
    computed once on the same results)."""
    from robot_instseg.dataset.evaluate import coco_segm_metrics

    whole = coco_segm_metrics(amodal_ground_truth(gt), amodal_results(results), detections.keys())
    return {"amodal_AP": whole["AP"], "amodal_AP50": whole["AP50"], "amodal_AP75": whole["AP75"],
            "occlusion": order_accuracy(gt, detections)}


def format_amodal(report: dict, visible_ap: float) -> str:
    """The amodal part of a report as text lines, beside the visible masks' AP."""
    order = report["occlusion"]
    return (f"amodal      AP {report['amodal_AP']:.4f}  AP50 {report['amodal_AP50']:.4f}  AP75 "
            f"{report['amodal_AP75']:.4f}   (visible AP {visible_ap:.4f})\n"
            f"occlusion order: {order['right']} of {order['pairs']} ground-truth pairs right "
            f"({order['order_accuracy']:.3f}); {order['matched_pairs']} pairs matched, {order['right']} right "
            f"({order['order_accuracy_matched']:.3f}), {order['reversed']} reversed; {order['spurious']} of "
            f"{order['ordered']} orders between objects that do not overlap")
