"""The review report: per class, how much people changed the model's output, and how the QA
flags fared. It shows where the model is weakest and what to record next."""

from __future__ import annotations

from typing import Any

from robot_instseg.labelling.provenance import ACCEPTED, ADDED, CORRECTED, DELETED, Outcome


def review_report(outcomes: list[tuple[Outcome, dict]], images: dict[str, int]) -> dict:
    """Counts per class (by the predicted class; added ones by their reviewed class) and per QA flag."""
    per_class: dict[str, dict[str, Any]] = {}
    per_flag: dict[str, dict[str, int]] = {}
    for outcome, info in outcomes:
        label = (outcome.predicted or outcome.reviewed).label  # type: ignore[union-attr]
        row = per_class.setdefault(label, {"predicted": 0, ACCEPTED: 0, CORRECTED: 0, DELETED: 0, ADDED: 0,
                                           "class_changed": 0, "_ious": []})
        row[outcome.provenance] += 1
        if outcome.predicted is not None:
            row["predicted"] += 1
        if outcome.class_changed:
            row["class_changed"] += 1
        if outcome.provenance == CORRECTED and outcome.iou_to_prediction is not None:
            row["_ious"].append(outcome.iou_to_prediction)
        for flag in info.get("qa") or []:
            f = per_flag.setdefault(flag, {"flagged": 0, ACCEPTED: 0, CORRECTED: 0, DELETED: 0})
            f["flagged"] += 1
            f[outcome.provenance] += 1
    for row in per_class.values():
        ious = row.pop("_ious")
        row["mean_iou_of_corrected"] = round(sum(ious) / len(ious), 4) if ious else None
        row["changed_share"] = round(1.0 - row[ACCEPTED] / row["predicted"], 4) if row["predicted"] else None
    weakest = sorted((r["changed_share"], name) for name, r in per_class.items() if r["changed_share"] is not None)
    return {"images": images, "per_class": per_class, "qa_flags": per_flag,
            "most_changed_classes": [name for _, name in reversed(weakest)][:5]}


def format_review(report: dict) -> str:
    """The report as a small table for the terminal."""
    lines = ["images: " + ", ".join(f"{k} {v}" for k, v in sorted(report["images"].items())),
             f"{'class':16} {'pred':>5} {'accept':>6} {'correct':>7} {'delete':>6} {'add':>4} {'cls chg':>7} "
             f"{'changed':>7} {'IoU corr':>8}"]
    for name, r in sorted(report["per_class"].items()):
        iou = "-" if r["mean_iou_of_corrected"] is None else f"{r['mean_iou_of_corrected']:.3f}"
        share = "-" if r["changed_share"] is None else f"{100 * r['changed_share']:.0f}%"
        lines.append(f"{name[:16]:16} {r['predicted']:5d} {r[ACCEPTED]:6d} {r[CORRECTED]:7d} {r[DELETED]:6d} "
                     f"{r[ADDED]:4d} {r['class_changed']:7d} {share:>7} {iou:>8}")
    for flag, f in sorted(report["qa_flags"].items()):
        lines.append(f"QA {flag}: {f['flagged']} flagged, {f[CORRECTED]} corrected, {f[DELETED]} deleted, "
                     f"{f[ACCEPTED]} accepted")
    return "\n".join(lines)
