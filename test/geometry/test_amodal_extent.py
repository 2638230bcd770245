"""The box over an instance's whole extent: hidden pixels placed on its surface plane, overreach left out."""

from __future__ import annotations

import numpy as np

from robot_instseg.dataset.depth_eval import evaluate_depth_fusion
from robot_instseg.engine.types import Detections
from robot_instseg.geometry.amodal_extent import hidden_pixels, whole_object_box, with_whole_extent
from robot_instseg.geometry.fusion import fuse
from robot_instseg.geometry.intrinsics import Intrinsics

K = Intrinsics(500.0, 500.0, 79.5, 59.5, 160, 120)
TABLE_M, OBJECT_M, OCCLUDER_M = 1.0, 0.9, 0.8
OBJECT = (40, 40, 100, 80)  # x0, y0, x1, y1: a 60 x 40 px plate at OBJECT_M
OCCLUDER_X0 = 70  # the occluder covers the plate from this column on (its right half)


def _depth() -> np.ndarray:
    depth = np.full((K.height, K.width), TABLE_M, np.float32)
    x0, y0, x1, y1 = OBJECT
    depth[y0:y1, x0:x1] = OBJECT_M
    depth[30:90, OCCLUDER_X0:130] = OCCLUDER_M
    return depth


def _plate(whole_left: int = OBJECT[0]) -> Detections:
    """The plate's visible part (left of the occluder) with a whole mask from ``whole_left`` to its right edge."""
    x0, y0, x1, y1 = OBJECT
    visible = np.zeros((K.height, K.width), bool)
    visible[y0:y1, x0:OCCLUDER_X0] = True
    detections = Detections.from_full_masks(visible[None], [0.9], [0])
    detections.amodal_boxes = np.array([[whole_left, y0, x1, y1]], np.int32)
    detections.amodal_masks = [np.ones((y1 - y0, x1 - whole_left), bool)]
    return detections


def test_hidden_pixels_are_the_whole_mask_minus_the_visible_one_in_frame_coordinates() -> None:
    rng = np.random.default_rng(3)
    visible_full, whole_full = rng.random((50, 60)) < 0.5, rng.random((50, 60)) < 0.7
    visible_full[:, :5] = visible_full[:3] = visible_full[40:] = whole_full[:, 50:] = False  # the crops' boxes differ
    hidden = hidden_pixels(visible_full[3:40, 5:60], (5, 3), whole_full[0:50, 0:50], (0, 0))
    np.testing.assert_array_equal(hidden, (whole_full & ~visible_full)[0:50, 0:50])


def test_the_box_spans_the_part_behind_the_occluder_at_the_plates_depth() -> None:
    depth, detections = _depth(), _plate()
    fusion = fuse(detections, depth, K, complete=False)
    visible_box = fusion.instances[0].box_size
    whole = with_whole_extent(fusion, detections, depth, K).instances[0]
    width_m, height_m = 60 * OBJECT_M / K.fx, 40 * OBJECT_M / K.fy  # the sides (longer first) of the whole plate
    assert abs(visible_box[0] - height_m) < 0.004 and abs(visible_box[1] - width_m / 2) < 0.004  # its visible half
    assert abs(whole.box_size[0] - width_m) < 0.004 and abs(whole.box_size[1] - height_m) < 0.004
    assert abs(whole.box_center[2] - OBJECT_M) < 0.002  # on the plate, not on the occluder
    np.testing.assert_array_equal(whole.centroid, fusion.instances[0].centroid)  # the measured surface's
    assert len(whole.points) == len(fusion.instances[0].points)


def test_a_whole_mask_reaching_over_the_table_adds_nothing_there() -> None:
    depth = _depth()
    reaching = _plate(whole_left=OBJECT[0] - 15)  # 15 px left of the plate: depth reads the table there
    exact = _plate()
    boxes = [with_whole_extent(fuse(d, depth, K, complete=False), d, depth, K).instances[0].box_size
             for d in (reaching, exact)]
    np.testing.assert_allclose(boxes[0], boxes[1], atol=1e-9)


def test_nothing_hidden_leaves_the_instance_as_it_was() -> None:
    depth, detections = _depth(), _plate()
    x0, y0, _, y1 = OBJECT
    detections.amodal_boxes = np.array([[x0, y0, OCCLUDER_X0, y1]], np.int32)  # whole = visible
    detections.amodal_masks = [np.ones((y1 - y0, OCCLUDER_X0 - x0), bool)]
    geo = fuse(detections, depth, K, complete=False).instances[0]
    assert whole_object_box(geo, detections.masks[0], (x0, y0), detections.amodal_masks[0], (x0, y0), depth, K) is geo


def test_without_whole_masks_the_fusion_is_returned_unchanged() -> None:
    depth, detections = _depth(), _plate()
    detections.amodal_boxes, detections.amodal_masks = np.zeros((0, 4), np.int32), []
    fusion = fuse(detections, depth, K, complete=False)
    assert with_whole_extent(fusion, detections, depth, K) is fusion


def test_true_whole_masks_shrink_the_box_size_error_of_occluded_objects() -> None:
    """eval3d with the ground truth's masks on sensor depth: the whole extent's box against the visible one's."""
    sizes = evaluate_depth_fusion(12, seed=23, artefacts=True).summary()["box_size"]
    occluded, everything = sizes["occluded"], sizes["all"]
    assert occluded["visible_mm"]["n"] >= 10
    assert occluded["whole_mm"]["median"] < 0.5 * occluded["visible_mm"]["median"]
    assert occluded["long_side_visible_mm"]["median"] < -5.0  # the visible surface's box is short
    assert abs(occluded["long_side_whole_mm"]["median"]) < 5.0
    assert everything["whole_mm"]["p95"] < everything["visible_mm"]["p95"]
