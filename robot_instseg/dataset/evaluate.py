"""Mask quality against COCO ground truth: COCOeval segm AP (pycocotools) and boundary F1.

Boundary F1 is per ground-truth instance: predictions are matched greedily by score to the
unmatched instance of the same class with the highest mask IoU (>= 0.5); a matched pair
scores the F-measure of boundary precision and recall within ``tolerance`` pixels (as in
the DAVIS benchmark); an instance with no match scores 0. The mean over instances is
reported, so misses count against it.
"""

from __future__ import annotations

import contextlib
import copy
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
    """A pycocotools COCO from a path or a dict, without its progress prints."""
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        if isinstance(coco, dict):
            gt = COCO()
            gt.dataset = coco
            gt.createIndex()
            return gt
        return COCO(str(coco))


def run_cocoeval(gt, results: Sequence[dict], image_ids: Optional[Iterable[int]] = None, iou_type: str = "segm"):
    """A summarized pycocotools COCOeval, or None when there are no results."""
    from pycocotools.cocoeval import COCOeval

    if not results:
        return None
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(copy.deepcopy(list(results)))  # loadRes writes area/bbox/id into the entries
        evaluator = COCOeval(gt, dt, iou_type)
        if image_ids is not None:
            evaluator.params.imgIds = sorted(int(i) for i in image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def coco_segm_metrics(gt, results: Sequence[dict], image_ids: Optional[Iterable[int]] = None,
                      iou_type: str = "segm") -> dict[str, float]:
    """COCOeval summary as a dict; all zeros when there are no results."""
    evaluator = run_cocoeval(gt, results, image_ids, iou_type)
    if evaluator is None:
        return {name: 0.0 for name in COCO_STAT_NAMES}
    return {name: float(max(v, 0.0)) for name, v in zip(COCO_STAT_NAMES, evaluator.stats)}


def per_class_ap(evaluator) -> dict[int, dict[str, Optional[float]]]:
    """category id -> AP and AP50 (area all, 100 detections) from an accumulated COCOeval;
    None for a category with no ground truth in the evaluated images."""
    out: dict[int, dict[str, Optional[float]]] = {}
    precision = evaluator.eval["precision"]  # [IoU thresholds, recall, category, area, max dets]
    for k, category in enumerate(evaluator.params.catIds):
        values = {}
        for key, p in (("AP", precision[:, :, k, 0, -1]), ("AP50", precision[0, :, k, 0, -1])):
            valid = p[p > -1]
            values[key] = float(valid.mean()) if valid.size else None
        out[int(category)] = values
    return out


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
    """IoU of two binary masks; two empty masks score 0."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def greedy_matches(ious: np.ndarray, scores: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """(detection, truth) pairs from a (detections, truths) IoU matrix: each detection, highest score first,
    takes the unmatched truth it overlaps most (the later one on a tie) when that IoU is at least ``min_iou``."""
    pairs: list[tuple[int, int]] = []
    taken: set[int] = set()
    for d in np.argsort(-np.asarray(scores), kind="stable"):
        best, best_iou = -1, min_iou
        for j in range(ious.shape[1]):
            if j not in taken and ious[d, j] >= best_iou:
                best, best_iou = j, ious[d, j]
        if best >= 0:
            taken.add(best)
            pairs.append((int(d), best))
    return pairs


def decode_rle(gt, entry: dict) -> np.ndarray:
    """Bool HxW mask of a COCO annotation or result entry (RLE or polygons) on ``gt``'s image."""
    return gt.annToMask(entry).astype(bool)


def boundary_f1(gt, results: Sequence[dict], image_ids: Iterable[int], tolerances: Sequence[float] = (2.0,),
                min_score: float = 0.0) -> dict[float, float]:
    """Mean per-instance boundary F over every ground-truth instance of ``image_ids``."""
    totals = {t: 0.0 for t in tolerances}
    by_image: dict[int, list[dict]] = {}
    for entry in results:
        if entry.get("score", 1.0) >= min_score:
            by_image.setdefault(int(entry["image_id"]), []).append(entry)
    count = 0
    for image_id in image_ids:
        anns = gt.loadAnns(gt.getAnnIds(imgIds=int(image_id), iscrowd=False))
        count += len(anns)
        preds = sorted(by_image.get(int(image_id), []), key=lambda e: -e.get("score", 1.0))
        if not anns or not preds:
            continue
        truths = [decode_rle(gt, a) for a in anns]
        taken = [False] * len(anns)
        for entry in preds:
            pred = decode_rle(gt, entry)
            best, best_iou = -1, 0.5
            for j, (truth, ann) in enumerate(zip(truths, anns)):
                if taken[j] or int(ann["category_id"]) != int(entry["category_id"]):
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
    results = results_for(detections, category_map(gt, class_names))
    metrics = coco_segm_metrics(gt, results, detections.keys())
    for tol, value in boundary_f1(gt, results, detections.keys(), boundary_tolerances, boundary_min_score).items():
        metrics[f"boundary_f1@{tol:g}px"] = value
    return metrics


def write_metrics(path: Path, metrics: dict) -> None:
    """Write ``metrics`` as indented JSON, creating the folder."""
    Path(path).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
