"""The amodal ground truth: whole masks and who covers whom, checked against painter's renders."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from robot_instseg.synthetic.occlusion import occlusion_rate
from robot_instseg.synthetic.scenes import Scene, generate_scene, scene_seed


def _decode(rle: dict) -> np.ndarray:
    return mask_utils.decode({**rle, "counts": rle["counts"].encode()}).astype(bool)


def _on_top(scene: Scene, index: int) -> np.ndarray:
    """Where object ``index`` shows when it is painted last: its whole mask, by an independent render."""
    order = [o for i, o in enumerate(scene.objects) if i != index] + [scene.objects[index]]
    return Scene(scene.height, scene.width, order, scene.seed).render_ids() == len(order)


def _scenes(out: Path, *args: str) -> dict:
    result = subprocess.run([shutil.which("robot-instseg"), "scenes", "--out", str(out), "--quiet", *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads((out / "annotations.json").read_text())


def test_amodal_mask_is_the_whole_object_and_occluders_account_for_every_hidden_pixel(tmp_path: Path) -> None:
    doc = _scenes(tmp_path / "s", "--count", "4", "--seed", "31", "--min-visible", "0.1")
    hidden_pairs = 0
    for image in doc["images"]:
        scene = generate_scene(scene_seed(31, image["id"] - 1), min_visible=0.1)
        ids = scene.render_ids()  # painter's order: who shows where
        anns = [a for a in doc["annotations"] if a["image_id"] == image["id"]]
        assert len(anns) == len(scene.objects)
        by_id = {a["id"]: index for index, a in enumerate(anns)}
        for index, ann in enumerate(anns):
            amodal, visible = _decode(ann["amodal_segmentation"]), _decode(ann["segmentation"])
            np.testing.assert_array_equal(amodal, _on_top(scene, index))
            assert not np.any(visible & ~amodal)
            assert ann["amodal_area"] == amodal.sum() and ann["amodal_bbox"] == list(mask_utils.toBbox(
                mask_utils.encode(np.asfortranarray(amodal.astype(np.uint8)))))
            assert ann["occlusion_rate"] == occlusion_rate(ann["area"], ann["amodal_area"])
            hidden = amodal & ~visible
            for occluder in ann["occluded_by"]:  # each names a later object and the pixels it covers
                j = by_id[occluder["id"]]
                assert j > index and occluder["pixels"] == np.count_nonzero(hidden & (ids == j + 1)) > 0
            assert sum(o["pixels"] for o in ann["occluded_by"]) == hidden.sum()
            pixels = [o["pixels"] for o in ann["occluded_by"]]
            assert pixels == sorted(pixels, reverse=True)
            hidden_pairs += len(pixels)
    assert hidden_pairs >= 10


def test_amodal_masks_load_with_pycocotools_as_a_segmentation_layer(tmp_path: Path) -> None:
    doc = _scenes(tmp_path / "s", "--count", "2", "--seed", "4")
    for ann in doc["annotations"]:
        ann["segmentation"], ann["bbox"], ann["area"] = ann["amodal_segmentation"], ann["amodal_bbox"], \
            ann["amodal_area"]
    (tmp_path / "amodal.json").write_text(json.dumps(doc))
    coco = COCO(str(tmp_path / "amodal.json"))
    ann = coco.loadAnns(coco.getAnnIds())[0]
    assert coco.annToMask(ann).sum() == ann["area"]


def test_clip_annotations_name_only_annotated_occluders_of_the_same_frame(tmp_path: Path) -> None:
    doc = _scenes(tmp_path / "clips", "--sequence", "--count", "2", "--frames", "12", "--seed", "8")
    image_of = {a["id"]: a["image_id"] for a in doc["annotations"]}
    assert [a["id"] for a in doc["annotations"]] == list(range(1, len(doc["annotations"]) + 1))
    occluded = 0
    for ann in doc["annotations"]:
        assert ann["amodal_area"] >= ann["area"] and 0.0 <= ann["occlusion_rate"] < 1.0
        for occluder in ann["occluded_by"]:
            assert image_of[occluder["id"]] == ann["image_id"] and occluder["id"] != ann["id"]
        occluded += bool(ann["occluded_by"])
    assert occluded >= 5
