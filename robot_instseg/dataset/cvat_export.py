"""A COCO dataset (bag2coco's folder) -> CVAT for images 1.1 XML with declared attributes.

CVAT's "COCO 1.0" import (datumaro) keeps masks but drops every field a label does not
declare, so score, QA flags and track id never reach the annotator. This export declares
them on every label (score and track_id as numbers, one checkbox per QA flag) and writes
masks as CVAT's own RLE: alternating run lengths over the mask's box, row by row, zeros first.
Zip the folder (annotations.xml + images/) and import it as "CVAT for images 1.1".
"""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from robot_instseg.dataset.dataset_files import annotation_mask, annotations_by_image, read_coco, split_files
from robot_instseg.dataset.mask_qa import ALL_FLAGS
from robot_instseg.io.overlay import colour_hex

ATTRIBUTES = (("score", "number", "0", "0;1;0.00001"), ("track_id", "number", "-1", "-1;1000000000;1"),
              *((f"qa_{flag}", "checkbox", "false", "false") for flag in ALL_FLAGS))


def cvat_rle(mask: np.ndarray) -> tuple[str, int, int, int, int]:
    """(rle, left, top, width, height): CVAT's run lengths over the mask's tight box."""
    ys, xs = np.nonzero(mask)
    left, top, right, bottom = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    flat = mask[top:bottom, left:right].reshape(-1).astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate(([0], edges, [flat.size])))
    counts = ([0] if flat[0] else []) + runs.tolist()
    return ",".join(map(str, counts)), left, top, right - left, bottom - top


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link where the disk allows it (no second copy of every frame), else a copy."""
    if dst.exists():
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _sub(parent: ET.Element, tag: str, text: str = "", **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrib)
    if text:
        el.text = text
    return el


def write_cvat(dataset: Path, out: Path) -> dict:
    """Write one CVAT XML with the images of every split (one CVAT task; names are unique per
    frame, and datumaro's CVAT reader keeps only images whose subset matches the file name, so
    no subset is written); return counts."""
    splits = split_files(dataset)
    cocos = [(split, read_coco(coco_file)) for split, coco_file, _ in splits]
    media = out.parent / "images"  # CVAT's dataset layout: annotations.xml beside images/
    media.mkdir(parents=True, exist_ok=True)
    for (_, coco), (_, _, image_dir) in zip(cocos, splits):
        for image in coco["images"]:
            _link_or_copy(image_dir / image["file_name"], media / image["file_name"])
    names = sorted({(int(c["id"]), str(c["name"])) for _, coco in cocos for c in coco["categories"]})
    root = ET.Element("annotations")
    _sub(root, "version", "1.1")
    task = _sub(_sub(root, "meta"), "task")
    _sub(task, "name", dataset.name)
    _sub(task, "size", str(sum(len(coco["images"]) for _, coco in cocos)))
    _sub(task, "mode", "annotation")
    labels = _sub(task, "labels")
    for index, (_, name) in enumerate(names):
        label = _sub(labels, "label")
        _sub(label, "name", name)
        _sub(label, "color", colour_hex(index))
        _sub(label, "type", "mask")
        attrs = _sub(label, "attributes")
        for attr_name, input_type, default, values in ATTRIBUTES:
            attr = _sub(attrs, "attribute")
            _sub(attr, "name", attr_name)
            _sub(attr, "mutable", "False")
            _sub(attr, "input_type", input_type)
            _sub(attr, "default_value", default)
            _sub(attr, "values", values)
    frame, masks = 0, 0
    for split, coco in cocos:
        cat_names = {int(c["id"]): str(c["name"]) for c in coco["categories"]}
        anns = annotations_by_image(coco)
        for image in coco["images"]:
            h, w = int(image["height"]), int(image["width"])
            el = _sub(root, "image", id=str(frame), name=str(image["file_name"]), width=str(w), height=str(h))
            frame += 1
            for ann in anns.get(int(image["id"]), []):
                mask = annotation_mask(ann, h, w)
                if not mask.any():
                    continue
                counts, left, top, mw, mh = cvat_rle(mask)
                shape = _sub(el, "mask", label=cat_names[int(ann["category_id"])], source="auto", occluded="0",
                             rle=counts, left=str(left), top=str(top), width=str(mw), height=str(mh), z_order="0")
                qa = set((ann.get("attributes") or {}).get("qa", []))
                _sub(shape, "attribute", f"{float(ann.get('score', 0.0)):.5f}", name="score")
                _sub(shape, "attribute", str(int(ann.get("track_id", -1))), name="track_id")
                for flag in ALL_FLAGS:
                    _sub(shape, "attribute", "true" if flag in qa else "false", name=f"qa_{flag}")
                masks += 1
    out.parent.mkdir(parents=True, exist_ok=True)
    ET.indent(root)
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
    return {"images": frame, "masks": masks, "labels": len(names), "file": str(out)}
