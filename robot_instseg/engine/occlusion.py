"""What lies behind, per frame: each instance's whole (amodal) mask, how much of it is hidden, and by whom.

A model with the amodal head decodes each instance's whole mask (``Detections.amodal_masks``). Here that
mask is joined with the instance's visible one (a whole object holds what shows of it) and cut to its
extent; the occluders of an instance are the instances whose visible pixels lie inside its whole mask (its
reach, ``Detections.amodal_reach``, where the model publishes its whole masks at a higher threshold than the
one that finds what lies under an occluder).
A whole mask decoded a pixel or two past an object's outline reaches into its neighbours, along the whole
outline of one lying on it; so j lies on i only where j's visible pixels cover more of i's whole mask than
i's cover of j's (each pair is ordered one way), and at least ``MIN_COVER_PIXELS`` and ``MIN_COVER_FRACTION``
of the smaller of the two whole objects. And j must touch what shows of i (within ``TOUCH_PX``): where an object
hides part of another, the hidden part ends at its outline, so its visible mask borders the other's. A head
that reaches under a neighbour standing apart (43 % of the whole masks' orders on eval3d's scenes named two
objects that do not overlap at all) orders nothing there.
An instance nothing lies on (``occluded_by`` empty) is the one a picker takes first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from robot_instseg.engine.types import Detections

MIN_COVER_PIXELS = 10
MIN_COVER_FRACTION = 0.015
TOUCH_PX = 4  # an occluder's visible pixels lie this close to the visible pixels of what it hides


@dataclass(frozen=True)
class OcclusionOrder:
    """Per instance of one frame: its whole mask over its own tight box, the hidden fraction and its occluders."""

    amodal_boxes: np.ndarray  # (N, 4) int32 x0 y0 x1 y1, exclusive ends
    amodal_masks: list[np.ndarray]  # bool, each (y1 - y0, x1 - x0)
    occluded_fraction: np.ndarray  # (N,) float32: 1 - visible area / whole area
    occluded_by: list[list[int]]  # indices of the instances on it, most covering first
    cover_pixels: list[list[int]]  # the pixels each of those covers, in the same order


def visible_labels(detections: Detections, window: Optional[tuple[int, int, int, int]] = None) -> np.ndarray:
    """int32 image: the index + 1 of the instance owning each pixel's visible mask, 0 where none (an
    alternative reading of a stronger instance owns nothing; the first of two masks claiming a pixel keeps
    it); over ``window`` (x0, y0, x1, y1, holding every mask box) or the whole image."""
    h, w = detections.image_shape
    left, top, right, bottom = window if window is not None else (0, 0, w, h)
    labels = np.zeros((bottom - top, right - left), np.int32)
    for i, (x0, y0, x1, y1) in enumerate(detections.mask_boxes.tolist()):
        if detections.alternative_of[i] < 0:
            region = labels[y0 - top:y1 - top, x0 - left:x1 - left]
            region[detections.masks[i] & (region == 0)] = i + 1
    return labels


def touching(labels: np.ndarray, label: int, box: np.ndarray, px: int, count: int) -> np.ndarray:
    """bool (count,): which of the labels 0 .. count - 1 of the label image lie within ``px`` pixels of the
    pixels labelled ``label`` (inside ``box``, x0 y0 x1 y1, which holds them all)."""
    h, w = labels.shape
    x0, y0 = max(int(box[0]) - px, 0), max(int(box[1]) - px, 0)
    x1, y1 = min(int(box[2]) + px, w), min(int(box[3]) + px, h)
    region = labels[y0:y1, x0:x1]
    kernel = np.ones((2 * px + 1, 2 * px + 1), np.uint8)
    near = cv2.dilate((region == label).astype(np.uint8), kernel).astype(bool)
    return np.bincount(region[near], minlength=count)[:count] > 0


def whole_mask(detections: Detections, i: int, reach: bool = False) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """Instance ``i``'s amodal mask (``reach``: the head's reach, ``Detections.reaches``) joined with its visible
    one, cut to its extent: (box, mask)."""
    boxes = [detections.amodal_boxes[i], detections.mask_boxes[i]]
    amodal = detections.reaches[i] if reach else detections.amodal_masks[i]
    x0, y0 = min(int(b[0]) for b in boxes), min(int(b[1]) for b in boxes)
    x1, y1 = max(int(b[2]) for b in boxes), max(int(b[3]) for b in boxes)
    joined = np.zeros((y1 - y0, x1 - x0), bool)
    for (bx0, by0, bx1, by1), mask in ((boxes[0], amodal), (boxes[1], detections.masks[i])):
        joined[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0] |= mask
    rows, cols = np.flatnonzero(joined.any(1)), np.flatnonzero(joined.any(0))
    if not len(rows):
        return (x0, y0, x0, y0), np.zeros((0, 0), bool)
    tight = joined[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return (x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1), tight


def occlusion_order(detections: Detections, min_pixels: int = MIN_COVER_PIXELS,
                    min_fraction: float = MIN_COVER_FRACTION) -> OcclusionOrder:
    """The occlusion order of ``detections`` (visible masks already cut to the pixels each owns, as published;
    an alternative reading of a stronger instance covers nothing). ValueError without amodal masks."""
    if len(detections) and not detections.has_amodal:
        raise ValueError("occlusion_order needs the amodal masks of a model with the amodal head")
    labels = visible_labels(detections)
    n = len(detections)
    boxes, masks, fractions, areas = [], [], [], []
    cover = np.zeros((n, n + 1), np.int64)  # cover[i, j + 1]: visible pixels of j inside i's whole mask
    two = bool(detections.amodal_reach)  # published tighter than the head's reach: the order reads the reach
    for i in range(n):
        box, whole = whole_mask(detections, i)
        boxes.append(box)
        masks.append(whole)
        area = int(whole.sum())
        fractions.append(0.0 if area == 0 else 1.0 - min(int(detections.masks[i].sum()), area) / area)
        (x0, y0, x1, y1), reach = whole_mask(detections, i, reach=True) if two else (box, whole)
        areas.append(int(reach.sum()))
        cover[i] = np.bincount(labels[y0:y1, x0:x1][reach], minlength=n + 1)
        cover[i, [0, i + 1]] = 0
        if cover[i].any():  # most instances cover nobody: the touch test only where it can matter
            cover[i, ~touching(labels, i + 1, detections.mask_boxes[i], TOUCH_PX, n + 1)] = 0
        if detections.alternative_of[i] >= 0:  # another reading of the same object does not lie on it
            cover[i, detections.alternative_of[i] + 1] = 0
    whole_areas = np.asarray(areas, np.int64)
    occluders, covers = [], []
    for i in range(n):
        counts = cover[i, 1:]
        # j lies on i when it covers more of i's whole mask than i covers of j's (the other way round is a
        # whole mask decoded past its outline into the object on top of it), by enough of the smaller object
        enough = np.maximum(min_pixels, min_fraction * np.minimum(whole_areas[i], whole_areas))
        on_top = (counts >= enough) & (counts > cover[:, i + 1])
        order = np.flatnonzero(on_top)
        order = order[np.argsort(-counts[order], kind="stable")]
        occluders.append([int(k) for k in order])
        covers.append([int(counts[k]) for k in order])
    return OcclusionOrder(np.asarray(boxes, np.int32).reshape(-1, 4), masks, np.asarray(fractions, np.float32),
                          occluders, covers)
