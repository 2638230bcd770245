"""What lies behind, as ground truth: every object's amodal (whole) mask and who covers whom.

The generator paints objects back to front, so an object's silhouette, clipped to the image, is its
amodal mask, and a later object covers an earlier one exactly where the later one's visible pixels fall
inside the earlier one's silhouette. The keys follow the amodal datasets (KINS and COCOA as converted to
COCO): ``amodal_segmentation`` (RLE), ``amodal_bbox``, ``amodal_area`` and ``occlusion_rate``; the pairwise
order is ``occluded_by``: ``[{"id": annotation id, "pixels": covered pixels}]``, most covering first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Occlusion:
    """Object ``occluder`` (an index in drawing order) hides ``pixels`` of object ``occluded``'s silhouette."""

    occluded: int
    occluder: int
    pixels: int


def occlusions(amodal: Sequence[np.ndarray], visible: Sequence[np.ndarray]) -> list[Occlusion]:
    """Every covering pair of a back-to-front scene: ``visible[j] & amodal[i]`` for each later ``j``."""
    pairs = []
    for i, whole in enumerate(amodal):
        for j in range(i + 1, len(visible)):
            pixels = int(np.count_nonzero(whole & visible[j]))
            if pixels:
                pairs.append(Occlusion(i, j, pixels))
    return pairs


def occlusion_rate(visible_area: int, amodal_area: int) -> float:
    """1 - visible / amodal area: 0 for an object in full view, near 1 for a sliver."""
    return 0.0 if amodal_area <= 0 else round(1.0 - visible_area / amodal_area, 6)


def amodal_fields(amodal: np.ndarray, visible_area: int) -> dict:
    """The amodal keys of one COCO annotation (``occluded_by`` is added once every id is known)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(amodal.astype(np.uint8)))
    area = int(mask_utils.area(rle))
    bbox = [float(v) for v in mask_utils.toBbox(rle)]
    rle["counts"] = rle["counts"].decode("ascii")
    return {"amodal_segmentation": rle, "amodal_bbox": bbox, "amodal_area": area,
            "occlusion_rate": occlusion_rate(visible_area, area)}


def occluded_by(pairs: Sequence[Occlusion], annotation_ids: dict[int, int]) -> dict[int, list[dict]]:
    """Per annotated object index: its occluders as ``{"id", "pixels"}``, most covering first (then the
    nearer one, drawn later). Objects without an annotation id (filtered out) are left out on both sides."""
    lists: dict[int, list[tuple[int, int, int]]] = {index: [] for index in annotation_ids}
    for pair in pairs:
        if pair.occluded in annotation_ids and pair.occluder in annotation_ids:
            lists[pair.occluded].append((-pair.pixels, -pair.occluder, annotation_ids[pair.occluder]))
    return {index: [{"id": ann_id, "pixels": -neg} for neg, _, ann_id in sorted(items)]
            for index, items in lists.items()}
