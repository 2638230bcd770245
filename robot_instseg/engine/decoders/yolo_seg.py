"""Ultralytics YOLOv8 / YOLO11 / YOLO26 segmentation exports.

Standard: ``output0`` [1, 4+nc+nm, N] (cx, cy, w, h in input pixels, nc class scores already
sigmoid, nm mask coefficients) and ``output1`` prototypes [1, nm, H/4, W/4].
End-to-end (NMS-free): [1, K, 6+nm] rows of x1, y1, x2, y2, score, class, coefficients.
A pixel is in the mask where sigmoid(coefficients . prototypes) > mask_threshold, sampled
as Ultralytics' ``process_mask_native`` does (see ``engine.mask_sampling``), and only inside
the box: pixel column u is kept when x1 <= u < x2 (rows alike).

Amodal head (our CompactSeg with ``train --amodal``): a third output ``amodal_coefficients``
[1, nm, N], each cell's coefficients of its instance's whole mask over the same prototypes.
That mask is decoded the same way inside the box grown by ``amodal_margin`` (metadata) of its
size per side: the visible box does not hold what lies behind. Models without it are unchanged.
``amodal_mask_threshold`` (metadata, above the mask threshold) publishes the whole masks where the head
is that sure, while the occlusion order reads the head's reach at the mask threshold: a head taught to
reach under occluders (hidden pixels weighted up) also reaches a little past every outline.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from robot_instseg.engine.backends.base import TensorInfo
from robot_instseg.engine.decoders.base import Decoder, Selection, outputs_by_rank
from robot_instseg.engine.postprocess import (
    PostprocessSettings,
    batched_nms,
    candidates_above,
    class_allowed,
    cxcywh_to_xyxy,
    logit,
    top_candidates,
)
from robot_instseg.engine.preprocess import LetterboxTransform

AMODAL_OUTPUT = "amodal_coefficients"
DEFAULT_AMODAL_MARGIN = 0.5


def _split(outputs: list[TensorInfo]) -> Optional[tuple[TensorInfo, TensorInfo, int]]:
    """(predictions, prototypes, number of mask coefficients) when the outputs look like YOLO-seg (an amodal
    head's output aside)."""
    groups = outputs_by_rank([o for o in outputs if o.name != AMODAL_OUTPUT], {3: 1, 4: 1})
    if groups is None:
        return None
    preds, protos = groups[3], groups[4]
    nm = protos[0].shape[1]
    return None if nm is None else (preds[0], protos[0], int(nm))


class _YoloDecoder(Decoder):
    """Both YOLO layouts read a predictions tensor and a prototypes tensor by name."""

    def __init__(self, preds: str, protos: str, num_masks: int) -> None:
        self.preds, self.protos, self.num_masks = preds, protos, num_masks


def _number(metadata: dict[str, str], key: str) -> Optional[float]:
    """A metadata value as a number, None when absent or unreadable (the default then applies)."""
    try:
        return float(metadata[key])
    except (KeyError, ValueError):
        return None


def _amodal_head(outputs: list[TensorInfo], metadata: dict[str, str],
                 nm: int) -> tuple[Optional[str], float, Optional[float]]:
    """(the amodal coefficients' output name or None, the margin its masks are decoded within, the probability
    its published masks need or None: the mask threshold)."""
    found = [o for o in outputs if o.name == AMODAL_OUTPUT and len(o.shape) == 3 and o.shape[1] == nm]
    margin, threshold = _number(metadata, "amodal_margin"), _number(metadata, "amodal_mask_threshold")
    if threshold is not None and not 0.0 < threshold < 1.0:
        threshold = None
    return (found[0].name if found else None), DEFAULT_AMODAL_MARGIN if margin is None else margin, threshold


class YoloSegDecoder(_YoloDecoder):
    """The standard layout: candidates along the last axis, NMS done here."""

    name = "yolo_seg"

    @classmethod
    def match(cls, outputs: list[TensorInfo], metadata: dict[str, str]) -> Optional["YoloSegDecoder"]:
        split = _split(outputs)
        if split is None or str(metadata.get("end2end", "")).lower() == "true":
            return None
        preds, protos, nm = split
        channels = preds.shape[1]
        if channels is None or channels < 5 + nm:
            return None
        if preds.shape[2] is not None and preds.shape[2] < channels:
            return None  # candidates run along the last axis here; [1, K, 6+nm] is end-to-end
        decoder = cls(preds.name, protos.name, nm)
        decoder.amodal, decoder.amodal_margin, decoder.amodal_threshold = _amodal_head(outputs, metadata, nm)
        return decoder

    amodal: Optional[str] = None  # the amodal coefficients' output, when the model has the head
    amodal_margin: float = DEFAULT_AMODAL_MARGIN
    amodal_threshold: Optional[float] = None  # probability the published whole masks need (None: the mask threshold)

    def select(self, raw: dict[str, np.ndarray], transform: LetterboxTransform,
               settings: PostprocessSettings) -> Selection:
        preds = raw[self.preds][0]  # (4 + nc + nm, N)
        protos = raw[self.protos][0]  # (nm, mh, mw)
        nc = preds.shape[0] - 4 - self.num_masks
        class_scores = preds[4:4 + nc]
        keep, scores, class_ids = candidates_above(class_scores, settings.score_threshold, settings.class_ids)
        anchors, boxes, scores, class_ids = choose_anchors(keep, scores, class_ids, lambda a: preds[:4, a].T, settings)
        selection = _assemble(boxes, scores, class_ids, preds[4 + nc:, anchors].T, protos, transform, settings)
        if self.amodal is not None and self.amodal in raw:
            grown = grow_boxes(selection.boxes, self.amodal_margin, transform.image_shape)
            selection.amodal = _assemble(grown, scores, class_ids, raw[self.amodal][0][:, anchors].T, protos,
                                         None, settings)
            selection.amodal.tight = True  # the grown window is mostly background
            selection.amodal.publish_threshold = amodal_publish_threshold(self.amodal_threshold, settings)
        return selection


class YoloSegEndToEndDecoder(_YoloDecoder):
    """The NMS-free layout [1, K, 6+nm]: boxes already final, only thresholds apply."""

    name = "yolo_seg_e2e"

    @classmethod
    def match(cls, outputs: list[TensorInfo], metadata: dict[str, str]) -> Optional["YoloSegEndToEndDecoder"]:
        split = _split(outputs)
        if split is None:
            return None
        preds, protos, nm = split
        if preds.shape[2] != 6 + nm:
            return None
        return cls(preds.name, protos.name, nm)

    def select(self, raw: dict[str, np.ndarray], transform: LetterboxTransform,
               settings: PostprocessSettings) -> Selection:
        rows = raw[self.preds][0]  # (K, 6 + nm)
        keep = choose_rows(rows[:, :6], settings)
        return _assemble(rows[keep, :4], rows[keep, 4], rows[keep, 5].astype(np.int64), rows[keep, 6:],
                         raw[self.protos][0], transform, settings)


def choose_rows(heads: np.ndarray, settings: PostprocessSettings) -> np.ndarray:
    """End-to-end rows (x1, y1, x2, y2, score, class) -> indices of those kept, best first (host and device)."""
    scores, class_ids = heads[:, 4], heads[:, 5].astype(np.int64)
    keep = np.nonzero((scores >= settings.score_threshold) & class_allowed(class_ids, settings.class_ids))[0]
    return keep[np.argsort(-scores[keep], kind="stable")][:settings.max_detections]


def choose_anchors(anchors: np.ndarray, scores: np.ndarray, class_ids: np.ndarray,
                   cxcywh_of: Callable[[np.ndarray], np.ndarray],
                   settings: PostprocessSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The candidates above threshold -> the kept ones: (anchors, xyxy boxes in input pixels, scores, class ids).

    The best ``max_candidates`` by score enter class-aware NMS; ``cxcywh_of(anchors)`` reads
    their boxes. The host and the device pipelines both choose here, so they keep the same boxes.
    """
    order = top_candidates(scores, settings.max_candidates)
    anchors, scores, class_ids = anchors[order], scores[order], class_ids[order]
    boxes = cxcywh_to_xyxy(np.asarray(cxcywh_of(anchors)))
    chosen = batched_nms(boxes, scores, class_ids, settings.iou_threshold, settings.max_detections)
    return anchors[chosen], boxes[chosen], scores[chosen], class_ids[chosen]


def amodal_publish_threshold(probability: Optional[float], settings: PostprocessSettings) -> Optional[float]:
    """The published whole masks' threshold in logits (host and device), None where it is not above the mask
    threshold (the reach is then the published mask)."""
    if probability is None or probability <= settings.mask_threshold:
        return None
    return logit(probability)


def grow_boxes(boxes: np.ndarray, margin: float, image_shape: tuple[int, int]) -> np.ndarray:
    """xyxy image boxes grown by ``margin`` of their width and height on each side, clipped to the image."""
    size = boxes[:, 2:] - boxes[:, :2]
    grown = np.concatenate([boxes[:, :2] - size * margin, boxes[:, 2:] + size * margin], 1).astype(np.float32)
    h, w = image_shape
    np.clip(grown[:, 0::2], 0, w, out=grown[:, 0::2])
    np.clip(grown[:, 1::2], 0, h, out=grown[:, 1::2])
    return grown


def _assemble(boxes_input: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, coefficients: np.ndarray,
              protos: np.ndarray, transform: Optional[LetterboxTransform], settings: PostprocessSettings) -> Selection:
    """Boxes to image pixels (``transform`` None: they are already); mask logits = coefficients . prototypes,
    computed per window on demand."""
    boxes = boxes_input if transform is None else transform.clip_boxes(transform.to_image(boxes_input))
    nm, mh, mw = protos.shape
    coefficients = np.ascontiguousarray(coefficients, np.float32)

    def region(i: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        patch = protos[:, y0:y1, x0:x1]
        return (coefficients[i] @ patch.reshape(nm, -1)).reshape(y1 - y0, x1 - x0)

    def full_maps() -> np.ndarray:
        return (coefficients @ protos.reshape(nm, -1)).reshape(-1, mh, mw)

    return Selection(boxes=boxes, scores=scores, class_ids=class_ids, map_shape=(mh, mw), region=region,
                     full_maps=full_maps, threshold=logit(settings.mask_threshold), crop_to_box=True,
                     linear=(coefficients, protos))
