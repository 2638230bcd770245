"""One frame through the Segmenter exactly as the node does it, shared by the node and
``robot-instseg run`` so a bag processed offline gives the instances the node published live."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_instseg.engine.types import Detections

MASK_KINDS = ("visible", "raw")  # what the node publishes / the decoder's overlapping masks


@dataclass
class FrameOutput:
    result: object  # engine SegmentResult (detections before overlap resolution, timings)
    labels: np.ndarray  # HxW uint16 instance ids, 0 = background; overlaps owned by evidence
    visible: Detections  # detections cut to the pixels they own in ``labels``

    def detections(self, masks: str = "visible") -> Detections:
        """The visible masks (as published), or the decoder's raw, overlapping ones."""
        if masks not in MASK_KINDS:
            raise ValueError(f"masks must be one of {MASK_KINDS}, got {masks!r}")
        return self.visible if masks == "visible" else self.result.detections


def segment_frame(segmenter, image: np.ndarray, channel_order: str) -> FrameOutput:
    result = segmenter.segment(image, channel_order)
    ownership = result.detections.resolve_overlaps()  # once per frame: masks, labels and overlay share it
    return FrameOutput(result, ownership.labels, result.detections.visible_masks(ownership))


def frame_image(frame) -> tuple[np.ndarray, str]:
    """(image, channel order) of a frame_sources.Frame: its pixels, or its bag message decoded.
    InputError for a frame its source could not read (named in ``frame.error``)."""
    if frame.error:
        from robot_instseg.engine.errors import InputError

        raise InputError(frame.error, "unreadable")
    return decode_fields(frame.raw_type, frame.raw) if frame.raw is not None else (frame.rgb, "rgb")


def decode_fields(raw_type: str, fields: dict) -> tuple[np.ndarray, str]:
    """(uint8 image, channel order) from an Image / CompressedImage's fields (a bag's message)."""
    from robot_instseg.image_encodings import decode_compressed, decode_raw

    if raw_type.endswith("CompressedImage"):
        return decode_compressed(fields["format"], fields["data"])
    return decode_raw(fields["encoding"], fields["height"], fields["width"], fields["step"], fields["data"],
                      bool(fields.get("is_bigendian", 0)))
