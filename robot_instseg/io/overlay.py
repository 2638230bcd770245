"""Draw Detections over an image: tinted masks, outlines, boxes and labels (for ~/debug_image and PNGs)."""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from robot_instseg.engine.types import Detections


def colour(index: int) -> tuple[int, int, int]:
    """A stable, well-spread RGB colour per class or track id (golden-ratio hues)."""
    hue = int((index * 0.618033988749895 % 1.0) * 179)
    hsv = np.array([[[hue, 200, 255]]], np.uint8)
    r, g, b = (int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])
    return r, g, b


def draw(image_rgb: np.ndarray, detections: Detections, alpha: float = 0.45,
         labels: Optional[np.ndarray] = None) -> np.ndarray:
    """A new RGB image with each instance's visible mask tinted and outlined, box and label drawn.

    ``labels``: ``detections.to_label_image()`` when the caller already has it.
    """
    out = image_rgb.copy()
    if image_rgb.ndim == 2:
        out = cv2.cvtColor(image_rgb, cv2.COLOR_GRAY2RGB)
    labels = detections.to_label_image() if labels is None else labels
    for i in range(len(detections)):
        tint = np.array(colour(int(detections.class_ids[i])), np.float32)
        region = labels == i + 1
        out[region] = (out[region] * (1 - alpha) + tint * alpha).astype(np.uint8)
        contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, tuple(int(v) for v in tint), 1)
        x0, y0, x1, y1 = (int(round(v)) for v in detections.boxes[i])
        cv2.rectangle(out, (x0, y0), (x1, y1), tuple(int(v) for v in tint), 1)
        name = detections.class_names[i] if i < len(detections.class_names) else str(int(detections.class_ids[i]))
        text = f"{i + 1}:{name} {detections.scores[i]:.2f}"
        cv2.putText(out, text, (x0, max(10, y0 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return out
