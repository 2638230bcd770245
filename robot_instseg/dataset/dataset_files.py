"""The dataset folders the labelling verbs read and write: bag2coco's layout,
``annotations/instances_<split>.json`` beside ``images/<split>/``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

SPLITS = ("train", "val", "test")


class DatasetFolderError(ValueError):
    """A dataset folder that cannot be used; ``reason``: dataset (missing or malformed) or duplicate."""

    def __init__(self, message: str, reason: str = "dataset") -> None:
        super().__init__(message)
        self.reason = reason


def split_files(dataset: Path) -> list[tuple[str, Path, Path]]:
    """(split, COCO file, image folder) of every split the dataset has, in train/val/test order."""
    found = [(s, dataset / "annotations" / f"instances_{s}.json", dataset / "images" / s) for s in SPLITS]
    found = [f for f in found if f[1].is_file()]
    if not found:
        raise DatasetFolderError(f"{dataset}: no annotations/instances_<split>.json (a bag2coco or pull folder)")
    return found


def read_coco(path: Path) -> dict:
    """A COCO file as JSON, or a DatasetFolderError naming it."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetFolderError(f"{path}: not a readable COCO file: {exc}") from exc
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetFolderError(f"{path}: no {key!r} list")
    return data


def annotations_by_image(coco: dict) -> dict[int, list[dict]]:
    """A COCO file's annotations grouped by image id, in file order."""
    out: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        out.setdefault(int(ann["image_id"]), []).append(ann)
    return out


def write_split_files(out: Path, datasets: dict[str, dict[str, list]], info: dict,
                      categories: list[dict]) -> dict[str, str]:
    """OUT/annotations/instances_<split>.json of every split that has images; split -> the file written."""
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    written = {}
    for split, dataset in datasets.items():
        if dataset["images"]:
            path = out / "annotations" / f"instances_{split}.json"
            path.write_text(json.dumps({"info": info, "licenses": [], "images": dataset["images"],
                                        "annotations": dataset["annotations"], "categories": categories}))
            written[split] = str(path)
    return written


def image_source(image: dict) -> dict:
    """Where a frame came from (bag, topic, stamp), as bag2coco and pull record it."""
    return {k: image[k] for k in ("bag", "topic", "stamp") if k in image}


def source_key(image: dict) -> str:
    """One text per recorded frame: bag, topic and stamp when known, else the file name."""
    stamp = image.get("stamp")
    if image.get("bag") and isinstance(stamp, dict):
        return f"{image['bag']} {image.get('topic', '')} {int(stamp['sec'])}.{int(stamp['nanosec']):09d}"
    return str(image["file_name"])


def annotation_mask(ann: dict, height: int, width: int) -> np.ndarray:
    """The HxW bool mask of a COCO annotation: polygons, uncompressed or compressed RLE."""
    seg = ann["segmentation"]
    if isinstance(seg, list):
        seg = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
    elif isinstance(seg.get("counts"), list):
        seg = mask_utils.frPyObjects(seg, height, width)
    return mask_utils.decode(seg).astype(bool)
