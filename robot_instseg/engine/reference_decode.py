"""The frameworks' published mask decodes, in torch, as an oracle for our fast per-box path.

Written from the published algorithms, full frame and per instance, the slow obvious way:

- YOLO (Ultralytics ``process_mask_native``): logits = coefficients . prototypes; drop the
  letterbox padding in prototype space with ``scale_masks``' rounding; ``F.interpolate``
  bilinear, ``align_corners=False``, to the image; keep pixel (u, v) only when
  x1 <= u < x2 and y1 <= v < y2 (``crop_mask``); in where logit > 0 (mask_threshold 0.5).
- RF-DETR-Seg: the query's whole logit map ``F.interpolate``-d to the image, logit > 0.
- torchvision Mask R-CNN: the pasted probability frame resized to the image, p > 0.5.

Only tests and the compare tool use it (torch is imported on call); the node never does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from robot_instseg.engine.decoders.base import Selection, masks_for
from robot_instseg.engine.preprocess import LetterboxTransform
from robot_instseg.engine.types import Detections

_CHUNK = 16  # instances upsampled at once: bounds memory at 16 full frames


def reference_masks(selection: Selection, transform: LetterboxTransform) -> np.ndarray:
    """(N, H, W) bool: each selected instance's mask by the published algorithm."""
    import torch
    import torch.nn.functional as F

    h, w = transform.image_shape
    n = len(selection.boxes)
    out = np.zeros((n, h, w), bool)
    if n == 0:
        return out
    maps = torch.from_numpy(np.ascontiguousarray(selection.full_maps(), np.float32))
    mh, mw = maps.shape[1:]
    if transform.letterbox:  # Ultralytics scale_masks: padding removed in map space, rounded
        gain = min(mh / h, mw / w)
        pad_w, pad_h = (mw - w * gain) / 2, (mh - h * gain) / 2
        top, left = int(round(pad_h - 0.1)), int(round(pad_w - 0.1))
        bottom, right = mh - int(round(pad_h + 0.1)), mw - int(round(pad_w + 0.1))
        maps = maps[:, top:bottom, left:right]
    cols = torch.arange(w, dtype=torch.float32)[None, None, :]
    rows = torch.arange(h, dtype=torch.float32)[None, :, None]
    boxes = torch.from_numpy(np.ascontiguousarray(selection.boxes, np.float32))
    with torch.no_grad():
        for start in range(0, n, _CHUNK):
            chunk = maps[start:start + _CHUNK]
            up = F.interpolate(chunk[None], size=(h, w), mode="bilinear", align_corners=False)[0]
            inside = up > selection.threshold
            if selection.crop_to_box:
                x1, y1, x2, y2 = boxes[start:start + _CHUNK, :, None, None].unbind(1)
                inside &= (cols >= x1) & (cols < x2) & (rows >= y1) & (rows < y2)
            out[start:start + len(chunk)] = inside.numpy()
    return out


def parity_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Pixel IoU of a fast and a reference mask; two empty masks agree perfectly (1.0).

    Not ``dataset.evaluate.mask_iou``: against ground truth an empty prediction scores 0, here
    two decodes that agree on "nothing" are a perfect match.
    """
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


@dataclass
class ParityReport:
    """Fast vs reference masks over many frames: one IoU per instance."""

    ious: list[float] = field(default_factory=list)
    frames: int = 0
    worst: list[tuple[float, str]] = field(default_factory=list)  # (IoU, where) of the lowest few

    def add(self, ious: Iterable[float], where: str) -> None:
        for k, value in enumerate(ious):
            self.ious.append(float(value))
            self.worst.append((float(value), f"{where} #{k}"))
        self.worst = sorted(self.worst)[:5]
        self.frames += 1

    def summary(self) -> dict:
        values = np.asarray(self.ious, np.float64)
        if len(values) == 0:
            return {"frames": self.frames, "instances": 0}
        return {"frames": self.frames, "instances": int(len(values)), "median_iou": float(np.median(values)),
                "min_iou": float(values.min()), "mean_iou": float(values.mean()),
                "exact": int(np.count_nonzero(values == 1.0)), "worst": [f"{v:.5f} {w}" for v, w in self.worst]}


def decode_both(segmenter, image: np.ndarray, channel_order: str = "rgb") -> tuple[Detections, np.ndarray]:
    """One frame through ``segmenter``'s model once: (fast Detections, reference full masks) of the
    same selected instances."""
    raw, transform = segmenter.infer(image, channel_order)
    selection = segmenter.decoder.select(raw, transform, segmenter.settings)
    fast = masks_for(selection, transform)
    fast.class_names = [segmenter.name_of(int(c)) for c in fast.class_ids]
    return fast, reference_masks(selection, transform)


def parity_ious(fast: Detections, reference: np.ndarray) -> list[float]:
    """Per-instance IoU of our masks against the reference decode's full-frame masks."""
    return [parity_iou(fast.full_mask(i), reference[i]) for i in range(len(fast))]
