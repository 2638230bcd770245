"""Mask quality against COCO ground truth: COCOeval segm AP (pycocotools) and boundary F1.

Boundary F1 is per ground-truth instance: predictions are matched greedily by score to the
unmatched instance of the same class with the highest mask IoU (>= 0.5); a matched pair
scores the F-measure of boundary precision and recall within ``tolerance`` pixels (as in
the DAVIS benchmark); an instance with no match scores 0. The mean over instances is
reported, so misses count against it.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

import cv2
import numpy as np

from robot_instseg.engine.types import Detections

COCO_STAT_NAMES = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
                   "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large")


def load_coco_quiet(coco: "str | Path | dict"):
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        if isinstance(coco, dict):
            gt = COCO()
            gt.dataset = coco
            gt.createIndex()
            return gt
        return COCO(str(coco))


def coco_segm_metrics(gt, results: Sequence[dict], image_ids: Optional[Iterable[int]] = None,
                      iou_type: str = "segm") -> dict[str, float]:
    """COCOeval summary as a dict; all zeros when there are no results."""
    from pycocotools.cocoeval import COCOeval

    if not results:
        return {name: 0.0 for name in COCO_STAT_NAMES}
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(list(results))
        evaluator = COCOeval(gt, dt, iou_type)
        if image_ids is not None:
            evaluator.params.imgIds = sorted(int(i) for i in image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: float(max(v, 0.0)) for name, v in zip(COCO_STAT_NAMES, evaluator.stats)}


def boundary(mask: np.ndarray) -> np.ndarray:
    """One-pixel inner boundary of a bool mask."""
    m = mask.astype(np.uint8)
    eroded = cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return (m - eroded).astype(bool)


def boundary_f_measure(pred: np.ndarray, truth: np.ndarray, tolerance: float) -> float:
    """F-measure of boundary precision and recall, each within ``tolerance`` pixels."""
    bp, bt = boundary(pred), boundary(truth)
    if not bp.any() and not bt.any():
        return 1.0
    if not bp.any() or not bt.any():
        return 0.0
    dist_to_truth = cv2.distanceTransform((~bt).astype(np.uint8), cv2.DIST_L2, 3)
    dist_to_pred = cv2.distanceTransform((~bp).astype(np.uint8), cv2.DIST_L2, 3)
    precision = float((dist_to_truth[bp] <= tolerance).mean())
    recall = float((dist_to_pred[bt] <= tolerance).mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def davis_tolerance(shape: tuple[int, int], fraction: float = 0.008) -> float:
    """DAVIS' default: 0.8 % of the image diagonal, rounded up (7 px at 640x480)."""
    return float(np.ceil(fraction * np.hypot(*shape)))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def boundary_f1(gt, detections: Mapping[int, Detections], category_of_class: Mapping[int, int],
                tolerances: Sequence[float] = (2.0,), min_score: float = 0.0) -> dict[float, float]:
    """Mean per-instance boundary F over every ground-truth instance of ``detections``' images."""
    totals = {t: 0.0 for t in tolerances}
    count = 0
    for image_id, dets in detections.items():
        anns = [a for a in gt.loadAnns(gt.getAnnIds(imgIds=int(image_id), iscrowd=False))]
        count += len(anns)
        if not anns or not len(dets):
            continue
        truths = [gt.annToMask(a).astype(bool) for a in anns]
        cats = [int(a["category_id"]) for a in anns]
        gt_boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                             for a in anns], np.float32)
        taken = [False] * len(anns)
        for i in np.argsort(-dets.scores, kind="stable"):
            if dets.scores[i] < min_score:
                break
            category = category_of_class.get(int(dets.class_ids[i]))
            pred = dets.full_mask(int(i))
            best, best_iou = -1, 0.5
            x0, y0, x1, y1 = dets.mask_boxes[i]
            for j, (truth, cat) in enumerate(zip(truths, cats)):
                gx0, gy0, gx1, gy1 = gt_boxes[j]
                if taken[j] or cat != category or gx0 > x1 or gx1 < x0 or gy0 > y1 or gy1 < y0:
                    continue
                iou = mask_iou(pred, truth)
                if iou >= best_iou:
                    best, best_iou = j, iou
            if best >= 0:
                taken[best] = True
                for t in tolerances:
                    totals[t] += boundary_f_measure(pred, truths[best], t)
    return {t: (totals[t] / count if count else 0.0) for t in tolerances}


def results_for(detections: Mapping[int, Detections], category_of_class: Mapping[int, int]) -> list[dict]:
    """COCO results entries (RLE masks) for every image's detections."""
    from robot_instseg.dataset.coco_results import CocoIds, detections_to_results

    ids = CocoIds({}, dict(category_of_class))
    out: list[dict] = []
    for image_id, dets in detections.items():
        out.extend(detections_to_results(dets, int(image_id), ids))
    return out


def category_map(gt, class_names: Sequence[str]) -> dict[int, int]:
    """Model class id -> COCO category id, matched by name."""
    by_name = {c["name"]: int(c["id"]) for c in gt.loadCats(gt.getCatIds())}
    return {i: by_name[n] for i, n in enumerate(class_names) if n in by_name}


def evaluate_detections(gt, detections: Mapping[int, Detections], class_names: Sequence[str],
                        boundary_tolerances: Sequence[float] = (2.0,),
                        boundary_min_score: float = 0.25) -> dict[str, float]:
    """segm AP/AR (COCOeval) over all detections, and boundary F1 at each tolerance over the
    detections a node would publish (score >= ``boundary_min_score``), in one dict."""
    categories = category_map(gt, class_names)
    metrics = coco_segm_metrics(gt, results_for(detections, categories), detections.keys())
    for tol, value in boundary_f1(gt, detections, categories, boundary_tolerances,
                                  boundary_min_score).items():
        metrics[f"boundary_f1@{tol:g}px"] = value
    return metrics


def write_metrics(path: Path, metrics: dict) -> None:
    Path(path).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
