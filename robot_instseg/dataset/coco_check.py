"""Check a COCO instances file before anything trusts it, and say what is wrong with counts.

pycocotools assumes a well-formed file: a string where a polygon list belongs, an unknown
category or a box far outside its image surfaces later as a traceback deep inside it (or,
for boxes, not at all). ``coco_problems`` lists every kind of problem with how many entries
have it and the first example; ``load_checked_coco`` refuses a file that has any.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any, Union

BOX_SLACK = 1.0  # pixels a box may exceed its image by (rounding in annotation tools)


class CocoFileError(ValueError):
    """A COCO file that cannot be used; the message names the file and every problem kind."""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) < 1e9


def _segmentation_problem(seg: Any) -> str:
    if isinstance(seg, dict):
        size, counts = seg.get("size"), seg.get("counts")
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
            return "RLE segmentation without a valid size [height, width]"
        if not isinstance(counts, (str, list)):
            return "RLE segmentation whose counts is neither a string nor a list"
        return ""
    if isinstance(seg, list):
        if not seg:
            return "empty polygon list"
        for poly in seg:
            if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2 or not all(_number(v) for v in poly):
                return "polygon that is not a flat list of at least 3 x, y pairs"
        return ""
    return f"segmentation of type {type(seg).__name__} (a polygon list or an RLE dict is needed)"


def coco_problems(doc: Any) -> list[str]:
    """Every problem kind of a parsed COCO instances document: 'N annotations: what (e.g. id 7)'."""
    if not isinstance(doc, dict):
        return [f"the top level is a {type(doc).__name__}, not an object with images, annotations, categories"]
    problems: list[str] = []
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            problems.append(f"'{key}' is missing or not a list")
    if problems:
        return problems
    found: dict[str, list] = collections.defaultdict(list)
    images = {}
    for img in doc["images"]:
        if not isinstance(img, dict) or not isinstance(img.get("id"), int) or not isinstance(img.get("file_name"), str):
            found["images without an integer id and a file_name"].append(img.get("id") if isinstance(img, dict) else img)
            continue
        if not all(isinstance(img.get(k), int) and img[k] > 0 for k in ("width", "height")):
            found["images without a positive integer width and height"].append(img["id"])
            continue
        images[img["id"]] = img
    categories = {c.get("id") for c in doc["categories"] if isinstance(c, dict) and isinstance(c.get("id"), int)
                  and isinstance(c.get("name"), str)}
    if len(categories) != len(doc["categories"]):
        found["categories without an integer id and a name"].append("-")
    for ann in doc["annotations"]:
        if not isinstance(ann, dict):
            found["annotations that are not objects"].append(ann)
            continue
        where = ann.get("id", "?")
        image = images.get(ann.get("image_id"))
        if image is None:
            found["annotations of an unknown image_id"].append(where)
            continue
        if ann.get("category_id") not in categories:
            found["annotations of an unknown category_id"].append(where)
        box = ann.get("bbox")
        if box is not None:
            if not (isinstance(box, list) and len(box) == 4 and all(_number(v) for v in box)):
                found["annotations whose bbox is not 4 numbers"].append(where)
            else:
                x, y, w, h = box
                if w < 0 or h < 0 or x < -BOX_SLACK or y < -BOX_SLACK or x + w > image["width"] + BOX_SLACK \
                        or y + h > image["height"] + BOX_SLACK:
                    found["annotations whose bbox [x, y, w, h] leaves its image"].append(where)
        if "segmentation" in ann:
            problem = _segmentation_problem(ann["segmentation"])
            if problem:
                found[f"annotations with a {problem}"].append(where)
    return [f"{len(ids)} {kind} (e.g. id {ids[0]})" for kind, ids in found.items()]


def load_checked_coco(path: Union[str, Path]):
    """A pycocotools COCO of ``path``, or CocoFileError naming the file and every problem."""
    from robot_instseg.dataset.evaluate import load_coco_quiet

    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise CocoFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CocoFileError(f"{path}: cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise CocoFileError(f"{path}: not JSON ({exc})") from None
    problems = coco_problems(doc)
    if problems:
        raise CocoFileError(f"{path}: not a usable COCO instances file: {'; '.join(problems)}")
    return load_coco_quiet(doc)
