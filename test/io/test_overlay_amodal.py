"""The overlay dashes each whole object's outline where a model with the amodal head gives one."""

from __future__ import annotations

import numpy as np

from robot_instseg.engine.types import Detections
from robot_instseg.io.overlay import draw


def test_the_hidden_part_of_a_whole_object_is_outlined_dashed() -> None:
    full = np.zeros((1, 80, 100), bool)
    full[0, 20:60, 20:50] = True  # visible: the left part
    detections = Detections.from_full_masks(full, [0.9], [0])
    detections.amodal_boxes = np.array([[20, 20, 80, 60]], np.int32)  # whole: it runs on to x = 80
    detections.amodal_masks = [np.ones((40, 60), bool)]
    image = np.zeros((80, 100, 3), np.uint8)
    plain = draw(image, Detections.from_full_masks(full, [0.9], [0]))
    drawn = draw(image, detections)
    far_edge = drawn[20:60, 79].any(axis=1)  # the whole object's right edge, behind whatever hides it
    assert not plain[20:60, 79].any() and 0.3 < far_edge.mean() < 0.7  # dashes: about half the edge drawn
    runs = np.flatnonzero(np.diff(far_edge.astype(int)) != 0)
    assert len(runs) >= 4  # drawn and gap, several times
