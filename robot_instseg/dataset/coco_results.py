"""Detections -> COCO results entries (RLE masks), with image and category ids from a COCO file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from robot_instseg.engine.occlusion import occlusion_order
from robot_instseg.engine.types import Detections
from robot_instseg.synthetic.occlusion import amodal_fields


@dataclass
class CocoIds:
    """How file paths map to image ids and class ids map to category ids."""

    images: dict[str, int]  # file_name (as written in the COCO file, or relative path) -> id
    categories: dict[int, int]  # model class id -> COCO category id

    @classmethod
    def from_file(cls, coco_file: Path, class_names: Sequence[str]) -> "CocoIds":
        """Ids from a COCO file: file_name matches, and categories matched by class name."""
        doc = json.loads(Path(coco_file).read_text())
        images = {str(img["file_name"]): int(img["id"]) for img in doc.get("images", [])}
        by_name = {c["name"]: int(c["id"]) for c in doc.get("categories", [])}
        missing = [n for n in class_names if n not in by_name]
        if class_names and len(missing) == len(class_names):
            raise ValueError(f"none of the model's classes {list(class_names)} is a category of "
                             f"{coco_file} ({sorted(by_name)})")
        categories = {i: by_name[n] for i, n in enumerate(class_names) if n in by_name}
        return cls(images, categories)

    def image_id(self, path: Path, root: Path) -> Optional[int]:
        rel = str(path.relative_to(root))
        for key in (rel, path.name, f"images/{path.name}"):
            if key in self.images:
                return self.images[key]
        return None


def detections_to_results(detections: Detections, image_id: int, ids: CocoIds,
                          occluded_by: Optional[list[list[int]]] = None) -> list[dict]:
    """COCO results entries (plus ``track_id``, 0 = untracked); classes the COCO file lacks are left out. From a
    model with the amodal head each entry also holds the whole object and the occlusion order
    (``whole_object_entries``); ``occluded_by`` (per instance, read from depth) takes the place of that order,
    and with it every entry holds ``instance_id`` and ``occluded_by``, as the node publishes them."""
    wholes = whole_object_entries(detections) if detections.has_amodal else [{}] * len(detections)
    if occluded_by is not None:
        wholes = [{**whole, "instance_id": i + 1, "occluded_by": [k + 1 for k in occluded_by[i]]}
                  for i, whole in enumerate(wholes)]
    results = []
    for rle, box, score, class_id, track_id, whole in zip(detections.to_rle(), detections.xywh(), detections.scores,
                                                          detections.class_ids, detections.track_ids, wholes):
        category = ids.categories.get(int(class_id))
        if category is None:
            continue
        results.append({"image_id": image_id, "category_id": category, "segmentation": rle,
                        "score": round(float(score), 5), "bbox": [round(float(v), 2) for v in box],
                        "track_id": int(track_id), **whole})
    return results


def whole_object_entries(detections: Detections) -> list[dict]:
    """Per instance of a frame's published Detections (a model with the amodal head): its whole object
    (``whole_object_fields``), ``instance_id`` index + 1 as Instance.id, ``occluded_by`` those ids."""
    order = occlusion_order(detections)
    entries = []
    for i in range(len(detections)):
        x0, y0, x1, y1 = order.amodal_boxes[i].tolist()
        full = np.zeros(detections.image_shape, bool)
        full[y0:y1, x0:x1] = order.amodal_masks[i]
        entries.append(whole_object_fields(full, int(detections.masks[i].sum()), i + 1,
                                           [k + 1 for k in order.occluded_by[i]]))
    return entries


def whole_object_fields(whole: np.ndarray, visible_area: int, instance_id: int, occluded_by: Sequence[int]) -> dict:
    """The amodal keys of one instance (``synthetic.occlusion.amodal_fields``, as ``scenes`` writes them), with
    its ``instance_id`` and the instance ids lying on it, the one covering most first (``engine.occlusion``)."""
    return {**amodal_fields(whole, visible_area), "instance_id": int(instance_id),
            "occluded_by": [int(k) for k in occluded_by]}
