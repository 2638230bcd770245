"""Draw Detections over an image: tinted masks, outlines, boxes and labels (for ~/debug_image, PNGs and
the bag2coco mosaic)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from robot_instseg.engine.types import Detections


def instance_colour(detections: Detections, i: int) -> tuple[int, int, int]:
    """The colour of instance ``i``: by its track (one colour per object over time), else by its class."""
    track = int(detections.track_ids[i]) if len(detections.track_ids) else 0
    return colour(track + 1000 if track > 0 else int(detections.class_ids[i]))


def colour(index: int) -> tuple[int, int, int]:
    """A stable, well-spread RGB colour per class or track id (golden-ratio hues)."""
    hue = int((index * 0.618033988749895 % 1.0) * 179)
    hsv = np.array([[[hue, 200, 255]]], np.uint8)
    r, g, b = (int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])
    return r, g, b


def colour_hex(index: int) -> str:
    """``colour(index)`` as #rrggbb, for labelling tools (Label Studio, CVAT) to show our colours."""
    return "#{:02x}{:02x}{:02x}".format(*colour(index))


def draw(image_rgb: np.ndarray, detections: Detections, alpha: float = 0.45,
         labels: Optional[np.ndarray] = None, captions: Optional[list[str]] = None) -> np.ndarray:
    """A new RGB image with each instance's visible mask tinted and outlined, box and label drawn, and from
    a model with the amodal head the whole object's outline dashed.

    ``labels``: ``detections.to_label_image()`` when the caller already has it. ``captions``: text
    appended to each instance's label (its distance, when depth was fused).
    """
    out = image_rgb.copy()
    if image_rgb.ndim == 2:
        out = cv2.cvtColor(image_rgb, cv2.COLOR_GRAY2RGB)
    labels = detections.to_label_image() if labels is None else labels
    for i in range(len(detections)):
        tint = np.array(instance_colour(detections, i), np.float32)
        region = labels == i + 1
        out[region] = (out[region] * (1 - alpha) + tint * alpha).astype(np.uint8)
        contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, tuple(int(v) for v in tint), 1)
        if detections.has_amodal:
            draw_whole_outline(out, detections, i, tuple(int(v) for v in tint))
        x0, y0, x1, y1 = (int(round(v)) for v in detections.boxes[i])
        cv2.rectangle(out, (x0, y0), (x1, y1), tuple(int(v) for v in tint), 1)
        name = detections.class_names[i] if i < len(detections.class_names) else str(int(detections.class_ids[i]))
        track = int(detections.track_ids[i]) if len(detections.track_ids) else 0
        text = f"{i + 1}:{name} {detections.scores[i]:.2f}" + (f" #{track}" if track else "")
        if captions and i < len(captions) and captions[i]:
            text += f" {captions[i]}"
        cv2.putText(out, text, (x0, max(10, y0 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return out


DASH_PX = 5


def draw_whole_outline(out: np.ndarray, detections: Detections, i: int, rgb: tuple[int, ...],
                       dash: int = DASH_PX) -> None:
    """Instance ``i``'s whole (amodal) outline, dashed: ``dash`` outline pixels drawn, then as many skipped."""
    from robot_instseg.engine.occlusion import whole_mask

    (x0, y0, _, _), whole = whole_mask(detections, i)
    if not whole.size:
        return
    contours, _ = cv2.findContours(whole.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE,
                                   offset=(x0, y0))
    for contour in contours:
        points = contour.reshape(-1, 2)
        for start in range(0, len(points), 2 * dash):
            cv2.polylines(out, [points[start:start + dash].reshape(-1, 1, 2)], False, rgb, 1)


def tile_grid(tiles: list[np.ndarray]) -> np.ndarray:
    """Equal-size RGB tiles in as square a grid as fits (row by row; black where the last row is short)."""
    h, w = tiles[0].shape[:2]
    cols = int(np.ceil(np.sqrt(len(tiles))))
    rows = int(np.ceil(len(tiles) / cols))
    canvas = np.zeros((rows * h, cols * w, 3), np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = tile
    return canvas


def write_mosaic(path: Path, pool: list, tiles: int = 16, tile_size: tuple[int, int] = (320, 240)) -> None:
    """A grid of kept frames (evenly spaced) with their masks overlaid, to eyeball the export."""
    if not pool:
        return
    picks = [pool[int(i)] for i in np.linspace(0, len(pool) - 1, min(tiles, len(pool)))]
    tw, th = tile_size
    images: list[np.ndarray] = []
    for image_path, anns in picks:
        bgr = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if bgr is None:
            images.append(np.zeros((th, tw, 3), np.uint8))
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32)
        for n, (class_id, mask) in enumerate(anns):
            if isinstance(mask, dict):  # a COCO RLE (bag2coco keeps masks encoded until a frame is drawn)
                from pycocotools import mask as mask_utils

                mask = mask_utils.decode(mask).astype(bool)
            rgb[mask] = 0.5 * rgb[mask] + 0.5 * np.array(colour(n), np.float32)
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(rgb, contours, -1, tuple(float(c) for c in colour(n)), 2)
        images.append(cv2.resize(rgb.clip(0, 255).astype(np.uint8), (tw, th), interpolation=cv2.INTER_AREA))
    cv2.imwrite(str(path), cv2.cvtColor(tile_grid(images), cv2.COLOR_RGB2BGR))
