"""The synthetic scene generator: deterministic per seed, exact visible masks, valid COCO."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from robot_instseg.synthetic.scenes import CLASSES, MIN_VISIBLE_FRACTION, generate_scene, scene_seed


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _scenes(out: Path, count: int, seed: int) -> Path:
    exe = shutil.which("robot-instseg")
    result = subprocess.run([exe, "scenes", "--out", str(out), "--count", str(count), "--seed", str(seed),
                             "--quiet"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return out


def test_same_seed_same_bytes_other_seed_other_scenes(tmp_path: Path) -> None:
    a = _digest(_scenes(tmp_path / "a", 4, 11))
    assert a == _digest(_scenes(tmp_path / "b", 4, 11))
    assert a != _digest(_scenes(tmp_path / "c", 4, 12))
    # Image i does not depend on how many images the set has.
    assert (tmp_path / "a/images/000002.png").read_bytes() == \
        (_scenes(tmp_path / "d", 3, 11) / "images/000002.png").read_bytes()


def test_coco_output_loads_and_every_mask_is_the_visible_part_of_its_object(tmp_path: Path) -> None:
    out = _scenes(tmp_path / "set", 6, 5)
    coco = COCO(str(out / "annotations.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
    assert len(coco.getImgIds()) == 6
    for image_id in coco.getImgIds():
        info = coco.loadImgs(image_id)[0]
        image = cv2.imread(str(out / info["file_name"]))
        assert image.shape == (info["height"], info["width"], 3)
        # Rebuild the scene from its seed and paint object ids back to front: an independent
        # account of which object shows at each pixel.
        scene = generate_scene(scene_seed(5, image_id - 1), info["height"], info["width"])
        ids = scene.render_ids()
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        assert 3 <= len(anns) <= 20 and len(anns) == len(scene.objects)
        for index, ann in enumerate(anns):
            mask = coco.annToMask(ann).astype(bool)
            np.testing.assert_array_equal(mask, ids == index + 1)
            assert ann["area"] == int(mask.sum()) >= 150
            assert ann["category_id"] == scene.objects[index].class_id + 1
            x, y, w, h = ann["bbox"]
            ys, xs = np.nonzero(mask)
            assert (x, y, w, h) == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        assert not np.any(ids[(ids > 0)] > len(anns))


def test_scenes_have_occlusion_and_every_class(tmp_path: Path) -> None:
    seen, occluded = set(), 0
    for i in range(20):
        scene = generate_scene(scene_seed(99, i))
        seen |= {o.class_id for o in scene.objects}
        for obj, visible in zip(scene.objects, scene.visible_masks()):
            occluded += int(visible.sum() < obj.silhouette((scene.height, scene.width)).sum())
    assert seen == set(range(len(CLASSES))) and occluded > 10


def _visible_fractions(min_visible: float) -> np.ndarray:
    fractions = []
    for i in range(30):
        scene = generate_scene(scene_seed(105, i), 240, 320, min_visible=min_visible)
        for obj, visible in zip(scene.objects, scene.visible_masks()):
            fractions.append(visible.sum() / obj.silhouette((scene.height, scene.width)).sum())
    return np.array(fractions)


def test_min_visible_bounds_how_much_of_an_object_others_may_hide() -> None:
    default, clutter = _visible_fractions(MIN_VISIBLE_FRACTION), _visible_fractions(0.1)
    assert default.min() >= MIN_VISIBLE_FRACTION and clutter.min() >= 0.1
    assert (clutter < MIN_VISIBLE_FRACTION).sum() >= 5  # slivers the default never shows
    assert np.array_equal(_visible_fractions(MIN_VISIBLE_FRACTION), default)  # still one scene per seed


def test_every_instance_is_one_connected_region_or_split_only_by_occlusion() -> None:
    for i in range(10):
        scene = generate_scene(scene_seed(3, i))
        for obj in scene.objects:
            count, _ = cv2.connectedComponents(obj.silhouette((scene.height, scene.width)).astype(np.uint8))
            assert count - 1 == 1, f"{CLASSES[obj.class_id]} silhouette has {count - 1} parts"


def test_annotations_json_is_plain_coco(tmp_path: Path) -> None:
    doc = json.loads((_scenes(tmp_path / "s", 1, 1) / "annotations.json").read_text())
    assert set(doc) >= {"images", "annotations", "categories"}
    rle = doc["annotations"][0]["segmentation"]
    assert isinstance(rle["counts"], str)
    assert mask_utils.decode({**rle, "counts": rle["counts"].encode()}).shape == (480, 640)
