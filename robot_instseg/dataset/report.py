"""``robot-instseg eval``: one report of segm and bbox AP (COCOeval), per-class AP, boundary F1
and mask QA, for predictions given as COCO results or as a COCO dataset (bag2coco output)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Optional, Sequence

from robot_instseg.dataset.evaluate import boundary_f1, decode_rle, per_class_ap, run_cocoeval
from robot_instseg.dataset.mask_qa import qa_summary


def load_predictions(path: Path, gt) -> list[dict]:
    """COCO results (a list), or a COCO dataset (dict) whose images are matched to ``gt``'s by
    file_name and whose categories are matched by name; entries without a score count as 1."""
    doc = json.loads(Path(path).read_text())
    if isinstance(doc, list):
        results = doc
    elif isinstance(doc, dict) and "annotations" in doc:
        gt_images = {img["file_name"]: img["id"] for img in gt.dataset["images"]}
        gt_images.update({Path(img["file_name"]).name: img["id"] for img in gt.dataset["images"]})
        image_map = {img["id"]: gt_images.get(img["file_name"], gt_images.get(Path(img["file_name"]).name))
                     for img in doc.get("images", [])}
        gt_cats = {c["name"]: c["id"] for c in gt.dataset["categories"]}
        cat_map = {c["id"]: gt_cats.get(c["name"]) for c in doc.get("categories", [])}
        results = []
        for ann in doc["annotations"]:
            image_id, category_id = image_map.get(ann["image_id"]), cat_map.get(ann["category_id"])
            if image_id is None or category_id is None:
                continue
            results.append({"image_id": image_id, "category_id": category_id,
                            "segmentation": ann["segmentation"], "score": float(ann.get("score", 1.0))})
    else:
        raise ValueError(f"{path}: neither COCO results (a list) nor a COCO dataset (with 'annotations')")
    known = set(gt.getImgIds())
    for entry in results:
        entry.setdefault("score", 1.0)
        if int(entry["image_id"]) not in known:
            raise ValueError(f"{path}: prediction for image id {entry['image_id']}, which the ground truth lacks")
    return results


def evaluation_report(gt, results: Sequence[dict], image_ids: Optional[Iterable[int]] = None,
                      tolerance: float = 2.0, boundary_min_score: float = 0.25) -> dict:
    """COCO metrics, boundary F1 and per-class AP of ``results`` against ``gt``, as one dict."""
    image_ids = sorted(int(i) for i in (image_ids if image_ids is not None else gt.getImgIds()))
    report: dict = {"images": len(image_ids), "predictions": len(results),
                    "gt_instances": len(gt.getAnnIds(imgIds=image_ids, iscrowd=False))}
    per_class: dict[int, dict] = {int(c): {} for c in gt.getCatIds()}
    for iou_type in ("segm", "bbox"):
        evaluator = run_cocoeval(gt, results, image_ids, iou_type)
        stats = evaluator.stats if evaluator is not None else [0.0] * 12
        for name, index in (("AP", 0), ("AP50", 1), ("AP75", 2), ("AP_small", 3), ("AP_medium", 4),
                            ("AP_large", 5), ("AR100", 8)):
            report[f"{iou_type}_{name}"] = float(max(stats[index], 0.0))
        classes = per_class_ap(evaluator) if evaluator is not None else {}
        for category in per_class:
            values = classes.get(category, {"AP": None, "AP50": None})
            per_class[category][f"{iou_type}_AP"] = values["AP"]
            per_class[category][f"{iou_type}_AP50"] = values["AP50"]
    report["boundary_f1"] = boundary_f1(gt, results, image_ids, (tolerance,), boundary_min_score)[tolerance]
    report["boundary_tolerance_px"] = tolerance
    names = {int(c["id"]): c["name"] for c in gt.loadCats(gt.getCatIds())}
    for category, values in per_class.items():
        values["gt_instances"] = len(gt.getAnnIds(imgIds=image_ids, catIds=[category], iscrowd=False))
        values["predictions"] = sum(1 for r in results if int(r["category_id"]) == category)
    report["per_class"] = {names[c]: v for c, v in sorted(per_class.items())}
    gt_anns = gt.loadAnns(gt.getAnnIds(imgIds=image_ids, iscrowd=False))
    report["mask_qa"] = {"predictions": qa_summary(list(results), lambda e: decode_rle(gt, e)),
                         "ground_truth": qa_summary(gt_anns, lambda e: decode_rle(gt, e))}
    return report


def format_report(report: dict) -> str:
    """The report as a plain-text table."""
    lines = [f"{'':12}{'AP':>8}{'AP50':>8}{'AP75':>8}{'AP_S':>8}{'AP_M':>8}{'AP_L':>8}"]
    for kind in ("segm", "bbox"):
        lines.append(f"{kind:12}" + "".join(f"{report[f'{kind}_{k}']:8.4f}" for k in
                                             ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large")))
    lines.append(f"boundary F1 @ {report['boundary_tolerance_px']:g} px: {report['boundary_f1']:.4f}   "
                 f"({report['images']} images, {report['gt_instances']} instances, "
                 f"{report['predictions']} predictions)")
    lines.append("")
    lines.append(f"{'class':20}{'segm AP':>9}{'AP50':>8}{'bbox AP':>9}{'GT':>7}{'pred':>7}")

    def fmt(value) -> str:
        return f"{value:.4f}" if value is not None else "-"

    for name, v in report["per_class"].items():
        lines.append(f"{name[:20]:20}{fmt(v['segm_AP']):>9}{fmt(v['segm_AP50']):>8}{fmt(v['bbox_AP']):>9}"
                     f"{v['gt_instances']:>7}{v['predictions']:>7}")
    lines.append("")
    for side in ("predictions", "ground_truth"):
        qa = report["mask_qa"][side]
        flags = ", ".join(f"{k} {n}" for k, n in qa["counts"].items())
        lines.append(f"mask QA {side.replace('_', ' ')} ({qa['checked']} masks): {flags}")
    if "masks" in report:
        lines.append(f"masks scored: {report['masks']}")
    return "\n".join(lines)
