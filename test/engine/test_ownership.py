"""Overlap ownership by evidence (engine.ownership): crafted overlaps with known logits."""

from __future__ import annotations

import numpy as np

from robot_instseg.engine.ownership import box_overlaps, mask_overlap, resolve
from robot_instseg.engine.types import Detections

SHAPE = (60, 80)


def _instance(box, logit_fn):
    """(mask box, bool mask, logits) with logits = logit_fn(ys, xs) in image coordinates."""
    x0, y0, x1, y1 = box
    ys, xs = np.mgrid[y0:y1, x0:x1]
    logits = logit_fn(ys, xs).astype(np.float32)
    return box, logits > 0, logits


def _detections(instances, scores, with_logits=True) -> Detections:
    boxes = np.array([b for b, _, _ in instances], np.float32)
    return Detections(image_shape=SHAPE, boxes=boxes, scores=scores, class_ids=np.arange(len(instances)),
                      mask_boxes=boxes.astype(np.int32), masks=[m for _, m, _ in instances],
                      mask_logits=[lg for _, _, lg in instances] if with_logits else [])


def _check_partition(det: Detections) -> np.ndarray:
    """Labels and visible masks agree pixel for pixel; no claimed pixel lost or doubled."""
    ownership = det.resolve_overlaps()
    visible = det.visible_masks(ownership)
    claimed = np.zeros(SHAPE, bool)
    count = np.zeros(SHAPE, int)
    for i in range(len(det)):
        if ownership.alternative_of[i] >= 0:
            continue
        claimed |= det.full_mask(i)
        np.testing.assert_array_equal(visible.full_mask(i), ownership.labels == i + 1)
        count += visible.full_mask(i)
    assert count.max() <= 1  # never doubled
    np.testing.assert_array_equal(ownership.labels > 0, claimed)  # never lost
    return ownership.labels


def test_more_confident_mask_wins_each_pixel_not_the_higher_score() -> None:
    # A (score 0.9) fades out to the right; B (score 0.8) is confident across the overlap.
    a = _instance((0, 0, 50, 40), lambda ys, xs: 8.0 - 0.3 * xs)  # logit 8 at x=0 .. -7 at x=49
    b = _instance((30, 10, 80, 50), lambda ys, xs: np.full(xs.shape, 6.0))
    det = _detections([a, b], [0.9, 0.8])
    labels = _check_partition(det)
    # In the overlap (x 30..49, y 10..39): A's logit at x=30 is -1 (not even in A's mask) -> B.
    assert (labels[10:40, 30:50] == 2).all()
    # Where both masks claim the pixel, evidence decides: A claims x < 26.67; overlap starts at 30,
    # so shift B left to make real contests.
    b2 = _instance((10, 10, 80, 50), lambda ys, xs: np.full(xs.shape, 3.0))
    labels = _check_partition(_detections([a, b2], [0.9, 0.8]))
    # 0.9 * sigmoid(8 - 0.3x) > 0.8 * sigmoid(3) only while A's logit is high enough.
    pa = 0.9 / (1 + np.exp(-(8.0 - 0.3 * np.arange(10, 27))))
    pb = 0.8 / (1 + np.exp(-3.0))
    expected = np.where(pa > pb, 1, 2)
    np.testing.assert_array_equal(labels[20, 10:27], expected)
    assert labels[20, 5] == 1 and labels[20, 60] == 2 and set(expected) == {1, 2}  # both win somewhere


def test_a_weak_detection_with_a_sharp_mask_does_not_cut_into_a_strong_one() -> None:
    strong = _instance((0, 0, 40, 40), lambda ys, xs: np.full(xs.shape, 2.0))
    weak = _instance((20, 20, 60, 60), lambda ys, xs: np.full(xs.shape, 12.0))  # sharp, but score 0.05
    labels = _check_partition(_detections([strong, weak], [0.9, 0.05]))
    assert (labels[20:40, 20:40] == 1).all() and labels[50, 50] == 2


def test_exact_ties_go_to_the_higher_score() -> None:
    a = _instance((0, 0, 40, 40), lambda ys, xs: np.full(xs.shape, 4.0))
    b = _instance((20, 20, 60, 60), lambda ys, xs: np.full(xs.shape, 4.0))
    labels = _check_partition(_detections([a, b], [0.7, 0.7]))
    assert (labels[20:40, 20:40] == 1).all()  # same evidence, same score: the lower index
    labels = _check_partition(_detections([a, b], [0.6, 0.7]))
    assert (labels[20:40, 20:40] == 2).all()


def test_a_second_reading_of_the_same_object_keeps_its_mask_and_takes_no_pixels() -> None:
    bowl = _instance((10, 10, 50, 50), lambda ys, xs: np.full(xs.shape, 5.0))
    box = _instance((12, 12, 50, 50), lambda ys, xs: np.full(xs.shape, 5.0))  # all inside the bowl: same object
    cup = _instance((40, 40, 70, 60), lambda ys, xs: np.full(xs.shape, 1.0))
    det = _detections([bowl, box, cup], [0.8, 0.6, 0.5])
    ownership = det.resolve_overlaps()
    assert ownership.alternative_of.tolist() == [-1, 0, -1]
    labels = _check_partition(det)
    assert not (labels == 2).any()  # the alternative owns nothing in the label image
    visible = det.visible_masks(ownership)
    np.testing.assert_array_equal(visible.masks[1], det.masks[1])  # its full mask is kept
    assert visible.alternative_of.tolist() == [-1, 0, -1]
    # Indexing keeps the link where both survive and drops it where the stronger is left out.
    assert visible[[1, 0]].alternative_of.tolist() == [1, -1]
    assert visible[[1, 2]].alternative_of.tolist() == [-1, -1]


def test_without_logits_the_higher_score_owns_the_overlap() -> None:
    a = _instance((0, 0, 40, 40), lambda ys, xs: np.full(xs.shape, 9.0))
    b = _instance((20, 20, 60, 60), lambda ys, xs: np.full(xs.shape, 1.0))
    labels = _check_partition(_detections([a, b], [0.5, 0.9], with_logits=False))
    assert (labels[20:40, 20:40] == 2).all()


def test_empty_frame_and_helpers() -> None:
    assert resolve(SHAPE, np.zeros((0, 4), np.int32), [], np.zeros(0)).labels.max() == 0
    boxes = np.array([[0, 0, 10, 10], [10, 0, 20, 10], [5, 5, 15, 15]])
    assert box_overlaps(boxes).tolist() == [[False, False, True], [False, False, True], [True, True, False]]
    m = np.ones((10, 10), bool)
    assert mask_overlap(boxes[0], m, boxes[1], m) == 0.0
    assert mask_overlap(boxes[0], m, boxes[2], m) == 25 / 100
    assert mask_overlap(boxes[0], m, boxes[2], np.zeros((10, 10), bool)) == 0.0


def test_an_object_inside_another_ones_box_is_its_own_object() -> None:
    # A bowl seen from above whose mask is a ring, and a can standing in it: boxes nest, masks do not.
    def ring(ys, xs):
        r = np.hypot(ys - 30, xs - 40)
        return np.where((r > 12) & (r < 25), 4.0, -4.0)

    bowl = _instance((15, 5, 65, 55), ring)
    can = _instance((32, 22, 48, 38), lambda ys, xs: np.full(xs.shape, 3.0))
    det = _detections([bowl, can], [0.9, 0.5])
    assert det.resolve_overlaps().alternative_of.tolist() == [-1, -1]
    labels = _check_partition(det)
    assert (labels[24:36, 34:46] == 2).all() and labels[30, 20] == 1
