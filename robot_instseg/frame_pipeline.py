"""One frame through the Segmenter exactly as the node does it, shared by the node and
``robot-instseg run`` so a bag processed offline gives the instances the node published live."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_instseg.engine.types import Detections


@dataclass
class FrameOutput:
    result: object  # engine SegmentResult (detections before overlap resolution, timings)
    labels: np.ndarray  # HxW uint16 instance ids, 0 = background; higher score owns overlaps
    visible: Detections  # detections cut to the pixels they own in ``labels``


def segment_frame(segmenter, image: np.ndarray, channel_order: str) -> FrameOutput:
    result = segmenter.segment(image, channel_order)
    labels = result.detections.to_label_image()  # once per frame: masks, labels and overlay share it
    return FrameOutput(result, labels, result.detections.visible_masks(labels))


def frame_image(frame) -> tuple[np.ndarray, str]:
    """(image, channel order) of a frame_sources.Frame: its pixels, or its bag message decoded."""
    return decode_fields(frame.raw_type, frame.raw) if frame.raw is not None else (frame.rgb, "rgb")


def decode_fields(raw_type: str, fields: dict) -> tuple[np.ndarray, str]:
    """(uint8 image, channel order) from an Image / CompressedImage's fields (a bag's message)."""
    from robot_instseg.image_encodings import decode_compressed, decode_raw

    if raw_type.endswith("CompressedImage"):
        return decode_compressed(fields["format"], fields["data"])
    return decode_raw(fields["encoding"], fields["height"], fields["width"], fields["step"], fields["data"],
                      bool(fields.get("is_bigendian", 0)))
