"""``robot-instseg bag2coco``: robot bags -> a COCO dataset of images plus the model's predictions
as pre-annotations (RLE masks), ready for correction in CVAT or Label Studio.

Read with rosbags only (no ROS install). Per bag: frames of one image topic, every
``stride``-th, minus blurred ones (variance of the Laplacian) and near-duplicates of the last
frame kept (mean absolute difference of small grey thumbnails). Predictions come from the
InstanceArray recorded with each frame (same stamp), or from a model when a bag has none
(or when asked). Whole bags go to train, val or test, never one bag to two splits, since
neighbouring frames of one bag are near-copies and would leak between splits.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from robot_instseg.dataset.bag_frames import (
    BagExportJob,
    BagStart,
    BagStats,
    ExportConfig,
    KeptFrame,
)
from robot_instseg.dataset.dataset_files import write_split_files
from robot_instseg.dataset.mask_qa import ALL_FLAGS
from robot_instseg.io.frame_sources import open_bag
from robot_instseg.io.overlay import write_mosaic
from robot_instseg.offline.jobs import ModelSpec
from robot_instseg.offline.unit_runner import RayOptions, UnitError, run_units
from robot_instseg.offline.work_units import WorkUnit

SPLITS = ("train", "val", "test")


def assign_splits(bags: Sequence[Path], ratios: Sequence[float], seed: int = 0) -> dict[str, str]:
    """bag name -> split, whole bags only; shuffled by ``seed``; every non-zero split gets a bag
    when there are enough bags, train first."""
    names = sorted(Path(b).name for b in bags)
    if len(set(names)) != len(names):
        raise ValueError("two bags share a name; splits are by bag name, rename one")
    random.Random(seed).shuffle(names)
    n, total = len(names), float(sum(ratios))
    val, test = int(round(n * ratios[1] / total)), int(round(n * ratios[2] / total))
    if ratios[1] > 0 and val == 0 and n - test >= 2:  # a wanted split gets a bag while train keeps one
        val = 1
    if ratios[2] > 0 and test == 0 and n - val >= 2:
        test = 1
    counts = [n - val - test, val, test]
    out, start = {}, 0
    for split, count in zip(SPLITS, counts):
        for name in names[start:start + count]:
            out[name] = split
        start += count
    return out


def model_version(path: str, sha256: str) -> str:
    """How a model is named on pre-annotations: file name and the first 12 hex of its sha256."""
    return f"{Path(path).name}:{sha256[:12]}" if sha256 else Path(path).name


def model_version_of(path) -> str:
    """``model_version`` of a model file on disk."""
    from robot_instseg.engine.model_paths import model_sha256

    return model_version(str(path), model_sha256(Path(path)))


class Categories:
    """COCO categories by class name, ids = class id + 1 as the model numbers them."""

    def __init__(self) -> None:
        self.by_name: dict[str, int] = {}

    def add_model_classes(self, names: Sequence[str]) -> None:
        for class_id, name in enumerate(names):
            self.id_for(class_id, name)

    def id_for(self, class_id: int, name: str) -> int:
        name = name or str(class_id)
        if name not in self.by_name:
            wanted = class_id + 1
            self.by_name[name] = wanted if wanted not in self.by_name.values() else max(self.by_name.values()) + 1
        return self.by_name[name]

    def coco(self) -> list[dict]:
        return [{"id": i, "name": n, "supercategory": "object"} for n, i in sorted(self.by_name.items(),
                                                                                  key=lambda kv: kv[1])]


def export_bags(bags: Sequence[Path], out: Path, config: ExportConfig = ExportConfig(), segmenter=None,
                repredict: bool = False, progress: Optional[Callable[[str], None]] = None,
                ray: Optional[RayOptions] = None, model: Optional[ModelSpec] = None) -> dict:
    """Write OUT/images/<split>/*, OUT/annotations/instances_<split>.json, OUT/stats.json and
    OUT/mosaic.png; return the statistics. A bag that cannot be read is named and skipped (``stats.json``:
    ``skipped_bags``); ValueError when none can. ``ray``: each bag on a Ray worker, which loads ``model``
    (the file and config of ``segmenter``); the output is the same."""
    out = Path(out)
    bags = [Path(b) for b in bags]
    splits = assign_splits(bags, config.split, config.seed)
    categories = Categories()
    if segmenter is not None:
        categories.add_model_classes(segmenter.class_names)
    datasets: dict[str, dict[str, list]] = {s: {"images": [], "annotations": []} for s in SPLITS}
    stats: list[BagStats] = []
    mosaic_pool: list[tuple[Path, list]] = []
    models: set[str] = set()
    model_versions: set[str] = set()
    if segmenter is not None:
        model_versions.add(model_version_of(segmenter.model_path))
    skipped_bags = []
    readable = []
    for bag in bags:  # a damaged bag is named and skipped before anything is written
        try:
            open_bag(bag).close()
            readable.append(bag)
        except ValueError as exc:
            skipped_bags.append(str(exc))
    if not readable:
        raise ValueError("; ".join(skipped_bags))
    units = [WorkUnit(seq=i, source=i, path=str(bag), kind="bag") for i, bag in enumerate(readable)]
    job = BagExportJob(config, splits, repredict, model)
    pending: list[KeptFrame] = []
    for _, item, *_ in run_units(job, units, ray, state=segmenter):
        if isinstance(item, UnitError):  # the bag tore part-way: none of it goes in
            skipped_bags.append(item.message)
            pending = []
        elif isinstance(item, BagStart):
            pending = []
            if item.custom.get("robot_instseg.classes"):
                categories.add_model_classes(json.loads(item.custom["robot_instseg.classes"]))
            if item.custom.get("robot_instseg.model"):
                models.add(item.custom["robot_instseg.model"])
                model_versions.add(model_version(item.custom["robot_instseg.model"],
                                                 item.custom.get("robot_instseg.model_sha256", "")))
        elif isinstance(item, KeptFrame):
            pending.append(item)
        else:
            bs = item.stats
            stats.append(bs)
            image_dir = out / "images" / bs.split
            image_dir.mkdir(parents=True, exist_ok=True)
            for kept in pending:
                mosaic_pool.append(_add_frame(kept, datasets[bs.split], categories, image_dir))
            pending = []
            if progress is not None:
                progress(f"{Path(bs.bag).name}: {bs.kept} of {bs.frames} frames kept -> {bs.split}")
    if not stats:
        raise ValueError("; ".join(skipped_bags))
    info = {"description": "robot_instseg bag2coco pre-annotations (model predictions, to be corrected)",
            "bags": [str(b) for b in bags], "models": sorted(models), "model_versions": sorted(model_versions)}
    written = write_split_files(out, datasets, info, categories.coco())
    summary = dataset_statistics(datasets, categories, stats)
    summary["files"] = written
    summary["skipped_bags"] = skipped_bags
    (out / "stats.json").write_text(json.dumps(summary, indent=2))
    write_mosaic(out / "mosaic.png", mosaic_pool, config.mosaic_tiles)
    return summary


def _add_frame(kept: KeptFrame, dataset: dict, categories: Categories, image_dir: Path) -> tuple[Path, list]:
    """Write a kept frame's image and add it and its annotations to its split; its mosaic entry."""
    (image_dir / kept.name).write_bytes(kept.encoded)
    image_id = len(dataset["images"]) + 1
    dataset["images"].append({"id": image_id, "file_name": kept.name, **kept.image})
    frame_anns = []
    for class_id, class_name, score, fields, track_id, qa in kept.instances:
        dataset["annotations"].append({"id": len(dataset["annotations"]) + 1, "image_id": image_id,
                                       "category_id": categories.id_for(class_id, class_name), **fields,
                                       "iscrowd": 0, "score": round(score, 5), "track_id": track_id,
                                       "attributes": {"qa": qa, "track_id": track_id}})
        frame_anns.append((class_id, fields["segmentation"]))
    _ids_for_occluders(dataset["annotations"][len(dataset["annotations"]) - len(kept.instances):])
    return image_dir / kept.name, frame_anns


def _ids_for_occluders(frame: list[dict]) -> None:
    """A frame's ``occluded_by`` (Instance ids, as recorded) as the annotation ids of the same frame; an
    occluder whose mask was left out is dropped."""
    by_instance = {ann["instance_id"]: ann["id"] for ann in frame if "instance_id" in ann}
    for ann in frame:
        if "occluded_by" in ann:
            ann["occluded_by"] = [by_instance[k] for k in ann["occluded_by"] if k in by_instance]


def dataset_statistics(datasets: dict, categories: Categories, stats: Sequence[BagStats]) -> dict:
    """Images, instances and classes per split, and per-bag counts, for the export report."""
    names = {i: n for n, i in categories.by_name.items()}
    per_split = {}
    for split, dataset in datasets.items():
        if not dataset["images"]:
            continue
        per_class: dict[str, int] = {}
        qa = {flag: 0 for flag in ALL_FLAGS}
        for ann in dataset["annotations"]:
            name = names[ann["category_id"]]
            per_class[name] = per_class.get(name, 0) + 1
            for flag in ann["attributes"]["qa"]:
                qa[flag] += 1
        areas = [a["area"] for a in dataset["annotations"]]
        per_split[split] = {"images": len(dataset["images"]), "instances": len(dataset["annotations"]),
                            "bags": sorted({img["bag"] for img in dataset["images"]}),
                            "instances_per_class": per_class, "mask_qa": qa,
                            "median_area_px": float(np.median(areas)) if areas else 0.0}
    return {"splits": per_split, "bags": [vars(s) for s in stats], "categories": categories.coco()}
