"""Masks <-> Label Studio brush regions.

Label Studio stores a brush mask as its own RLE (not COCO's): the image's RGBA pixels, row
by row, bit-packed. Our masks go in as 0/255 in all four channels at the image's real size,
and come back from the alpha channel, so holes survive both ways (Label Studio's own
BRUSH_TO_COCO export keeps outer contours only). The bit packing itself is the SDK's.
"""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np
from label_studio_sdk.converter.brush import decode_rle, mask2rle

from robot_instseg.labelling.errors import LabellingError

FROM_NAME, TO_NAME = "label", "image"  # the control and object tag names of our labelling config


def mask_to_rle(mask: np.ndarray) -> list[int]:
    """Label Studio brush RLE of an HxW bool mask (0/255 alpha)."""
    return [int(v) for v in mask2rle(np.where(mask, 255, 0).astype(np.uint8))]


def rle_to_mask(rle: list[int], height: int, width: int) -> np.ndarray:
    """The HxW bool mask of a brush RLE (alpha > 0); refuses an RLE of another size."""
    flat = decode_rle(rle)
    if flat.size != height * width * 4:
        raise LabellingError(f"brush mask holds {flat.size // 4} pixels, the image {height}x{width} = "
                             f"{height * width}", "format")
    return flat.reshape(height, width, 4)[:, :, 3] > 0


def mask_to_polygon(mask: np.ndarray) -> list[list[float]]:
    """The largest outer contour of a mask as Label Studio polygon points (percent of the image)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return []
    contour = max(contours, key=cv2.contourArea).reshape(-1, 2)
    h, w = mask.shape
    return [[float(x) * 100.0 / w, float(y) * 100.0 / h] for x, y in contour]


def polygon_to_mask(points: list[list[float]], height: int, width: int) -> np.ndarray:
    """The filled HxW bool mask of Label Studio polygon points (percent of the image)."""
    mask = np.zeros((height, width), np.uint8)
    if points:
        pts = np.array([[x * width / 100.0, y * height / 100.0] for x, y in points], np.float64)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return mask > 0


def region(mask: np.ndarray, label: str, region_id: str, score: Optional[float] = None,
           kind: str = "brush") -> dict:
    """One Label Studio result region (brushlabels or polygonlabels) for one instance mask."""
    h, w = mask.shape
    if kind == "brush":
        value: dict = {"format": "rle", "rle": mask_to_rle(mask), "brushlabels": [label]}
        rtype = "brushlabels"
    elif kind == "polygon":
        value, rtype = {"points": mask_to_polygon(mask), "closed": True, "polygonlabels": [label]}, "polygonlabels"
    else:
        raise LabellingError(f"unknown region kind {kind!r} (brush or polygon)", "format")
    out = {"id": region_id, "from_name": FROM_NAME, "to_name": TO_NAME, "type": rtype,
           "original_width": int(w), "original_height": int(h), "image_rotation": 0, "value": value}
    if score is not None:
        out["score"] = round(float(score), 5)
    return out


def region_label(result: dict) -> Optional[str]:
    """The class a result region names (None for results that are not mask regions)."""
    value = result.get("value") or {}
    for key in ("brushlabels", "polygonlabels"):
        if value.get(key):
            return str(value[key][0])
    return None


def region_mask(result: dict, height: int, width: int) -> Optional[np.ndarray]:
    """The HxW bool mask of a brush or polygon result region (None for other result types)."""
    value = result.get("value") or {}
    if result.get("type") == "brushlabels" or value.get("format") == "rle":
        return rle_to_mask(value["rle"], height, width)
    if result.get("type") == "polygonlabels":
        return polygon_to_mask(value.get("points") or [], height, width)
    return None
