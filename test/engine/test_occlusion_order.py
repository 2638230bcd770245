"""The occlusion order of a frame, checked against the generator's ground truth (who covers whom)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from robot_instseg.engine.occlusion import TOUCH_PX, occlusion_order, touching, whole_mask
from robot_instseg.engine.types import Detections

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from amodal_fixtures import scene_with_whole_masks  # noqa: E402


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_true_whole_masks_give_the_ground_truth_order_pixel_for_pixel(seed: int) -> None:
    detections, annotations = scene_with_whole_masks(seed)
    order = occlusion_order(detections, min_pixels=1, min_fraction=0.0)
    for i, ann in enumerate(annotations):
        pairs = list(zip([k + 1 for k in order.occluded_by[i]], order.cover_pixels[i]))
        assert sorted(pairs) == sorted((o["id"], o["pixels"]) for o in ann["occluded_by"])
        assert order.cover_pixels[i] == sorted(order.cover_pixels[i], reverse=True)  # most covering first
        assert order.occluded_fraction[i] == pytest.approx(ann["occlusion_rate"], abs=1e-6)
        x, y, w, h = ann["amodal_bbox"]
        assert order.amodal_boxes[i].tolist() == [x, y, x + w, y + h]


def test_a_whole_mask_that_bleeds_past_the_outline_names_no_neighbour_it_only_touches() -> None:
    for seed in (3, 4, 5):
        detections, annotations = scene_with_whole_masks(seed, grow_px=1)
        order = occlusion_order(detections)
        for i, ann in enumerate(annotations):
            truth = {o["id"] - 1: o["pixels"] for o in ann["occluded_by"]}
            assert set(order.occluded_by[i]) <= set(truth)  # nothing it merely touches
            whole = ann["amodal_area"]
            assert {k for k, n in truth.items() if n >= 0.1 * whole} <= set(order.occluded_by[i])


def test_the_whole_mask_holds_the_visible_one_and_an_alternative_reading_covers_nothing() -> None:
    full = np.zeros((2, 40, 60), bool)
    full[0, 5:30, 5:30] = True
    full[1, 10:20, 10:20] = True  # inside the first: another reading of it
    detections = Detections.from_full_masks(full, [0.9, 0.5], [0, 1])
    detections.alternative_of = np.array([-1, 0])
    detections.amodal_boxes = np.array([[5, 5, 20, 20], [10, 10, 20, 20]], np.int32)  # narrower than visible
    detections.amodal_masks = [np.ones((15, 15), bool), np.ones((10, 10), bool)]
    order = occlusion_order(detections)
    box, mask = whole_mask(detections, 0)
    assert box == (5, 5, 30, 30) and mask.all() and order.occluded_by == [[], []]
    with pytest.raises(ValueError, match="amodal"):
        occlusion_order(Detections.from_full_masks(full, [0.9, 0.5], [0, 1]))


def test_a_whole_mask_reaching_under_a_neighbour_that_stands_apart_names_only_the_one_touching_it() -> None:
    full = np.zeros((3, 40, 80), bool)
    full[0, 10:30, 10:30] = True  # i: what shows of it
    full[1, 10:30, 33:45] = True  # k: 3 px from i's visible pixels, on its hidden part
    full[2, 10:30, 55:70] = True  # j: under i's whole mask too, but 25 px away from what shows of i
    detections = Detections.from_full_masks(full, [0.9, 0.8, 0.7], [0, 1, 2])
    detections.amodal_boxes = np.array([[10, 10, 70, 30], [33, 10, 45, 30], [55, 10, 70, 30]], np.int32)
    detections.amodal_masks = [np.ones((20, 60), bool), np.ones((20, 12), bool), np.ones((20, 15), bool)]
    order = occlusion_order(detections)
    assert order.occluded_by == [[1], [], []]
    labels = np.zeros((40, 80), np.int32)
    for i in range(3):
        labels[full[i]] = i + 1
    near = touching(labels, 1, detections.mask_boxes[0], TOUCH_PX, 4)
    assert near.tolist() == [True, True, True, False]
    assert touching(labels, 1, detections.mask_boxes[0], 2, 4).tolist() == [True, True, False, False]
