"""One frame through the Segmenter exactly as the node does it, shared by the node and
``robot-instseg run`` so a bag processed offline gives the instances the node published live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from robot_instseg.engine.types import Detections

if TYPE_CHECKING:
    from robot_instseg.engine.segmenter import Segmenter, SegmentResult

MASK_KINDS = ("visible", "raw")  # what the node publishes / the decoder's overlapping masks


@dataclass
class FrameOutput:
    """One segmented frame: the decoder's result, the label image, and the visible masks."""

    result: SegmentResult  # (detections before overlap resolution, timings)
    labels: np.ndarray  # HxW uint16 instance ids, 0 = background; overlaps owned by evidence
    visible: Detections  # detections cut to the pixels they own in ``labels``

    @property
    def weak(self) -> Detections:
        """Detections under the score threshold decoded for a tracker only (empty unless the Segmenter's
        ``weak_score_threshold`` asked for them); never published."""
        weak = self.result.weak
        return weak if weak is not None else Detections.empty(self.visible.image_shape)

    def detections(self, masks: str = "visible") -> Detections:
        """The visible masks (as published), or the decoder's raw, overlapping ones."""
        if masks not in MASK_KINDS:
            raise ValueError(f"masks must be one of {MASK_KINDS}, got {masks!r}")
        return self.visible if masks == "visible" else self.result.detections


def segment_frame(segmenter: Segmenter, image: np.ndarray, channel_order: str) -> FrameOutput:
    """Segment one image and resolve overlaps once, as the node publishes it."""
    return resolved(segmenter.segment(image, channel_order))


def segment_frames(segmenter: Segmenter, frames: Sequence[tuple[np.ndarray, str]],
                   max_batch: int = 0) -> list[FrameOutput]:
    """Segment several (image, channel_order) frames, batched as the model allows (``Segmenter.segment_batch``);
    each output equals ``segment_frame`` of its frame."""
    return [resolved(result) for result in segmenter.segment_batch(frames, max_batch)]


def resolved(result: SegmentResult) -> FrameOutput:
    """The frame with overlaps owned: as the device pipeline resolved them, else resolved here once
    (masks, labels and overlay share it)."""
    if result.ownership is not None and result.visible is not None:
        return FrameOutput(result, result.ownership.labels, result.visible)
    ownership = result.detections.resolve_overlaps()
    return FrameOutput(result, ownership.labels, result.detections.visible_masks(ownership))
