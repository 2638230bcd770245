"""`robot-instseg bench` and `run` as a user calls them (the installed console script)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx_graphs import IMAGE, PAD_Y, constant_output_model, yolo_protos, yolo_row
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

EXE = shutil.which("robot-instseg")


def _cup_and_box(path: Path, cup_box, box_box, protos: np.ndarray) -> Path:
    """A YOLO-seg model finding a cup (0.9, prototype 0) and a box (0.6, prototype 1) in any 640x480 frame."""
    preds = np.zeros((1, 4 + 2 + 32, 8400), np.float32)
    preds[0, :, 10] = yolo_row(cup_box, 0.9, 0, 2, 0)
    preds[0, :, 20] = yolo_row(box_box, 0.6, 1, 2, 1)
    return constant_output_model(path, {"output0": preds, "output1": protos}, metadata={"names": "{0: 'cup', 1: 'box'}"})


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """Two known instances in any 640x480 frame: a cup and a box."""
    protos = yolo_protos([(100, 50 + PAD_Y, 300, 250 + PAD_Y), (400, 300 + PAD_Y, 600, 460 + PAD_Y)])
    return _cup_and_box(tmp_path_factory.mktemp("m") / "two.onnx", (100, 50, 300, 250), (400, 300, 600, 460), protos)


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    assert EXE, "robot-instseg is not on PATH (source scripts/env.sh)"
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout)


def test_bench_json_reports_stages_raw_session_and_ratio(model: Path) -> None:
    result = _run("bench", "--model", str(model), "--runs", "5", "--warmup", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for key in ("preprocess_ms", "inference_ms", "postprocess_ms", "total_ms", "raw_session_ms", "ratio"):
        assert report[key] > 0, key
    assert report["ratio"] == pytest.approx(report["total_ms"] / report["raw_session_ms"], rel=1e-3)
    assert report["ratio_paired_median"] > 0
    assert report["instances_max"] == 2 and report["decoder"] == "yolo_seg"


def test_run_writes_coco_results_that_pycocotools_scores(model: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(images / name), IMAGE)
    (images / "notes.txt").write_text("not an image")
    # Ground truth: the same two objects, with category ids that are NOT class id + 1.
    gt_masks = [np.zeros((480, 640), np.uint8), np.zeros((480, 640), np.uint8)]
    gt_masks[0][50:250, 100:300] = 1
    gt_masks[1][300:460, 400:600] = 1
    anns, aid = [], 1
    for image_id in (7, 9):
        for mask, cat in zip(gt_masks, (11, 42)):
            rle = mask_utils.encode(np.asfortranarray(mask))
            rle["counts"] = rle["counts"].decode()
            anns.append({"id": aid, "image_id": image_id, "category_id": cat, "segmentation": rle,
                         "area": int(mask.sum()), "bbox": list(mask_utils.toBbox(rle)), "iscrowd": 0})
            aid += 1
    gt = {"images": [{"id": 7, "file_name": "images/a.png", "width": 640, "height": 480},
                     {"id": 9, "file_name": "images/b.png", "width": 640, "height": 480}],
          "categories": [{"id": 11, "name": "cup"}, {"id": 42, "name": "box"}], "annotations": anns}
    gt_file = tmp_path / "gt.json"
    gt_file.write_text(json.dumps(gt))
    out = tmp_path / "preds.json"
    result = _run("run", str(images), "--model", str(model), "--out", str(out), "--coco", str(gt_file))
    assert result.returncode == 0, result.stderr
    preds = json.loads(out.read_text())
    assert sorted((p["image_id"], p["category_id"]) for p in preds) == [(7, 11), (7, 42), (9, 11), (9, 42)]
    coco_gt = COCO(str(gt_file))
    evaluator = COCOeval(coco_gt, coco_gt.loadRes(str(out)), "segm")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.stats[1] == pytest.approx(1.0)  # AP50: every object found at its place


def test_run_on_a_missing_model_fails_with_the_path(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    cv2.imwrite(str(tmp_path / "imgs" / "a.png"), IMAGE)
    result = _run("run", str(tmp_path / "imgs"), "--model", str(tmp_path / "none.onnx"), "--out",
                  str(tmp_path / "p.json"))
    assert result.returncode == 2 and "none.onnx does not exist" in result.stderr


@pytest.fixture(scope="module")
def overlapping_model(tmp_path_factory) -> Path:
    """A cup (0.9) and a box (0.6) whose masks overlap; the box's mask is more confident."""
    protos = np.full((1, 32, 160, 160), -10.0, np.float32)
    protos[0, 0, (100 + PAD_Y) // 4:(300 + PAD_Y) // 4, 100 // 4:300 // 4] = 0.5  # barely in
    protos[0, 1, (200 + PAD_Y) // 4:(400 + PAD_Y) // 4, 200 // 4:400 // 4] = 10.0  # sure
    return _cup_and_box(tmp_path_factory.mktemp("o") / "overlap.onnx", (100, 100, 300, 300), (200, 200, 400, 400),
                        protos)


def test_run_masks_visible_owns_overlaps_by_evidence_and_raw_keeps_them(overlapping_model: Path,
                                                                          tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), IMAGE)
    areas = {}
    for kind in ("visible", "raw"):
        out = tmp_path / f"{kind}.json"
        result = _run("run", str(images), "--model", str(overlapping_model), "--out", str(out), "--masks", kind)
        assert result.returncode == 0, result.stderr
        assert f"({kind} masks)" in result.stdout
        preds = sorted(json.loads(out.read_text()), key=lambda p: -p["score"])
        masks = [mask_utils.decode({**p["segmentation"], "counts": p["segmentation"]["counts"].encode()})
                 for p in preds]
        areas[kind] = [int(m.sum()) for m in masks]
        overlap = int((masks[0] & masks[1]).sum())
        assert (overlap > 0) == (kind == "raw")
    # The overlap (about 100 x 100 px) goes to the box: its mask is surer there, though its score is lower;
    # only along the box's own soft edge (logit near 0) does the cup keep a pixel wide seam.
    assert 0 <= areas["raw"][1] - areas["visible"][1] < 400
    assert areas["raw"][0] - areas["visible"][0] > 9000


def test_run_bag_marks_a_second_reading_of_the_same_object(tmp_path: Path) -> None:
    """A cup (0.9) and a box (0.6) on the same pixels: the box is the same object read as another
    class. In the bag (read back by rosbags) it says so, keeps its mask, and owns no label pixel."""
    from rosbags.highlevel import AnyReader

    protos = yolo_protos([(100, 100 + PAD_Y, 300, 300 + PAD_Y), (120, 120 + PAD_Y, 300, 300 + PAD_Y)])
    model = _cup_and_box(tmp_path / "same.onnx", (100, 100, 300, 300), (120, 120, 300, 300), protos)
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), IMAGE)
    out = tmp_path / "bag"
    result = _run("run", str(images), "--model", str(model), "--out", str(out))
    assert result.returncode == 0, result.stderr
    with AnyReader([out]) as reader:
        messages = {c.topic: reader.deserialize(d, c.msgtype) for c, _, d in reader.messages()}
    cup, box = messages["/seg_node/instances"].instances
    labels_msg = messages["/seg_node/labels"]
    labels = np.frombuffer(labels_msg.data, np.uint16).reshape(labels_msg.height, labels_msg.width)
    assert (cup.class_name, cup.same_object_as, box.class_name, box.same_object_as) == ("cup", 0, "box", cup.id)
    box_mask = np.frombuffer(box.mask.data, np.uint8).reshape(box.mask.height, box.mask.width) > 0
    assert box_mask.sum() > 150 * 150  # its full mask, not cut away
    region = labels[box.bbox.y_offset:box.bbox.y_offset + box.bbox.height,
                    box.bbox.x_offset:box.bbox.x_offset + box.bbox.width]
    assert (region[box_mask] == cup.id).all() and not (labels == box.id).any()
