"""``label pull``: reviewed Label Studio tasks -> a COCO dataset with provenance, and a review report.

Masks are decoded from the brush RLE here (holes kept) and written as COCO RLE. Each image
records its review state and where it came from; each instance whether a person accepted,
corrected (IoU to the prediction) or added it; deleted predictions are listed in the report.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from robot_instseg.dataset.bag_frames import mask_fields
from robot_instseg.dataset.dataset_files import SPLITS, write_split_files
from robot_instseg.labelling.brush import region_label, region_mask
from robot_instseg.labelling.client import LabelStudioClient, fetch_file
from robot_instseg.labelling.errors import LabellingError
from robot_instseg.labelling.provenance import DELETED, Outcome, Region, compare
from robot_instseg.labelling.review_report import review_report

REVIEWED, SKIPPED, UNREVIEWED = "reviewed", "skipped", "unreviewed"


@dataclass
class PullReport:
    """What one pull wrote."""

    images: dict[str, int] = field(default_factory=dict)  # review state -> images
    instances: dict[str, int] = field(default_factory=dict)  # provenance -> instances
    files: dict[str, str] = field(default_factory=dict)
    report: dict = field(default_factory=dict)


def review_state(task: dict) -> tuple[str, Optional[dict]]:
    """(state, the annotation that counts): the latest submitted one; skipped if all were cancelled."""
    done = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    if done:
        return REVIEWED, max(done, key=lambda a: (str(a.get("updated_at") or ""), int(a.get("id") or 0)))
    if task.get("annotations"):
        return SKIPPED, None
    return UNREVIEWED, None


def task_regions(results: list[dict], height: int, width: int) -> list[Region]:
    """The mask regions of a prediction's or annotation's result list."""
    regions = []
    for result in results or []:
        mask, label = region_mask(result, height, width), region_label(result)
        if mask is not None and label is not None:
            regions.append(Region(str(result.get("id")), label, mask))
    return regions


def pull_project(client: LabelStudioClient, project_title: str, out: Path, include_unreviewed: bool = False,
                 progress: Optional[Callable[[str], None]] = None) -> PullReport:
    """Write OUT/annotations/instances_<split>.json, OUT/images/<split>/ and OUT/review.json, whole or
    not at all: everything goes to OUT.partial first and replaces OUT at the end, so a failed pull
    leaves the previous one intact and a new one leaves no stale split behind."""
    out = Path(out)
    staging = out.with_name(out.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    report = _pull_into(client, project_title, staging, out, include_unreviewed)
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    report.files = {k: str(out / Path(v).relative_to(staging)) for k, v in report.files.items()}
    if progress is not None:
        progress(f"pulled {sum(report.images.values())} tasks of {project_title!r}")
    return report


def _pull_into(client: LabelStudioClient, project_title: str, out: Path, previous: Path,
               include_unreviewed: bool) -> PullReport:
    """The pull itself, into ``out``; images already in ``previous`` (an earlier pull) are reused."""
    from robot_instseg.labelling.label_config_read import config_classes

    project = client.project_id(project_title)
    classes = config_classes(client.label_config(project))
    categories = [{"id": i + 1, "name": n, "supercategory": "object"} for i, n in enumerate(classes)]
    cat_id = {c["name"]: c["id"] for c in categories}
    datasets: dict[str, dict[str, list]] = {s: {"images": [], "annotations": []} for s in SPLITS}
    report = PullReport()
    outcomes_all: list[tuple[Outcome, dict]] = []
    for task in client.tasks(project):
        data = task.get("data") or {}
        state, annotation = review_state(task)
        report.images[state] = report.images.get(state, 0) + 1
        if state != REVIEWED and not include_unreviewed:
            continue
        height, width = _task_size(task)
        prediction = (task.get("predictions") or [None])[0]
        predicted = task_regions(prediction["result"], height, width) if prediction else []
        reviewed = task_regions(annotation["result"], height, width) if annotation else []
        for r in reviewed:
            if r.label not in cat_id:
                raise LabellingError(f"task {task['id']}: label {r.label!r} is not in the project's config", "format")
        outcomes = compare(predicted, reviewed) if annotation else []
        split = str(data.get("split") or "train")
        split = split if split in datasets else "train"
        dataset = datasets[split]
        image_id = len(dataset["images"]) + 1
        file_name = Path(str(data.get("file_name") or f"task_{task['id']}.jpg")).name
        _fetch_image(client, str(data.get("image", "")), out / "images" / split / file_name,
                     previous / "images" / split / file_name)
        dataset["images"].append({
            "id": image_id, "file_name": file_name, "width": width, "height": height, "review": state,
            "ls_task_id": int(task["id"]), "annotation_id": annotation.get("id") if annotation else None,
            "model_version": prediction.get("model_version") if prediction else None,
            **{k: _stamp(data[k]) if k == "stamp" else data[k] for k in ("bag", "topic", "stamp") if k in data}})
        instances = data.get("instances") or {}
        for outcome in outcomes:
            pred_info = instances.get(outcome.predicted.region_id, {}) if outcome.predicted else {}
            outcomes_all.append((outcome, pred_info))
            report.instances[outcome.provenance] = report.instances.get(outcome.provenance, 0) + 1
            if outcome.provenance == DELETED:
                continue
            assert outcome.reviewed is not None
            ann = {"id": len(dataset["annotations"]) + 1, "image_id": image_id,
                   "category_id": cat_id[outcome.reviewed.label], **mask_fields(outcome.reviewed.mask),
                   "iscrowd": 0, "provenance": outcome.provenance, "ls_region_id": outcome.reviewed.region_id}
            if outcome.predicted is not None:
                ann["iou_to_prediction"] = round(float(outcome.iou_to_prediction or 0.0), 5)
                ann["predicted_class"] = outcome.predicted.label
                ann["score"] = pred_info.get("score")
                ann["track_id"] = pred_info.get("track_id", -1)
            dataset["annotations"].append(ann)
    info = {"description": f"robot_instseg label pull of Label Studio project {project_title!r} at {client.url}"}
    report.files.update(write_split_files(out, datasets, info, categories))
    report.report = review_report(outcomes_all, report.images)
    (out / "review.json").write_text(json.dumps(report.report, indent=2))
    report.files["review"] = str(out / "review.json")
    return report


def _stamp(text) -> dict:
    if isinstance(text, dict):
        return text
    sec, _, nanosec = str(text).partition(".")
    return {"sec": int(sec), "nanosec": int(nanosec or 0)}


def _task_size(task: dict) -> tuple[int, int]:
    """The image size: from the task data (push writes it), else from any region's original size."""
    data = task.get("data") or {}
    if data.get("height") and data.get("width"):
        return int(data["height"]), int(data["width"])
    for group in (task.get("annotations") or []) + (task.get("predictions") or []):
        for result in group.get("result") or []:
            if result.get("original_height"):
                return int(result["original_height"]), int(result["original_width"])
    raise LabellingError(f"task {task.get('id')}: no image size in its data or regions", "format")


def _fetch_image(client: LabelStudioClient, url: str, target: Path, earlier: Path) -> None:
    """Copy a task's image into the pulled dataset, through the server (local-files or upload),
    unless an earlier pull has it (Label Studio never changes a task's image)."""
    if target.is_file():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if earlier.is_file():
        shutil.copy2(earlier, target)
        return
    target.write_bytes(fetch_file(client.url, client.api_key, url))

