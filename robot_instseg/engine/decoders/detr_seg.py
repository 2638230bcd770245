"""RF-DETR-Seg style exports: boxes [1, Q, 4] normalised cx, cy, w, h; class logits
[1, Q, nc(+1)]; mask logits [1, Q, h, w] spanning the model input.

Scores are sigmoid(class logits); like RF-DETR's own post-processing, the best
(query, class) pairs over the flattened Q x C grid are kept, with no NMS (set prediction).
Masks follow RF-DETR's too: the whole logit map resized bilinearly to the image, logit > 0,
not cut to the box; we compute only the pixels that can be positive.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from robot_instseg.engine.backends.base import TensorInfo
from robot_instseg.engine.decoders.base import Decoder, Selection, outputs_by_rank
from robot_instseg.engine.postprocess import PostprocessSettings, class_allowed, cxcywh_to_xyxy, logit
from robot_instseg.engine.preprocess import LetterboxTransform


class DetrSegDecoder(Decoder):
    """RF-DETR-seg style outputs: boxes, class logits and one mask map per query; no NMS."""

    name = "detr_seg"

    def __init__(self, boxes: str, logits: str, masks: str) -> None:
        self.boxes, self.logits, self.masks = boxes, logits, masks

    @classmethod
    def match(cls, outputs: list[TensorInfo], metadata: dict[str, str]) -> Optional["DetrSegDecoder"]:
        groups = outputs_by_rank(outputs, {3: 2, 4: 1})
        if groups is None:
            return None
        three, four = groups[3], groups[4]
        boxes = [o for o in three if o.shape[2] == 4 and o.name != "labels"]
        if not boxes:
            return None
        box = next((o for o in boxes if o.name in ("dets", "boxes", "pred_boxes")), boxes[0])
        logits = next(o for o in three if o is not box)
        queries = {box.shape[1], logits.shape[1], four[0].shape[1]} - {None}
        if len(queries) > 1:
            return None
        return cls(box.name, logits.name, four[0].name)

    def select(self, raw: dict[str, np.ndarray], transform: LetterboxTransform,
               settings: PostprocessSettings) -> Selection:
        logits = raw[self.logits][0]  # (Q, C)
        q, c = logits.shape
        flat = logits.reshape(-1)
        # Compare in logit space: only survivors get a sigmoid.
        candidates = np.nonzero(flat >= logit(settings.score_threshold))[0]
        class_ids = candidates % c
        candidates = candidates[class_allowed(class_ids, settings.class_ids)]
        scores = 1.0 / (1.0 + np.exp(-flat[candidates]))
        order = np.argsort(-scores, kind="stable")[:settings.max_detections]
        candidates, scores = candidates[order], scores[order].astype(np.float32)
        queries, class_ids = candidates // c, candidates % c
        in_h, in_w = transform.input_shape
        boxes = cxcywh_to_xyxy(raw[self.boxes][0][queries].astype(np.float32)) * np.array([in_w, in_h, in_w, in_h], np.float32)
        boxes = transform.clip_boxes(transform.to_image(boxes))
        masks = raw[self.masks][0]  # (Q, h, w) logits

        def region(i: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
            return masks[queries[i], y0:y1, x0:x1]

        return Selection(boxes=boxes, scores=scores, class_ids=class_ids, map_shape=masks.shape[1:],
                         region=region, full_maps=lambda: masks[queries],
                         threshold=logit(settings.mask_threshold), crop_to_box=False)
