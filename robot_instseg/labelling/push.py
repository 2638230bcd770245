"""``label push``: a bag2coco dataset -> Label Studio tasks with our masks as predictions.

One task per image, its pre-annotation a prediction (brush RLE at the image's size, per-region
score, ``model_version``), and where the frame came from in the task data (bag, topic, stamp,
track id per region). A second push adds only images no task names yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import quote

from robot_instseg.dataset.dataset_files import (
    annotation_mask,
    annotations_by_image,
    image_source,
    read_coco,
    split_files,
)
from robot_instseg.labelling.brush import region
from robot_instseg.labelling.client import LabelStudioClient
from robot_instseg.labelling.errors import LabellingError
from robot_instseg.labelling.label_config import label_config

STORAGES = ("auto", "local", "upload")
BATCH = 50


@dataclass(frozen=True)
class PushConfig:
    """Where and how a dataset goes into Label Studio."""

    project: str
    kind: str = "brush"  # brush (masks with holes) or polygon (largest outer contour)
    storage: str = "auto"  # local: the server reads our files (same disk); upload: copies them in
    document_root: Optional[Path] = None  # the server's LOCAL_FILES_DOCUMENT_ROOT, for local storage
    model_version: Optional[str] = None  # default: the dataset's model (name:sha256 prefix)


@dataclass
class PushReport:
    """What one push did."""

    project_id: int
    project_created: bool
    storage: str
    tasks_added: int = 0
    tasks_already_there: int = 0
    predicted_regions: int = 0
    model_version: str = ""
    task_ids: list[int] = field(default_factory=list)


Splits = list[tuple[str, Path, Path, dict]]  # (split, COCO file, image folder, its COCO), read once


def read_splits(dataset: Path) -> Splits:
    """Every split of a dataset folder with its COCO file read."""
    return [(split, coco_file, image_dir, read_coco(coco_file)) for split, coco_file, image_dir in split_files(dataset)]


def dataset_classes(splits: Splits) -> list[str]:
    """The class names of a dataset in category-id order (every split must agree)."""
    names: dict[int, str] = {}
    for _, coco_file, _, coco in splits:
        for cat in coco["categories"]:
            if names.setdefault(int(cat["id"]), str(cat["name"])) != str(cat["name"]):
                raise LabellingError(f"{coco_file}: category {cat['id']} is {cat['name']!r}, another split "
                                     f"calls it {names[int(cat['id'])]!r}", "dataset")
    return [names[i] for i in sorted(names)]


def dataset_model_version(splits: Splits) -> str:
    """name:sha256-prefix of the model that made the pre-annotations, as bag2coco recorded it."""
    for _, _, _, coco in splits:
        info = coco.get("info") or {}
        if info.get("model_versions"):
            return ",".join(info["model_versions"])
        if info.get("models"):
            return ",".join(Path(m).name for m in info["models"])
    return "unknown"


def choose_storage(config: PushConfig, dataset: Path) -> str:
    """local when the server shares our disk (a document root above the dataset), else upload."""
    if config.storage not in STORAGES:
        raise LabellingError(f"--storage {config.storage!r}: one of {', '.join(STORAGES)}", "format")
    inside = config.document_root is not None and dataset.resolve().is_relative_to(config.document_root.resolve())
    if config.storage == "local" and not inside:
        raise LabellingError(f"local storage needs --document-root (the server's LOCAL_FILES_DOCUMENT_ROOT) above "
                             f"{dataset}", "dataset")
    if config.storage == "auto":
        return "local" if inside else "upload"
    return config.storage


def push_dataset(client: LabelStudioClient, dataset: Path, config: PushConfig,
                 progress: Optional[Callable[[str], None]] = None) -> PushReport:
    """Create or reuse the project, then import a task (with its prediction) per new image."""
    dataset = Path(dataset)
    splits = read_splits(dataset)
    classes = dataset_classes(splits)
    storage = choose_storage(config, dataset)
    project, created = client.ensure_project(config.project, label_config(classes, config.kind))
    version = config.model_version or dataset_model_version(splits)
    report = PushReport(project_id=project, project_created=created, storage=storage, model_version=version)
    known = {str((t.get("data") or {}).get("file_name")) for t in client.tasks(project)}
    if storage == "local":
        assert config.document_root is not None
        client.ensure_local_storage(project, (dataset / "images").resolve())
    for split, coco_file, image_dir, coco in splits:
        names = {int(c["id"]): str(c["name"]) for c in coco["categories"]}
        by_image = annotations_by_image(coco)
        batch: list[dict] = []
        for image in coco["images"]:
            key = f"{split}/{image['file_name']}"
            if key in known:
                report.tasks_already_there += 1
                continue
            path = image_dir / image["file_name"]
            if not path.is_file():
                raise LabellingError(f"{path}: image of {coco_file} is missing", "dataset")
            if storage == "local":
                assert config.document_root is not None
                url = "/data/local-files/?d=" + quote(str(path.resolve().relative_to(config.document_root.resolve())))
            else:
                url = client.upload(project, path)
            task = _task(image, by_image.get(int(image["id"]), []), names, split, key, url, version, config.kind)
            report.predicted_regions += sum(len(p["result"]) for p in task["predictions"])
            batch.append(task)
            known.add(key)
            if len(batch) >= BATCH:
                report.task_ids += client.import_tasks(project, batch)
                batch = []
        if batch:
            report.task_ids += client.import_tasks(project, batch)
        if progress is not None:
            progress(f"{split}: {len(coco['images'])} images")
    report.tasks_added = len(report.task_ids)
    return report


def _task(image: dict, anns: list[dict], names: dict[int, str], split: str, key: str, url: str, version: str,
          kind: str) -> dict:
    """One Label Studio task: the image, where it came from, and our prediction."""
    h, w = int(image["height"]), int(image["width"])
    regions, instances, scores = [], {}, []
    for ann in anns:
        mask = annotation_mask(ann, h, w)
        region_id = f"p{ann['id']}"
        score = ann.get("score")
        regions.append(region(mask, names[int(ann["category_id"])], region_id, score, kind))
        attributes = ann.get("attributes") or {}
        instances[region_id] = {"coco_id": int(ann["id"]), "score": score, "track_id": ann.get("track_id", -1),
                                "qa": attributes.get("qa", [])}
        if score is not None:
            scores.append(float(score))
    data = {"image": url, "file_name": key, "split": split, "width": w, "height": h,
            "coco_image_id": int(image["id"]), "instances": instances, **image_source(image)}
    if isinstance(data.get("stamp"), dict):
        data["stamp"] = f"{int(data['stamp']['sec'])}.{int(data['stamp']['nanosec']):09d}"
    predictions = [{"model_version": version, "score": round(sum(scores) / len(scores), 5) if scores else 0.0,
                    "result": regions}] if regions else []
    return {"data": data, "predictions": predictions}
