"""Occlusion order read from depth at the borders visible masks share (geometry.depth_order)."""

from __future__ import annotations

import numpy as np
import pytest

from robot_instseg.dataset.depth_eval import evaluate_depth_fusion
from robot_instseg.engine.types import Detections
from robot_instseg.geometry.depth_order import (
    INSET_PX,
    MAX_GAP_PX,
    MIN_SAMPLES,
    border_readings,
    depth_occlusion,
    order_pairs,
)

SHAPE = (120, 160)


def _frame(boxes: list[tuple[int, int, int, int]], depths: list[float]) -> tuple[Detections, np.ndarray]:
    """Rectangles painted back to front (later ones nearer and on top); visible masks and rendered depth."""
    owner = np.zeros(SHAPE, np.int32)
    depth = np.full(SHAPE, 2.0, np.float32)  # a far wall behind everything
    for i, ((x0, y0, x1, y1), z) in enumerate(zip(boxes, depths)):
        owner[y0:y1, x0:x1] = i + 1
        depth[y0:y1, x0:x1] = z
    masks = np.array([owner == i + 1 for i in range(len(boxes))])
    return Detections.from_full_masks(masks, [0.9] * len(boxes), [0] * len(boxes)), depth


def test_the_nearer_of_two_overlapping_objects_lies_on_the_other() -> None:
    detections, depth = _frame([(20, 20, 100, 90), (70, 40, 130, 110)], [1.0, 0.8])
    assert depth_occlusion(detections, depth) == [[1], []]


def test_objects_side_by_side_at_one_depth_are_not_ordered() -> None:
    detections, depth = _frame([(20, 20, 70, 90), (70, 20, 130, 90)], [1.0, 1.0])
    assert depth_occlusion(detections, depth) == [[], []]
    detections, depth = _frame([(20, 20, 70, 90), (70, 20, 130, 90)], [1.0, 1.005])  # below the step rule
    assert depth_occlusion(detections, depth) == [[], []]


def test_holes_and_flying_pixels_on_the_border_do_not_decide() -> None:
    detections, depth = _frame([(20, 20, 100, 90), (70, 40, 130, 110)], [1.0, 0.8])
    border = np.zeros(SHAPE, bool)  # two pixels either side of the occluder's outline
    border[38:42, 68:132] = border[38:112, 68:72] = True
    depth[border & (np.arange(SHAPE[1])[None, :] % 2 == 0)] = np.nan
    depth[border & (np.arange(SHAPE[1])[None, :] % 2 == 1)] = 1.9  # readings that mix in the far wall
    assert INSET_PX > 2
    assert depth_occlusion(detections, depth) == [[1], []]


def test_masks_that_stop_short_of_the_border_still_meet_within_the_gap() -> None:
    detections, depth = _frame([(20, 20, 100, 90), (70, 40, 130, 110)], [1.0, 0.8])
    cut = detections.masks[0].copy()
    x0, y0 = int(detections.mask_boxes[0][0]), int(detections.mask_boxes[0][1])
    cut[:, 70 - MAX_GAP_PX - x0:] &= False  # the far mask ends MAX_GAP_PX short of the near one's edge
    cut[40 - MAX_GAP_PX - y0:, 70 - MAX_GAP_PX - x0:] = False
    detections.masks[0] = cut
    assert depth_occlusion(detections, depth) == [[1], []]
    cut[:, 70 - MAX_GAP_PX - 2 - x0:] = False  # two more pixels: the masks no longer meet
    assert depth_occlusion(detections, depth) == [[], []]


def test_a_corner_touch_is_too_little_border() -> None:
    detections, depth = _frame([(20, 20, 70, 70), (70, 70 - (MIN_SAMPLES - 2), 120, 110)], [1.0, 0.8])
    assert depth_occlusion(detections, depth) == [[], []]


def test_an_alternative_reading_is_in_no_pair() -> None:
    detections, depth = _frame([(20, 20, 100, 90), (70, 40, 130, 110)], [1.0, 0.8])
    detections.alternative_of = np.array([-1, 0])
    assert depth_occlusion(detections, depth) == [[], []]


def test_the_longest_shared_border_comes_first() -> None:
    detections, depth = _frame([(10, 10, 150, 110), (20, 20, 40, 40), (60, 20, 120, 90)], [1.0, 0.8, 0.8])
    assert depth_occlusion(detections, depth) == [[2, 1], [], []]
    first, second = np.array([1] * 6 + [2] * 4), np.array([2] * 6 + [1] * 4)
    near, far = np.full(10, 0.5, np.float32), np.full(10, 0.9, np.float32)
    assert order_pairs(first, second, far, near, 2) == [[1], []]  # 2 nearer wherever they meet, either way round
    assert order_pairs(first[:MIN_SAMPLES - 1], second[:MIN_SAMPLES - 1], far[:4], near[:4], 2) == [[], []]


def test_one_instance_or_none() -> None:
    detections, depth = _frame([(20, 20, 100, 90)], [1.0])
    assert depth_occlusion(detections, depth) == [[]]
    assert depth_occlusion(detections[np.zeros(0, np.int64)], depth) == []


def test_instances_without_pixels_meet_nowhere() -> None:
    """Two empty masks make an empty window: no readings and no order, not an error."""
    empty = Detections(image_shape=(40, 50), boxes=np.array([[5, 5, 5, 5], [9, 9, 9, 9]], np.float32),
                       scores=[0.9, 0.8], class_ids=[0, 0], mask_boxes=np.array([[5, 5, 5, 5], [9, 9, 9, 9]]),
                       masks=[np.zeros((0, 0), bool), np.zeros((0, 0), bool)])
    assert depth_occlusion(empty, np.ones((40, 50), np.float32)) == [[], []]
    for shape in ((0, 7), (7, 0)):
        assert all(len(a) == 0 for a in border_readings(np.zeros(shape, np.uint16), np.ones(shape, np.float32), 6, 3, 2))


@pytest.mark.parametrize("artefacts", [False, True])
def test_true_masks_order_the_scenes_pairs(artefacts: bool) -> None:
    """eval3d's scenes with the true visible masks: nearly every covering pair ordered right, none reversed.
    (Sensor artefacts: flying pixels and holes along depth edges, as on a real camera.)"""
    order = evaluate_depth_fusion(12, seed=31, artefacts=artefacts).summary()["occlusion_order"]["depth"]
    assert order["pairs"] >= 30, order
    assert order["order_accuracy"] >= 0.95 and order["reversed"] == 0, order
    assert order["spurious"] <= 0.15 * order["ordered"], order
