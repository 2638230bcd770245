"""``dataset merge``: several COCO datasets (bag2coco exports, pulled reviews) -> one that ``train`` reads.

Categories are joined by name, image and annotation ids renumbered, and every image keeps
where it came from (bag, topic, stamp, and the folder it was merged from). A recorded frame
present twice is refused with its name, and a bag stays in one split: the split it has in
the first dataset that holds it (neighbouring frames of a bag are near-copies).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

from robot_instseg.dataset.dataset_files import (
    SPLITS,
    DatasetFolderError,
    annotations_by_image,
    read_coco,
    source_key,
    split_files,
    write_split_files,
)


def merge_datasets(sources: Sequence[Path], out: Path) -> dict:
    """Write OUT/annotations/instances_<split>.json and OUT/images/<split>/; return counts per split."""
    out = Path(out)
    if not sources:
        raise DatasetFolderError("nothing to merge")
    categories: dict[str, int] = {}
    seen: dict[str, str] = {}  # frame -> the dataset that gave it
    bag_split: dict[str, str] = {}
    merged: dict[str, dict[str, list]] = {s: {"images": [], "annotations": []} for s in SPLITS}
    copies: list[tuple[Path, Path]] = []
    for source in map(Path, sources):
        for split, coco_file, image_dir in split_files(source):
            coco = read_coco(coco_file)
            names = {int(c["id"]): str(c["name"]) for c in coco["categories"]}
            for name in names.values():
                categories.setdefault(name, len(categories) + 1)
            anns = annotations_by_image(coco)
            for image in coco["images"]:
                key = source_key(image)
                if key in seen:
                    raise DatasetFolderError(f"{image['file_name']} ({key}) is in both {seen[key]} and {source}: "
                                         f"keep one of them", "duplicate")
                seen[key] = str(source)
                target_split = bag_split.setdefault(str(image.get("bag") or key), split)
                dataset = merged[target_split]
                new_id = len(dataset["images"]) + 1
                name = image["file_name"]
                if any(i["file_name"] == name for i in dataset["images"]):
                    name = f"{Path(str(source)).name}_{name}"
                copies.append((image_dir / image["file_name"], out / "images" / target_split / name))
                dataset["images"].append({**image, "id": new_id, "file_name": name, "merged_from": str(source)})
                for ann in anns.get(int(image["id"]), []):
                    dataset["annotations"].append({**ann, "id": len(dataset["annotations"]) + 1, "image_id": new_id,
                                                   "category_id": categories[names[int(ann["category_id"])]]})
    for src, dst in copies:
        if not src.is_file():
            raise DatasetFolderError(f"{src}: image missing")
    for src, dst in copies:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    cats = [{"id": i, "name": n, "supercategory": "object"} for n, i in sorted(categories.items(), key=lambda kv: kv[1])]
    info = {"description": "robot_instseg dataset merge", "sources": [str(s) for s in sources]}
    written = write_split_files(out, merged, info, cats)
    return {split: {"images": len(merged[split]["images"]), "instances": len(merged[split]["annotations"]),
                    "bags": sorted({str(i.get("bag")) for i in merged[split]["images"] if i.get("bag")})}
            for split in written}
