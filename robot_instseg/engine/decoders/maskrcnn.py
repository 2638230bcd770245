"""torchvision Mask R-CNN style exports: boxes [N, 4] xyxy in input pixels, labels [N] int64,
scores [N], masks [N, 1, H, W] probabilities already at input size. NMS is done in the model.

torchvision has pasted each mask into the input frame (``paste_masks_in_image``); we resize
that frame to the image bilinearly (padding dropped) and threshold it, not cut to the box.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from robot_instseg.engine.backends.base import TensorInfo
from robot_instseg.engine.decoders.base import Decoder, Selection, outputs_by_rank
from robot_instseg.engine.postprocess import PostprocessSettings, class_allowed
from robot_instseg.engine.preprocess import LetterboxTransform


class MaskRCNNDecoder(Decoder):
    """torchvision Mask R-CNN exports: boxes, labels, scores and a full-image mask probability map each."""

    name = "maskrcnn"

    def __init__(self, boxes: str, labels: str, scores: str, masks: str) -> None:
        self.boxes, self.labels, self.scores, self.masks = boxes, labels, scores, masks

    @classmethod
    def match(cls, outputs: list[TensorInfo], metadata: dict[str, str]) -> Optional["MaskRCNNDecoder"]:
        groups = outputs_by_rank(outputs, {2: 1, 1: 2, 4: 1})
        if groups is None:
            return None
        boxes = [o for o in groups[2] if o.shape[1] == 4]
        labels = [o for o in groups[1] if o.dtype.startswith("int")]
        scores = [o for o in groups[1] if o.dtype.startswith("float")]
        masks = [o for o in groups[4] if o.shape[1] in (1, None)]
        if not (len(boxes) == len(labels) == len(scores) == len(masks) == 1):
            return None
        return cls(boxes[0].name, labels[0].name, scores[0].name, masks[0].name)

    def select(self, raw: dict[str, np.ndarray], transform: LetterboxTransform,
               settings: PostprocessSettings) -> Selection:
        scores = raw[self.scores].astype(np.float32).reshape(-1)
        class_ids = raw[self.labels].astype(np.int64).reshape(-1)
        keep = np.nonzero((scores >= settings.score_threshold) & class_allowed(class_ids, settings.class_ids))[0]
        keep = keep[np.argsort(-scores[keep], kind="stable")][:settings.max_detections]
        boxes = transform.clip_boxes(transform.to_image(raw[self.boxes].reshape(-1, 4)[keep].astype(np.float32)))
        masks = raw[self.masks]  # (N, 1, H, W) probabilities

        def region(i: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
            return masks[keep[i], 0, y0:y1, x0:x1]

        return Selection(boxes=boxes, scores=scores[keep], class_ids=class_ids[keep], map_shape=masks.shape[2:],
                         region=region, full_maps=lambda: masks[keep, 0], threshold=settings.mask_threshold,
                         crop_to_box=False, probabilities=True)
