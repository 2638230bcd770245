"""Amodal AP and occlusion-order accuracy, scored on predictions whose truth is known."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from robot_instseg.dataset.amodal_eval import amodal_report, order_accuracy
from robot_instseg.dataset.coco_check import load_checked_coco
from robot_instseg.dataset.coco_results import CocoIds, detections_to_results
from robot_instseg.engine.types import Detections
from robot_instseg.synthetic.dataset import write_dataset


@pytest.fixture(scope="module")
def clutter(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clutter")
    write_dataset(out, count=5, seed=12, min_visible=0.1)
    return out


def _truth_as_detections(gt, image_id: int, swap: bool = False) -> Detections:
    """The ground truth of one image as published instances with whole masks (``swap``: visible and whole
    exchanged, which reverses who lies on whom)."""
    anns = gt.loadAnns(gt.getAnnIds(imgIds=[image_id]))
    visible = np.stack([mask_utils.decode(a["segmentation"]) for a in anns]).astype(bool)
    whole = np.stack([mask_utils.decode(a["amodal_segmentation"]) for a in anns]).astype(bool)
    detections = Detections.from_full_masks(visible, np.linspace(0.9, 0.5, len(anns)),
                                            [a["category_id"] - 1 for a in anns])
    if swap:  # each object's visible part named whole and the other way round: the order flips
        others = Detections.from_full_masks(whole, detections.scores, detections.class_ids)
        detections.amodal_boxes, detections.amodal_masks = detections.mask_boxes, detections.masks
        detections.mask_boxes, detections.masks = others.mask_boxes, others.masks
        return detections
    wholes = Detections.from_full_masks(whole, detections.scores, detections.class_ids)
    detections.amodal_boxes, detections.amodal_masks = wholes.mask_boxes, wholes.masks
    return detections


def test_the_truth_scores_perfectly_and_its_results_carry_the_whole_objects(clutter: Path) -> None:
    gt = load_checked_coco(clutter / "annotations.json")
    detections = {i: _truth_as_detections(gt, i) for i in gt.getImgIds()}
    ids = CocoIds({}, {c: c + 1 for c in range(6)})
    results = [r for i, d in detections.items() for r in detections_to_results(d, i, ids)]
    anns = gt.loadAnns(gt.getAnnIds())
    assert len(results) == len(anns)
    for result, ann in zip(results, anns):
        assert mask_utils.area(result["amodal_segmentation"]) == ann["amodal_area"]
        assert result["occlusion_rate"] == pytest.approx(ann["occlusion_rate"], abs=1e-4)
    report = amodal_report(gt, results, detections)
    assert report["amodal_AP"] == pytest.approx(1.0)
    order = report["occlusion"]
    assert order["pairs"] >= 10 and order["matched_pairs"] == order["pairs"] and order["order_accuracy"] == 1.0


def test_a_reversed_order_scores_zero(clutter: Path) -> None:
    gt = load_checked_coco(clutter / "annotations.json")
    order = order_accuracy(gt, {i: _truth_as_detections(gt, i, swap=True) for i in gt.getImgIds()})
    assert order["right"] == 0 and order["pairs"] >= 10


def test_eval_amodal_refuses_what_it_cannot_score_in_one_line(clutter: Path) -> None:
    bundled = Path(__file__).resolve().parents[2] / "models" / "instseg_tabletop.onnx"
    for extra, words in ((["--model", str(bundled), "--images", str(clutter)], "has no amodal head"),
                         (["--pred", str(clutter / "annotations.json")], "--amodal scores a --model")):
        done = subprocess.run([sys.executable, "-m", "robot_instseg.cli", "eval", "--amodal", "--gt",
                               str(clutter / "annotations.json"), "--quiet", *extra], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode != 0 and words in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) <= 2, done.stderr
    json.loads((clutter / "annotations.json").read_text())  # untouched
