"""What a decoder is: it recognises a model's outputs, selects the instances, and says
where each instance's mask map lies; one shared mask step turns that into Detections.

Selection and masks are split so that the reference decode (``engine.reference_decode``)
can take the very same instances and rebuild their masks the frameworks' own way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from robot_instseg.engine.backends.base import TensorInfo
from robot_instseg.engine.mask_sampling import (
    MapSampler,
    RegionFn,
    covering_boxes,
    crop_boxes,
    full_map_boxes,
    sample_in_boxes,
    sample_linear_in_boxes,
    support_boxes,
)
from robot_instseg.engine.postprocess import PostprocessSettings
from robot_instseg.engine.preprocess import LetterboxTransform
from robot_instseg.engine.types import Detections


@dataclass
class Selection:
    """The instances a decoder keeps, and how to read their low-resolution mask maps."""

    boxes: np.ndarray  # (N, 4) xyxy in image pixels, clipped
    scores: np.ndarray  # (N,)
    class_ids: np.ndarray  # (N,)
    map_shape: tuple[int, int]  # (h, w) of the mask maps; they span the model input
    region: RegionFn  # instance i's map over a window (the fast path reads only its box)
    full_maps: Callable[[], np.ndarray]  # (N, h, w) every kept map whole (reference, support boxes)
    threshold: float  # in map units: a pixel is in where the sampled map is above it
    crop_to_box: bool  # the reference keeps only pixels inside the box (YOLO) or the whole map
    probabilities: bool = False  # maps hold probabilities (else logits)
    amodal: Optional["Selection"] = None  # the same instances' whole (amodal) masks, when the model has the head
    tight: bool = False  # cut each crop box to where the map can be positive (same pixels, fewer sampled)
    publish_threshold: Optional[float] = None  # (amodal) map units of the published masks, above ``threshold``
    linear: Optional[tuple[np.ndarray, np.ndarray]] = None  # (coefficients (N, nm), prototypes (nm, h, w)) when
    # instance i's map is coefficients[i] . prototypes: then every mask is sampled in one compiled call


class Decoder:
    """One output format. Subclasses set ``name`` and implement ``match`` and ``select``."""

    name = ""

    @classmethod
    def match(cls, outputs: list[TensorInfo], metadata: dict[str, str]) -> Optional["Decoder"]:
        """A decoder bound to these outputs, or None when the outputs are not this format."""
        raise NotImplementedError

    def select(self, raw: dict[str, np.ndarray], transform: LetterboxTransform,
               settings: PostprocessSettings) -> Selection:
        """Model outputs -> the kept instances in original-image pixels and their mask maps."""
        raise NotImplementedError

    def decode(self, raw: dict[str, np.ndarray], transform: LetterboxTransform,
               settings: PostprocessSettings) -> Detections:
        """Model outputs -> Detections in original-image pixels (class names filled later)."""
        return masks_for(self.select(raw, transform, settings), transform)


def masks_for(selection: Selection, transform: LetterboxTransform) -> Detections:
    """Detections with each instance's mask sampled at full resolution, only where it can be."""
    shape = transform.image_shape
    sampler = MapSampler.for_frame(selection.map_shape, transform)
    if selection.crop_to_box:
        mask_boxes = crop_boxes(selection.boxes, shape)
        if selection.tight:
            mask_boxes = support_boxes(sampler, mask_boxes, selection.region, selection.threshold)
    elif len(selection.boxes):
        maps = selection.full_maps()
        mask_boxes = full_map_boxes(sampler, selection.boxes, shape, lambda i: maps[i] > selection.threshold)
    else:
        mask_boxes = covering_boxes(selection.boxes, shape)
    if selection.linear is not None:
        masks, values = sample_linear_in_boxes(sampler, mask_boxes, *selection.linear, selection.threshold)
    else:
        masks, values = sample_in_boxes(sampler, mask_boxes, selection.region, selection.threshold)
    if selection.probabilities:
        values = [probability_logits(v) for v in values]
    amodal = masks_for(selection.amodal, transform) if selection.amodal is not None else None
    whole, reach = (amodal.masks, []) if amodal is not None else ([], [])
    publish = selection.amodal.publish_threshold if selection.amodal is not None else None
    if amodal is not None and publish is not None:  # published tighter than the head reaches
        whole, reach = [v > publish for v in amodal.mask_logits], amodal.masks
    return Detections(image_shape=shape, boxes=selection.boxes, scores=selection.scores,
                      class_ids=selection.class_ids, mask_boxes=mask_boxes, masks=masks, mask_logits=values,
                      amodal_boxes=amodal.mask_boxes if amodal is not None else np.zeros((0, 4), np.int32),
                      amodal_masks=whole, amodal_reach=reach)


def probability_logits(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)): the evidence overlap ownership compares (monotonic in p)."""
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return (np.log(p) - np.log1p(-p)).astype(np.float32)


def describe_outputs(outputs: list[TensorInfo]) -> str:
    """The outputs as 'name [shape] dtype', for error messages."""
    return ", ".join(f"{o.name} {list(o.shape)} {o.dtype}" for o in outputs)


def rank(info: TensorInfo) -> int:
    """Number of dimensions of a tensor."""
    return len(info.shape)


def outputs_by_rank(outputs: list[TensorInfo], counts: dict[int, int]) -> Optional[dict[int, list[TensorInfo]]]:
    """The outputs grouped by rank when there are exactly ``counts[rank]`` of each rank and no others
    (the first test every decoder's ``match`` makes); None otherwise."""
    groups: dict[int, list[TensorInfo]] = {r: [] for r in counts}
    for info in outputs:
        if rank(info) not in groups:
            return None
        groups[rank(info)].append(info)
    return groups if all(len(groups[r]) == n for r, n in counts.items()) else None
