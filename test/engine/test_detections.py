"""Detections: cropped masks, label image, RLE, polygons, filtering and indexing."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_graphs import rect_mask
from pycocotools import mask as mask_utils

from robot_instseg.engine.types import Detections


def _three() -> Detections:
    shape = (120, 160)
    masks = np.stack([rect_mask(shape, 10, 10, 60, 60), rect_mask(shape, 40, 40, 100, 90),
                      rect_mask(shape, 120, 5, 150, 30)])
    return Detections.from_full_masks(masks, scores=[0.5, 0.9, 0.7], class_ids=[0, 1, 0],
                                      class_names=["cup", "bowl", "cup"])


def test_masks_are_stored_cropped_to_their_boxes() -> None:
    det = _three()
    assert [m.shape for m in det.masks] == [(50, 50), (50, 60), (25, 30)]
    assert det.full_mask(1).sum() == 50 * 60
    assert list(det.areas()) == [2500, 3000, 750]


def test_label_image_gives_overlaps_to_the_higher_score_and_visible_masks_agree() -> None:
    det = _three()
    labels = det.to_label_image()
    assert labels.dtype == np.uint16 and labels.shape == (120, 160)
    assert labels[45, 45] == 2  # overlap: instance 1 (score 0.9) wins over instance 0 (0.5)
    assert labels[15, 15] == 1 and labels[10, 130] == 3 and labels[0, 0] == 0
    visible = det.visible_masks()
    for i in range(len(det)):
        np.testing.assert_array_equal(visible.full_mask(i), labels == i + 1)


def test_rle_decodes_back_to_the_masks_with_pycocotools() -> None:
    det = _three()
    rles = det.to_rle()
    for i, rle in enumerate(rles):
        assert isinstance(rle["counts"], str) and rle["size"] == [120, 160]
        np.testing.assert_array_equal(mask_utils.decode({**rle, "counts": rle["counts"].encode()}).astype(bool),
                                      det.full_mask(i))
    assert list(mask_utils.area([{**r, "counts": r["counts"].encode()} for r in rles])) == [2500, 3000, 750]


def test_polygons_trace_the_mask_in_image_coordinates() -> None:
    det = _three()
    (poly,) = det.to_polygons(2)
    assert poly[:, 0].min() == 120 and poly[:, 0].max() == 149
    assert poly[:, 1].min() == 5 and poly[:, 1].max() == 29


def test_filter_and_indexing() -> None:
    det = _three()
    best = det.filter(min_score=0.6)
    assert list(best.scores) == [np.float32(0.9), np.float32(0.7)] and best.class_names == ["bowl", "cup"]
    cups = det.filter(class_names=["cup"], max_count=1)
    assert cups.class_names == ["cup"] and cups.scores[0] == np.float32(0.7)
    assert len(det.filter(class_ids=[1])) == 1
    assert len(det[det.scores > 0.95]) == 0 and det[1].class_names == ["bowl"]
    np.testing.assert_array_equal(det[[2, 0]].full_mask(1), det.full_mask(0))
    assert det.xywh()[1].tolist() == [40, 40, 60, 50]


def test_split_at_a_score_and_concatenate_back() -> None:
    det = _three()
    det.alternative_of = np.array([-1, -1, 0])  # the third is another reading of the first
    above, below = det.split_at(0.8)
    assert above.scores.tolist() == [np.float32(0.9)] and len(above) + len(below) == 3
    joined = Detections.concatenate(below, above)
    assert sorted(joined.scores.tolist()) == sorted(det.scores.tolist())
    assert len(joined.masks) == 3 and all(m.shape for m in joined.masks)
    both = Detections.concatenate(det, det)
    assert both.alternative_of.tolist() == [-1, -1, 0, -1, -1, 3]  # the second copy points into itself
    np.testing.assert_array_equal(both.full_mask(4), det.full_mask(1))
    assert Detections.concatenate(det, Detections.empty(det.image_shape)) is det
    with pytest.raises(ValueError, match="cannot join"):
        Detections.concatenate(det, Detections.empty((5, 5)))


def test_amodal_reach_follows_its_instances_and_stands_in_for_the_whole_masks_when_absent() -> None:
    det = _three()
    det.amodal_boxes = det.mask_boxes.copy()
    det.amodal_masks = [m.copy() for m in det.masks]
    assert det.reaches is det.amodal_masks  # one threshold: the whole masks are the reach
    det.amodal_reach = [np.ones_like(m) for m in det.masks]
    picked = det[[2, 0]]
    assert [r.shape for r in picked.amodal_reach] == [det.masks[2].shape, det.masks[0].shape]
    assert picked.reaches is picked.amodal_reach and all(r.all() for r in picked.reaches)
    above, below = det.split_at(0.8)
    joined = Detections.concatenate(below, above)
    assert len(joined.amodal_reach) == 3 and all(r.all() for r in joined.amodal_reach)
    single = _three()
    single.amodal_boxes, single.amodal_masks = det.amodal_boxes, [np.zeros_like(m) for m in det.masks]
    mixed = Detections.concatenate(det, single)  # one with a reach, one without: each keeps its own
    assert len(mixed.amodal_reach) == 6 and not mixed.amodal_reach[3].all()
    with pytest.raises(ValueError, match="amodal reaches"):
        Detections(image_shape=det.image_shape, boxes=det.boxes, scores=det.scores, class_ids=det.class_ids,
                   mask_boxes=det.mask_boxes, masks=det.masks, amodal_boxes=det.amodal_boxes,
                   amodal_masks=det.amodal_masks, amodal_reach=det.amodal_reach[:1])


def test_empty_detections() -> None:
    det = Detections.empty((10, 20))
    assert len(det) == 0 and det.to_label_image().max() == 0 and det.to_rle() == [] and len(det.filter(0.5)) == 0
